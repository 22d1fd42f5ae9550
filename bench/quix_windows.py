"""quixstreams' tumbling and hopping windows on a topic, timed like ``bench/kafka_ingest.py``'s
loops: from the first record to the last. Run by ``bench/kafka_ingest.py --quix-python`` under
an interpreter that has quixstreams (it pins older pydantic and confluent-kafka than this
project, so it lives in a virtual environment of its own); prints one JSON line.

    python bench/quix_windows.py BOOTSTRAP TOPIC COUNT {tumbling,hopping} [--changelog]

Per key (the topic is keyed by channel), over event time (each value's ``ts``, as the daemon's
windows are): ``tumbling``: a count in 5-minute windows; ``hopping``: a count in 5-minute
windows every minute (five windows an event, the nearest quixstreams has to the daemon's
5-minute window that slides every second). Results are taken with ``.final()`` (one output per
closed window, the cheapest). Changelog topics (quixstreams' recovery road) are off unless
``--changelog``: the baseline is quixstreams at its fastest.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from quixstreams import Application
from quixstreams.models import TimestampType


def event_time(value: Any, headers: Any, timestamp: float, kind: TimestampType) -> int:
    del headers, timestamp, kind
    return int(datetime.fromisoformat(value["ts"]).timestamp() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    parser.add_argument("window", choices=("tumbling", "hopping"))
    parser.add_argument("--changelog", action="store_true")
    args = parser.parse_args()
    seen = 0
    start = 0.0
    elapsed = 0.0
    with tempfile.TemporaryDirectory() as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            state_dir=state_dir,
            use_changelog_topics=args.changelog,
            loglevel="WARNING",
        )

        def counted(value: Any) -> None:
            del value
            nonlocal seen, start, elapsed
            if not seen:
                start = time.perf_counter()
            seen += 1
            if seen == args.count:
                elapsed = time.perf_counter() - start
                app.stop()

        topic = app.topic(args.topic, value_deserializer="json", timestamp_extractor=event_time)
        sdf = app.dataframe(topic)
        sdf = sdf.update(counted)
        five = timedelta(minutes=5)
        if args.window == "tumbling":
            sdf = sdf.tumbling_window(five).count().final()
        else:
            sdf = sdf.hopping_window(five, step_ms=timedelta(minutes=1)).count().final()
        app.run()
    print(json.dumps({"window": args.window, "events": seen, "seconds": elapsed}))


if __name__ == "__main__":
    main()
