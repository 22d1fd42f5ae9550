"""Alert rules over detector signals: which signals are the condition, which labels the alert
carries, how its annotations read. The state machine itself lives in ``alerts.state``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from support_monitor.alerts.config import AlertRule, AlertSettings
from support_monitor.alerts.links import keep_links
from support_monitor.alerts.state import (
    Alert,
    AlertState,
    Labels,
    RuleState,
    Sample,
    Transition,
    fingerprint,
)
from support_monitor.alerts.template import render
from support_monitor.alerts.timefmt import hour_minute, rfc3339
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.durations import format_duration as duration

FactSource = Callable[[str, Mapping[str, str], float], Mapping[str, str | float]]
"""(channel, alert labels, now) -> template variables about the channel (``alerts.facts``)."""

DASHBOARD_BEFORE = 1800.0
"""``{dashboard_from}`` starts this long before the alert became active (the lead-up)."""
DASHBOARD_AFTER = 300.0
"""A resolved alert's ``{dashboard_to}`` ends this long after it resolved."""


def dashboard_window(window: str) -> str:
    """``&var-window=<window>`` for a Grafana link (the dashboards' ``window`` variable), or ""
    without a window (the dashboard's default window then)."""
    return f"&var-window={quote(window, safe='')}" if window else ""


def clock_time(ts: float) -> str:
    """``2026-03-02 09:00 UTC``: when an incident started or ended, for people."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary(signal: Signal | None) -> str:
    return "" if signal is None else signal.summary


def _start(active_at: float, signal: Signal | None) -> float:
    """When the alert's trouble began: its ``active_at``, or earlier when its detector held the
    condition before saying active (``Signal.since``)."""
    if signal is not None and signal.since < active_at:
        return signal.since
    return active_at


def _ms(ts: float) -> str:
    return str(int(ts * 1000))


HELD_SENTENCE = (
    " {side} its alert level now, its healthy side: the alert stays active while the detector "
    "still sees a sustained change, or until it is sure of the recovery."
)
"""Added to a firing description whose value is on the quiet side of its threshold."""

KEPT_SUMMARY = " (cleared at {cleared}; resolves at {until} unless it returns)"
"""Added to the summary of an alert kept firing (``keep_firing_for``): its texts read now."""
KEPT_SENTENCE = (
    " The condition cleared at {cleared}: the alert stays firing until {until} "
    "(keep_firing_for {keep}) and then resolves, unless the condition returns."
)
"""Added to the description of an alert kept firing."""

SUSTAINED_SENTENCE = (
    " The count or share of one window alone is {side} its alert level: the detector pages on a "
    "sustained {change} over a longer stretch, too gradual for one window to show."
)
"""Added instead when a sustained-change test made the signal active (``Signal.sustained``)."""


class CompiledRule:
    """One configured rule and the alerts it currently holds."""

    def __init__(
        self, rule: AlertRule, settings: AlertSettings, facts: FactSource | None = None
    ) -> None:
        """``facts``: what the templates may say about the channel (``alerts.facts``); without
        it those variables render as ``<no value>``."""
        self.rule = rule
        self.key = rule.key
        self._channels = frozenset(rule.channels) if rule.channels is not None else None
        self._links: dict[str, str | float] = {
            "runbook_base_url": settings.runbook_base_url,
            "dashboard_base_url": settings.dashboard_base_url,
            "site": settings.site_name,
        }
        self._site = settings.site_name
        self._facts = facts
        self.upward: bool | None = None
        """Whether a higher value is worse for the rule's detector (set by ``Alerting`` from
        the detector suite; None: unknown). Copied to its alerts for the notifiers."""
        self.sustained_words: tuple[str, str] | None = None
        """What the rule's detector says of a signal its sustained-change test made active
        (summary suffix, description sentence; set by ``Alerting`` from the detector's
        ``sustained_words``); None: the generic rise / drop wording."""
        self.window = ""
        """The configured window the rule's detector judges (set by ``Alerting`` from the
        detector settings, ``alerts.facts.judged_windows``; "": none or several): the
        ``{window}`` of its templates, and ``{dashboard_window}`` opens the dashboard on it."""
        self._now = math.nan
        """The time of the evaluation running now (what ``facts`` and durations are read at)."""
        self._active_at: float | None = None
        """``active_at`` of the alert being rendered (``_render``), for ``annotations``."""
        self._kept: tuple[float, float] | None = None
        """When the condition of the alert being rendered cleared and when it resolves, if it
        is kept firing (``_render``), for ``annotations``."""
        self._signals: dict[Labels, Signal] = {}
        """The last signal rendered per alert label set (to render again when it fires, and
        its sentence for the resolved texts); cleared past ``_LABEL_CACHE`` entries."""
        self.state = RuleState(rule.for_, rule.keep_firing_for, settings.resolved_retention)
        self._samples: dict[int, tuple[Signal, Sample]] = {}
        """The last evaluation's samples by signal identity: a signal the detector handed out
        again unchanged gives the same sample."""
        self._labels: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = {}
        self._unrendered: dict[int, tuple[Signal, dict[str, str]]] = {}
        """Annotation dicts not rendered yet (by ``id``), with the signal they are for."""

    def labels_for(self, signal: Signal) -> Labels:
        """Signal labels, then the rule's labels and severity, then alertname (Prometheus order)."""
        merged = dict(signal.labels)
        merged["channel"] = signal.channel
        return self._with_rule_labels(merged)

    def _with_rule_labels(self, merged: dict[str, str]) -> Labels:
        """``merged`` with the rule's labels, severity and alertname over it, sorted."""
        merged.update(self.rule.labels)
        merged["severity"] = self.rule.severity
        merged["alertname"] = self.rule.alert
        return tuple(sorted(merged.items()))

    def applies(self, signal: Signal) -> bool:
        if signal.detector != self.rule.detector:
            return False
        if self._channels is not None and signal.channel not in self._channels:
            return False
        if self.rule.match:
            labels = dict(signal.labels)
            labels["channel"] = signal.channel
            return all(labels.get(k) == v for k, v in self.rule.match.items())
        return True

    def annotations(self, signal: Signal, labels: Labels) -> dict[str, str]:
        """The rule's firing annotations rendered for one signal (links kept only if
        absolute), for the alert ``_render`` is filling (its ``active_at``), else as if it
        became active now. For an alert kept firing (``_kept``) they read the detector's
        signal now and say when the condition cleared and when the alert resolves."""
        if signal.active and self._signals.get(labels) is not signal:
            if len(self._signals) >= _LABEL_CACHE:
                self._signals.clear()
            self._signals[labels] = signal
        now = self._now
        start = _start(now if self._active_at is None else self._active_at, signal)
        data = self._data(labels, signal.score, signal.threshold, signal.expected, now)
        data.update(
            signal_summary=signal.summary,
            detector=signal.detector,
            started=clock_time(start) if math.isfinite(start) else "n/a",
            duration=duration(now - start),
            duration_seconds=now - start,
            dashboard_from=_ms(start - DASHBOARD_BEFORE) if math.isfinite(start) else "now-1h",
            dashboard_to="now",
        )
        out = self._finish(self.rule.annotations, data)
        summary, sentence = self._notes(signal)
        if summary and "summary" in out:
            out["summary"] += summary
        if sentence and "description" in out:
            out["description"] += sentence
        return out

    def _notes(self, signal: Signal) -> tuple[str, str]:
        """What the summary and the description add, if anything: that the alert is kept
        firing after its condition cleared, or that its value is on the quiet side of its
        threshold (made active by a sustained-change test, or held by its detector), so the
        texts never read as a value past a threshold it is not past."""
        if self._kept is not None:
            cleared, until = (hour_minute(ts) for ts in self._kept)
            keep = duration(self.rule.keep_firing_for)
            return (
                KEPT_SUMMARY.format(cleared=cleared, until=until),
                KEPT_SENTENCE.format(cleared=cleared, until=until, keep=keep),
            )
        side = self._quiet_side(signal)
        if side and signal.sustained:  # made active by a sustained-change test, not held
            change = "rise" if side == "below" else "drop"
            return self.sustained_words or (
                f" (a sustained {change}; one window alone is {side} its level)",
                SUSTAINED_SENTENCE.format(side=side, change=change),
            )
        if side:  # active, but its value is not past the alert level: say so, not contradict it
            return (
                f" ({side} its alert level now, its healthy side; still active)",
                HELD_SENTENCE.format(side=side.capitalize()),
            )
        return "", ""

    def _quiet_side(self, signal: Signal) -> str:
        """ "below" (or "above", for a detector where lower is worse) when the active signal's
        value is on the quiet side of its threshold: held by the detector's hysteresis or
        made active by a sustained-change test; "" otherwise or when the direction is not
        known."""
        upward, score, threshold = self.upward, signal.score, signal.threshold
        if upward is None or not (math.isfinite(score) and math.isfinite(threshold)):
            return ""
        if upward:
            return "below" if score < threshold else ""
        return "above" if score > threshold else ""

    def _data(
        self, labels: Labels, value: float, threshold: float, expected: float, now: float
    ) -> dict[str, str | float]:
        as_dict = dict(labels)
        data: dict[str, str | float] = {}
        if self._facts is not None and math.isfinite(now):
            data.update(self._facts(as_dict.get("channel", ""), as_dict, now))
        data["window"] = self.window
        data.update(as_dict)
        data.update(self._links)
        data["dashboard_window"] = dashboard_window(self.window)
        data.update(
            value=value,
            score=value,
            threshold=threshold,
            expected=expected,
            value_now=math.nan,
            expected_now=math.nan,
            ended="",
        )
        return data

    def _finish(
        self, templates: Mapping[str, str], data: Mapping[str, str | float]
    ) -> dict[str, str]:
        out = keep_links({key: render(text, data) for key, text in templates.items()})
        if self._site:
            out.setdefault("site", self._site)
        return out

    def resolve(self, alert: Alert, now: float, current: Signal | None) -> None:
        """Render the resolved annotations of an alert that just resolved: the rule's
        ``resolved_annotations`` over its ``annotations``, with how long it lasted and the
        value now (``current``: the detector's signal for these labels at this evaluation, if
        any)."""
        last = self._signals.get(alert.labels)
        start = alert.started_at = _start(alert.active_at, last)
        end = alert.resolved_at if alert.resolved_at is not None else now
        value_now = current.score if current is not None else math.nan
        alert.value_now = value_now
        data = self._data(alert.labels, alert.value, alert.threshold, alert.expected, now)
        data.update(
            signal_summary=_summary(current or last),
            detector=self.rule.detector,
            started=clock_time(start),
            ended=clock_time(end),
            duration=duration(end - start),
            duration_seconds=end - start,
            value_now=value_now,
            expected_now=current.expected if current is not None else math.nan,
            dashboard_from=_ms(start - DASHBOARD_BEFORE),
            dashboard_to=_ms(end + DASHBOARD_AFTER),
        )
        self._unrendered.pop(id(alert.annotations), None)
        alert.annotations = self._finish(
            {**self.rule.annotations, **self.rule.resolved_annotations}, data
        )
        self._signals.pop(alert.labels, None)

    def sample(self, signal: Signal) -> Sample:
        """The sample of one signal, annotations rendered."""
        labels = self.labels_for(signal)
        annotations = self.annotations(signal, labels)
        return Sample(
            labels, signal.score, annotations, signal.threshold, signal.expected, signal.live
        )

    def _labels_of(self, signal: Signal) -> Labels:
        """``labels_for(signal)``, remembered per channel and signal label set."""
        key = (signal.channel, signal.labels)
        labels = self._labels.get(key)
        if labels is None:
            if len(self._labels) >= _LABEL_CACHE:
                self._labels.clear()
            labels = self._labels[key] = self.labels_for(signal)
        return labels

    def _unrendered_for(self, signal: Signal) -> dict[str, str]:
        """An empty annotations dict, filled (in place) from ``signal`` by ``_render`` only
        when its alert changes state or is read."""
        annotations: dict[str, str] = {}
        self._unrendered[id(annotations)] = (signal, annotations)
        return annotations

    def _lazy_sample(self, signal: Signal) -> Sample:
        """The sample of one signal, its annotations not rendered yet (``_unrendered_for``)."""
        return Sample(
            self._labels_of(signal),
            signal.score,
            self._unrendered_for(signal),
            signal.threshold,
            signal.expected,
            signal.live,
        )

    def _render(self, alert: Alert, *, again: bool = False) -> None:
        """Fill the alert's annotations if they are not rendered yet; ``again``: render them
        anew from its latest signal even if they are (when it starts firing, so the first page
        reads the channel now, not at the time it became pending)."""
        alert.upward = self.upward
        entry = self._unrendered.pop(id(alert.annotations), None)
        if entry is not None and entry[1] is alert.annotations:
            signal: Signal | None = entry[0]
        elif again:
            signal = self._signals.get(alert.labels)
        else:
            return
        if signal is None:
            return
        start = alert.active_at
        kept = alert.kept_until
        if kept is not None and alert.keep_firing_since is not None:
            self._kept = (alert.keep_firing_since, kept)
            if alert.started_at is not None:  # as its texts counted it while the condition held
                start = alert.started_at
        self._active_at = start
        try:
            fresh = self.annotations(signal, alert.labels)
        finally:
            self._active_at = self._kept = None
        alert.annotations.clear()
        alert.annotations.update(fresh)
        alert.started_at = _start(start, signal)

    def eval(
        self, now: float, signals: Iterable[Signal], everything: Sequence[Signal] = ()
    ) -> list[Transition]:
        """One evaluation over the tick's signals (only active ones matter). A signal handed out
        again unchanged reuses its sample; annotations are rendered only for the alerts whose
        state changes (and when alerts are read, ``alerts()``). With nothing active and no alert
        held the state machine has nothing to do and is not run. ``everything``: all of the
        tick's signals, active or not, where a resolved alert reads its value now."""
        self._now = now
        samples = []
        last = self._samples
        seen: dict[int, tuple[Signal, Sample]] = {}
        for signal in signals:
            if not signal.active or not self.applies(signal):
                continue
            hit = last.get(id(signal))
            sample = hit[1] if hit is not None and hit[0] is signal else self._lazy_sample(signal)
            seen[id(signal)] = (signal, sample)
            samples.append(sample)
        self._samples = seen
        if not samples and not self.state.active:
            self._unrendered.clear()  # no sample or alert uses any of them any more
            self.state.resumed_at = None  # what RuleState.eval would do
            return []  # RuleState.eval would change nothing and return no transition
        transitions = self.state.eval(now, samples)
        for transition in transitions:
            if transition.state == "resolved":
                self.resolve(transition.alert, now, self._current(transition.alert, everything))
            else:
                self._render(transition.alert, again=transition.state == "firing")
        self._read_kept(everything)
        if self._unrendered:
            self._forget(samples)
        return transitions

    def _read_kept(self, everything: Sequence[Signal]) -> None:
        """Each alert kept firing takes the detector's signal for it now as its ``value_now``
        and the signal its texts are rendered from (when read or told), so that a message
        about it reads the channel as it is, not as it was when its condition last held;
        without such a signal its texts stay those of its last active one."""
        kept = [alert for alert in self.state.active.values() if alert.kept_until is not None]
        if not kept:
            return
        now: dict[Labels, Signal] = {}  # one pass over the tick's signals for all of them
        for signal in everything:
            if self.applies(signal):
                now.setdefault(self._labels_of(signal), signal)
        for alert in kept:
            current = now.get(alert.labels)
            if current is None:
                alert.value_now = math.nan
                continue
            alert.value_now = current.score
            self._unrendered.pop(id(alert.annotations), None)
            alert.annotations = self._unrendered_for(current)

    def _current(self, alert: Alert, signals: Sequence[Signal]) -> Signal | None:
        """The detector's signal for the alert's labels among ``signals`` (on a resolve, and
        for an alert kept firing)."""
        channel = alert.label("channel")
        for signal in signals:
            if (
                signal.channel == channel
                and self.applies(signal)
                and self._labels_of(signal) == alert.labels
            ):
                return signal
        return None

    def _forget(self, samples: list[Sample]) -> None:
        """Keep unrendered entries only for dicts a current sample or a held alert still uses
        (bounded by the active signals and the alerts held)."""
        old = self._unrendered
        keep: dict[int, tuple[Signal, dict[str, str]]] = {}
        for used in [s.annotations for s in samples] + [
            a.annotations for a in self.state.active.values()
        ]:
            entry = old.get(id(used))
            if entry is not None and entry[1] is used:
                keep[id(used)] = entry
        self._unrendered = keep

    def alerts(self) -> Iterator[Alert]:
        """The alerts held, annotations rendered."""
        held = list(self.state.active.values())
        for alert in held:
            self._render(alert)
        return iter(held)

    def notifiable(self) -> Iterator[Alert]:
        """The alerts held that are firing or resolved (what notifications are planned from:
        a pending alert is never sent). Their annotations may not be rendered yet: a message
        renders those of the alerts it tells (:meth:`render`)."""
        out = [a for a in self.state.active.values() if a.state is not AlertState.PENDING]
        out += self.state.resolved_aside()  # a resolve still to send, its successor pending
        return iter(out)

    def render(self, alert: Alert) -> None:
        """Fill the annotations of an alert of this rule from its latest signal, if they are
        not rendered yet (before a message or Alertmanager tells it)."""
        self._render(alert)

    def held(self) -> Iterator[Alert]:
        """The alerts held, as they are (annotations may not be rendered yet)."""
        return iter(list(self.state.active.values()))

    def adopt(self, old: CompiledRule) -> dict[str, Alert]:
        """Take over the alerts of the same rule before a reload (annotations rendered). When
        its severity or labels changed (the one rule of its name), each alert takes its new
        label set and keeps its state and ``active_at``, as the evaluation would label it now;
        returns the relabelled alerts by their old fingerprint."""
        old.alerts()
        if (self.rule.severity, self.rule.labels) == (old.rule.severity, old.rule.labels):
            self.state.active = old.state.active
            self.state.replaced = old.state.replaced
            return {}
        moved: dict[str, Alert] = {}
        self.state.active = self._relabelled(old, old.state.active, moved)
        self.state.replaced = self._relabelled(old, old.state.replaced, moved)
        return moved

    def _relabelled(
        self, old: CompiledRule, alerts: dict[str, Alert], moved: dict[str, Alert]
    ) -> dict[str, Alert]:
        """``alerts`` (fingerprint -> alert) under this rule's labels instead of ``old``'s."""
        out: dict[str, Alert] = {}
        for fp, alert in alerts.items():
            merged = dict(alert.labels)
            for key in old.rule.labels:
                merged.pop(key, None)
            labels = self._with_rule_labels(merged)
            # a copy: the old rule's alerts stay as they were if the reload goes no further
            copy = dataclasses.replace(alert, labels=labels, fingerprint=fingerprint(labels))
            moved[fp] = copy
            out.setdefault(copy.fingerprint, copy)
        return out


_LABEL_CACHE = 4096
"""Label sets kept per rule (one per channel and signal label set seen); cleared past it."""


def transition_record(
    transition: Transition, now: float, *, inhibited: bool = False
) -> dict[str, object]:
    """The JSON-able record written by ``replay --alerts-out`` and logged. Added to the
    original fields only when they apply: ``value_now`` (a resolved alert's value at the
    evaluation that resolved it) and ``inhibited`` (true when an inhibit rule held the alert
    back from the built-in receivers at that evaluation)."""
    alert = transition.alert
    value = alert.value if math.isfinite(alert.value) else None
    record: dict[str, object] = {
        "ts": now,
        "time": rfc3339(now),
        "alertname": alert.label("alertname"),
        "state": transition.state,
        "previous": transition.previous,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "value": value,
        "active_at": alert.active_at,
        "fingerprint": alert.fingerprint,
    }
    if transition.state == "resolved":
        record["value_now"] = alert.value_now if math.isfinite(alert.value_now) else None
    if inhibited:
        record["inhibited"] = True
    return record
