"""What the planner records of each message's fate: a page the receiver never got is followed by
no resolve (as in Alertmanager), and no resolve is lost while a later message may still bring
the page."""

from __future__ import annotations

from support_monitor.alerts.notify.message import Notification
from support_monitor.alerts.planner import Planner
from support_monitor.alerts.routing import Router
from support_monitor.alerts.state import Alert, AlertState
from tests.alerts.helpers import firing_alert, notifier_settings
from tests.support import T0

SALES = (("alertname", "LongWait"), ("channel", "voice"), ("queue", "sales"))
SUPPORT = (("alertname", "LongWait"), ("channel", "voice"), ("queue", "support"))


def _planner() -> Planner:
    settings = notifier_settings(
        receivers={
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/x", "repeat_interval": 3600}
        },
        routes=[{"receiver": "hook", "group_wait": 0, "group_interval": 0}],  # every change
    )
    return Planner(settings.receivers, Router(settings))


def _resolve(alert: Alert, at: float) -> None:
    alert.state = AlertState.INACTIVE
    alert.resolved_at = at


def _told(n: Notification) -> list[tuple[str, bool]]:
    """(queue, resolved) of each alert in the message."""
    return sorted((dict(a.labels)["queue"], a.resolved_at is not None) for a in n.alerts)


def test_a_refused_page_gets_no_resolve_and_is_tried_again_at_repeat_interval() -> None:
    planner = _planner()
    sales = firing_alert(SALES, T0)
    [page] = planner.plan(T0, [sales])
    assert planner.settled(page, delivered=False)
    assert planner.plan(T0 + 3600, [sales])[0].kind == "repeat"  # the page, once more
    again = firing_alert(SALES, T0 + 4000)  # a new activation, its page refused too
    [page] = planner.plan(T0 + 4000, [again])
    planner.settled(page, delivered=False)
    _resolve(again, T0 + 4100)
    assert planner.plan(T0 + 4100, [again]) == []


def test_a_delivered_page_gets_its_resolve() -> None:
    planner = _planner()
    sales = firing_alert(SALES, T0)
    [page] = planner.plan(T0, [sales])
    assert planner.settled(page, delivered=True)
    assert not planner.settled(page, delivered=True)  # nothing new to keep
    _resolve(sales, T0 + 60)
    [resolve] = planner.plan(T0 + 60, [sales])
    assert resolve.state == "resolved"
    assert _told(resolve) == [("sales", True)]


def test_a_refused_message_does_not_cancel_a_resolve_a_later_message_may_still_need() -> None:
    """The first page (sales) is given up while the group's update (sales beside support) is
    still in the outbox: that update may reach the receiver, so both resolves are planned."""
    planner = _planner()
    sales, support = firing_alert(SALES, T0), firing_alert(SUPPORT, T0 + 1)
    [first] = planner.plan(T0, [sales])
    [update] = planner.plan(T0 + 1, [sales, support])
    assert _told(update) == [("sales", False), ("support", False)]
    assert not planner.settled(first, delivered=False)
    _resolve(sales, T0 + 2)
    _resolve(support, T0 + 2)
    [resolve] = planner.plan(T0 + 2, [sales, support])
    assert _told(resolve) == [("sales", True), ("support", True)]


def test_a_page_told_once_keeps_its_resolve_when_a_later_update_is_refused() -> None:
    planner = _planner()
    sales, support = firing_alert(SALES, T0), firing_alert(SUPPORT, T0 + 1)
    [first] = planner.plan(T0, [sales])
    planner.settled(first, delivered=True)
    [update] = planner.plan(T0 + 1, [sales, support])
    assert planner.settled(update, delivered=False)  # support never reached the receiver
    _resolve(sales, T0 + 2)
    _resolve(support, T0 + 2)
    [resolve] = planner.plan(T0 + 2, [sales, support])
    assert _told(resolve) == [("sales", True)]


def test_a_resolve_planned_while_its_page_was_on_its_way_is_left_out_if_the_page_fails() -> None:
    """The alert resolves while its page is still being retried; the page is then refused (or
    given up, or dropped from a full outbox). The receiver never saw it: the resolve, already
    in the outbox, is not sent (audit of 2026-12-04: a lone RESOLVED was delivered)."""
    planner = _planner()
    sales = firing_alert(SALES, T0)
    [page] = planner.plan(T0, [sales])
    _resolve(sales, T0 + 4)
    [resolve] = planner.plan(T0 + 4, [sales])
    assert planner.unpaged_resolves_left_out(resolve) is resolve  # the page may still arrive
    assert planner.settled(page, delivered=False)
    assert planner.unpaged_resolves_left_out(resolve) is None
    # delivered instead: the resolve goes out as planned
    planner = _planner()
    sales = firing_alert(SALES, T0)
    [page] = planner.plan(T0, [sales])
    _resolve(sales, T0 + 4)
    [resolve] = planner.plan(T0 + 4, [sales])
    planner.settled(page, delivered=True)
    assert planner.unpaged_resolves_left_out(resolve) is resolve


def test_an_update_keeps_its_firing_alerts_without_the_resolve_of_a_page_never_told() -> None:
    planner = _planner()
    sales, support = firing_alert(SALES, T0), firing_alert(SUPPORT, T0)
    [first] = planner.plan(T0, [sales])
    planner.settled(first, delivered=True)
    [second] = planner.plan(T0 + 1, [sales, support])  # support's page, sales as context
    _resolve(support, T0 + 2)
    [update] = planner.plan(T0 + 2, [sales, support])
    assert _told(update) == [("sales", False), ("support", True)]
    planner.settled(second, delivered=False)
    kept = planner.unpaged_resolves_left_out(update)
    assert kept is not None
    assert _told(kept) == [("sales", False)]
    assert (kept.key, kept.state) == (update.key, "firing")


def test_a_group_restored_from_a_clock_ahead_waits_its_interval_from_now() -> None:
    """The simulator faster than real time restarts its clock from the wall clock, behind the
    group times the last run stored. Before, every open group waited until the new clock
    came round to the old one (hours at speed 20), and a page that fired and resolved
    meanwhile was never sent."""
    settings = notifier_settings(
        receivers={"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x"}},
        routes=[{"receiver": "hook", "group_wait": 0, "group_interval": 120}],
    )
    before = Planner(settings.receivers, Router(settings))
    ahead = T0 + 7200
    sales = firing_alert(SALES, ahead)
    [page] = before.plan(ahead, [sales])
    before.settled(page, delivered=True)
    after = Planner(settings.receivers, Router(settings))  # the restart: state restored
    after.sent, after.groups = before.sent, before.groups
    sales = firing_alert(SALES, T0)
    support = firing_alert(SUPPORT, T0 + 10)
    assert after.plan(T0 + 10, [sales, support]) == []  # the group's interval runs from now
    [update] = after.plan(T0 + 130, [sales, support])
    assert _told(update) == [("sales", False), ("support", False)]


def test_a_repeat_restored_from_a_clock_ahead_comes_repeat_interval_from_now() -> None:
    # the same restart: the nag came only once the new clock passed the old page's time
    before = _planner()  # repeat_interval 1 h, no group waits
    ahead = T0 + 7200
    sales = firing_alert(SALES, ahead)
    [page] = before.plan(ahead, [sales])
    before.settled(page, delivered=True)
    after = _planner()
    after.sent, after.groups = before.sent, before.groups
    assert after.plan(T0, [sales]) == []  # told already: no new page
    assert after.plan(T0 + 3599, [sales]) == []
    [nag] = after.plan(T0 + 3600, [sales])
    assert nag.kind == "repeat"
