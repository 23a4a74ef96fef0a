"""Scenarios run against one release pair, given by --chroma-from / --chroma-to
(the nox compat-* sessions pass them). Fixtures come from the plugin."""
