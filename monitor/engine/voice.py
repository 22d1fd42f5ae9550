"""Customer voice and self-service: surveys (CSAT, NPS, CES), bot sessions and sentiment.

Per channel: counters by survey and score, by bot outcome and by sentiment polarity (the
``support_*_total`` families), and the windowed counts behind the NPS, CES, containment and
negative-share gauges, added to the channel's window buckets at the event's time. Only scores
are kept: a customer's text is never stored (unknown fields of an event are ignored).
"""

from __future__ import annotations

import msgspec

from support_monitor.monitor.events import SURVEY_RANGES

BOT_OUTCOMES = ("contained", "escalated", "abandoned")
POLARITIES = ("negative", "neutral", "positive")
PROMOTER_MIN = 9
"""NPS answers of 9-10 are promoters."""
DETRACTOR_MAX = 6
"""NPS answers of 0-6 are detractors (7-8 are passives)."""


class VoiceCounts(msgspec.Struct):
    """The customer-voice counters of one channel (they only grow)."""

    surveys: dict[str, list[int]] = msgspec.field(
        default_factory=lambda: {
            survey: [0] * (high + 1) for survey, (_, high) in SURVEY_RANGES.items()
        }
    )
    """Survey -> answers by score (index = score; indexes below the range stay 0)."""
    bot: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(BOT_OUTCOMES, 0))
    sentiment: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(POLARITIES, 0))
    escalations_in: int = 0
    """Bot sessions that escalated to a live contact of this channel (``contact_id`` known)."""

    def restore(self, other: VoiceCounts) -> None:
        """Take over ``other``'s counts (a snapshot's), keeping every known key."""
        for survey, counts in other.surveys.items():
            mine = self.surveys.get(survey)
            if mine is not None and len(mine) == len(counts):
                mine[:] = counts
        for outcome, count in other.bot.items():
            if outcome in self.bot:
                self.bot[outcome] = count
        for polarity, count in other.sentiment.items():
            if polarity in self.sentiment:
                self.sentiment[polarity] = count
        self.escalations_in = other.escalations_in


def polarity(score: float, negative_below: float, positive_above: float) -> str:
    """``negative`` strictly below the cut-off, ``positive`` strictly above its own, else
    ``neutral``."""
    if score < negative_below:
        return "negative"
    if score > positive_above:
        return "positive"
    return "neutral"
