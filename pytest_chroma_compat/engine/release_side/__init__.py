"""Code that runs INSIDE a release's worker (``Release.run``), never imported by the host.

Its directory goes on the worker's ``sys.path``, so the modules here carry names no
release or dependency uses (``chroma_compat_*``). Stdlib plus what the release brings.
"""
