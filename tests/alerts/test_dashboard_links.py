"""The default rules' dashboard links open the channel dashboard on the window the alert's
detector judges (``&var-window=``), so a CSAT alert over the last hour does not open the 5m view.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.helpers import sig
from tests.support import settings

BURN = {"ServiceLevelBurn": "page", "ServiceLevelBurnSlow": "ticket"}


def _links(**config: Any) -> dict[str, dict[str, list[str]]]:
    """Alert name -> the query of its rendered ``dashboard_url``, for every default rule."""
    s = settings(**config)
    alerting = Alerting(s.detectors, s.alerts, s.notifiers, Engine(s), DaemonStats())
    out = {}
    for compiled in alerting.rules:
        severity = BURN.get(compiled.rule.alert)
        signal = (
            sig(compiled.rule.detector, "voice", severity=severity)
            if severity
            else sig(compiled.rule.detector, "voice")
        )
        sample = compiled.sample(signal)
        url = sample.annotations["dashboard_url"]
        assert url.startswith("http://localhost:3000/d/support-channel?var-channel=voice&")
        out[compiled.rule.alert] = parse_qs(urlsplit(url).query)
    return out


def test_default_links_carry_the_judged_window() -> None:
    links = _links()
    windows = {name: query.get("var-window") for name, query in links.items()}
    assert windows == {
        # judged over the longest window (1h): the 5m view showed another number
        "AbandonRateHigh": ["1h"],
        "CsatLow": ["1h"],
        "NegativeSentimentHigh": ["1h"],
        "NpsDrop": ["1h"],
        # judged over the shortest (5m)
        "ComplaintSpike": ["5m"],
        "BacklogGrowing": ["5m"],
        "ContainmentDrop": ["5m"],
        # two windows (the burn pairs, the rate windows), or none: the dashboard's default
        "ServiceLevelBurn": None,
        "ServiceLevelBurnSlow": None,
        "LongestWaitHigh": None,
        "TicketsAtRisk": None,
        "Understaffed": None,
        "EstimatedWaitHigh": None,
    }
    for query in links.values():
        assert query["var-channel"] == ["voice"]
        assert query["from"] == ["now-1h"]  # rendered outside an evaluation
        assert query["to"] == ["now"]


@pytest.mark.parametrize(
    ("windows", "detectors", "expected"),
    [
        # windows written in seconds keep their name, the `window` label the dashboard lists
        (["300", "3600"], {}, {"CsatLow": ["3600"], "ComplaintSpike": ["300"]}),
        (
            ["5m", "15m", "1h", "today"],
            {
                "nps_drop": {"window": "15m"},
                "thresholds": [
                    {
                        "name": "csat_low",
                        "metric": "support_csat_ratio",
                        "window": "today",
                        "op": "<",
                        "value": 0.8,
                    }
                ],
            },
            {"NpsDrop": ["15m"], "CsatLow": ["today"], "AbandonRateHigh": ["1h"]},
        ),
    ],
)
def test_links_follow_the_configured_windows(
    windows: list[str], detectors: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    links = _links(windows=windows, detectors=detectors)
    for name, window in expected.items():
        assert links[name].get("var-window") == window, name
