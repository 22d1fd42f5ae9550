"""Shared fixtures; the real-server fixtures live in tests/conftest_services.py.

``HYPOTHESIS_PROFILE=ci`` (the whole-suite command, ``scripts/test.sh``, sets it) makes
the property-based tests draw the same examples on every run (hypothesis' ``derandomize``): a
landing is judged on a fixed set. Without it each run draws new examples; ``--hypothesis-seed=N``
replays one draw."""

import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import settings

pytest_plugins = ["tests.conftest_services"]

settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the logging set-up back as it was: tests that call ``logs.configure`` use it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    # a KafkaSource of an earlier test may have set aiokafka's own level (library_log_level)
    libraries = {name: logging.getLogger(name).level for name in ("aiokafka", "httpx")}
    for name in libraries:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    logging.captureWarnings(False)  # noqa: FBT003 - the stdlib takes it positionally
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in libraries.items():
        logging.getLogger(name).setLevel(was)
    structlog.configure(**config)
