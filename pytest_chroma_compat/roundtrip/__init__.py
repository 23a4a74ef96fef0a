"""Written old, read new: Hypothesis-generated stores, the model they must match, the migration paths
(in place, export/import, the legacy 0.3 path), the invariants and write probe that judge a pair, and
``matrix/``, the same over many pairs."""
