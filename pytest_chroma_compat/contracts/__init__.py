"""The migration log as executable contracts.

``table.toml`` is the log as data (what each entry says and since when),
``probes.py`` measures each behaviour inside a release's own environment, and
``measure.py`` runs probes through the worker, caches the answers and finds
the releases where they change, to set against the log. ``cli.py`` adds the
``chroma-compat contracts`` command. Nothing here hard-codes what a release does.
"""
