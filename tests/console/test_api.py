"""The console's JSON API and ack links on a real listener over a replayed scenario.

Numbers are worked out by hand from ``helpers.scenario()`` at T0 + 100 s (voice T = 20 s):
waiting 1 (c3), oldest wait 100 - 20 = 80 s, breached waiting 1 (80 > 20);
5m window: answered 1 (in SLA), long abandons 1 -> service level 1 / (1 + 1) = 0.5, abandon
ratio 1 / 2 = 0.5; ratings 5 and 2 -> CSAT 1 / 2 = 0.5; complaints 1.
Email: tickets t1, t2 created, t2 solved -> 1 open.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import structlog.testing

from support_monitor.alerts.silences import activation
from tests.alerts.helpers import sig
from tests.console.helpers import TOKEN, running_console
from tests.support import T0, Stream

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _window(channel: dict[str, Any], name: str) -> dict[str, Any]:
    windows: list[dict[str, Any]] = [w for w in channel["windows"] if w["window"] == name]
    assert len(windows) == 1
    return windows[0]


async def test_channel_numbers_match_the_scenario(tmp_path: Path) -> None:
    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        voice = (await client.get("/api/v1/channels/voice")).json()
        assert voice["waiting"] == 1
        assert voice["oldestWaitSeconds"] == 80.0
        assert voice["breachedWaiting"] == 1
        assert voice["answerSeconds"] == 20.0
        assert voice["serviceLevelTarget"] == 0.8
        five = _window(voice, "5m")
        assert five["serviceLevel"] == 0.5
        assert five["abandonRatio"] == 0.5
        assert five["abandoned"] == 1
        assert five["csat"] == 0.5
        assert five["ratings"] == 2
        assert five["complaints"] == 1
        email = (await client.get("/api/v1/channels/email")).json()
        assert email["ticketsOpen"] == 1
        chat = (await client.get("/api/v1/channels/chat")).json()
        assert _window(chat, "5m")["serviceLevel"] is None  # no contacts: undefined, not 0
        listing = (await client.get("/api/v1/channels")).json()
        assert [c["channel"] for c in listing["channels"]] == ["chat", "email", "voice"]
        missing = await client.get("/api/v1/channels/fax")
        assert missing.status_code == 404
        assert "unknown channel" in missing.json()["error"]
        # events arriving change the numbers: c4 queued at 100 s -> 2 waiting
        stream = Stream()
        stream.add("contact.queued", 100, "voice", contact_id="c4", queue="tech", event_id="q4")
        run.feed(*stream.lines)
        voice = (await client.get("/api/v1/channels/voice")).json()
        assert voice["waiting"] == 2


async def test_page_and_assets_are_served_with_strict_headers(tmp_path: Path) -> None:
    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert 'src="/console/console.js"' in page.text
        assert "http://" not in page.text.replace(run.base, "")  # no CDN
        script = await client.get("/console/console.js")
        assert script.status_code == 200
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert len(script.content) < 32 * 1024
        assert (await client.get("/console/nothing.js")).status_code == 404
        assert (await client.post("/metrics")).status_code == 405  # the listener's own routes
        # a method a path does not take: 405 with what it takes (RFC 9110); no path: 404
        allowed = {
            ("PUT", "/"): "GET, HEAD",
            ("POST", "/console/console.js"): "GET, HEAD",
            ("PUT", "/ack/abc"): "GET, HEAD, POST",
            ("PUT", "/api/v1/silences"): "GET, HEAD, POST",
            ("PATCH", "/api/v1/silences/x"): "DELETE",
            ("GET", "/api/v1/silences/x"): "DELETE",
            ("HEAD", "/api/v1/silences/x"): "DELETE",
            ("PUT", "/api/v1/alerts/x/ack"): "POST",
            ("GET", "/api/v1/alerts/x/ack"): "POST",
            ("DELETE", "/api/v1/status"): "GET, HEAD",
            ("POST", "/metrics"): "GET, HEAD",
            ("POST", "/healthz"): "GET, HEAD",
        }
        for (method, path), allow in allowed.items():
            answer = await client.request(method, path, headers=AUTH)
            assert (answer.status_code, answer.headers.get("Allow")) == (405, allow), path
        assert (await client.post("/nosuch")).status_code == 404
        assert (await client.put("/api/v1/nosuch", headers=AUTH)).status_code == 404
        assert (await client.delete("/api/v1/silences/x/y", headers=AUTH)).status_code == 404


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    """``body`` sent chunked (no Content-Length)."""
    yield body


async def test_ack_by_api_needs_the_token_and_refuses_bad_input(tmp_path: Path) -> None:
    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        fp = run.fire(100)
        alerts = (await client.get("/api/v1/alerts", params={"status": "firing"})).json()
        assert [a["fingerprint"] for a in alerts["alerts"]] == [fp]
        both = await client.get(
            "/api/v1/alerts", params=[("status", "pending"), ("status", "firing")]
        )
        assert [a["fingerprint"] for a in both.json()["alerts"]] == [fp]
        neither = await client.get("/api/v1/alerts?status=pending&status=resolved")
        assert neither.json() == {"alerts": []}
        assert alerts["alerts"][0]["acknowledged"] is None
        url = f"/api/v1/alerts/{fp}/ack"
        body = {"by": "Ana"}
        refused = [
            (await client.post(url, json=body), 401, "bearer token"),
            (await client.post(url, json=body, headers={"Authorization": "Bearer nope"}), 401, ""),
            (
                await client.post(
                    url, json=body, headers={**AUTH, "Origin": "https://evil.example"}
                ),
                403,
                "cross-origin",
            ),
            (
                await client.post(
                    url,
                    content=b"{not json",
                    headers={**AUTH, "Content-Type": "application/json"},
                ),
                400,
                "malformed JSON",
            ),
            (await client.post(url, content=b"by=Ana", headers=AUTH), 415, "application/json"),
            (await client.post(url, json={}, headers=AUTH), 400, "by: required"),
            (
                await client.post(url, json={"by": "x", "bogus": [1]}, headers=AUTH),
                400,
                "unknown key 'bogus'",
            ),
            (  # chunked (no Content-Length) and over 64 KiB: was a 500 after reading 1 MiB
                await client.post(
                    url,
                    content=_chunks(b'{"by": "' + b"x" * 70_000 + b'"}'),
                    headers={**AUTH, "Content-Type": "application/json"},
                ),
                413,
                "body over 65536 bytes",
            ),
            (
                await client.post("/api/v1/alerts/0123456789abcdef/ack", json=body, headers=AUTH),
                404,
                "unknown alert",
            ),
            (await client.get("/api/v1/alerts", params={"status": "bad"}), 400, "status"),
            (await client.get("/api/v1/alerts?status=firing&status=bad"), 400, "status"),
            (await client.get("/api/v1/agents?limit=1&limit=1000"), 400, "limit: give it once"),
            (await client.get("/api/v1/agents?channel=voice&channel=chat"), 400, "channel: give"),
            (  # a lone surrogate: it was a 500 after the ack took effect in memory only
                await client.post(
                    url,
                    content=b'{"by": "\\ud800"}',
                    headers={**AUTH, "Content-Type": "application/json"},
                ),
                400,
                "lone surrogate",
            ),
            (  # a token of bytes that are not UTF-8: it was a 500 without the refusal's log line
                await client.post(url, json=body, headers=[(b"Authorization", b"Bearer \xff\xfe")]),
                401,
                "",
            ),
        ]
        for response, status, message in refused:
            assert response.status_code == status, response.text
            assert message in response.json()["error"]
        assert (await client.get("/api/v1/acks")).json() == {"acks": []}  # nothing changed

        done = await client.post(url, json=body, headers=AUTH)
        assert done.status_code == 200, done.text
        ack = done.json()["alert"]["acknowledged"]
        assert ack["by"] == "Ana"
        assert ack["via"] == "api"
        assert ack["at"] == "2026-03-02T09:01:40Z"  # the alerts' clock: T0 + 100 s
        # basic auth takes Authorization: the token may come in X-Console-Token instead
        again = await client.post(url, json={"by": "Bo"}, headers={"X-Console-Token": TOKEN})
        assert again.json()["alert"]["acknowledged"]["by"] == "Ana"  # the first ack stays
        acks = (await client.get("/api/v1/acks")).json()["acks"]
        assert [(a["fingerprint"], a["by"]) for a in acks] == [(fp, "Ana")]
        # resolved: its ack is no longer listed (the store keeps it until the next ack)
        run.alerting.apply(T0 + 200, [sig("longest_wait", "voice", active=False, score=1.0)])
        assert (await client.get("/api/v1/acks")).json() == {"acks": []}

    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        # restarted: the ack is kept, but only for the same activation (restored alert state
        # keeps active_at; here the alert fires again at the same time, as a restore would)
        fp = run.fire(100)
        view = (await client.get(f"/api/v1/alerts/{fp}")).json()
        assert view["acknowledged"]["by"] == "Ana"


async def test_writes_are_refused_without_a_configured_token(tmp_path: Path) -> None:
    async with (
        running_console(tmp_path, token=None) as run,
        httpx.AsyncClient(base_url=run.base) as client,
    ):
        fp = run.fire(100)
        response = await client.post(f"/api/v1/alerts/{fp}/ack", json={"by": "x"}, headers=AUTH)
        assert response.status_code == 403
        assert "console.api_token_file" in response.json()["error"]
        assert (await client.get("/api/v1/status")).json()["writable"] is False


async def test_silences_by_api(tmp_path: Path) -> None:
    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        fp = run.fire(100)
        good = {
            "matchers": [{"name": "channel", "value": "voice"}],
            "endsAt": "2026-03-02T10:00:00Z",
            "createdBy": "Ana",
            "comment": "carrier outage",
        }
        bad = [
            ({**good, "matchers": [{"name": "channel", "value": "(", "isRegex": True}]}, "regex"),
            ({**good, "endsAt": "2026-03-02T09:00:00Z"}, "endsAt: must be in the future"),
            ({**good, "matchers": "channel=voice"}, "matchers"),
        ]
        for body, message in bad:
            response = await client.post("/api/v1/silences", json=body, headers=AUTH)
            assert response.status_code == 400
            assert message in response.json()["error"]
        assert (await client.get("/api/v1/silences")).json() == {"silences": []}
        assert (await client.post("/api/v1/silences", json=good)).status_code == 401

        created = await client.post("/api/v1/silences", json=good, headers=AUTH)
        assert created.status_code == 201
        silence = created.json()["silence"]
        assert silence["status"] == "active"
        assert silence["startsAt"] == "2026-03-02T09:01:40Z"
        assert silence["endsAt"] == "2026-03-02T10:00:00Z"
        view = (await client.get(f"/api/v1/alerts/{fp}")).json()
        assert view["silencedBy"] == silence["id"]
        expired = await client.delete(f"/api/v1/silences/{silence['id']}", headers=AUTH)
        assert expired.json()["silence"]["status"] == "expired"
        assert (await client.get(f"/api/v1/alerts/{fp}")).json()["silencedBy"] is None
        unknown = await client.delete("/api/v1/silences/nope", headers=AUTH)
        assert unknown.status_code == 404


async def test_bodies_read_at_once_are_bounded(tmp_path: Path) -> None:
    # a link's form is read before its signature can be checked, and a connection whose body
    # is still arriving is never evicted at the listener's cap: slow bodies to POST /ack/...
    # held every connection and locked out scrapes and probes. Now 8 at once, then 503.
    gate = asyncio.Event()

    async def held() -> AsyncIterator[bytes]:
        yield b"exp=1"
        await gate.wait()

    async with (
        running_console(tmp_path, token=None) as run,
        httpx.AsyncClient(base_url=run.base) as client,
    ):
        fp = run.fire(100)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        slow = [
            asyncio.create_task(client.post(f"/ack/{fp}", content=held(), headers=form))
            for _ in range(8)
        ]
        for _ in range(500):  # until the 8 are being read (each sent its first bytes)
            probe = await client.post(f"/ack/{fp}", content=b"exp=1&sig=2&by=Eve", headers=form)
            if probe.status_code == 503:
                break
            await asyncio.sleep(0.01)
        assert probe.status_code == 503
        assert "too many requests are sending a body at once" in probe.text
        assert (await client.get("/healthz")).status_code == 200
        gate.set()
        answers = await asyncio.gather(*slow)
        # each then ends as a form without a valid signature
        assert [a.status_code for a in answers] == [403] * 8
        after = await client.post(f"/ack/{fp}", content=b"exp=1&sig=2&by=Eve", headers=form)
        assert after.status_code == 403


async def test_a_body_that_trickles_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a body sent a byte at a time held its connection slot as long as the sender liked (20
    # such requests, no credentials needed for the ack link, locked /healthz out with 503s)
    monkeypatch.setattr("support_monitor.monitor.console.app.BODY_SECONDS", 0.3)

    async def trickle() -> AsyncIterator[bytes]:
        for byte in b"exp=1&sig=2&by=Eve":
            yield bytes([byte])
            await asyncio.sleep(0.1)

    async with (
        running_console(tmp_path, token=None) as run,
        httpx.AsyncClient(base_url=run.base) as client,
    ):
        fp = run.fire(100)
        response = await client.post(
            f"/ack/{fp}",
            content=trickle(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 408
        assert "did not arrive within 0.3 s" in response.text
        # a link whose expiry is not ASCII digits ("²" passed isdigit, then int() raised: 500)
        sig = _link_parts(run.signer.path(fp, T0 + 100))[2]
        odd = await client.get(f"/ack/{fp}", params={"exp": "\u00b2", "sig": sig})
        assert odd.status_code == 403
        assert "malformed" in odd.text
        # more fields than the form has: parse_qs raised ValueError out of the handler (a 500
        # and a traceback in the log)
        many = "&".join(f"f{i}=1" for i in range(20))
        crowded = await client.post(
            f"/ack/{fp}",
            content=many.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert crowded.status_code == 400
        assert "post the confirmation page&#39;s form" in crowded.text


async def test_a_link_of_an_earlier_firing_does_not_acknowledge_a_new_one(tmp_path: Path) -> None:
    # the link signed only the fingerprint: one from a firing that resolved acknowledged the
    # alert's next firing, and silenced its repeats
    async with (
        running_console(tmp_path, token=None) as run,
        httpx.AsyncClient(base_url=run.base) as client,
    ):
        fp = run.fire(100)  # active since T0 + 100 s
        earlier = run.signer.path(fp, T0 + 100, activation(T0 + 40))
        now = run.signer.path(fp, T0 + 100, activation(T0 + 100))
        assert (await client.get(earlier)).status_code == 409
        params = dict(part.split("=") for part in earlier.split("?")[1].split("&"))
        refused = await client.post(f"/ack/{fp}", data={**params, "by": "Eve"})
        assert refused.status_code == 409
        assert "earlier firing" in refused.text
        assert (await client.get("/api/v1/acks")).json() == {"acks": []}
        page = await client.get(now)
        assert page.status_code == 200
        params = dict(part.split("=") for part in now.split("?")[1].split("&"))
        assert f'name="act" value="{params["act"]}"' in page.text
        done = await client.post(f"/ack/{fp}", data={**params, "by": "Ana"})
        assert done.status_code == 200


def _link_parts(path: str) -> tuple[str, str, str]:
    match = re.fullmatch(r"/ack/([0-9a-f]+)\?exp=(\d+)&sig=([0-9a-f]+)", path)
    assert match is not None, path
    return match.group(1), match.group(2), match.group(3)


async def test_signed_link_confirms_then_acknowledges(tmp_path: Path) -> None:
    async with (
        running_console(tmp_path, token=None) as run,
        httpx.AsyncClient(base_url=run.base) as client,
    ):
        fp = run.fire(100)
        path = run.signer.path(fp, T0 + 100)
        _, exp, sig = _link_parts(path)
        page = await client.get(path)
        assert page.status_code == 200
        assert "LongWait (voice)" in page.text
        assert f'value="{sig}"' in page.text
        assert (await client.get("/api/v1/acks")).json() == {"acks": []}  # GET never acks

        other = run.signer.path("0123456789abcdef", T0 + 100)
        forged = f"/ack/{fp}?exp={exp}&sig={'0' * 64}"
        moved = f"/ack/{fp}?exp={int(exp) + 1}&sig={sig}"
        reused = f"/ack/{fp}?{other.split('?')[1]}"
        expired = run.signer.path(fp, T0 + 100 - run.signer.ttl - 1)
        for bad, message in [
            (forged, "signature"),
            (moved, "signature"),
            (reused, "signature"),
            (expired, "expired"),
        ]:
            response = await client.get(bad)
            assert response.status_code == 403
            assert message in response.text
            fp_, exp_, sig_ = _link_parts(bad)
            post = await client.post(f"/ack/{fp_}", data={"exp": exp_, "sig": sig_, "by": "Eve"})
            assert post.status_code == 403
        assert (await client.get("/api/v1/acks")).json() == {"acks": []}

        cross = await client.post(
            f"/ack/{fp}",
            data={"exp": exp, "sig": sig, "by": "Eve"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        done = await client.post(f"/ack/{fp}", data={"exp": exp, "sig": sig, "by": "Ana"})
        assert done.status_code == 200
        assert "acknowledged by Ana" in done.text
        acks = (await client.get("/api/v1/acks")).json()["acks"]
        assert [(a["by"], a["via"]) for a in acks] == [("Ana", "link")]
        status = (await client.get("/api/v1/status")).json()
        assert status["alerts"][0]["acknowledged"]["by"] == "Ana"
        assert [(r["alertname"], r["state"]) for r in status["timeline"]] == [
            ("LongWait", "firing")
        ]
        json.dumps(status)  # plain JSON throughout


def test_tickets_at_risk_count_every_ticket_clock() -> None:
    # the tile counted first response and resolution only; the wall board and the
    # TicketsAtRisk alert also count next reply
    from support_monitor.monitor.console.views import channel_view  # noqa: PLC0415
    from tests.support import run, settings  # noqa: PLC0415

    cfg = settings(
        channels={
            "email": {
                "first_response_seconds": 3600,
                "next_reply_seconds": 600,
                "next_reply_warning_seconds": 300,
                "resolution_seconds": 86400,
                "queues": ["default"],
            }
        }
    )
    stream = Stream()
    for i in range(3):
        stream.add("ticket.created", 0, "email", ticket_id=f"t{i}")
        stream.add("ticket.responded", 10, "email", ticket_id=f"t{i}")
        stream.add("ticket.customer_replied", 100, "email", ticket_id=f"t{i}")
    # next reply due at 700, at risk from 400
    engine, _ = run(stream.lines, cfg, until=410)
    email = channel_view(engine.channels["email"], engine.now)
    assert email["ticketsAtRisk"] == {"first_response": 0, "next_reply": 3, "resolution": 0}
    assert email["nextReplySeconds"] == 600


async def test_refusals_are_counted_by_reason_and_logged_once_a_minute(tmp_path: Path) -> None:
    """Anyone may send a wrong token or a forged acknowledge link: each such request wrote a
    warning, with the whole path (8 KB lines), and no metric counted them (audit of
    2026-12-05). Now one warning a minute per kind, the path cut to 128 characters, and
    ``support_monitor_console_requests_refused_total{reason}``."""
    async with running_console(tmp_path) as run, httpx.AsyncClient(base_url=run.base) as client:
        fp = run.fire(100)
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                long_path = f"/api/v1/alerts/{'A' * 8000}/ack"
                bad = await client.post(long_path, json={}, headers={"Authorization": "Bearer x"})
                assert bad.status_code == 401
            for i in range(2):
                forged = await client.get(f"/ack/{fp}", params={"exp": "1", "sig": f"x{i}"})
                assert forged.status_code == 403
        metrics = (await client.get("/metrics")).text
    refused = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("support_monitor_console_requests_refused_total{")
    }
    assert refused == {
        'support_monitor_console_requests_refused_total{reason="bad_link"}': 2.0,
        'support_monitor_console_requests_refused_total{reason="bad_token"}': 3.0,
        'support_monitor_console_requests_refused_total{reason="stale_link"}': 0.0,
    }
    events = [e for e in logs if e["event"].startswith("console_")]
    assert [e["event"] for e in events] == ["console_write_refused", "console_ack_link_refused"]
    assert len(events[0]["path"]) == 128
