"""Prometheus exposition: a custom collector that reads the engine's own state at scrape time.

Nothing is pushed into prometheus_client objects per event (the core issue's probe on this
machine: doing so cut a decode-and-window pipeline from ~460k to ~175k events/s). The registry
is per process and passed in, never the global one. :func:`render` writes the exposition
(``/metrics`` and ``replay`` use it): byte for byte what prometheus_client's encoders write,
about 25x faster at 100 channels x 10 queues (``docs/benchmarks-history.md``, "/metrics at
100 channels x 10 queues").
"""

from __future__ import annotations

import gc
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache, partial
from itertools import accumulate, chain
from operator import attrgetter
from typing import Any, NamedTuple

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from support_monitor.monitor import catalogue
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.clocks import CLOCKS
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.histogram import Histogram
from support_monitor.monitor.engine.readout import (
    QUANTILES,
    VOICE_FAMILIES,
    abandon_ratio,
    breached_waiting,
    ces_score,
    channel_voice_labels,
    channel_voice_values,
    csat_ratio,
    fcr_ratio,
    negative_sentiment_ratio,
    nps_score,
    oldest_open_age,
    oldest_wait,
    self_service_ratio,
    service_level,
)
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.engine.sketch import quantiles
from support_monitor.monitor.engine.state import QueueState
from support_monitor.monitor.stats import DaemonStats
from support_monitor.monitor.version import VERSION

HELP: dict[str, str] = catalogue.help_texts("engine")
"""The engine's families read at scrape time (``monitor/catalogue.py``), in exposition order."""
_COUNTERS = {name for name in HELP if catalogue.CATALOGUE[name].type == "counter"}

SeriesProvider = Callable[[], Iterable[Series]]
"""Extra gauges from other parts (alerts, detectors) with their help texts."""


def series_family(name: str, help_text: str, rows: list[Series]) -> Metric:
    """A family even with no rows yet, so every documented name is always exposed."""
    label_names = [k for k, _ in rows[0].labels] if rows else []
    family: GaugeMetricFamily | CounterMetricFamily
    if name.endswith("_total"):
        family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=label_names)
    else:
        family = GaugeMetricFamily(name, help_text, labels=label_names)
    for row in rows:
        family.add_metric([v for _, v in row.labels], row.value)
    return family


def histogram_family(
    name: str,
    help_text: str,
    label_names: list[str],
    rows: Iterable[tuple[list[str], Histogram]],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text, labels=label_names)
    for values, hist in rows:
        family.add_metric(values, hist.cumulative(), hist.sum)
    return family


def wait_summary_family(quantiles: list[Series]) -> Metric:
    """``support_wait_quantile_seconds`` typed summary with quantile samples only.

    The metric contract gives it a ``quantile`` label, which Prometheus' lint accepts on
    summaries only. A summary's ``_count`` and ``_sum`` are counters in OpenMetrics (they never
    go down), and a window's count and sum do go down, so the family has neither. The rows come
    from the engine grouped by (channel, window), which OpenMetrics requires of a summary's
    samples.
    """
    family = SummaryMetricFamily(
        "support_wait_quantile_seconds",
        HELP["support_wait_quantile_seconds"],
        labels=["channel", "window"],
    )
    for row in quantiles:
        labels = dict(row.labels)
        family.add_sample(
            "support_wait_quantile_seconds",
            {
                "channel": labels["channel"],
                "window": labels["window"],
                "quantile": labels["quantile"],
            },
            row.value,
        )
    return family


LIVE_ONLY = frozenset(
    {
        "support_contacts_queued_total",
        "support_contacts_answered_total",
        "support_contacts_answered_in_sla_total",
        "support_contacts_abandoned_total",
        "support_contacts_abandoned_short_total",
        "support_contacts_abandoned_in_sla_total",
        "support_queue_waiting",
        "support_queue_oldest_wait_seconds",
        "support_queue_breached_waiting",
        "support_service_level_ratio",
        "support_abandon_ratio",
        "support_wait_quantile_seconds",
    }
)
"""Series of live contacts: only on channels with ``answer_seconds`` (the engine rejects contact
events elsewhere with ``wrong_channel_kind``, so these could never leave 0 or NaN)."""
LIVE_HISTOGRAMS = ("support_wait_seconds", "support_handle_seconds")


def possible(row: Series, channels: dict[str, ChannelSettings]) -> bool:
    """Whether ``row`` can ever differ from its start value under the channel's settings.

    Contact series need ``answer_seconds``. ``support_sla_breaches_total`` and
    ``support_tickets_at_risk`` exist per ``sla`` only where that clock has a target
    (``answer``: ``answer_seconds``; ``first_response``, ``next_reply``, ``resolution``: a
    target for that clock on the channel or on one of its priorities). Everything else (ticket
    counts, CSAT, complaints) can occur on any channel: a ticket event is accepted on every
    channel.
    """
    channel = row.label("channel")
    settings = channels.get(channel) if channel is not None else None
    if settings is None:
        return True
    if row.name in LIVE_ONLY:
        return settings.answer_seconds is not None
    if row.name in {"support_sla_breaches_total", "support_tickets_at_risk"}:
        sla = row.label("sla") or ""
        if sla == "answer":
            return settings.answer_seconds is not None
        return sla in CLOCKS and settings.has_clock(CLOCKS.index(sla))
    return True


def channel_settings_families(settings: dict[str, ChannelSettings]) -> Iterator[Metric]:
    """Gauges beyond the metric contract: each channel's configured targets, so dashboards colour
    each channel by its own T and target (they follow a config reload)."""
    answer = catalogue.gauge("support_channel_answer_seconds")
    target = catalogue.gauge("support_channel_service_level_target")
    for name, channel in settings.items():
        if channel.answer_seconds is not None:
            answer.add_metric([name], channel.answer_seconds)
        if channel.service_level_target is not None:
            target.add_metric([name], channel.service_level_target)
    yield answer
    yield target


def group(rows: Iterable[Series]) -> dict[str, list[Series]]:
    out: dict[str, list[Series]] = {}
    for row in rows:
        out.setdefault(row.name, []).append(row)
    return out


MAX_LABEL_TEXTS = 500_000
"""Line heads an :class:`EngineCollector` keeps between scrapes (one per series). A scrape that
starts with more forgets them all first, so label sets that come and go (such as alert states)
cannot grow the cache past this plus one scrape's series."""


class LabelCache:
    """(sample name, label pairs) -> the sample line's head ``name{k="v",...} `` (keys sorted,
    values escaped as prometheus_client does), computed once per series and kept."""

    __slots__ = ("heads", "parts")

    def __init__(self) -> None:
        self.heads: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self.parts: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
        """Head -> (sample name, sorted pairs), for :attr:`RowFamily.samples`."""

    def head(self, name: str, *pairs: tuple[str, str]) -> str:
        key = (name, pairs)
        found = self.heads.get(key)
        if found is not None:
            return found
        ordered = tuple(sorted(pairs))
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in ordered)
        head = f"{name}{{{text}}} " if text else f"{name} "
        self.heads[key] = head
        self.parts[head] = (name, ordered)
        return head


_float_text: Callable[[float], str] = floatToGoString
"""prometheus_client's own value text (``+Inf``, ``NaN``, Go-style exponents)."""


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


Row = tuple[str, float]
"""(sample line head from :meth:`LabelCache.head`, value)."""


class RowFamily(Metric):
    """A metric family kept as rows of pre-built line heads. :func:`render` writes its sample
    lines directly; ``samples`` builds prometheus_client ``Sample`` objects on demand (for any
    other consumer of the registry), with the same names, labels and values.

    A row is kept as its head and its value in two parallel lists, not as a tuple: a scrape at
    100 channels x 10 queues holds some 60,000 rows until it ends, and as tuples they were that
    many objects for the cyclic GC to count and walk mid-scrape (and enough allocations to
    start its collections there)."""

    def __init__(self, name: str, documentation: str, typ: str, labels: LabelCache) -> None:
        super().__init__(name, documentation, typ)
        self.heads: list[str] = []
        self.values: list[float] = []
        self._labels = labels

    def add(self, head: str, value: float) -> None:
        """One row: a head from :meth:`LabelCache.head` and its value."""
        self.heads.append(head)
        self.values.append(value)

    @property
    def rows(self) -> list[Row]:
        """The rows as (head, value) pairs (built on demand)."""
        return list(zip(self.heads, self.values, strict=True))

    @property
    def samples(self) -> list[Sample]:
        parts = self._labels.parts
        out = []
        for head, value in zip(self.heads, self.values, strict=True):
            name, pairs = parts[head]
            out.append(Sample(name, dict(pairs), value))
        return out

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        """``Metric.__init__`` sets an empty list; a row family has rows instead."""
        if value:
            raise TypeError("RowFamily takes rows, not samples")

    def lines(self) -> str:
        """The sample lines; values as prometheus_client's ``floatToGoString`` writes them
        (a small integer ``n`` is ``n.0``, which is what it gives for them)."""
        out = []
        for head, value in zip(self.heads, self.values, strict=True):
            if type(value) is int and -1_000_000 < value < 1_000_000:
                out.append(f"{head}{value}.0\n")
            else:
                out.append(f"{head}{_float_text(value)}\n")
        return "".join(out)


class HistogramSeries:
    """One histogram series as last rendered: its line heads, cumulative counts, count, sum
    and sample lines, kept until the histogram observes again (``count`` changes).

    The heads and counts are tuples of strings and ints: the cyclic GC stops tracking such a
    tuple the first time a collection sees it, so the thousands of kept series add little to
    what a full (generation 2) collection walks; lists would stay tracked for as long as they
    are kept."""

    __slots__ = ("count", "cumulative", "heads", "hist", "text", "total")

    def __init__(self, hist: Histogram, heads: tuple[str, ...]) -> None:
        self.hist = hist
        self.heads = heads
        self.count = -1
        self.cumulative: tuple[int, ...] = ()
        self.total = 0.0
        self.text = ""

    def refresh(self) -> None:
        """Re-read the histogram if it observed since the last render. ``Histogram.observe`` is
        the one way its counts change, and it always adds one to ``count``."""
        hist = self.hist
        if hist.count == self.count:
            return
        heads = self.heads
        self.count = count = hist.count
        self.total = total = hist.sum
        self.cumulative = cumulative = tuple(accumulate(hist.counts))
        if count < 1_000_000:
            out = [f"{head}{value}.0\n" for head, value in zip(heads, cumulative, strict=False)]
            out.append(f"{heads[-2]}{count}.0\n")
        else:
            out = [
                f"{head}{_float_text(value)}\n"
                for head, value in zip(heads, cumulative, strict=False)
            ]
            out.append(f"{heads[-2]}{_float_text(count)}\n")
        out.append(f"{heads[-1]}{_float_text(total)}\n")
        self.text = "".join(out)


class HistogramRows(Metric):
    """A histogram family kept as :class:`HistogramSeries`; the samples are those of
    prometheus_client's ``HistogramMetricFamily``: every ``_bucket`` (cumulative, ``le`` ending
    at ``+Inf``), then ``_count`` and ``_sum``."""

    def __init__(self, name: str, documentation: str, labels: LabelCache) -> None:
        super().__init__(name, documentation, "histogram")
        self.series: list[HistogramSeries] = []
        self._labels = labels

    @property
    def samples(self) -> list[Sample]:
        parts = self._labels.parts
        out = []
        for one in self.series:
            rows: list[Row] = [*zip(one.heads, one.cumulative, strict=False)]
            rows += [(one.heads[-2], one.count), (one.heads[-1], one.total)]
            for head, value in rows:
                name, pairs = parts[head]
                out.append(Sample(name, dict(pairs), value))
        return out

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        """``Metric.__init__`` sets an empty list; the family keeps its series instead."""
        if value:
            raise TypeError("HistogramRows takes series, not samples")

    def lines(self) -> str:
        return "".join([one.text for one in self.series])


class _Families(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def render(registry: Collector, encoder: Callable[[Collector], bytes] = generate_latest) -> bytes:
    """Exactly what ``encoder`` (prometheus_client's text 0.0.4 or OpenMetrics encoder, as
    ``choose_encoder`` gives it) returns for ``registry``, byte for byte. Each family's
    ``# HELP``/``# TYPE`` lines, and every family that is neither a :class:`RowFamily` nor a
    :class:`HistogramRows`, go through ``encoder`` itself; the sample lines of those two are
    written from their kept line heads (the same text the encoder gives for our label values
    and numbers; tests compare both formats byte for byte).

    The cyclic garbage collector is paused while it runs: a scrape at 100 channels x 10 queues
    allocates some 100,000 strings and lists, which started dozens of young-generation
    collections mid-scrape (each walking what the scrape had built so far) and now and then an
    older one. What the scrape makes is freed by reference counting when it ends (it makes no
    cycles), so a collection would have found nothing of it."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        tail = encoder(_Families([]))  # b"" for the text format, b"# EOF\n" for OpenMetrics
        cut = len(tail)
        out: list[bytes] = []
        for metric in registry.collect():
            if isinstance(metric, RowFamily | HistogramRows):
                head = encoder(_Families([Metric(metric.name, metric.documentation, metric.type)]))
                out.append(head[: len(head) - cut])
                out.append(metric.lines().encode())
            else:
                chunk = encoder(_Families([metric]))
                out.append(chunk[: len(chunk) - cut])
        out.append(tail)
        return b"".join(out)
    finally:
        if paused:
            gc.enable()


class EngineCollector(Collector):
    """Every ``support_*`` family of the metric contract, read from the engine at scrape time.

    The families are built straight from the engine's counters (the numbers are the ones
    ``monitor.engine.readout`` gives detectors and rules, from the same helper functions), as
    :class:`RowFamily` rows and :class:`HistogramRows` series whose line heads are computed once
    per series and kept, so a scrape costs about one string join per sample, and a histogram
    series that did not observe since the last scrape costs none. What is kept: one head per
    series (at most :data:`MAX_LABEL_TEXTS`) and one :class:`HistogramSeries` per histogram
    series (4 per queue at most).
    """

    def __init__(
        self, engine: Engine, extra: Iterable[tuple[SeriesProvider, dict[str, str]]] = ()
    ) -> None:
        self._engine = engine
        self._extra = list(extra)
        self._labels = LabelCache()
        self._channel_heads: dict[str, ChannelHeads] = {}
        """Channel -> its line heads, kept while its shape is the same (see ``ChannelHeads``)."""

    def collect(self) -> Iterator[Metric]:  # noqa: C901, PLR0912, PLR0915 - one pass, top down
        if len(self._labels.heads) > MAX_LABEL_TEXTS:  # start over (see MAX_LABEL_TEXTS)
            self._labels = LabelCache()
            self._channel_heads.clear()
        engine = self._engine
        now = engine.now
        cache = self._labels
        head = cache.head
        fam = {
            name: RowFamily(
                name.removesuffix("_total"),
                help_text,
                "counter" if name in _COUNTERS else "gauge",
                cache,
            )
            for name, help_text in HELP.items()
        }
        rows = dict(fam)
        summary = fam.pop("support_wait_quantile_seconds")
        summary = RowFamily(summary.name, summary.documentation, "summary", cache)
        hists = [
            HistogramRows(name, text, cache)
            for name, text in catalogue.help_texts("histograms").items()
        ]
        now_bound = {get: partial(get, now=now) for get in _NOW_GETTERS}
        for ch in engine.channels.values():
            cs = ch.settings
            name = ch.name
            c = ("channel", name)
            live = cs.answer_seconds is not None
            queues = list(ch.queues.values())
            kept = self._channel_heads.get(name)
            if (
                kept is None
                or kept.settings is not cs
                or len(kept.shape[0]) != len(queues)
                or kept.shape[2] is not ch.windows.names
            ):
                cell_shape, plan = channel_plan(live, tuple(map(cs.has_clock, range(len(CLOCKS)))))
                shape = (tuple(q.name for q in queues), live, ch.windows.names, cell_shape)
                if kept is None or kept.shape != shape:
                    kept = ChannelHeads(shape, head, name, channel_voice_labels(ch))
                    self._channel_heads[name] = kept
                kept.settings = cs
                kept.plan = plan
            # per family, every queue's rows at once (queue by queue, a queue's cells in order),
            # the values read by C-level maps
            for (metric, gets), column in zip(kept.plan, kept.columns, strict=True):
                target = rows[metric]
                target.heads.extend(column)
                if len(gets) == 1:
                    target.values.extend(map(now_bound.get(gets[0], gets[0]), queues))
                else:
                    target.values.extend(
                        chain.from_iterable(
                            zip(*(map(now_bound.get(g, g), queues) for g in gets), strict=True)
                        )
                    )
            kept_series = kept.histograms  # queue by queue, the queue's families in order
            index = 0
            for q in queues:
                for family, attr in zip(hists, HIST_ATTRS, strict=True):
                    if live or family.name not in LIVE_HISTOGRAMS:
                        hist = getattr(q, attr)
                        series = kept_series[index]
                        if series is None or series.hist is not hist:
                            series = self._histogram_series(family.name, name, q.name, hist)
                            kept_series[index] = series
                        if series.count != hist.count:
                            series.refresh()
                        family.series.append(series)
                        index += 1
            for agg, heads in zip(ch.windows.totals, kept.windows, strict=True):
                if live:
                    rows["support_service_level_ratio"].add(heads.service_level, service_level(agg))
                    rows["support_abandon_ratio"].add(heads.abandon, abandon_ratio(agg))
                    values = quantiles(agg.waits, agg.answered, QUANTILES)
                    summary.heads.extend(heads.quantiles)
                    summary.values.extend(values)
                rows["support_csat_ratio"].add(heads.csat, csat_ratio(agg))
                rows["support_complaints_window"].add(heads.complaints, agg.complaints)
                for (metric, gauge), line_head in zip(
                    _VOICE_WINDOW_GAUGES, heads.voice, strict=True
                ):
                    rows[metric].add(line_head, gauge(agg))
            ratings = rows["support_csat_ratings_total"]
            ratings.heads.extend(kept.ratings)
            ratings.values.extend(ch.ratings[1:6])
            metric = "support_complaints_total"
            for category, count in sorted(ch.complaints.items()):
                rows[metric].add(head(metric, ("category", category), c), count)
            for metric, column, counts in zip(
                VOICE_FAMILIES, kept.voice, channel_voice_values(ch), strict=True
            ):
                target = rows[metric]
                target.heads.extend(column)
                target.values.extend(counts)
        yield from fam.values()
        yield summary
        yield from channel_settings_families({n: ch.settings for n, ch in engine.channels.items()})
        yield from hists
        for provider, helps in self._extra:
            grouped = group(provider())
            for metric in {**dict.fromkeys(helps), **dict.fromkeys(grouped)}:
                counter = metric.endswith("_total")
                extra = RowFamily(
                    metric.removesuffix("_total"),
                    helps.get(metric, metric),
                    "counter" if counter else "gauge",
                    cache,
                )
                kept_heads = cache.heads
                for row in grouped.get(metric, []):
                    line_head = kept_heads.get((metric, row.labels)) or head(metric, *row.labels)
                    extra.heads.append(line_head)
                    extra.values.append(row.value)
                yield extra

    def _histogram_series(
        self, name: str, channel: str, queue: str, hist: Histogram
    ) -> HistogramSeries:
        """The kept series of histogram ``name`` for one queue, made anew (its line heads
        included) for a histogram it has not rendered before."""
        head = self._labels.head
        c, q = ("channel", channel), ("queue", queue)
        les = [*(repr(float(b)) for b in hist.bounds), "+Inf"]  # as Histogram.cumulative
        heads = (
            *(head(name + "_bucket", c, ("le", le), q) for le in les),
            head(name + "_count", c, q),
            head(name + "_sum", c, q),
        )
        return HistogramSeries(hist, heads)


Cell = tuple[str, tuple[str, str] | None]
"""A per-queue family a channel exports: (metric, its extra label pair or ``None``)."""
ChannelShape = tuple[tuple[str, ...], bool, tuple[str, ...], tuple[Cell, ...]]
"""What a channel's line heads depend on: its queue names, whether it is live, its window
names and its per-queue cells."""


Getter = Callable[..., float]
"""A per-queue value: ``get(queue)``, or ``get(queue, now=now)`` for those in
``_NOW_GETTERS``."""


@cache
def channel_plan(
    live: bool, clocks: tuple[bool, ...]
) -> tuple[tuple[Cell, ...], tuple[tuple[str, tuple[Getter, ...]], ...]]:
    """What a channel of this kind exports per queue: its cells (metric, extra label pair) in
    family order, and per family the getters of its cells in that order. It depends on whether
    the channel is live and which ticket clocks it runs, so there are a handful at most (kept
    by ``cache``); a channel keeps its own until its settings change."""
    slas = [("answer", "breaches_answer")] if live else []
    slas += [(sla, attr) for sla, attr, on in zip(CLOCKS, _BREACH_ATTRS, clocks, strict=True) if on]
    risks = [(sla, attr) for sla, attr, on in zip(CLOCKS, _RISK_ATTRS, clocks, strict=True) if on]
    cells: list[tuple[str, tuple[str, str] | None, Getter]] = [
        (metric, None, attrgetter(attr)) for metric, attr in (_QUEUE_LIVE if live else ())
    ]
    if live:
        cells += [
            ("support_queue_waiting", None, _waiting),
            ("support_queue_oldest_wait_seconds", None, _oldest),
            ("support_queue_breached_waiting", None, breached_waiting),
        ]
    cells += [("support_sla_breaches_total", ("sla", sla), attrgetter(attr)) for sla, attr in slas]
    cells += [(metric, None, attrgetter(attr)) for metric, attr in _QUEUE_TICKETS]
    cells += [("support_tickets_at_risk", ("sla", sla), attrgetter(attr)) for sla, attr in risks]
    cells += [("support_ticket_oldest_open_age_seconds", None, oldest_open_age)]
    getters: dict[str, list[Getter]] = {}
    for metric, _, get in cells:
        getters.setdefault(metric, []).append(get)
    return (
        tuple((metric, extra) for metric, extra, _ in cells),
        tuple((metric, tuple(gets)) for metric, gets in getters.items()),
    )


class WindowHeads(NamedTuple):
    """The line heads of one channel's rows for one window."""

    service_level: str
    abandon: str
    quantiles: tuple[str, ...]
    csat: str
    complaints: str
    voice: tuple[str, ...]
    """One per ``_VOICE_WINDOW_GAUGES`` entry, in that order."""


class ChannelHeads:
    """One channel's line heads, built once and kept while the channel's shape is the same:
    per per-queue family a column (its heads queue by queue, a queue's cells in order), per
    window a :class:`WindowHeads`, the five ``rating`` heads, and per ``VOICE_FAMILIES`` entry
    the heads of ``voice`` (label pairs from ``channel_voice_labels``, which depend on the
    channel's name alone). Tuples of strings, which the cyclic GC stops tracking (see
    ``HistogramSeries``); and the channel's :class:`HistogramSeries`."""

    __slots__ = (
        "columns",
        "histograms",
        "plan",
        "ratings",
        "settings",
        "shape",
        "voice",
        "windows",
    )

    def __init__(
        self,
        shape: ChannelShape,
        head: Callable[..., str],
        channel: str,
        voice: tuple[tuple[tuple[tuple[str, str], ...], ...], ...],
    ) -> None:
        queue_names, live, windows, cells = shape
        c = ("channel", channel)
        self.shape = shape
        extras: dict[str, list[tuple[str, str] | None]] = {}
        for metric, extra in cells:
            extras.setdefault(metric, []).append(extra)
        self.columns = tuple(
            tuple(
                head(metric, c, ("queue", q))
                if extra is None
                else head(metric, c, ("queue", q), extra)
                for q in queue_names
                for extra in metric_extras
            )
            for metric, metric_extras in extras.items()
        )
        self.windows = tuple(_window_heads(head, c, ("window", w), live=live) for w in windows)
        self.ratings = tuple(
            head("support_csat_ratings_total", c, ("rating", str(rating))) for rating in range(1, 6)
        )
        self.voice = tuple(
            tuple(head(metric, *pairs) for pairs in labels)
            for metric, labels in zip(VOICE_FAMILIES, voice, strict=True)
        )
        per_queue = len(HIST_ATTRS) - (0 if live else len(LIVE_HISTOGRAMS))
        self.histograms: list[HistogramSeries | None] = [None] * (len(queue_names) * per_queue)
        """Each queue's histogram series as last rendered, queue by queue (made on first use)."""
        self.settings: ChannelSettings | None = None
        """The settings :attr:`plan` was made for (the collector sets both)."""
        self.plan: tuple[tuple[str, tuple[Getter, ...]], ...] = ()
        """Per family, the getters of its cells (from :func:`channel_plan`)."""


def _window_heads(
    head: Callable[..., str], c: tuple[str, str], w: tuple[str, str], *, live: bool
) -> WindowHeads:
    quantile = "support_wait_quantile_seconds"
    return WindowHeads(
        service_level=head("support_service_level_ratio", c, w) if live else "",
        abandon=head("support_abandon_ratio", c, w) if live else "",
        quantiles=tuple(head(quantile, c, ("quantile", str(q)), w) for q in QUANTILES)
        if live
        else (),
        csat=head("support_csat_ratio", c, w),
        complaints=head("support_complaints_window", c, w),
        voice=tuple(head(metric, c, w) for metric, _ in _VOICE_WINDOW_GAUGES),
    )


_QUEUE_LIVE = (
    ("support_contacts_queued_total", "queued"),
    ("support_contacts_answered_total", "answered"),
    ("support_contacts_answered_in_sla_total", "answered_in_sla"),
    ("support_contacts_abandoned_total", "abandoned"),
    ("support_contacts_abandoned_short_total", "abandoned_short"),
    ("support_contacts_abandoned_in_sla_total", "abandoned_in_sla"),
)
_QUEUE_TICKETS = (
    ("support_tickets_created_total", "created"),
    ("support_tickets_solved_total", "solved"),
    ("support_tickets_open", "tickets_open"),
    ("support_tickets_paused", "tickets_paused"),
    ("support_tickets_reopened_total", "reopened"),
    ("support_tickets_solved_first_contact_total", "solved_first_contact"),
)
_BREACH_ATTRS = ("breaches_fr", "breaches_nr", "breaches_res")
_RISK_ATTRS = ("at_risk_fr", "at_risk_nr", "at_risk_res")
_VOICE_WINDOW_GAUGES = (
    ("support_fcr_ratio", fcr_ratio),
    ("support_nps_score", nps_score),
    ("support_ces_score", ces_score),
    ("support_self_service_ratio", self_service_ratio),
    ("support_negative_sentiment_ratio", negative_sentiment_ratio),
)
HIST_ATTRS = ("wait_hist", "handle_hist", "fr_hist", "res_hist")
"""``QueueState`` fields of the ``histograms`` families, in catalogue order."""


def _waiting(q: QueueState) -> int:
    return len(q.waiting)


def _oldest(q: QueueState, *, now: float) -> float:
    return oldest_wait(q, now)


_NOW_GETTERS = (_oldest, breached_waiting, oldest_open_age)
"""The getters of :func:`channel_plan` that read the clock: each scrape binds ``now``."""


class DaemonCollector(Collector):
    """``support_monitor_*``: what the daemon itself did."""

    def __init__(self, stats: DaemonStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        counted: tuple[tuple[str, Mapping[Any, int]], ...] = (
            ("support_monitor_events_total", stats.events),
            ("support_monitor_events_rejected_total", stats.rejected),
            ("support_monitor_events_duplicate_total", stats.duplicates),
            ("support_monitor_source_dropped_total", stats.source_dropped),
            ("support_monitor_dead_letters_total", stats.dead_letters_written),
            ("support_monitor_dead_letters_dropped_total", stats.dead_letters_dropped),
            ("support_monitor_dead_letter_failures_total", stats.dead_letter_failures),
            ("support_monitor_store_failures_total", stats.store_failures),
            ("support_monitor_tick_failures_total", stats.tick_failures),
        )
        for name, counts in counted:
            family = catalogue.counter(name)
            for key, count in sorted(counts.items()):
                family.add_metric(list(key) if isinstance(key, tuple) else [key], count)
            yield family
        lag_family = catalogue.CATALOGUE["support_monitor_event_lag_seconds"]
        yield histogram_family(lag_family.name, lag_family.help, [], [([], stats.lag)])
        notes = catalogue.counter("support_monitor_notifications_total")
        for (notifier, result), count in sorted(stats.notifications.items()):
            notes.add_metric([notifier, result], count)
        yield notes
        failing = catalogue.gauge("support_monitor_store_failing")
        for store, is_failing in sorted(stats.stores_failing.items()):
            failing.add_metric([store], float(is_failing))
        yield failing
        up = catalogue.gauge("support_monitor_source_up")
        for source, is_up in sorted(stats.source_up.items()):
            up.add_metric([source], float(is_up))
        yield up
        lag = catalogue.gauge("support_monitor_kafka_partition_lag")
        for (topic, partition), value in sorted(stats.partition_lag.items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
        yield catalogue.gauge("support_monitor_loop_lag_seconds", stats.loop_lag_seconds)
        info = catalogue.gauge("support_monitor_build_info")
        info.add_metric([VERSION, platform.python_version()], 1)
        yield info
