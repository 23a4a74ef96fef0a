"""Releases and where they run: the catalogue, pin rules, cached environments (a release's own, or the
user's project with a release), the worker process inside each and its host-side proxy (``Release``),
and the scratch space those processes leave behind.

``worker/`` and ``release_side/`` run *inside* a release's environment with the stdlib only: they never
import the rest of this package."""
