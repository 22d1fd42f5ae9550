"""The rule state machine against hand-computed timelines (Prometheus' AlertingRule.Eval)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from support_monitor.alerts.state import Alert, AlertState, RuleState, Sample, fingerprint

LABELS = (("alertname", "LongWait"), ("channel", "voice"), ("severity", "critical"))
FP = fingerprint(LABELS)
PINNED = "dd8744a8faa383d2"  # sha256 of the sorted pairs: must never change (persisted state)


def run(state: RuleState, timeline: list[tuple[float, bool]]) -> list[tuple[float, str, str]]:
    """Evaluate at each (t, active); returns (t, previous, state) transitions."""
    out: list[tuple[float, str, str]] = []
    for t, active in timeline:
        samples = [Sample(LABELS, t, {"summary": f"at {t}"})] if active else []
        out.extend((t, tr.previous, tr.state) for tr in state.eval(t, samples))
    return out


def test_pending_then_firing_after_for():
    s = RuleState(hold=30, keep_firing_for=0, resolved_retention=900)
    got = run(s, [(0, True), (10, True), (20, True), (29.9, True), (30, True), (40, True)])
    assert got == [(0, "inactive", "pending"), (30, "pending", "firing")]
    a = s.active[FP]
    assert (a.active_at, a.fired_at, a.resolved_at) == (0, 30, None)
    assert a.value == 40
    assert a.annotations == {"summary": "at 40"}  # value and annotations follow each evaluation


def test_a_pending_alert_fires_only_while_its_condition_is_live():
    # A detector's persistence may hold a signal active after its condition ended (the
    # sustained oldest-wait level once nobody waits): past ``for`` the alert stays pending
    # until the condition is live again, and ends without a page if it never is.
    s = RuleState(hold=30, keep_firing_for=0, resolved_retention=900)
    got: list[tuple[float, str, str]] = []
    for t, live in ((0, True), (20, False), (30, False), (45, False), (50, True), (60, False)):
        samples = [Sample(LABELS, t, {}, live=live)]
        got.extend((t, tr.previous, tr.state) for tr in s.eval(t, samples))
    assert got == [(0, "inactive", "pending"), (50, "pending", "firing")]
    assert s.active[FP].active_at == 0  # pending kept its start: fired as soon as live
    again = RuleState(hold=30, keep_firing_for=0, resolved_retention=900)
    trs = [again.eval(t, [Sample(LABELS, t, {}, live=t < 10)]) for t in (0, 10, 40)]
    trs.append(again.eval(50, []))  # held past ``for``, then over: no page at all
    assert [(tr.previous, tr.state) for batch in trs for tr in batch] == [
        ("inactive", "pending"),
        ("pending", "inactive"),
    ]


def test_pending_dropped_when_condition_clears():
    s = RuleState(hold=30, keep_firing_for=0, resolved_retention=900)
    got = run(s, [(0, True), (10, True), (20, False)])
    assert got == [(0, "inactive", "pending"), (20, "pending", "inactive")]
    assert s.active == {}


def test_for_zero_fires_at_once():
    s = RuleState(hold=0, keep_firing_for=0, resolved_retention=900)
    assert run(s, [(5, True)]) == [(5, "inactive", "firing")]
    assert s.active[FP].active_at == 5
    assert s.active[FP].fired_at == 5


def test_resolved_is_retained_then_deleted():
    s = RuleState(hold=0, keep_firing_for=0, resolved_retention=900)
    got = run(s, [(0, True), (60, False), (960, False)])
    assert got == [(0, "inactive", "firing"), (60, "firing", "resolved")]
    assert s.active[FP].state is AlertState.INACTIVE
    assert s.active[FP].resolved_at == 60
    run(s, [(961, False)])  # 961 - 60 = 901 > 900: deleted; exactly 900 was kept
    assert s.active == {}


def test_keep_firing_for_holds_after_clear():
    s = RuleState(hold=0, keep_firing_for=20, resolved_retention=900)
    got = run(s, [(0, True), (10, False), (20, False), (29, False), (30, False)])
    # cleared at 10 -> keep_firing_since 10; 29 - 10 < 20 still firing; 30 - 10 = 20 resolves
    assert got == [(0, "inactive", "firing"), (30, "firing", "resolved")]
    assert s.active[FP].resolved_at == 30
    assert s.active[FP].fired_at == 0


def test_keep_firing_since_resets_when_condition_returns():
    s = RuleState(hold=0, keep_firing_for=20, resolved_retention=900)
    got = run(s, [(0, True), (10, False), (15, True), (25, False), (40, False), (45, False)])
    assert got == [(0, "inactive", "firing"), (45, "firing", "resolved")]


def test_keep_firing_for_does_not_apply_to_pending():
    s = RuleState(hold=30, keep_firing_for=60, resolved_retention=900)
    got = run(s, [(0, True), (10, False)])
    assert got == [(0, "inactive", "pending"), (10, "pending", "inactive")]


def test_flapping_restarts_the_for_clock():
    s = RuleState(hold=20, keep_firing_for=0, resolved_retention=900)
    got = run(s, [(0, True), (10, False), (20, True), (30, True), (39, True), (40, True)])
    assert got == [
        (0, "inactive", "pending"),
        (10, "pending", "inactive"),
        (20, "inactive", "pending"),
        (40, "pending", "firing"),
    ]
    assert s.active[FP].active_at == 20


def test_resolved_alert_that_returns_is_a_new_activation():
    s = RuleState(hold=10, keep_firing_for=0, resolved_retention=900)
    got = run(s, [(0, True), (10, True), (20, False), (100, True), (110, True)])
    assert got == [
        (0, "inactive", "pending"),
        (10, "pending", "firing"),
        (20, "firing", "resolved"),
        (100, "resolved", "pending"),
        (110, "pending", "firing"),
    ]
    a = s.active[FP]
    assert (a.active_at, a.fired_at, a.resolved_at) == (100, 110, None)


def test_two_label_sets_are_two_alerts():
    s = RuleState(hold=0, keep_firing_for=0, resolved_retention=900)
    other = (*LABELS[:1], ("channel", "chat"), LABELS[2])
    s.eval(0, [Sample(LABELS, 1, {}), Sample(other, 2, {})])
    assert len(s.active) == 2
    trs = s.eval(1, [Sample(other, 2, {})])
    assert [(t.alert.label("channel"), t.state) for t in trs] == [("voice", "resolved")]


def test_fingerprint_is_stable_and_order_free():
    assert fingerprint(LABELS) == fingerprint(tuple(reversed(LABELS)))
    assert fingerprint(LABELS) == PINNED
    assert fingerprint(LABELS) != fingerprint((*LABELS, ("queue", "billing")))
    # no ambiguity between label boundaries
    assert fingerprint((("a", "bc"),)) != fingerprint((("ab", "c"),))


def test_fingerprint_pinned_across_processes():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = f"from alerts.state import fingerprint;print(fingerprint({LABELS!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == PINNED


def test_needs_sending_like_prometheus():
    a = Alert(LABELS, {}, AlertState.PENDING, 1.0, active_at=0)
    assert not a.needs_sending(60, 100)
    a.state = AlertState.FIRING
    assert a.needs_sending(60, 0)  # never sent
    a.last_sent_at = a.last_sent_wall = 0
    assert not a.needs_sending(60, 60)  # strictly after the last send + resend, wall clock
    assert a.needs_sending(60, 60.5)
    a.state, a.resolved_at = AlertState.INACTIVE, 10
    assert a.needs_sending(60, 1)  # resolved since the last send (on the daemon's clock)


@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(0, 5), st.integers(0, 5))
def test_invariants_random_timelines(actives, hold_ticks, keep_ticks):
    s = RuleState(hold=hold_ticks * 10, keep_firing_for=keep_ticks * 10, resolved_retention=50)
    prev = "inactive"
    for i, active in enumerate(actives):
        t = i * 10.0
        for tr in s.eval(t, [Sample(LABELS, t, {})] if active else []):
            assert tr.previous == prev
            assert tr.state != prev
            prev = tr.state if tr.state != "inactive" else "inactive"
        a = s.active.get(FP)
        if a is None:
            # dropped (never active, or resolved_retention passed): it starts afresh, as in
            # Prometheus, so its next transition comes from "inactive"
            prev = "inactive"
            continue
        if a.state is AlertState.FIRING:
            assert a.fired_at is not None
            assert a.fired_at - a.active_at >= hold_ticks * 10
        if a.state is AlertState.PENDING:
            assert active
            assert t - a.active_at < hold_ticks * 10 or hold_ticks == 0
