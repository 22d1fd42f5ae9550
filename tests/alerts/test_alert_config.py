"""Config models, cross-validation, templates, rule labels, routing and mute windows."""

from __future__ import annotations

import math
import re
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from support_monitor.alerts.config import MuteRange, NotifierSettings, default_rules
from support_monitor.alerts.routing import Router, in_range
from support_monitor.alerts.template import check_template, render
from support_monitor.monitor.config import Settings, load_settings
from support_monitor.monitor.errors import ConfigError
from tests.alerts.helpers import compiled, notifier_settings, sig
from tests.support import settings


def test_defaults_page_nobody():
    s = Settings()
    assert s.notifiers.receivers == {}
    assert s.notifiers.routes == ()
    assert s.notifiers.state_dir is None
    assert s.notifiers.alertmanager.urls == ()
    names = {r.detector for r in s.alerts.rules}
    assert names == {
        "sla_burn",
        "complaint_spike",
        "backlog_growth",
        "tickets_at_risk",
        "understaffing",
        "estimated_wait",
        "longest_wait",
        "abandon_rate",
        "csat_low",
        "containment_drop",
        "negative_sentiment",
        "nps_drop",
    }
    assert names <= set(s.detectors.names())  # the default detectors exist
    for r in default_rules():
        assert r.annotations["runbook_url"].endswith("#" + r.alert.lower())


def test_full_config_parses():
    s = settings(
        alerts={
            "resolved_retention": "10m",
            "rules": [
                {
                    "alert": "LongWait",
                    "detector": "longest_wait",
                    "for": "30s",
                    "keep_firing_for": "1m",
                    "severity": "critical",
                    "channels": ["voice"],
                    "labels": {"team": "cc"},
                    "annotations": {"summary": "{channel} {score:.0f}s"},
                },
            ],
        },
        notifiers={
            "receivers": {
                "oncall": {
                    "type": "slack",
                    "webhook_url_env": "SLACK_URL",
                    "repeat_interval": "1h",
                },
                "ops": {"type": "webhook", "url": "http://127.0.0.1:1/hook"},
            },
            "routes": [
                {
                    "match": {"severity": "critical"},
                    "receiver": "oncall",
                    "continue": True,
                    "mute": ["nights"],
                },
                {"receiver": "ops"},
            ],
            "mute_windows": {
                "nights": [{"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}]
            },
            "alertmanager": {"urls": ["http://127.0.0.1:9093"], "resend_interval": "30s"},
        },
    )
    r = s.alerts.rules[0]
    assert (r.for_, r.keep_firing_for, s.alerts.resolved_retention) == (30, 60, 600)
    assert s.notifiers.routes[0].continue_
    assert "http://127.0.0.1:1/hook" not in repr(s.notifiers)  # SecretStr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "alerts": {
                    "rules": [{"alert": "A", "detector": "longest_wait", "channels": ["fax"]}]
                }
            },
            "alerts.rules[0].channels: unknown channel 'fax'",
        ),
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "d"}]}},
            "alerts.rules[0].detector: unknown detector 'd' (enabled detectors: sla_burn,",
        ),
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "d", "for": -5}]}},
            "alerts.rules[0].for: a duration must not be negative (got -5)",
        ),
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "d", "keep_firing_for": "-1m"}]}},
            "alerts.rules[0].keep_firing_for: a duration must not be negative (got -1m)",
        ),
        ({"alerts": {"resolved_retention": -1}}, "alerts.resolved_retention: a duration must not"),
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "d", "labels": {"channel": "x"}}]}},
            "'channel' is set by the rule itself",
        ),
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "d", "annotations": {"s": "{x"}}]}},
            "annotations.s: stray '{'",
        ),
        (
            {
                "alerts": {
                    "rules": [{"alert": "A", "detector": "d"}, {"alert": "A", "detector": "e"}]
                }
            },
            "same alert, severity, labels and match",
        ),
        ({"alerts": {"rules": [{"alert": "A", "detector": "d", "bogus": 1}]}}, "unknown key"),
        (
            {"notifiers": {"routes": [{"receiver": "nobody"}]}},
            "notifiers.routes[0].receiver: unknown receiver 'nobody'",
        ),
        (
            {
                "notifiers": {
                    "receivers": {"r": {"type": "webhook", "url": "http://x"}},
                    "routes": [{"receiver": "r", "mute": ["x"]}],
                }
            },
            "notifiers.routes[0].mute: unknown mute window 'x'",
        ),
        (
            {
                "notifiers": {
                    "receivers": {"r": {"type": "webhook", "url": "http://x"}},
                    "routes": [{"receiver": "r", "match": {"channel": "fax"}}],
                }
            },
            "notifiers.routes[0].match.channel: unknown channel 'fax'",
        ),
        ({"notifiers": {"receivers": {"r": {"type": "slack"}}}}, "set one of webhook_url"),
        (
            {
                "notifiers": {
                    "receivers": {
                        "r": {"type": "slack", "webhook_url": "http://x", "webhook_url_file": "/x"}
                    }
                }
            },
            "set only one of",
        ),
        ({"notifiers": {"retry_for": -60}}, "notifiers.retry_for: a duration must not be negative"),
        (
            {"notifiers": {"alertmanager": {"resend_interval": 0}}},
            "notifiers.alertmanager.resend_interval: Input should be greater than 0",
        ),
        ({"notifiers": {"mute_windows": {"m": [{"timezone": "Mars/Base"}]}}}, "unknown time zone"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        settings(**overrides)
    assert message in str(err.value)


_WAITING = {
    "thresholds": [
        {"name": "w", "metric": "support_queue_waiting", "op": ">=", "value": 1, "per_queue": True}
    ]
}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [{"alert": "A", "detector": "w", "match": {"channel": "fax"}}],
            "alerts.rules[0].match.channel: unknown channel 'fax': never fires",
        ),
        (
            [{"alert": "A", "detector": "w", "channels": ["voice"], "match": {"channel": "chat"}}],
            "alerts.rules[0].match.channel: 'chat' is not in the rule's channels",
        ),
        (
            [{"alert": "A", "detector": "w", "match": {"queue": "nope"}}],
            "alerts.rules[0].match.queue: no channel has a queue 'nope': never fires",
        ),
        (
            [{"alert": "A", "detector": "w", "match": {"channel": "voice", "queue": "sales"}}],
            "alerts.rules[0].match.queue: no channel 'voice' has a queue 'sales'",
        ),
        (
            [
                {"alert": "A", "detector": "w", "for": "5s"},
                {"alert": "A", "detector": "w", "match": {"queue": "billing"}, "for": "30s"},
            ],
            "alerts.rules[1]: its alerts are also made by alerts.rules[0] (A, detector w)",
        ),
    ],
)
def test_rules_that_never_fire_or_collide_are_refused(rules, message):
    with pytest.raises(ConfigError) as err:
        settings(detectors=_WAITING, alerts={"rules": rules})
    assert message in str(err.value)


def test_rules_of_one_name_and_severity_on_two_detectors_collide_unless_matched_apart():
    """Two detectors, two rules named A of one severity: the same alert twice (it paged anew
    every group interval, the audit of 2026-12-01), unless a match tells them apart."""
    detectors = {
        "thresholds": [
            *_WAITING["thresholds"],
            {"name": "o", "metric": "support_queue_oldest_wait_seconds", "op": ">", "value": 60},
        ]
    }
    rules: list[dict[str, Any]] = [
        {"alert": "A", "detector": "o", "severity": "critical", "match": {"channel": "voice"}},
        {"alert": "A", "detector": "w", "severity": "critical"},
    ]
    with pytest.raises(ConfigError) as err:
        settings(detectors=detectors, alerts={"rules": rules})
    assert (
        "alerts.rules[1]: its alerts are also made by alerts.rules[0] (A, detectors o and w)"
        in (str(err.value))
    )
    rules[1]["match"] = {"channel": "chat"}
    assert len(settings(detectors=detectors, alerts={"rules": rules}).alerts.rules) == 2
    rules[1] = {"alert": "A", "detector": "w", "severity": "warning"}
    assert len(settings(detectors=detectors, alerts={"rules": rules}).alerts.rules) == 2


def test_rules_of_one_name_apart_by_a_match_are_accepted():
    rules = [
        {"alert": "A", "detector": "w", "match": {"queue": "billing"}},
        {"alert": "A", "detector": "w", "match": {"queue": "tech"}, "for": "1m"},
        {"alert": "A", "detector": "w", "severity": "critical", "for": "2m"},
    ]
    assert len(settings(detectors=_WAITING, alerts={"rules": rules}).alerts.rules) == 3


def test_one_rule_per_channel_is_written_with_match_not_channels():
    """Rules of one name on disjoint ``channels`` would share one stored state (the rule key
    has no channels): refused with the way that works, a match on the channel."""
    rules: list[dict[str, Any]] = [
        {"alert": "A", "detector": "w", "channels": ["voice"], "for": "30s"},
        {"alert": "A", "detector": "w", "channels": ["chat"], "for": "2m"},
    ]
    with pytest.raises(ConfigError) as err:
        settings(detectors=_WAITING, alerts={"rules": rules})
    assert "rules[1]: another rule has the same alert, severity, labels and match (A)" in str(
        err.value
    )
    assert "write match: {channel: voice} instead of channels: [voice]" in str(err.value)
    for rule in rules:
        rule["match"] = {"channel": rule.pop("channels")[0]}
    assert len(settings(detectors=_WAITING, alerts={"rules": rules}).alerts.rules) == 2


def test_template_is_safe_and_formats():
    data: dict[str, str | float] = {
        "channel": "voice",
        "score": 41.66,
        "threshold": 30.0,
        "expected": math.nan,
    }
    assert render("{channel}: {score:.0f}s > {threshold}", data) == "voice: 42s > 30"
    assert render("{{literal}} {expected:.1f}", data) == "{literal} n/a"
    assert render("{missing} {channel.__class__}", data) == "<no value> {channel.__class__}"
    assert render("{score:.1%}", {"score": 0.5}) == "50.0%"
    with pytest.raises(ValueError, match="stray"):
        check_template("oops }")


def test_rule_labels_and_annotations():
    r = compiled(labels={"team": "cc"}, annotations={"summary": "{channel}/{queue} {score:.0f}"})
    s = sig(score=95, queue="billing")
    sample = r.sample(s)
    assert dict(sample.labels) == {
        "alertname": "LongWait",
        "channel": "voice",
        "severity": "critical",
        "team": "cc",
        "queue": "billing",
    }
    assert sample.annotations == {"summary": "voice/billing 95"}
    assert r.applies(s)
    assert not compiled(channels=["chat"]).applies(s)
    assert not r.applies(sig(detector="other"))


def _router(**fields) -> Router:
    base = {"receivers": {n: {"type": "webhook", "url": "http://x"} for n in ("a", "b", "c")}}
    return Router(NotifierSettings.model_validate({**base, **fields}))


def test_routes_first_match_wins_unless_continue():
    router = _router(
        routes=[
            {"receiver": "a", "match": {"severity": "critical"}, "continue": True},
            {"receiver": "b", "match_re": {"channel": "voice|chat"}},
            {"receiver": "c"},
        ]
    )
    crit_voice = (("alertname", "X"), ("channel", "voice"), ("severity", "critical"))
    warn_voice = (("alertname", "X"), ("channel", "voice"), ("severity", "warning"))
    warn_email = (("alertname", "X"), ("channel", "email"), ("severity", "warning"))
    assert [t.receiver for t in router.targets(crit_voice)] == ["a", "b"]
    assert [t.receiver for t in router.targets(warn_voice)] == ["b"]
    assert [t.receiver for t in router.targets(warn_email)] == ["c"]
    assert _router().targets(crit_voice) == ()


def _ts(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_mute_windows():
    nights = MuteRange.model_validate(
        {"start": "22:00", "end": "07:00", "weekdays": ["fri"], "timezone": "Europe/Berlin"}
    )
    # Friday 2026-03-06 23:00 Berlin, and the early Saturday hours belong to Friday's range
    assert in_range(nights, _ts("2026-03-06T23:00", "Europe/Berlin"))
    assert in_range(nights, _ts("2026-03-07T06:59", "Europe/Berlin"))
    assert not in_range(nights, _ts("2026-03-07T07:00", "Europe/Berlin"))
    assert not in_range(nights, _ts("2026-03-05T23:00", "Europe/Berlin"))  # Thursday
    lunch = MuteRange.model_validate({"start": "12:00", "end": "13:00"})
    assert in_range(lunch, _ts("2026-03-02T12:30"))
    assert not in_range(lunch, _ts("2026-03-02T13:00"))
    holiday = MuteRange.model_validate({"dates": ["2026-12-25"]})
    assert in_range(holiday, _ts("2026-12-25T15:00"))
    assert not in_range(holiday, _ts("2026-12-26T15:00"))
    router = _router(
        routes=[{"receiver": "a", "mute": ["lunch"]}],
        mute_windows={"lunch": [{"start": "12:00", "end": "13:00"}]},
    )
    target = router.targets((("alertname", "X"),))[0]
    assert router.muted(target, _ts("2026-03-02T12:10"))
    assert not router.muted(target, _ts("2026-03-02T14:10"))


def test_a_mute_time_written_without_quotes_is_the_time_it_reads(tmp_path: Path) -> None:
    """YAML 1.1 reads an unquoted 20:00 as the base-60 number 1200, which pydantic took for
    00:20 UTC: every routing then failed comparing it with local times (audit of 2026-12-04).
    The config reader keeps such a scalar as text; a number or an offset is refused."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "notifiers:\n  mute_windows:\n    n:\n"
        "      - {start: 20:00, end: 07:00, timezone: Europe/Berlin}\n"
    )
    (night,) = load_settings(path).notifiers.mute_windows["n"]
    assert (night.start, night.end) == (time(20, 0), time(7, 0))
    assert in_range(night, _ts("2026-03-06T23:00", "Europe/Berlin"))
    assert not in_range(night, _ts("2026-03-06T19:59", "Europe/Berlin"))
    for bad in (1200, "20:00+02:00", "8:00", "24:00", "20h"):
        with pytest.raises(ValidationError, match="not a time of day: write HH:MM"):
            MuteRange.model_validate({"start": bad})
    assert MuteRange.model_validate({"end": "07:30:15"}).end == time(7, 30, 15)


def test_a_mute_date_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValidationError, match="'2026-02-30' is not a date like 2026-12-24"):
        MuteRange.model_validate({"dates": ["2026-12-24", "2026-02-30"]})


def test_notifier_settings_helper():
    assert notifier_settings().receivers == {}


def test_every_default_rule_has_a_runbook_section():
    from pathlib import Path  # noqa: PLC0415

    text = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    anchors = {line[3:].strip().lower() for line in text.splitlines() if line.startswith("## ")}
    for r in default_rules():
        assert r.alert.lower() in anchors


def test_rule_match_selects_signals_by_label():
    page = compiled(detector="sla_burn", match={"severity": "page"})
    assert page.applies(sig("sla_burn", severity="page"))
    assert not page.applies(sig("sla_burn", severity="ticket"))
    # the rule's severity overrides the signal's hint in the alert labels
    assert dict(page.sample(sig("sla_burn", severity="page")).labels)["severity"] == "critical"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (45.9, "46s"),  # a fraction of a second rounds up: 45.9 s is past a 45 s threshold
        (30.2, "31s"),
        (30.0004, "30s"),  # to the millisecond first: float noise is no second more
        (120.7, "2m 1s"),
        (360.0, "6m"),
        (370.0, "6m 10s"),
        (3600.0, "1h"),
        (3900.0, "1h 5m"),
        (3905.0, "1h 5m"),  # the two largest units; the smaller ones are dropped
        (2 * 86400 + 3 * 3600 + 59, "2d 3h"),
        (math.inf, "unbounded"),
        (math.nan, "n/a"),
    ],
)
def test_dur_spec_writes_seconds_as_people_read_them(seconds: float, text: str) -> None:
    assert render("{x:dur}", {"x": seconds}) == text


def test_dur_is_the_one_word_spec() -> None:
    check_template("{x:dur} {y:.1%}")
    with pytest.raises(ValueError, match="bad format spec 'days' for x"):
        check_template("{x:days}")


@pytest.mark.parametrize("spec", ["9999999", "100", ".100f", ".999999999f", "999999999999"])
def test_a_format_spec_that_would_pad_to_megabytes_is_refused(spec: str) -> None:
    """A width or precision of three digits or more is refused when the config is loaded: a
    width of 9,999,999 made every alert record 10 MB, and a larger one a MemoryError that lost
    the transitions of every rule at that tick (the attack audit of 2026-12-01)."""
    with pytest.raises(ValueError, match=f"bad format spec '{re.escape(spec)}' for score"):
        check_template(f"{{score:{spec}}}")


def test_specs_of_two_digits_render() -> None:
    for spec in (".2f", "8.2f", "08.1f", "99.99f", ".0%", "+.1e", "d"):
        check_template(f"{{x:{spec}}}")
    assert render("[{x:8.2f}]", {"x": 3.14159}) == "[    3.14]"
    assert len(render("{x:99.99f}", {"x": 1e300})) < 500
