"""``chroma-compat scan``: the lines of a user's code that a chromadb upgrade touches.

The patterns live next to the contracts (``scan`` tables in contracts/table.toml), so a new
contract brings its rule with it; which contracts an upgrade crosses comes from the measured
change versions (``usercode/scan/changes.json``, derived from contracts/measure.py's histories), not from the
log. Reading code never imports chromadb: the scan is a walk over ``ast`` trees.
"""
