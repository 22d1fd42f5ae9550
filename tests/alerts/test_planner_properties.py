"""The planner over random alert timelines: never lost, never duplicated, grouped.

Four alerts (two names on two channels, grouped by channel) fire and resolve at random over
20 minutes of 10-second evaluations, under random ``group_wait`` / ``group_interval``; every
message is delivered. Checked against what Alertmanager's grouping promises, from the messages
alone (not the planner's records), per alert (label set) as its receiver sees it:

- a resolve is told only after a firing of it was told, and only once per firing told: never
  two resolves in a row;
- a resolve is told at or after the resolve of the activation it names;
- once everything resolved and the groups had time to flush, every alert told firing was told
  resolved last: nothing is left firing at the receiver;
- an activation that stays firing longer than ``group_wait + group_interval`` plus one
  evaluation is told firing (an alert that resolves and fires again before its group's next
  message is told firing again with no resolve between, as Alertmanager does);
- a group with a firing alert in its last message gets its next message no sooner than
  ``group_interval`` later.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support_monitor.alerts.notify.message import Notification
from support_monitor.alerts.planner import Planner
from support_monitor.alerts.routing import Router
from support_monitor.alerts.state import Alert, AlertState
from tests.alerts.helpers import firing_alert, notifier_settings
from tests.support import T0

STEP = 10.0
STEPS = 120
LABELS = [
    (("alertname", name), ("channel", channel))
    for name in ("LongestWaitHigh", "AbandonRateHigh")
    for channel in ("voice", "chat")
]


def _planner(group_wait: float, group_interval: float) -> Planner:
    cfg = notifier_settings(
        receivers={
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/x", "repeat_interval": 0}
        },
        routes=[
            {
                "receiver": "hook",
                "group_by": ["channel"],
                "group_wait": group_wait,
                "group_interval": group_interval,
            }
        ],
    )
    return Planner(cfg.receivers, Router(cfg))


TOGGLE = st.integers(0, 7).map(lambda n: n == 0)
"""An alert changes at one evaluation in eight: activations of a few minutes."""
timelines = st.tuples(
    st.sampled_from([0.0, 30.0]),
    st.sampled_from([0.0, 60.0, 300.0]),
    st.lists(st.lists(TOGGLE, min_size=len(LABELS), max_size=len(LABELS)), max_size=STEPS),
)
"""(group_wait, group_interval, per evaluation whether each alert toggles: an inactive one
starts firing, a firing one resolves)."""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines)
def test_random_timelines_are_told_once_and_grouped(
    case: tuple[float, float, list[list[bool]]],
) -> None:
    group_wait, group_interval, toggles = case
    planner = _planner(group_wait, group_interval)
    alerts: dict[int, Alert] = {}
    spans: dict[tuple[str, float], tuple[float, float]] = {}  # activation: (fired, resolved)
    told: dict[str, list[tuple[float, str, float]]] = {}  # fingerprint: (at, state, active_at)
    last_message: dict[str, tuple[float, bool]] = {}  # channel: (at, had a firing alert)
    # the timeline, then every alert resolved, then quiet until every group is flushed
    flush = int((group_wait + group_interval) / STEP) + 2
    steps = [*toggles, [True] * len(LABELS), *([[False] * len(LABELS)] * flush)]
    for n, row in enumerate(steps):
        now = T0 + n * STEP
        resolve_all = n == len(toggles)
        for i, flip in enumerate(row):
            alert = alerts.get(i)
            firing = alert is not None and alert.state is AlertState.FIRING
            if resolve_all and not firing:
                continue
            if flip and firing:
                assert alert is not None
                alert.state = AlertState.INACTIVE
                alert.resolved_at = now
                key = (alert.fingerprint, alert.active_at)
                spans[key] = (spans[key][0], now)
            elif flip and not resolve_all:
                alerts[i] = alert = firing_alert(LABELS[i], now)
                spans[(alert.fingerprint, now)] = (now, float("inf"))
        for message in planner.plan(now, list(alerts.values())):
            _check_spacing(message, now, group_interval, last_message)
            _record(message, now, told)
            planner.settled(message, delivered=True)

    for fingerprint, history in told.items():
        states = [state for _, state, _ in history]
        assert states[0] == "firing", history
        assert "resolved resolved" not in " ".join(states), history
        assert states[-1] == "resolved", history  # nothing left firing at the receiver
        for at, state, active_at in history:
            if state == "resolved":
                assert spans[(fingerprint, active_at)][1] <= at, history
    for (fingerprint, fired), (_, resolved) in spans.items():
        got = [h for h in told.get(fingerprint, []) if h[1:] == ("firing", fired)]
        if resolved - fired > group_wait + group_interval + STEP:
            assert got, (fingerprint, fired, resolved, told.get(fingerprint))


def _check_spacing(
    message: Notification,
    now: float,
    group_interval: float,
    last_message: dict[str, tuple[float, bool]],
) -> None:
    channel = message.group["channel"]
    previous = last_message.get(channel)
    if previous is not None and previous[1]:  # the group was open: an update
        assert now - previous[0] >= group_interval, (channel, previous, now)
    last_message[channel] = (now, any(a.resolved_at is None for a in message.alerts))


def _record(
    message: Notification, now: float, told: dict[str, list[tuple[float, str, float]]]
) -> None:
    for info in message.alerts:
        state = "firing" if info.resolved_at is None else "resolved"
        told.setdefault(info.fingerprint, []).append((now, state, info.active_at))
