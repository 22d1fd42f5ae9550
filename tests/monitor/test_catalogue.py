"""The one metric catalogue (``monitor/catalogue.py``) against what is exposed and documented.

The exposition is the real ``replay`` road's text, parsed with prometheus_client's parser; the
documentation is the tables of ``docs/metrics.md``. Neither is built from the catalogue.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from support_monitor.monitor.catalogue import CATALOGUE, FAMILIES
from support_monitor.monitor.http import HttpCollector, HttpStats
from support_monitor.monitor.replay import replay
from tests.support import Stream, settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
NOT_IN_REPLAY = {"http", "cluster"}  # the listener's and cluster mode's own families


def _stream() -> Stream:
    """One event of every kind the families read, so every family has samples."""
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    s.add("contact.queued", 10.0, "voice", contact_id="c1", queue="billing")
    s.add("contact.answered", 25.0, "voice", contact_id="c1", queue="billing", agent_id="a1")
    s.add("contact.ended", 85.0, "voice", contact_id="c1", queue="billing")
    s.add("contact.queued", 30.0, "voice", contact_id="c2", queue="billing")
    s.add("contact.abandoned", 33.0, "voice", contact_id="c2", queue="billing")
    s.add("ticket.created", 40.0, "email", ticket_id="t1", queue="default", priority="high")
    s.add("ticket.rated", 50.0, "email", ticket_id="t1", rating=5)
    s.add("complaint.received", 60.0, "voice", category="billing")
    s.add("survey.answered", 70.0, "chat", survey="nps", score=9)
    s.add("bot.session_ended", 80.0, "chat", session_id="b1", outcome="contained")
    s.add("sentiment.scored", 90.0, "chat", score=-0.8)
    return s


async def test_the_replay_exposes_exactly_the_catalogue(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(_stream().text(), encoding="utf-8")
    text = (await replay(events, settings(), until=None)).decode()
    exposed = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {f.base: f for f in FAMILIES if f.group not in NOT_IN_REPLAY}
    assert sorted(exposed) == sorted(expected)
    for name, family in exposed.items():
        entry = expected[name]
        assert family.type == entry.type, name
        assert family.documentation == entry.help, name
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        if family.samples:
            assert labels == set(entry.labels), name
    # the families above had samples to check, the help-only ones aside
    empty = {n for n, f in exposed.items() if not f.samples}
    assert empty <= {
        "support_alerts",
        "support_monitor_dead_letters",
        "support_monitor_dead_letter_failures",
        "support_monitor_tick_failures",
        "support_monitor_notifications",
        "support_monitor_source_up",
        "support_monitor_kafka_partition_lag",
        "support_monitor_events_duplicate",
        "support_monitor_source_dropped",  # no MQTT source in a replay
        "support_monitor_store_failures",  # no state files in a replay
        "support_monitor_store_failing",
    }, empty


class _Refusing:
    """A mounted route (the console) that refused requests: the listener exports its count."""

    def owns(self, path: str) -> bool:
        return False

    async def handle(self, request: web.BaseRequest) -> web.Response:
        raise AssertionError

    def refusals(self) -> dict[str, int]:
        return {"bad_token": 1}


def test_the_listener_families_are_the_catalogue() -> None:
    families = {f.name: f for f in HttpCollector(HttpStats(), _Refusing()).collect()}
    expected = {f.base: f for f in FAMILIES if f.group == "http"}
    assert sorted(families) == sorted(expected)
    for name, family in families.items():
        assert family.type == expected[name].type
        assert {k for s in family.samples for k in s.labels} == set(expected[name].labels)


_ROW = re.compile(r"^\| `(support_[a-z0-9_]+)`", re.MULTILINE)


def test_the_docs_list_exactly_the_catalogue() -> None:
    documented = set(_ROW.findall(DOCS.read_text(encoding="utf-8")))
    assert sorted(documented) == sorted(CATALOGUE)


def test_the_doc_check_can_fail() -> None:
    page = "| `support_queue_waiting` | gauge | x |\n| `support_made_up_total` | counter | y |\n"
    assert set(_ROW.findall(page)) == {"support_queue_waiting", "support_made_up_total"}


def test_the_threshold_detectors_name_catalogued_families() -> None:
    from support_monitor.detectors.config import COUNTERS, METRICS  # noqa: PLC0415

    for name in METRICS:
        assert CATALOGUE[name].type in {"gauge", "summary"}, name
        assert CATALOGUE[name].group == "engine", name
    for name in COUNTERS:
        assert CATALOGUE[name].type == "counter", name
