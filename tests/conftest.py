"""Shared fixtures; the real-server fixtures live in tests/conftest_services.py.

``HYPOTHESIS_PROFILE=ci`` (the whole-suite command, ``scripts/test.sh``, sets it) makes
the property-based tests draw the same examples on every run (hypothesis' ``derandomize``): a
landing is judged on a fixed set. Without it each run draws new examples; ``--hypothesis-seed=N``
replays one draw."""

import os

from hypothesis import settings

pytest_plugins = ["tests.conftest_services"]

settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
