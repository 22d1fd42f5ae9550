"""One incident, one page: grouping per channel with group_wait and group_interval, and
inhibition, through the real rules, planner, outbox and Slack notifier to a local Slack-like
server; plus the config checks of inhibit rules."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from pydantic import ValidationError

from support_monitor.alerts.config import AlertSettings, Route
from support_monitor.alerts.notify.webhook import webhook_payload
from support_monitor.alerts.runtime import Alerting
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.fakes import SlackLike, info, notification
from tests.alerts.helpers import sig
from tests.alerts.runtime_helpers import Scripted, delivering, wait_for
from tests.support import CONFIG, T0, settings


def _rule(alert: str, detector: str, severity: str, pair: str = "") -> dict[str, Any]:
    return {
        "alert": alert,
        "detector": detector,
        "severity": severity,
        "match": {"severity": pair} if pair else {},
        "annotations": {"summary": alert + " on {channel}"},
        "resolved_annotations": {"summary": alert + " on {channel} is over"},
    }


RULES = [
    _rule("LongestWaitHigh", "longest_wait", "critical"),
    _rule("BacklogGrowing", "backlog_growth", "warning"),
    _rule("AbandonRateHigh", "abandon_rate", "warning"),
    _rule("ServiceLevelBurn", "sla_burn", "critical", "page"),
    _rule("ServiceLevelBurnSlow", "sla_burn", "warning", "ticket"),
]


def make(
    url: str,
    *,
    state_dir: Path | None = None,
    records: list[dict[str, Any]] | None = None,
    inhibit_rules: list[dict[str, Any]] | None = None,
    route: dict[str, Any] | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> tuple[Alerting, Scripted]:
    """Alerting over scripted signals with the default route settings (group_by [channel],
    group_wait 30s, group_interval 5m) unless ``route`` overrides them."""
    alerts: dict[str, Any] = {"rules": RULES if rules is None else rules}
    if inhibit_rules is not None:
        alerts["inhibit_rules"] = inhibit_rules
    s = settings(
        alerts=alerts,
        notifiers={
            "receivers": {"slack": {"type": "slack", "webhook_url": url, "repeat_interval": "4h"}},
            "routes": [{"receiver": "slack", **(route or {})}],
            "state_dir": str(state_dir) if state_dir else None,
            "retry_for": "3650d",
        },
    )
    alerting = Alerting(
        s.detectors,
        s.alerts,
        s.notifiers,
        Engine(s),
        DaemonStats(),
        on_transition=None if records is None else lambda record: records.append(dict(record)),
    )
    source = Scripted()
    alerting.suite = cast("DetectorSuite", source)  # see test_alerting_runtime.make
    return alerting, source


def _headers(server: SlackLike) -> list[str]:
    return [body["blocks"][0]["text"]["text"] for body in server.received]


def _summaries(body: dict[str, Any]) -> list[str]:
    return [
        block["text"]["text"].split("\n")[0]
        for block in body["blocks"]
        if block["type"] == "section"
    ]


async def _settle() -> None:
    await asyncio.sleep(0.1)


async def _held_until(alerting: Alerting, server: SlackLike, at: float, count: int) -> None:
    """Nothing new is sent at ``at - 1``; the ``count``-th message goes out at ``at``."""
    alerting.evaluate(at - 1)
    await _settle()
    assert len(server.received) == count - 1
    alerting.evaluate(at)
    await wait_for(lambda: len(server.received) == count)


def test_route_defaults_group_one_channel_and_wait() -> None:
    route = Route.model_validate({"receiver": "r"})
    assert route.group_by == ("channel",)
    assert route.group_wait == 30.0
    assert route.group_interval == 300.0


async def test_one_incident_one_page_then_one_update_then_one_resolve() -> None:
    async with SlackLike() as server:
        alerting, source = make(server.url, inhibit_rules=[])  # LongestWaitHigh holds none
        wait = sig("longest_wait", "voice", score=400)
        backlog = sig("backlog_growth", "voice", score=30, threshold=300)
        abandon = sig("abandon_rate", "chat", score=0.3, threshold=0.2)
        async with delivering(alerting):
            source.signals = [wait]
            alerting.evaluate(T0)  # voice group: first change at 0, wait until 30
            source.signals = [wait, backlog]
            alerting.evaluate(T0 + 10)
            source.signals = [wait, backlog, abandon]
            alerting.evaluate(T0 + 20)  # chat group: first change at 20, wait until 50
            # group_wait: nobody paged before 30
            await _held_until(alerting, server, T0 + 30, 1)
            first = server.received[0]
            assert _headers(server) == [
                ":rotating_light: FIRING: LongestWaitHigh, BacklogGrowing [critical] (voice)"
            ] or _headers(server) == [
                ":rotating_light: FIRING: BacklogGrowing, LongestWaitHigh [critical] (voice)"
            ]
            assert sorted(_summaries(first)) == [
                "*BacklogGrowing on voice*",
                "*LongestWaitHigh on voice*",
            ]
            alerting.evaluate(T0 + 50)
            await wait_for(lambda: len(server.received) == 2)
            assert _headers(server)[1] == ":warning: FIRING: AbandonRateHigh [warning] (chat)"

            # voice changes after its page: backlog resolves at 60, a third alert at 100; the
            # group was paged at 30, so they go out together at 30 + 300 = 330, not before
            source.signals = [wait, abandon]
            alerting.evaluate(T0 + 60)
            burn = sig("sla_burn", "voice", score=3.0, threshold=2.0, severity="page")
            source.signals = [wait, abandon, burn]
            alerting.evaluate(T0 + 100)
            await _held_until(alerting, server, T0 + 330, 3)
            update = server.received[2]
            header = update["blocks"][0]["text"]["text"]
            assert header.startswith(":rotating_light: FIRING: ")
            assert header.endswith("[critical] (voice) (update: 1 resolved)")
            # every firing alert of the group, then the resolved one with its resolved text
            assert _summaries(update)[2] == ":white_check_mark: *BacklogGrowing on voice is over*"
            assert sorted(_summaries(update)[:2]) == [
                "*LongestWaitHigh on voice*",
                "*ServiceLevelBurn on voice*",
            ]

            # the whole voice incident ends at 400: one resolved message at 330 + 300 = 630
            source.signals = [abandon]
            alerting.evaluate(T0 + 400)
            await _held_until(alerting, server, T0 + 630, 4)
            assert _headers(server)[3] in (
                ":white_check_mark: RESOLVED: LongestWaitHigh, ServiceLevelBurn (voice)",
                ":white_check_mark: RESOLVED: ServiceLevelBurn, LongestWaitHigh (voice)",
            )
            # the group is closed: a new voice alert is a new incident, after group_wait again
            source.signals = [abandon, wait]
            alerting.evaluate(T0 + 700)
            await _held_until(alerting, server, T0 + 730, 5)
            await _settle()
        assert len(server.received) == 5


async def test_group_wait_survives_a_restart(tmp_path: Path) -> None:
    async with SlackLike() as server:
        alerting, source = make(server.url, state_dir=tmp_path)
        async with delivering(alerting):
            source.signals = [sig("longest_wait", "voice", score=400)]
            alerting.evaluate(T0)  # due since 0: the first page goes at 30
            await wait_for(lambda: not alerting.planned)
            await _settle()
        assert server.received == []
        again, source = make(server.url, state_dir=tmp_path)
        async with delivering(again):
            source.signals = [sig("longest_wait", "voice", score=400)]
            again.evaluate(T0 + 20)
            await _settle()
            assert server.received == []
            again.evaluate(T0 + 30)  # not 20 + 30: the wait started before the restart
            await wait_for(lambda: len(server.received) == 1)


async def test_zero_waits_page_every_change_at_once() -> None:
    async with SlackLike() as server:
        alerting, source = make(
            server.url,
            route={"group_by": ["alertname", "channel"], "group_wait": 0},
            inhibit_rules=[],
        )
        async with delivering(alerting):
            source.signals = [sig("longest_wait", "voice"), sig("backlog_growth", "voice")]
            alerting.evaluate(T0)
            await wait_for(lambda: len(server.received) == 2)  # two groups, each at once


async def test_critical_inhibits_its_warning_twin_by_default() -> None:
    records: list[dict[str, Any]] = []
    async with SlackLike() as server:
        alerting, source = make(server.url, records=records)
        fast = sig("sla_burn", "voice", score=3.0, threshold=2.0, severity="page")
        slow = sig("sla_burn", "voice", score=3.0, threshold=2.0, severity="ticket")
        slow_chat = sig("sla_burn", "chat", score=3.0, threshold=2.0, severity="ticket")
        async with delivering(alerting):
            source.signals = [fast]
            alerting.evaluate(T0)
            source.signals = [fast, slow, slow_chat]
            alerting.evaluate(T0 + 10)
            alerting.evaluate(T0 + 30)  # voice: only the critical one; chat's twin is not held
            alerting.evaluate(T0 + 40)
            await wait_for(lambda: len(server.received) == 2)
            await _settle()
            assert _headers(server) == [
                ":rotating_light: FIRING: ServiceLevelBurn [critical] (voice)",
                ":warning: FIRING: ServiceLevelBurnSlow [warning] (chat)",
            ]
            # inhibited, still an alert: on /metrics and marked in the transition records
            series = {dict(s.labels)["alertname"] for s in alerting.series()}
            assert "ServiceLevelBurnSlow" in series
            slow_records = [
                (r["labels"]["channel"], r.get("inhibited", False))
                for r in records
                if r["alertname"] == "ServiceLevelBurnSlow"
            ]
            assert slow_records == [("voice", True), ("chat", False)]
            # the critical one resolves at 100: the warning is no longer held and is paged in
            # the group's next update (paged at 30, so at 330) with the critical's resolve
            source.signals = [slow, slow_chat]
            alerting.evaluate(T0 + 100)
            await _held_until(alerting, server, T0 + 330, 3)
            update = server.received[2]
            assert update["blocks"][0]["text"]["text"] == (
                ":warning: FIRING: ServiceLevelBurnSlow [warning] (voice) (update: 1 resolved)"
            )
            assert _summaries(update) == [
                "*ServiceLevelBurnSlow on voice*",
                ":white_check_mark: *ServiceLevelBurn on voice is over*",
            ]


async def test_inhibit_rules_can_be_turned_off() -> None:
    async with SlackLike() as server:
        alerting, source = make(server.url, inhibit_rules=[])
        async with delivering(alerting):
            source.signals = [
                sig("sla_burn", "voice", severity="page"),
                sig("sla_burn", "voice", severity="ticket"),
            ]
            alerting.evaluate(T0)
            alerting.evaluate(T0 + 30)
            await wait_for(lambda: len(server.received) == 1)
            assert len(_summaries(server.received[0])) == 2  # both, in one message


def test_default_inhibit_rules() -> None:
    rules = [r.model_dump() for r in AlertSettings().inhibit_rules]
    assert rules == [
        {
            "source_matchers": ('alertname="ServiceLevelBurn"',),
            "target_matchers": ('alertname="ServiceLevelBurnSlow"',),
            "equal": ("channel",),
        },
        {
            "source_matchers": ('alertname="LongestWaitHigh"',),
            "target_matchers": ('alertname=~"BacklogGrowing|EstimatedWaitHigh"',),
            "equal": ("channel",),
        },
    ]


@pytest.mark.parametrize(
    ("matcher", "problem"),
    [
        ("alertname", "'alertname' is not a matcher like"),
        ('alertname=~"(unclosed"', "bad regular expression"),
        ('alertname="open', "the quoted value is not a closed, valid string"),
        ("9x=y", "'9x=y' is not a matcher like"),
    ],
)
def test_bad_matchers_are_refused_with_their_key(matcher: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AlertSettings.model_validate(
            {
                "inhibit_rules": [
                    {"source_matchers": ['severity="critical"'], "target_matchers": [matcher]}
                ]
            }
        )
    error = caught.value.errors()[0]
    assert error["loc"] == ("inhibit_rules", 0, "target_matchers")
    assert f"target_matchers[0]: {problem}" in error["msg"]


def test_check_config_names_the_bad_matcher(tmp_path: Path) -> None:
    data = {
        **CONFIG,
        "alerts": {
            "inhibit_rules": [
                {"source_matchers": ['severity=~"crit(ical"'], "target_matchers": ["x=y"]}
            ]
        },
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"config error: {path}: alerts.inhibit_rules[0].source_matchers[0]: bad regular "
        "expression 'crit(ical': missing ): crit(ical\n"
    )


def test_a_group_update_to_the_webhook_has_each_alerts_own_status() -> None:
    update = notification(
        alerts=(info("a"), info("b", resolved_at=1_100.0, value_now=3.0)), state="firing"
    )
    body = webhook_payload(update)
    assert body["status"] == "firing"  # as Alertmanager: firing while any alert fires
    assert [(a["status"], a["endsAt"]) for a in body["alerts"]] == [
        ("firing", "0001-01-01T00:00:00Z"),
        ("resolved", "1970-01-01T00:18:20.000Z"),
    ]


async def test_an_alert_whose_rule_is_gone_resolves_without_its_firing_text(tmp_path: Path) -> None:
    async with SlackLike() as server:
        alerting, source = make(server.url, state_dir=tmp_path, route={"group_wait": 0})
        async with delivering(alerting):
            source.signals = [sig("longest_wait", "voice", score=400)]
            alerting.evaluate(T0)
            await wait_for(lambda: len(server.received) == 1)
        # restarted with LongestWaitHigh removed from the rules: the receiver hears it is over
        again, _ = make(server.url, state_dir=tmp_path, route={"group_wait": 0}, rules=RULES[1:])
        async with delivering(again):
            # the group was paged at 0: its next message at 300
            await _held_until(again, server, T0 + 300, 2)
    resolved = server.received[1]
    assert resolved["blocks"][0]["text"]["text"] == (
        ":white_check_mark: RESOLVED: LongestWaitHigh (voice)"
    )
    assert _summaries(resolved) == [
        (
            ":white_check_mark: *voice: LongestWaitHigh no longer active (its rule was removed "
            "or its state expired)*"
        )
    ]


async def test_the_page_knows_its_detectors_direction() -> None:
    # longest_wait pages above its threshold; 100 s against 120 s is a wait in hysteresis
    async with SlackLike() as server:
        alerting, source = make(server.url, route={"group_wait": 0})
        async with delivering(alerting):
            source.signals = [sig("longest_wait", "voice", score=100, threshold=120)]
            alerting.evaluate(T0)
            await wait_for(lambda: len(server.received) == 1)
    fields = [f["text"] for f in server.received[0]["blocks"][1]["fields"]]
    assert (
        "*Value*\n100 (threshold 120; below it now, still active until the detector sees recovery)"
    ) in fields


async def test_a_resolve_is_sent_as_a_resolve_when_its_alert_is_pending_again() -> None:
    """Active at 0, fires at 60 (``for`` 1m), paged at 90, resolved at 120, pending again at
    370: the group's next message (90 + 300 = 390) is that resolve, with its resolved text and
    its own times (active 0 to 120: it lasted 2m), not the text of an alert whose rule is gone
    (the audit of 2026-12-01: an ordinary flap with the default LongestWaitHigh)."""
    rule = {**_rule("LongestWaitHigh", "longest_wait", "critical"), "for": "60s"}
    async with SlackLike() as server:
        alerting, source = make(server.url, inhibit_rules=[], rules=[rule])
        wait = sig("longest_wait", "voice", score=400)
        async with delivering(alerting):
            source.signals = [wait]
            alerting.evaluate(T0)
            alerting.evaluate(T0 + 60)
            await _held_until(alerting, server, T0 + 90, 1)
            source.signals = []
            alerting.evaluate(T0 + 120)
            source.signals = [wait]
            alerting.evaluate(T0 + 370)
            await _held_until(alerting, server, T0 + 390, 2)
            resolved = server.received[1]
            assert _headers(server)[1] == ":white_check_mark: RESOLVED: LongestWaitHigh (voice)"
            assert _summaries(resolved) == [":white_check_mark: *LongestWaitHigh on voice is over*"]
            fields = [f["text"] for f in resolved["blocks"][1]["fields"]]
            assert "*Lasted*\n2m" in fields
            assert any(f.startswith(f"*Resolved*\n<!date^{int(T0 + 120)}^") for f in fields)
            alerting.evaluate(T0 + 430)  # the new activation fires: a new incident
            await _held_until(alerting, server, T0 + 460, 3)
            assert (
                _headers(server)[2] == ":rotating_light: FIRING: LongestWaitHigh [critical] (voice)"
            )
