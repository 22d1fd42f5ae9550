"""Detector config: defaults validate, and every refusal names the key and the problem."""
# ruff: noqa: E501 - the expected messages are kept whole so they can be searched for

from __future__ import annotations

from typing import Any

import pytest

from support_monitor.detectors.config import METRICS, DetectorSettings, max_burn_rate
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.errors import ConfigError
from tests.detectors.detector_streams import config, only


def refused(detectors: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(config(detectors, **extra))
    return str(info.value)


def test_defaults_validate_against_default_channels():
    settings = parse_settings({})
    names = settings.detectors.names()
    assert names[:4] == ("sla_burn", "complaint_spike", "backlog_growth", "tickets_at_risk")
    scopes = settings.detectors.scopes(settings.channels, settings.windows)
    assert scopes["sla_burn"] == ["voice", "chat"]
    assert scopes["backlog_growth"] == ["voice", "chat"]
    assert scopes["tickets_at_risk"] == ["email"]
    assert scopes["complaint_spike"] == ["voice", "chat", "email", "chatbot"]
    assert scopes["longest_wait"] == ["voice", "chat"]


def test_threshold_metric_table_matches_the_exporter():
    # every gauge the threshold detector accepts is one the exporter really emits
    emitted = {row.name for row in series(Engine(parse_settings(config())))}
    assert set(METRICS) <= emitted


def test_sre_workbook_burn_rate_can_never_fire_at_80_percent():
    msg = refused({"sla_burn": {"windows": [{"long": "1h", "short": "5m", "burn_rate": 14.4}]}})
    assert (
        "detectors.sla_burn.windows[0].burn_rate: 14.4 can never fire: with "
        "service_level_target 0.8 the highest possible burn rate is 5.0"
    ) in msg
    assert max_burn_rate(0.8) == pytest.approx(5.0)
    # the ceiling itself is allowed: it fires when every contact misses
    parse_settings(
        config({"sla_burn": {"windows": [{"long": "1h", "short": "5m", "burn_rate": 5}]}})
    )


@pytest.mark.parametrize(
    ("detectors", "message"),
    [
        (  # the ceiling needs every contact missed: a Wilson upper bound is never 0
            {
                "sla_burn": {
                    "windows": [{"long": "1h", "short": "5m", "burn_rate": 5, "confidence": 0.99}]
                }
            },
            "detectors.sla_burn.windows[0].burn_rate: 5 with confidence can never fire: with service_level_target 0.8 it stands for a service level of 0",
        ),
        (
            {
                "thresholds": [
                    {
                        "name": "sl_zero",
                        "metric": "support_service_level_ratio",
                        "window": "5m",
                        "op": "<=",
                        "value": 0,
                        "confidence": 0.99,
                    }
                ]
            },
            "detectors.thresholds[0].value: support_service_level_ratio <= 0 with confidence can never fire: the Wilson upper bound is above 0",
        ),
        (
            {
                "thresholds": [
                    {
                        "name": "all_gone",
                        "metric": "support_abandon_ratio",
                        "window": "1h",
                        "op": ">=",
                        "value": 1,
                        "confidence": 0.999,
                    }
                ]
            },
            "detectors.thresholds[0].value: support_abandon_ratio >= 1 with confidence can never fire: the Wilson lower bound is below 1",
        ),
    ],
)
def test_a_bound_that_can_never_pass_is_refused(detectors: dict[str, Any], message: str) -> None:
    assert message in refused(detectors)


def test_burn_ceiling_follows_each_channel_target():
    cfg = config({"sla_burn": {"windows": [{"long": "1h", "short": "5m", "burn_rate": 8}]}})
    cfg["channels"]["voice"]["service_level_target"] = 0.9  # ceiling 10
    with pytest.raises(
        ConfigError, match=r"with service_level_target 0.8 .* is 5.0 \(channel 'chat'\)"
    ):
        parse_settings(cfg)
    parse_settings(
        config(
            {
                "sla_burn": {
                    "channels": ["voice"],
                    "windows": [{"long": "1h", "short": "5m", "burn_rate": 4.9}],
                }
            }
        )
    )


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        (
            {"windows": [{"long": "6h", "short": "5m", "burn_rate": 2}]},
            "detectors.sla_burn.windows[0].long: '6h' is not a configured window (windows: ['5m', '1h']",
        ),
        (
            {"windows": [{"long": "1h", "short": "30m", "burn_rate": 2}]},
            "detectors.sla_burn.windows[0].short: '30m' is not a configured window",
        ),
        (
            {"windows": [{"long": "5m", "short": "1h", "burn_rate": 2}]},
            "detectors.sla_burn.windows[0]: long window '5m' must not be shorter than '1h'",
        ),
        (
            {"channels": ["email"]},
            "detectors.sla_burn.channels: 'email' has no service_level_target",
        ),
        ({"channels": ["fax"]}, "detectors.sla_burn.channels: 'fax' is not a configured channel"),
        (
            {
                "windows": [
                    {"long": "1h", "short": "5m", "burn_rate": 2},
                    {"long": "1h", "short": "5m", "burn_rate": 3},
                ]
            },
            "detectors.sla_burn.windows[1]: repeats another pair",
        ),
    ],
)
def test_burn_refusals(block, needle):
    assert needle in refused({"sla_burn": block})


def test_burn_refuses_a_target_missing_on_a_live_channel():
    cfg = config({"sla_burn": {"channels": ["voice"]}})
    del cfg["channels"]["voice"]["service_level_target"]
    with pytest.raises(ConfigError, match="'voice' has no service_level_target"):
        parse_settings(cfg)


def _threshold(**fields: Any) -> dict[str, Any]:
    item = {"name": "t1", "metric": "support_queue_oldest_wait_seconds", "op": ">", "value": 60}
    item.update(fields)
    return only({"thresholds": [item]})


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        (
            {"metric": "support_service_level_ratio", "window": "5m", "op": "<", "value": 80},
            "detectors.thresholds[0].value: 80.0 is outside 0..1; support_service_level_ratio is a ratio",
        ),
        (
            {"metric": "support_service_level_ratio", "window": "5m", "op": "<", "value": -0.1},
            "is outside 0..1",
        ),
        (
            {"metric": "support_service_level_ratio", "window": "15m", "op": "<", "value": 0.8},
            "detectors.thresholds[0].window: '15m' is not a configured window",
        ),
        (
            {"metric": "support_service_level_ratio", "op": "<", "value": 0.8},
            "detectors.thresholds[0].window: support_service_level_ratio is windowed; name a window",
        ),
        (
            {"window": "5m"},
            "detectors.thresholds[0].window: support_queue_oldest_wait_seconds is a live gauge",
        ),
        (
            {"metric": "support_queue_longest_wait"},
            "detectors.thresholds[0].metric: 'support_queue_longest_wait' is not a gauge of the metric contract",
        ),
        (
            {"metric": "support_contacts_abandoned_total"},
            "detectors.thresholds[0].metric: 'support_contacts_abandoned_total' is a counter",
        ),
        (
            {"recover": 90},
            "detectors.thresholds[0].recover: 90.0 is on the wrong side; with op '>' it must be at or below value 60.0",
        ),
        (
            {
                "metric": "support_csat_ratio",
                "window": "1h",
                "op": "<",
                "value": 0.7,
                "recover": 0.6,
            },
            "detectors.thresholds[0].recover: 0.6 is on the wrong side; with op '<' it must be at or above value 0.7",
        ),
        (
            {"metric": "support_abandon_ratio", "window": "1h", "op": ">", "value": 1},
            "support_abandon_ratio > 1.0 can never fire",
        ),
        ({"op": "<", "value": 0}, "can never fire"),
        (
            {"metric": "support_wait_quantile_seconds", "window": "5m"},
            "detectors.thresholds[0].quantile: set it",
        ),
        (
            {
                "metric": "support_service_level_ratio",
                "window": "5m",
                "op": "<",
                "value": 0.8,
                "per_queue": True,
            },
            "detectors.thresholds[0].per_queue: support_service_level_ratio has no queue label",
        ),
        (
            {"min_volume": 5},
            "detectors.thresholds[0].min_volume: support_queue_oldest_wait_seconds is not a ratio",
        ),
        (
            {"channels": ["email"]},
            "detectors.thresholds[0].channels: 'email' has no answer_seconds",
        ),
        (
            {"metric": "support_tickets_at_risk", "sla": "first_response", "channels": ["voice"]},
            "detectors.thresholds[0].channels: 'voice' has no first_response_seconds",
        ),
        ({"sla": "resolution"}, "detectors.thresholds[0].sla: only support_tickets_at_risk"),
        ({"name": "sla_burn"}, "thresholds[0].name: 'sla_burn' is the name of a built-in detector"),
    ],
)
def test_threshold_refusals(fields, needle):
    assert needle in refused(_threshold(**fields))


def test_threshold_names_must_be_unique():
    block = _threshold()
    block["thresholds"].insert(1, dict(block["thresholds"][0]))
    assert "thresholds[1].name: 't1' repeats another threshold" in refused(block)


@pytest.mark.parametrize(
    ("detectors", "needle"),
    [
        (
            {"complaint_spike": {"window": "10m"}},
            "detectors.complaint_spike.window: '10m' is not a configured window",
        ),
        (
            {"complaint_spike": {"timezone": "Mars/Olympus"}},
            "detectors.complaint_spike.timezone: unknown time zone 'Mars/Olympus'",
        ),
        ({"complaint_spike": {"alpha": 0.7}}, "detectors.complaint_spike.alpha"),
        (
            {"backlog_growth": {"horizon": 20, "channels": ["voice"]}},
            "detectors.backlog_growth.horizon: 20 s is not shorter than voice's answer_seconds 20 s",
        ),
        (
            {"backlog_growth": {"window": "2m"}},
            "detectors.backlog_growth.window: '2m' is not a configured window",
        ),
        (
            {"backlog_growth": {"surge_service_window": "2h"}},
            "detectors.backlog_growth.surge_service_window: '2h' is not a configured window",
        ),
        (
            {"tickets_at_risk": {"channels": ["chat"]}},
            "detectors.tickets_at_risk.channels: 'chat' has no ticket SLA",
        ),
        ({"sla_burn": {"typo": 1}}, "detectors.sla_burn.typo: unknown key"),
    ],
)
def test_other_refusals(detectors, needle):
    assert needle in refused(detectors)


def test_one_window_twice_needs_a_confidence():
    pair = {"long": "5m", "short": "5m", "burn_rate": 2.0}
    needle = "a burn-rate pair needs two distinct windows, or one window with a confidence"
    assert needle in refused({"sla_burn": {"windows": [pair]}})
    assert (
        "sla_burn"
        in parse_settings(
            config({"sla_burn": {"windows": [{**pair, "confidence": 0.99}]}})
        ).detectors.names()
    )


def test_two_pairs_naming_one_window_pair_through_aliases_are_refused():
    pairs = [
        {"long": "longest", "short": "5m", "burn_rate": 2.0},
        {"long": "1h", "short": "shortest", "burn_rate": 1.5},  # the same labels once resolved
    ]
    assert "detectors.sla_burn.windows[1]: repeats another pair with the same windows" in (
        refused({"sla_burn": {"windows": pairs}})
    )


def test_detector_settings_are_frozen_and_hashable():
    settings = DetectorSettings()
    assert hash(settings) == hash(DetectorSettings())


@pytest.mark.parametrize("windows", [["10m"], ["1m", "5m"], ["15m", "4h"], ["5m", "1h"]])
def test_default_detectors_follow_the_configured_windows(windows: list[str]) -> None:
    """The defaults name ``shortest``/``longest``, so any window set validates and runs."""
    settings = parse_settings({"windows": windows})
    engine = Engine(settings)
    engine.advance(1_772_442_000.0)
    suite = DetectorSuite(settings.detectors, settings.channels, settings.window_seconds)
    signals = suite.evaluate(engine, engine.now)
    longest = max(windows, key=lambda w: settings.window_seconds[w])
    shortest = min(windows, key=lambda w: settings.window_seconds[w])
    burn = {
        (dict(s.labels)["long"], dict(s.labels)["short"], s.channel)
        for s in signals
        if s.detector == "sla_burn"
    }
    # the two hour pairs, and the collapse pair on the shortest window (the same pair when
    # only one window is configured: judged once)
    assert {(long, short) for long, short, _ in burn} == {(longest, shortest), (shortest, shortest)}
    per_channel = 3 if len(windows) > 1 else 2  # page and ticket pairs, the collapse pair
    assert len([s for s in signals if s.detector == "sla_burn"]) == per_channel * 2


WAIT_HIGH = {
    "name": "wait_high",
    "metric": "support_queue_oldest_wait_seconds",
    "op": ">",
    "value": 100,
}


def test_a_configured_threshold_keeps_the_default_ones():
    """Adding one threshold must not switch off the defaults AbandonRateHigh, CsatLow and
    LongestWaitHigh are built on: they are merged in after the configured ones."""
    settings = parse_settings({"detectors": {"thresholds": [WAIT_HIGH]}})
    names = [t.name for t in settings.detectors.thresholds]
    assert names == ["wait_high", "longest_wait", "abandon_rate", "csat_low"]
    assert settings.alerts.switched_off(settings.detectors) == []


def test_a_default_named_entry_replaces_that_default_as_written():
    abandon = {
        "name": "abandon_rate",
        "metric": "support_abandon_ratio",
        "window": "5m",
        "op": ">",
        "value": 0.3,
    }
    settings = parse_settings({"detectors": {"thresholds": [abandon]}})
    by_name = {t.name: t for t in settings.detectors.thresholds}
    replaced = by_name["abandon_rate"]
    # nothing inherited from the default (1h window, recover 0.15, 99.9% Wilson guard)
    assert (replaced.window, replaced.value, replaced.recover) == ("5m", 0.3, None)
    assert replaced.confidence is None
    assert list(by_name) == ["abandon_rate", "longest_wait", "csat_low"]


def test_enabled_false_switches_a_default_off_and_its_alert_with_it():
    settings = parse_settings(
        {"detectors": {"thresholds": [{"name": "csat_low", "enabled": False}, WAIT_HIGH]}}
    )
    assert "csat_low" not in settings.detectors.names()
    assert "wait_high" in settings.detectors.names()
    off = settings.alerts.switched_off(settings.detectors)
    assert [(rule.alert, rule.detector) for _, rule in off] == [("CsatLow", "csat_low")]
    suite = DetectorSuite(settings.detectors, settings.channels, settings.window_seconds)
    assert "csat_low" not in {d.name for d in suite.detectors}


def test_an_empty_list_means_no_thresholds_at_all():
    settings = parse_settings({"detectors": {"thresholds": []}})
    assert settings.detectors.thresholds == ()
    off = {rule.alert for _, rule in settings.alerts.switched_off(settings.detectors)}
    assert off == {"LongestWaitHigh", "AbandonRateHigh", "CsatLow"}


def test_merged_thresholds_keep_the_index_the_user_wrote_in_errors():
    bad = {**WAIT_HIGH, "name": "second", "window": "5m"}
    needle = "detectors.thresholds[1].window: support_queue_oldest_wait_seconds is a live gauge"
    assert needle in refused({"thresholds": [{"name": "csat_low", "enabled": False}, bad]})


def test_an_unquoted_quantile_means_its_label() -> None:
    # YAML reads `quantile: 0.9` as a number; it names the label "0.9" all the same
    q90 = {"name": "p90", "metric": "support_wait_quantile_seconds", "window": "5m", "op": ">"}
    settings = parse_settings(config(only({"thresholds": [{**q90, "value": 60, "quantile": 0.9}]})))
    assert settings.detectors.thresholds[0].quantile == "0.9"
    msg = refused(only({"thresholds": [{**q90, "value": 60, "quantile": 0.95}]}))
    assert "detectors.thresholds[0].quantile" in msg


@pytest.mark.parametrize(
    ("threshold", "words"),
    [
        (
            {"name": "queue_x", "metric": "support_queue_waiting", "op": ">", "value": 0},
            "no channel has answer_seconds (live contacts), so support_queue_waiting",
        ),
        (
            {"name": "risky", "metric": "support_tickets_at_risk", "op": ">", "value": 3},
            "no channel has a ticket SLA (first_response_seconds/resolution_seconds), so support_tickets_at_risk",
        ),
    ],
)
def test_a_declared_threshold_that_no_channel_sets_is_refused(
    threshold: dict[str, Any], words: str
) -> None:
    # accepted before, with a rule on it that could never fire (the CLI audit of 2026-12-01)
    live_only = {"voice": {"answer_seconds": 20}}
    tickets_only = {"email": {"first_response_seconds": 3600}}
    channels = tickets_only if "answer_seconds" in words else live_only
    with pytest.raises(ConfigError) as info:
        parse_settings({"channels": channels, "detectors": {"thresholds": [threshold]}})
    assert str(info.value) == (
        f"detectors.thresholds[0]: {words} is never set and {threshold['name']!r} can never "
        "fire (declare such a channel, or remove the threshold)"
    )
    # the defaults on live metrics stay quiet on a config without a live channel
    assert parse_settings({"channels": tickets_only}).detectors.names()


def test_the_sla_names_are_the_engines_clocks_in_order() -> None:
    # detectors.config (bottom layer) cannot import the engine; the at-risk rows are zipped
    # with these names, so their order must be the engine's
    from support_monitor.detectors.config import SLAS  # noqa: PLC0415
    from support_monitor.monitor.engine.clocks import CLOCKS  # noqa: PLC0415

    assert SLAS == CLOCKS


def test_a_threshold_on_next_reply_at_risk_is_accepted() -> None:
    item = {
        "name": "replies_at_risk",
        "metric": "support_tickets_at_risk",
        "sla": "next_reply",
        "op": ">",
        "value": 5,
    }
    data = config({"thresholds": [item]})
    data["channels"]["email"]["next_reply_seconds"] = 3600
    settings = parse_settings(data)
    names = {t.name: t.sla for t in settings.detectors.thresholds}
    assert names["replies_at_risk"] == "next_reply"
