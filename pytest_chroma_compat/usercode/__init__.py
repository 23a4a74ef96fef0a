"""The user's own code: their command run under each release (``run``, ``--chroma-under``), the bisect
over releases, the nox helper, and ``scan/``, which reads their code without running it."""
