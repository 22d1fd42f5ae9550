"""``GET /api/v1/agents``: the per-agent drill-down on the console's real listener."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.console.helpers import running_console
from tests.support import Stream


async def test_agents_endpoint_lists_bounded_sorted_rows(tmp_path: Path) -> None:
    # The console scenario ends at T0 + 100 s; these agent events are fed after it.
    s = Stream()

    def add(kind: str, at: float, channel: str, **fields: str) -> None:
        s.add(kind, at, channel, event_id=f"w{len(s.lines)}", **fields)  # scenario's: e1..

    add("agent.state", 100, "voice", agent_id="zed", state="available")
    add("agent.state", 100, "voice", agent_id="amy", state="break")
    add("agent.state", 100, "chat", agent_id="bob", state="after_call_work")
    add("contact.queued", 101, "chat", contact_id="k1", queue="sales")
    add("contact.answered", 102, "chat", contact_id="k1", agent_id="bob")
    add("contact.ended", 130, "chat", contact_id="k1")
    add("agent.state", 160, "voice", agent_id="amy", state="break")  # same state: start kept
    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        run.feed(*s.lines)
        body = (await client.get("/api/v1/agents")).json()
        # Clock at 160 s. bob: busy at 102 (answer), available at 130 (its end): 30 s.
        assert body["agents"] == [
            {
                "channel": "chat",
                "agentId": "bob",
                "state": "available",
                "secondsInState": 30.0,
                "contactsHandled": 1,
            },
            {
                "channel": "voice",
                "agentId": "amy",
                "state": "break",
                "secondsInState": 60.0,
                "contactsHandled": 0,
            },
            {
                "channel": "voice",
                "agentId": "zed",
                "state": "available",
                "secondsInState": 60.0,
                "contactsHandled": 0,
            },
        ]
        assert (body["total"], body["truncated"]) == (3, False)
        one = (await client.get("/api/v1/agents", params={"channel": "voice", "limit": "1"})).json()
        assert [a["agentId"] for a in one["agents"]] == ["amy"]
        assert (one["total"], one["truncated"]) == (2, True)
        wrong = ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"limit": "\u0661\u0660"})
        for params in (*wrong, {"channel": "fax"}):
            bad = await client.get("/api/v1/agents", params=params)
            assert bad.status_code == 400, params
            assert next(iter(params)) in bad.json()["error"]
