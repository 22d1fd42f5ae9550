"""Daemon processes started by the cluster tests are always killed, whatever the outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.monitor.cluster.replicas import Node


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(timeout=30)
