"""Silences, acknowledgements and signed links (alerts/silences.py) and the planner's hook.

Expected notification kinds are derived by hand from the planner's documented rules: firing and
not told -> new; told ``repeat_interval`` ago -> repeat (not when acknowledged); resolved after
"firing" was told -> resolved; a silenced alert is held like a muted one.
"""

from __future__ import annotations

import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from support_monitor.alerts.matchers import compile_regex
from support_monitor.alerts.planner import Planner
from support_monitor.alerts.routing import Router
from support_monitor.alerts.silences import (
    ACK_URL,
    Ack,
    AckSigner,
    ConsoleStore,
    InvalidRequestError,
    Matcher,
    PlannerHolds,
    Silence,
    load_signing_key,
    new_silence,
    parse_matchers,
)
from support_monitor.alerts.state import Alert, AlertState
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.helpers import firing_alert, notifier_settings

T = 1_772_442_000.0  # 2026-03-02T09:00:00Z
LABELS = (("alertname", "LongWait"), ("channel", "voice"), ("severity", "critical"))


def _silence(body: dict[str, Any], now: float = T) -> Silence:
    return new_silence(body, now)


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "matchers": [{"name": "channel", "value": "voice"}],
        "endsAt": "2026-03-02T10:00:00Z",
        "createdBy": "Ana",
        "comment": "known outage",
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(matchers=[]), "matchers: required"),
        (_body(matchers=[{"name": "1x", "value": "a"}]), "matchers[0].name"),
        (_body(matchers=[{"name": "x", "value": "(", "isRegex": True}]), "invalid regex"),
        (_body(matchers=[{"name": "x", "value": ""}]), "must not match the empty string"),
        (_body(matchers=[{"name": "x", "value": ".*", "isRegex": True}]), "empty string"),
        (_body(matchers=[{"name": "x", "value": "a", "op": "="}]), "unknown key 'op'"),
        (_body(endsAt="2026-03-02T08:59:59Z"), "endsAt: must be in the future"),
        (_body(endsAt="2026-03-02T10:00:00"), "time zone"),
        (_body(endsAt="tomorrow"), "not an RFC 3339 time"),
        # an ISO week date: fromisoformat took it as 2098-12-29, a silence until an odd day
        (_body(endsAt="2099-W01-1T00:00:00Z"), "not an RFC 3339 time"),
        # year 10000 in UTC: it was stored, then every status page and silence list was a 500
        (_body(endsAt="9999-12-31T23:59:59-23:59"), "endsAt: between 1970 and 8999 (UTC)"),
        # RE2 (linear time, as Alertmanager) has no backreferences
        (_body(matchers=[{"name": "x", "value": "(a)\\1", "isRegex": True}]), "invalid regex"),
        (_body(startsAt="2026-03-02T11:00:00Z"), "endsAt: must be after startsAt"),
        (_body(comment=" "), "comment: required"),
        (_body(createdBy="x" * 101), "createdBy: at most 100"),
    ],
)
def test_invalid_silences_are_refused_with_the_problem(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        _silence(body)


def test_matchers_are_anchored_and_negatable() -> None:
    voice = {"channel": "voice", "alertname": "LongWait"}
    assert not parse_matchers([{"name": "channel", "value": "voi", "isRegex": True}])[0].matches(
        voice
    )
    assert parse_matchers([{"name": "channel", "value": "voi.*", "isRegex": True}])[0].matches(
        voice
    )
    neq, name = parse_matchers(
        [
            {"name": "channel", "value": "chat", "isEqual": False},
            {"name": "alertname", "value": "LongWait"},
        ]
    )
    assert neq.matches(voice)
    assert not neq.matches({"channel": "chat"})
    assert name.matches(voice)
    silence = _silence(_body(matchers=[{"name": "channel", "value": "voice"}]))
    assert silence.starts_at == T
    assert silence.ends_at == T + 3600
    assert silence.active(T + 3599.9)
    assert not silence.active(T + 3600)  # ends exclusive, as Alertmanager


def test_a_regex_that_backtracks_is_matched_in_linear_time() -> None:
    # (\w|\w|\w)*\d on 40 letters and no digit: Python's backtracking engine tries 3^40 ways
    # on the event loop (the daemon froze, ignoring SIGTERM); RE2 answers at once
    (matcher,) = parse_matchers([{"name": "alertname", "value": r"(\w|\w|\w)*\d", "isRegex": True}])
    assert not matcher.matches({"alertname": "a" * 40 + "!"})
    assert matcher.matches({"alertname": "LongWait7"})


def test_signed_link_is_bound_to_the_alert_and_expires() -> None:
    signer = AckSigner(b"k" * 32, "https://monitor.example", 600.0)
    link = signer.link("aaaa", T)
    assert link is not None
    query = link.split("?", 1)[1]
    params = dict(p.split("=") for p in query.split("&"))
    assert params["exp"] == str(int(T + 600))
    assert signer.check("aaaa", params["exp"], params["sig"], T + 600) is None
    assert "expired" in (signer.check("aaaa", params["exp"], params["sig"], T + 601) or "")
    assert "signature" in (signer.check("bbbb", params["exp"], params["sig"], T) or "")
    later = str(int(T + 6000))
    assert "signature" in (signer.check("aaaa", later, params["sig"], T) or "")
    other_key = AckSigner(b"j" * 32, "https://monitor.example", 600.0)
    assert "signature" in (other_key.check("aaaa", params["exp"], params["sig"], T) or "")
    assert "malformed" in (signer.check("aaaa", "-1", params["sig"], T) or "")
    # a signature that is not ASCII is not valid (compare_digest raised: the handler said 500)
    for forged in ("\u00e9", "\u00e9" * 64, "\udcff", params["sig"][:-1] + "\u00e9"):
        assert "signature" in (signer.check("aaaa", params["exp"], forged, T) or "")
    for fingerprint in ("\u00e9", "\udcff"):  # a lone surrogate could not even be signed
        assert "signature" in (signer.check(fingerprint, params["exp"], params["sig"], T) or "")
    assert AckSigner(b"k" * 32, None, 600.0).link("aaaa", T) is None


def test_generated_key_is_private_and_kept(tmp_path: Path) -> None:
    first = load_signing_key(None, tmp_path)
    mode = stat.S_IMODE((tmp_path / "console.key").stat().st_mode)
    assert mode == 0o600
    assert len(first) == 32
    assert load_signing_key(None, tmp_path) == first
    key_file = tmp_path / "short"
    key_file.write_bytes(b"123")
    with pytest.raises(ValueError, match="under 16 bytes"):
        load_signing_key(key_file, tmp_path)


def test_a_short_key_file_is_replaced_not_signed_with(tmp_path: Path) -> None:
    # An interrupted write (a full disk) left console.key empty: an empty HMAC key would let
    # anyone forge acknowledge links, so it is replaced by a whole new key and kept.
    (tmp_path / "console.key").write_bytes(b"")
    with capture_logs() as logs:
        key = load_signing_key(None, tmp_path)
    assert len(key) == 32
    assert (tmp_path / "console.key").read_bytes() == key
    assert load_signing_key(None, tmp_path) == key
    assert [e["event"] for e in logs] == ["console_key_replaced"]
    assert stat.S_IMODE((tmp_path / "console.key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["console.key"]  # no temporary left
    forged = AckSigner(b"", None, 3600).signature("f1", int(T) + 60)
    assert AckSigner(key, None, 3600).check("f1", str(int(T) + 60), forged, T) is not None


def test_a_disk_that_refuses_the_key_leaves_no_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with capture_logs() as logs:
        key = load_signing_key(None, tmp_path)
    assert len(key) == 32
    assert list(tmp_path.iterdir()) == []  # neither a key file nor a temporary one
    assert [(e["event"], e["error"]) for e in logs] == [
        ("console_key_not_saved", "No space left on device")
    ]
    monkeypatch.undo()
    assert load_signing_key(None, tmp_path) != key  # the next start writes its own


def test_a_file_system_without_hard_links_still_keeps_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    key = load_signing_key(None, tmp_path)
    assert (tmp_path / "console.key").read_bytes() == key
    assert [p.name for p in tmp_path.iterdir()] == ["console.key"]
    assert load_signing_key(None, tmp_path) == key


async def test_a_store_that_cannot_open_runs_from_memory(tmp_path: Path) -> None:
    (tmp_path / "console.sqlite3").write_bytes(b"not a database, " * 64)
    stats = DaemonStats()
    store = ConsoleStore(tmp_path, max_silences=2, stats=stats)
    with capture_logs() as logs:
        await store.open()
        await store.add_silence(_silence(_body()), T)
    assert [e["event"] for e in logs] == ["console_store_unavailable"]
    assert stats.store_failures == Counter({"console": 1})
    assert stats.stores_failing == {"console": True}
    assert len(store.silences) == 1
    await store.close()


async def test_silences_and_acks_survive_a_restart(tmp_path: Path) -> None:
    store = ConsoleStore(tmp_path, max_silences=2)
    await store.open()
    silence = _silence(_body())
    await store.add_silence(silence, T)
    ack = Ack(fingerprint="f1", active_at=T - 60, by="Ana", at=T, via="api")
    await store.acknowledge(ack, [("f1", T - 60)])
    await store.close()

    again = ConsoleStore(tmp_path, max_silences=2)
    await again.open()
    assert again.silences == {silence.id: silence}
    assert again.acknowledged("f1", T - 60) == ack
    assert again.acknowledged("f1", T) is None  # another activation is not acknowledged
    expired = await again.expire_silence(silence.id, T + 10)
    assert expired is not None
    assert expired.ends_at == T + 10
    await again.add_silence(_silence(_body()), T + 10)
    with pytest.raises(InvalidRequestError, match="too many silences"):
        await again.add_silence(_silence(_body()), T + 10)
    # an ack for an activation that is gone is dropped at the next ack
    ack2 = Ack(fingerprint="f2", active_at=T, by="Bo", at=T + 20, via="link")
    await again.acknowledge(ack2, [("f2", T)])
    assert set(again.acks) == {("f2", T)}
    await again.close()
    third = ConsoleStore(tmp_path, max_silences=2)
    await third.open()
    assert set(third.acks) == {("f2", T)}
    assert third.silences[silence.id].ends_at == T + 10
    await third.close()


# --- the planner hook ------------------------------------------------------------------------


def _planner(store: ConsoleStore, signer: AckSigner | None = None) -> Planner:
    settings = notifier_settings(
        receivers={
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/x", "repeat_interval": 60}
        },
        routes=[{"receiver": "hook", "group_wait": 0, "group_interval": 0}],  # at once
    )
    planner = Planner(settings.receivers, Router(settings))
    planner.holds = PlannerHolds(store, signer)
    return planner


def _firing(active_at: float) -> Alert:
    return firing_alert(LABELS, active_at)


def _kinds(planner: Planner, now: float, alerts: list[Alert]) -> list[str]:
    return [n.kind for n in planner.plan(now, alerts)]


async def test_acknowledged_alert_does_not_repeat_but_resolves() -> None:
    store, control_store = ConsoleStore(None, 10), ConsoleStore(None, 10)
    acked, control = _planner(store), _planner(control_store)
    alert = _firing(T)
    assert _kinds(acked, T, [alert]) == ["new"]
    assert _kinds(control, T, [alert]) == ["new"]
    await store.acknowledge(
        Ack(fingerprint=alert.fingerprint, active_at=T, by="Ana", at=T + 5, via="api"),
        [(alert.fingerprint, T)],
    )
    assert _kinds(control, T + 60, [alert]) == ["repeat"]  # 60 s = repeat_interval
    assert _kinds(acked, T + 60, [alert]) == []
    assert _kinds(acked, T + 180, [alert]) == []
    alert.state = AlertState.INACTIVE
    alert.resolved_at = T + 200
    assert _kinds(acked, T + 200, [alert]) == ["resolved"]
    # a new activation of the same labels is not acknowledged: it pages and repeats
    again = _firing(T + 300)
    assert _kinds(acked, T + 300, [again]) == ["new"]
    assert _kinds(acked, T + 360, [again]) == ["repeat"]


async def test_silence_holds_then_reconciles_like_a_mute_window() -> None:
    store = ConsoleStore(None, 10)
    planner = _planner(store)
    alert = _firing(T)
    silence = _silence(_body(endsAt="2026-03-02T09:10:00Z"), T)  # T .. T+600
    await store.add_silence(silence, T)
    assert _kinds(planner, T, [alert]) == []
    assert _kinds(planner, T + 300, [alert]) == []
    assert _kinds(planner, T + 600, [alert]) == ["new"]  # held, not lost
    # told "firing", then resolved under a second silence: the resolution waits for its end
    await store.add_silence(_silence(_body(endsAt="2026-03-02T09:20:00Z"), T + 600), T + 600)
    alert.state = AlertState.INACTIVE
    alert.resolved_at = T + 700
    assert _kinds(planner, T + 700, [alert]) == []
    assert _kinds(planner, T + 1200, [alert]) == ["resolved"]
    # an orphan (alert forgotten) under a silence is held too
    other = _firing(T + 1300)
    assert _kinds(planner, T + 1300, [other]) == ["new"]
    await store.add_silence(_silence(_body(endsAt="2026-03-02T09:40:00Z"), T + 1300), T + 1300)
    assert _kinds(planner, T + 1400, []) == []
    assert _kinds(planner, T + 2400, []) == ["resolved"]


async def test_firing_notifications_carry_the_signed_link() -> None:
    signer = AckSigner(b"k" * 32, "https://monitor.example", 3600.0)
    planner = _planner(ConsoleStore(None, 10), signer)
    alert = _firing(T)
    (note,) = planner.plan(T, [alert])
    url = note.alerts[0].annotations[ACK_URL]
    # the link names the firing it was sent for: active_at in ms
    act = str(round(alert.active_at * 1000))
    assert url.startswith(
        f"https://monitor.example/ack/{alert.fingerprint}?exp={int(T + 3600)}&act={act}&sig="
    )
    sig = url.rsplit("sig=", 1)[1]
    assert signer.check(alert.fingerprint, str(int(T + 3600)), sig, T, act) is None
    # the same signature for another firing is not valid
    later = str(round(alert.active_at * 1000) + 60_000)
    assert "signature" in (signer.check(alert.fingerprint, str(int(T + 3600)), sig, T, later) or "")
    alert.state = AlertState.INACTIVE
    alert.resolved_at = T + 10
    (resolved,) = planner.plan(T + 10, [alert])
    assert ACK_URL not in resolved.alerts[0].annotations


def test_a_key_that_cannot_be_read_signs_with_this_runs_key(tmp_path: Path) -> None:
    # state_dir names a file (or a directory this user may not read): the run starts and
    # signs with a key of its own, and the path is left as it was
    not_a_dir = tmp_path / "state"
    not_a_dir.write_bytes(b"x")
    with capture_logs() as logs:
        key = load_signing_key(None, not_a_dir)
    assert len(key) == 32
    assert [(e["event"], e["error"]) for e in logs] == [("console_key_not_read", "Not a directory")]
    assert not_a_dir.read_bytes() == b"x"


async def test_matching_runs_once_per_label_set_and_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1,000 silences of 20 regex matchers were matched against every alert at every tick (and
    # every status read): seconds of event-loop stall. Each (silence, label set) now runs once
    # until the silences change; the answers stay those of matching every time.
    runs: list[str] = []

    def counting(value: str) -> Any:
        runs.append(value)
        return compile_regex(value)

    monkeypatch.setattr("support_monitor.alerts.silences.compile_regex", counting)
    store = ConsoleStore(None, 10)
    voice = dict(LABELS)
    chat = {**voice, "channel": "chat"}
    miss = _silence(_body(matchers=[{"name": "channel", "value": "em.*", "isRegex": True}]))
    hit = _silence(_body(matchers=[{"name": "channel", "value": "v.*", "isRegex": True}]))
    await store.add_silence(miss, T)
    await store.add_silence(hit, T)
    runs.clear()  # creating a silence compiles its patterns once to check them
    for _ in range(50):
        assert store.silenced(voice, T + 1) == hit
        assert store.silenced(chat, T + 1) is None
    assert sorted(runs) == ["em.*", "em.*", "v.*", "v.*"]  # 2 silences x 2 label sets
    runs.clear()
    later = _silence(_body(matchers=[{"name": "channel", "value": "c.*", "isRegex": True}]))
    await store.add_silence(later, T + 2)
    runs.clear()
    assert store.silenced(chat, T + 3) == later
    assert store.silenced(voice, T + 3) == hit
    assert sorted(runs) == ["c.*", "c.*"]  # only the new silence is matched
    await store.expire_silence(hit.id, T + 4)
    assert store.silenced(voice, T + 5) is None  # the expiry is seen at once


async def test_an_unsound_silence_in_the_file_is_dropped_and_the_others_hold(
    tmp_path: Path,
) -> None:
    """Silences the API would refuse, written to the file by hand or by another build: a regex
    RE2 cannot read made every evaluation raise while matching it (no page went out), one
    matching every alert would silence them all. Each is dropped at the start, once."""
    store = ConsoleStore(tmp_path, max_silences=5)
    await store.open()
    good = _silence(_body())
    await store.add_silence(good, T)
    for silence_id, value in (("bad-regex", "("), ("all", ".*")):
        matcher = Matcher(name="channel", value=value, is_regex=True)
        bad = Silence(**{**msgspec.structs.asdict(good), "id": silence_id, "matchers": (matcher,)})
        await store.add_silence(bad, T)
    await store.close()

    stats = DaemonStats()
    again = ConsoleStore(tmp_path, max_silences=5, stats=stats)
    with capture_logs() as logs:
        await again.open()
    assert again.silences == {good.id: good}
    assert again.silenced({"channel": "voice"}, T + 1) == good
    assert again.silenced({"channel": "chat"}, T + 1) is None  # raised ValueError before
    refused = [e for e in logs if e["event"] == "silences_refused"]
    assert [(e["log_level"], e["count"]) for e in refused] == [("error", 2)]
    assert stats.store_failures == Counter({"console": 1})
    await again.close()

    third = ConsoleStore(tmp_path, max_silences=5)
    with capture_logs() as logs:
        await third.open()
    assert third.silences == {good.id: good}
    assert [e["event"] for e in logs] == ["console_state_restored"]  # the file was cleaned
    await third.close()
