"""The ``chroma-compat`` command: one table of verbs (``main.VERBS``); each verb's handler lives in its
capability's ``cli.py``."""
