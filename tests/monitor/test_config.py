"""Config validation: errors name the key and the problem; env overrides the file."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
import yaml

from support_monitor.detectors.config import resolve_window
from support_monitor.monitor import config_env
from support_monitor.monitor.config import (
    CONFIG_MAX_BYTES,
    SECRET_FILE_MAX_BYTES,
    config_notes,
    load_settings,
    parse_settings,
)
from support_monitor.monitor.durations import parse_duration
from support_monitor.monitor.errors import ConfigError


def _error(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    return str(info.value)


def test_spec_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
windows: ["5m", "1h"]
channels:
  voice: {answer_seconds: 20, short_abandon_seconds: 5, service_level_target: 0.8,
          queues: [billing, tech]}
  chat: {answer_seconds: 60, short_abandon_seconds: 5, service_level_target: 0.8,
         queues: [sales, support]}
  email: {first_response_seconds: 3600, resolution_seconds: 86400, queues: [default]}
""",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.window_seconds == {"5m": 300.0, "1h": 3600.0}
    assert settings.channels["voice"].answer_seconds == 20
    assert settings.channels["email"].lead(0, 3600) == 360


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"channels": {"voice": {"answer_secs": 20}}}, "channels.voice.answer_secs: unknown key"),
        ({"channels": {"voice": {"answer_seconds": "soon"}}}, "channels.voice.answer_seconds"),
        (
            {"channels": {"voice": {"answer_seconds": -5}}},
            "channels.voice.answer_seconds: a duration must not be negative (got -5)",
        ),
        (
            {"channels": {"voice": {"answer_seconds": "-5s"}}},
            "channels.voice.answer_seconds: a duration must not be negative (got -5s)",
        ),
        (
            {"channels": {"voice": {"answer_seconds": 0}}},
            "channels.voice.answer_seconds: must be greater than 0",
        ),
        (
            {"channels": {"voice": {"answer_seconds": 20, "service_level_target": 1.2}}},
            "channels.voice.service_level_target",
        ),
        (
            {"channels": {"email": {"first_response_warning_seconds": 60}}},
            (
                "channels.email.first_response_warning_seconds: is set but no priority has a "
                "first_response target: the warning could never fire"
            ),
        ),
        (
            {
                "channels": {
                    "email": {"first_response_seconds": 60, "first_response_warning_seconds": 60}
                }
            },
            (
                "channels.email.first_response_warning_seconds: must be shorter than "
                "first_response_seconds"
            ),
        ),
        ({"windows": ["5 minutes"]}, "windows: '5 minutes' is not a duration"),
        ({"windows": ["5m", "300s"]}, "repeats another window"),
        (
            {"channels": {"voice": {"answer_seconds": 20, "queues": ["a b"]}}},
            "channels.voice.queues[0]: String should match pattern",
        ),
        ({"unknown": 1}, "unknown: unknown key"),
        (  # it read "channels.voice chat.[key]: ..."
            {"channels": {"voice chat": {"answer_seconds": 20}}},
            "channels: the name 'voice chat' is refused: String should match pattern",
        ),
        ({"channels": {}}, "declare at least one channel"),
    ],
)
def test_errors_name_key_and_problem(data: dict[str, object], needle: str) -> None:
    assert needle in _error(data)


# ---------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400.0),
        ("1d2h3m4s5ms", 86400 + 7200 + 180 + 4 + 0.005),
        ("1w", 7 * 86400.0),
        ("1y", 365 * 86400.0),
        ("2w3d", 17 * 86400.0),
        ("1m5s", 65.0),
        ("5ms", 0.005),
        ("1s500ms", 1.5),
        ("90", 90.0),
        ("90.5", 90.5),
        ("0", 0.0),
        ("0s", 0.0),
        (20, 20.0),
        (90.5, 90.5),
    ],
)
def test_durations_accept_prometheus_syntax_and_plain_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)
    assert parse_settings({"alerts": {"resolved_retention": text}}).alerts.resolved_retention == (
        pytest.approx(seconds, abs=1e-9)
    )


@pytest.mark.parametrize(
    "text", ["1.5h", "5 m", " 5m", "1m1h", "1s1s", "1h 30m", "", "ms", "5M", "1mo", "-", "--5s"]
)
def test_durations_refuse_what_prometheus_refuses(text: str) -> None:
    message = _error({"channels": {"voice": {"answer_seconds": text}}})
    assert message.startswith(f"channels.voice.answer_seconds: {text!r} is not a duration; ")
    assert "'1h30m'" in message  # the hint shows the compound form


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-5, "-5"), ("-5", "-5"), ("-5s", "-5s"), ("-1h30m", "-1h30m"), (-0.5, "-0.5")],
)
def test_negative_durations_say_so_as_written(value: object, shown: str) -> None:
    assert _error({"channels": {"voice": {"answer_seconds": value}}}) == (
        f"channels.voice.answer_seconds: a duration must not be negative (got {shown})"
    )


@pytest.mark.parametrize(("value", "shown"), [(math.inf, "inf"), (math.nan, "nan")])
def test_non_finite_durations_are_refused(value: float, shown: str) -> None:
    assert _error({"ingest": {"allowed_lateness": value}}) == (
        f"ingest.allowed_lateness: a duration must be a finite number of seconds (got {shown})"
    )


@pytest.mark.parametrize(("value", "shown"), [(1e308, "1e+308"), ("101y", "101y")])
def test_durations_over_100_years_are_refused(value: object, shown: str) -> None:
    # Before, answer_seconds: 1e308 was accepted and every event then failed as a defect:
    # the deadline (queued + answer) overflowed when kept to the microsecond.
    assert _error({"channels": {"voice": {"answer_seconds": value}}}) == (
        f"channels.voice.answer_seconds: a duration must be at most 100y (got {shown})"
    )
    assert parse_settings({"ingest": {"dedup_horizon": "100y"}}).ingest.dedup_horizon == (
        100 * 365 * 86400
    )


def test_compound_window_keeps_its_name_as_the_label() -> None:
    settings = parse_settings({"windows": ["5m", "1h30m"]})
    assert settings.windows == ("5m", "1h30m")
    assert settings.window_seconds == {"5m": 300.0, "1h30m": 5400.0}
    assert resolve_window("longest", settings.windows) == "1h30m"
    assert "windows: '90m' repeats another window" in _error({"windows": ["1h30m", "90m"]})


# ---------------------------------------------------------------------- cross-checks


def test_agent_concurrency_is_a_whole_number_from_1_to_100() -> None:
    voice = {"answer_seconds": 20, "queues": ["billing"]}
    assert parse_settings({"channels": {"voice": voice}}).channels["voice"].concurrency == 1
    chat = parse_settings({"channels": {"chat": {**voice, "agent_concurrency": 3}}})
    assert chat.channels["chat"].concurrency == 3
    for bad, words in ((0, "greater than or equal to 1"), (101, "less than or equal to 100")):
        message = _error({"channels": {"chat": {**voice, "agent_concurrency": bad}}})
        assert message.startswith("channels.chat.agent_concurrency: ")
        assert words in message
    assert "agent_concurrency" in _error(
        {"channels": {"chat": {**voice, "agent_concurrency": 1.5}}}
    )


@pytest.mark.parametrize(
    "key", ["short_abandon_seconds", "service_level_target", "agent_concurrency"]
)
def test_live_settings_without_their_answer_target_are_refused(key: str) -> None:
    # A channel with them but no answer_seconds passed, then rejected every contact event
    # (wrong_channel_kind): its live monitoring was off without a word.
    value = {"short_abandon_seconds": 5, "service_level_target": 0.8, "agent_concurrency": 2}[key]
    message = _error({"channels": {"voice": {key: value, "queues": ["billing"]}}})
    assert message == (
        f"channels.voice.answer_seconds: is required when {key} is set (a live channel needs "
        "its answer target T; without it every contact event of the channel is rejected)"
    )
    ticket = {"first_response_seconds": 60, key: value}
    assert _error({"channels": {"email": ticket}}).startswith("channels.email.answer_seconds")
    assert parse_settings({"channels": {"bot": {"queues": ["default"]}}}).channels["bot"]


def test_every_bad_key_is_reported_at_once() -> None:
    # a bad window was reported only once every channel was valid, and only the first of them
    message = _error(
        {
            "windows": ["abc", "0s", "5m", "300s"],
            "channels": {
                "voice": {"answer_seconds": 20, "short_abandon_seconds": 30},
                "email": {"resolution_seconds": "-1h"},
            },
            "detectors": {"bogus": {}},
        }
    )
    lines = message.splitlines()
    assert lines[0].startswith("windows: 'abc' is not a duration; ")
    assert lines[0].endswith(
        "; '0s' is shorter than the 1 s bucket resolution; '300s' repeats another window"
    )
    assert [line.split(":")[0] for line in lines] == [
        "windows",
        "channels.voice.short_abandon_seconds",
        "channels.email.resolution_seconds",
        "detectors.bogus",
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://x:99999/", "has a port outside 1-65535"),
        ("https://x:abc/", "is not a URL the HTTP client can parse"),
        ("ftp://x/", "must be an absolute http:// or https:// URL"),
    ],
)
def test_the_console_url_is_one_the_links_can_use(url: str, problem: str) -> None:
    # the acknowledge links in Slack carried a port no browser can open
    assert _error({"console": {"external_url": url}}).startswith(f"console.external_url: {problem}")


def test_short_abandon_above_answer_is_refused() -> None:
    message = _error({"channels": {"voice": {"answer_seconds": 20, "short_abandon_seconds": 30}}})
    assert message == (
        "channels.voice.short_abandon_seconds: 30 s is above answer_seconds 20 s: the "
        "short-abandon class would swallow every in-SLA abandon and some breached ones, and take "
        "them out of the service level"
    )
    equal = {"voice": {"answer_seconds": 20, "short_abandon_seconds": 20}}
    assert parse_settings({"channels": equal}).channels["voice"].short_abandon_seconds == 20


def test_one_window_means_a_single_window_burn_rate_unless_pairs_are_configured() -> None:
    settings = parse_settings({"windows": ["5m"]})
    pairs = settings.detectors.sla_burn.windows
    assert {
        (resolve_window(p.long, settings.windows), resolve_window(p.short, settings.windows))
        for p in pairs
    } == {("5m", "5m")}
    one_pair = {"sla_burn": {"windows": [{"long": "longest", "short": "shortest", "burn_rate": 2}]}}
    assert _error({"windows": ["5m"], "detectors": one_pair}).startswith(
        "detectors.sla_burn.windows[0].short: 'shortest' is the same window as long 'longest' "
        "('5m'): a burn-rate pair needs two distinct windows"
    )
    same = {"sla_burn": {"windows": [{"long": "1h", "short": "1h", "burn_rate": 2}]}}
    assert _error({"detectors": same}).startswith(
        "detectors.sla_burn.windows[0].short: '1h' is the same window as long '1h'"
    )


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "longest_wait", "for": "-5s"}]}},
            "alerts.rules[0].for: a duration must not be negative (got -5s)",
        ),
        (
            {"alerts": {"rules": [{"alert": "A", "detector": "nope"}]}},
            "alerts.rules[0].detector: unknown detector 'nope'",
        ),
        (
            {
                "detectors": {
                    "thresholds": [{"name": "sla_burn", "metric": "x", "op": ">", "value": 1}]
                }
            },
            "detectors.thresholds[0].name: 'sla_burn' is the name of a built-in detector",
        ),
        (
            {"notifiers": {"receivers": {"pager": {"type": "slack", "timeout": "-1s"}}}},
            "notifiers.receivers.pager.timeout: a duration must not be negative (got -1s)",
        ),
        (
            {"notifiers": {"alertmanager": {"urls": ["http://127.0.0.1:9093", "nope"]}}},
            "notifiers.alertmanager.urls[1]: ",
        ),
        (
            {"notifiers": {"routes": [{"receiver": "x", "match_re": {"team": "("}}]}},
            "notifiers.routes[0].match_re.team: bad regular expression",
        ),
    ],
)
def test_paths_are_written_one_way(data: dict[str, object], line: str) -> None:
    message = _error(data)
    assert line in message
    assert not re.search(r"\.\d+[.:]", message), message  # no ``rules.0.for`` style anywhere
    assert ".slack." not in message  # the union tag is not a key of the file


# ---------------------------------------------------------------------- files named by the config


def _receiver_file(tmp_path: Path, key: str, path: Path) -> Path:
    receiver: dict[str, str] = {
        "webhook_url_file": {"type": "slack"},
        "url_file": {"type": "webhook"},
        "bearer_token_file": {"type": "webhook", "url": "http://127.0.0.1:9/x"},
    }[key]
    receiver[key] = str(path)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"notifiers": {"receivers": {"pager": receiver}}}), encoding="utf-8"
    )
    return config


def _load_error(config: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    return str(info.value)


def test_unreadable_secret_files_are_refused_with_key_and_reason(tmp_path: Path) -> None:
    secret = "hooks-Xq7-secret-token"
    missing = tmp_path / "missing"
    assert _load_error(_receiver_file(tmp_path, "webhook_url_file", missing)) == (
        f"notifiers.receivers.pager.webhook_url_file: cannot read {missing}: "
        "No such file or directory"
    )
    empty = tmp_path / "empty"
    empty.write_text(" \n", encoding="utf-8")
    assert _load_error(_receiver_file(tmp_path, "bearer_token_file", empty)) == (
        f"notifiers.receivers.pager.bearer_token_file: {empty} is empty"
    )
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff" + secret.encode())
    message = _load_error(_receiver_file(tmp_path, "bearer_token_file", binary))
    assert (
        message
        == f"notifiers.receivers.pager.bearer_token_file: {binary} is not UTF-8 text (byte 0)"
    )
    big = tmp_path / "big"
    big.write_bytes(b"x" * (SECRET_FILE_MAX_BYTES + 1))
    assert _load_error(_receiver_file(tmp_path, "url_file", big)) == (
        f"notifiers.receivers.pager.url_file: {big} is larger than 65536 bytes: not a secret value"
    )
    assert _load_error(_receiver_file(tmp_path, "url_file", tmp_path)) == (
        f"notifiers.receivers.pager.url_file: cannot read {tmp_path}: Is a directory"
    )
    good = tmp_path / "good"
    good.write_text(f"https://hooks.slack.example/{secret}\n", encoding="utf-8")
    settings = load_settings(_receiver_file(tmp_path, "webhook_url_file", good))
    assert settings.notifiers.receivers["pager"].webhook_url_file == good  # type: ignore[union-attr]


def test_every_file_setting_is_checked_and_all_problems_are_listed(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": {"mqtt": {"tls": True, "ca_file": str(tmp_path / "ca.pem")}},
                "notifiers": {"alertmanager": {"bearer_token_file": str(tmp_path / "token")}},
            }
        ),
        encoding="utf-8",
    )
    assert _load_error(config).splitlines() == [
        f"sources.mqtt.ca_file: cannot read {tmp_path / 'ca.pem'}: No such file or directory",
        (
            f"notifiers.alertmanager.bearer_token_file: cannot read {tmp_path / 'token'}: "
            "No such file or directory"
        ),
    ]
    (tmp_path / "ca.pem").write_text("not checked as a certificate here\n", encoding="utf-8")
    (tmp_path / "token").write_text("t0ken\n", encoding="utf-8")
    assert load_settings(config).sources.mqtt is not None


def test_yaml_errors_name_the_file_not_a_unicode_string(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("windows: [5m\n", encoding="utf-8")
    message = _load_error(config)
    assert message.startswith(f"{config}: not valid YAML at line 2, column 1")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: [x\n", encoding="utf-8")
    config.write_text(f"exporter: {{web_config_file: {web}}}\n", encoding="utf-8")
    message = _load_error(config)
    assert message.startswith(
        f"exporter.web_config_file: {web}: not valid YAML at line 2, column 1"
    ), message
    assert "<unicode string>" not in message


@pytest.mark.parametrize(
    ("tagged", "problem"),
    [
        ("!!int SECRETzzz5", "the value is not a valid int (ValueError)"),
        ("!!float SECRETzzz5", "the value is not a valid float (ValueError)"),
        ("!!bool SECRETzzz5", "the value is not a valid bool (KeyError)"),
        ("!!timestamp SECRETzzz5", "the value is not a valid timestamp (AttributeError)"),
        ("!!binary SECRETzzz5!", "failed to decode base64 data"),  # PyYAML's own: no value
    ],
)
def test_a_value_its_yaml_tag_cannot_build_is_refused_without_showing_it(
    tmp_path: Path, tagged: str, problem: str
) -> None:
    # PyYAML's own message quotes the value ("invalid literal for int() ... 'SECRETzzz5'")
    config = tmp_path / "c.yaml"
    config.write_text(f"sources: {{kafka: {{sasl_password: {tagged}}}}}\n", encoding="utf-8")
    message = _load_error(config)
    assert message.startswith(f"{config}: not valid YAML at line 1, column 34: "), message
    assert problem in message
    assert "secret" not in message.lower()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users: {{admin: {tagged}}}\n", encoding="utf-8")
    config.write_text(f"exporter: {{web_config_file: {web}}}\n", encoding="utf-8")
    message = _load_error(config)
    assert message.startswith(f"exporter.web_config_file: {web}: not valid YAML at line 1"), message
    assert "secret" not in message.lower()


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    # six levels of ten aliases: a million values once expanded (ten levels took minutes)
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    config = tmp_path / "c.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = _load_error(config)
    assert message == (
        f"{config}: not valid YAML at line 1, column 1: more than 100,000 values (aliases "
        "counted as copies of what they name): a config holds hundreds"
    )
    # a few aliases, as a config may use them, still read
    config.write_text(
        "windows: &w [5m, 1h]\ndetectors: {sla_burn: {windows: [{long: 1h, short: 5m, "
        "burn_rate: 2.0}]}}\n",
        encoding="utf-8",
    )
    assert load_settings(config).windows == ("5m", "1h")


def test_an_empty_dead_letter_path_is_refused(tmp_path: Path) -> None:
    # "" became ".", a directory no letter could be written to
    config = tmp_path / "c.yaml"
    config.write_text("dead_letter: {path: ''}\n", encoding="utf-8")
    assert "dead_letter.path: is empty: name a file" in _load_error(config)


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("windows: [5m]\nchannels: {}\nwindows: [1h]\n", encoding="utf-8")
    assert _load_error(config) == (
        f"{config}: not valid YAML at line 3, column 1: the key windows is written twice in "
        "this mapping"
    )


def test_an_env_override_that_is_not_json_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("SUPPORT_MONITOR_WINDOWS", "5mSECRET")  # a list must be JSON
    message = _load_error(path)
    assert message == (
        "environment: SUPPORT_MONITOR_WINDOWS cannot be parsed: a list or mapping value is "
        """written as JSON, e.g. SUPPORT_MONITOR_WINDOWS='["5m", "1h"]'"""
    )


def test_env_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("exporter: {listen: '127.0.0.1:1'}\n", encoding="utf-8")
    monkeypatch.setenv("SUPPORT_MONITOR_EXPORTER__LISTEN", "0.0.0.0:9")
    assert load_settings(path).exporter.listen == "0.0.0.0:9"


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(bad)


@pytest.mark.parametrize(
    ("line", "kind"),
    [("1: x", "number"), ("null: x", "null"), ("true: x", "boolean"), ("2026-01-01: x", "date")],
)
def test_a_top_level_key_that_is_not_a_name_is_refused(
    tmp_path: Path, line: str, kind: str
) -> None:
    # Before, ``Settings(**data)`` raised TypeError ("keywords must be strings"): check-config
    # printed a traceback and exited 1 (found by fuzzing the config loader, 2026-12-01).
    path = tmp_path / "c.yaml"
    path.write_text(f"windows: [5m]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f"a top-level key is a {kind}, not a name; the keys are setting names such as windows "
        "or channels"
    )  # the file is named by the caller, as for every other key (check-config: test_cli)
    with pytest.raises(ConfigError, match="a top-level key is a number"):
        parse_settings({1: "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("text", "where", "kind"),
    [
        ('exporter: {listen: "127.0.0.1:9108", on: true}', "exporter", "boolean"),
        ("channels:\n  voice: {1: 2}", "channels.voice", "number"),
        ("alerts:\n  rules:\n    - {labels: {null: y}}", "alerts.rules[0].labels", "null"),
    ],
)
def test_a_key_that_is_not_a_name_is_named_by_where_it_is(
    tmp_path: Path, text: str, where: str, kind: str
) -> None:
    """pydantic named YAML's ``on:`` (true) under exporter ``exporter[1]``, which reads as a
    list position (audit of 2026-12-04)."""
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{where}: a key is a {kind}, not a name (YAML reads on")


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [("dead_letter", "path", "dead_letter.path"), ("state", "dir", "state.dir")],
)
def test_a_path_the_system_cannot_look_up_is_refused(section: str, key: str, words: str) -> None:
    # Before, Path.is_dir() let ENAMETOOLONG out as an OSError: a traceback from check-config
    # (found by fuzzing configs, 2026-12-01).
    assert (
        _error({section: {key: "x" * 300}}) == f"{words}: cannot be looked up: File name too long"
    )


def test_settings_are_frozen() -> None:
    settings = parse_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.windows = ("1m",)  # type: ignore[misc]


# ---------------------------------------------------------------------- environment overrides


def test_an_override_error_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # the error named the file's key only, though the file held a valid value
    monkeypatch.setenv("SUPPORT_MONITOR_CHANNELS__VOICE__ANSWER_SECONDS", "-5")
    assert _error({"channels": {"voice": {"answer_seconds": 20}}}) == (
        "channels.voice.answer_seconds (from the environment: "
        "SUPPORT_MONITOR_CHANNELS__VOICE__ANSWER_SECONDS): a duration must not be negative "
        "(got -5)"
    )


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        (
            "SUPPORT_MONITOR_WINDOWS__0",
            (
                "windows (from the environment: SUPPORT_MONITOR_WINDOWS__0): Input should be a "
                "valid tuple; a list is set whole, as JSON: SUPPORT_MONITOR_WINDOWS='[...]'"
            ),
        ),
        (
            "SUPPORT_MONITOR_ALERTS__RULES__0__FOR",
            (
                "alerts.rules (from the environment: SUPPORT_MONITOR_ALERTS__RULES__0__FOR): Input "
                "should be a valid tuple; a list is set whole, as JSON: "
                "SUPPORT_MONITOR_ALERTS__RULES='[...]'"
            ),
        ),
        (  # not a list: no advice about lists
            "SUPPORT_MONITOR_EXPORTER__LISTEN__0",
            (
                "exporter.listen (from the environment: SUPPORT_MONITOR_EXPORTER__LISTEN__0): "
                "Input should be a valid string"
            ),
        ),
    ],
)
def test_an_override_of_one_item_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, expected: str
) -> None:
    # SUPPORT_MONITOR_WINDOWS__0=1m was refused as "windows: Input should be a valid tuple",
    # naming neither the variable nor how to set a list (audit of 2026-12-05)
    monkeypatch.setenv(variable, "5m")
    assert _error({}) == expected


def test_an_override_of_one_default_channel_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without channels in the file, SUPPORT_MONITOR_CHANNELS__VOICE__ANSWER_SECONDS=30 left voice
    alone with no queues and dropped chat, email and chatbot (audit of 2026-12-04)."""
    monkeypatch.setenv("SUPPORT_MONITOR_CHANNELS__VOICE__ANSWER_SECONDS", "30")
    channels = parse_settings({}).channels
    assert {name: (ch.answer_seconds, ch.queues) for name, ch in channels.items()} == {
        "voice": (30.0, ("billing", "tech")),
        "chat": (60.0, ("sales", "support")),
        "email": (None, ("default",)),
        "chatbot": (None, ("default",)),
    }
    assert channels["voice"].service_level_target == 0.8
    # a whole value still replaces the channels, as a file's channels do
    monkeypatch.setenv("SUPPORT_MONITOR_CHANNELS", '{"web": {"queues": ["q"]}}')
    monkeypatch.delenv("SUPPORT_MONITOR_CHANNELS__VOICE__ANSWER_SECONDS")
    assert list(parse_settings({}).channels) == ["web"]


def test_an_override_that_is_not_json_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # it named SUPPORT_MONITOR_CHANNELS, a variable nobody set
    monkeypatch.setenv("SUPPORT_MONITOR_CHANNELS__VOICE__QUEUES", "billing")
    path = tmp_path / "c.yaml"
    path.write_text("channels:\n  voice: {answer_seconds: 20}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(
        "environment: SUPPORT_MONITOR_CHANNELS__VOICE__QUEUES cannot be parsed: a list or "
        "mapping value is written as JSON"
    )


def test_a_dedup_horizon_shorter_than_the_event_age_gets_a_note() -> None:
    def notes(ingest: dict[str, str]) -> list[str]:
        settings = parse_settings({"ingest": ingest})
        return [n for n in config_notes(settings) if n.startswith("ingest")]

    assert notes({"dedup_horizon": "1h"}) == [
        (
            "ingest.dedup_horizon: 1h is shorter than max_event_age 1d: an event redelivered "
            "later than the horizon but within the age is counted twice"
        )
    ]
    assert notes({}) == []  # both 24h
    assert notes({"dedup_horizon": "1h", "max_event_age": "1h"}) == []


@pytest.mark.parametrize(
    ("sentiment", "start"),
    [
        ({"negative_below": -1}, "sentiment.negative_below: -1 is the lowest score, so no score"),
        ({"positive_above": 1}, "sentiment.positive_above: 1 is the highest score, so no score"),
    ],
)
def test_a_sentiment_cut_off_no_score_can_pass_is_refused(
    sentiment: dict[str, float], start: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"sentiment": sentiment})
    assert str(info.value).startswith(start), str(info.value)
    parse_settings({"sentiment": {"negative_below": -0.99, "positive_above": 0.99}})


def test_a_variable_naming_no_setting_gets_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORT_MONITOR_EXPORTER_LISTEN", "0.0.0.0:9108")  # one underscore
    monkeypatch.setenv("SUPPORT_MONITOR_EXPORTER__LISTEN", "127.0.0.1:9999")
    monkeypatch.setenv("SUPPORT_MONITOR_REQUIRE_SERVICES", "1")  # the test scripts' own
    settings = parse_settings({})
    assert settings.exporter.listen == "127.0.0.1:9999"
    notes = [n for n in config_notes(settings) if n.startswith("environment")]
    assert notes == [
        (
            "environment: SUPPORT_MONITOR_EXPORTER_LISTEN names no setting and is ignored "
            "(nested keys are joined with __, e.g. SUPPORT_MONITOR_EXPORTER__LISTEN)"
        )
    ]


@pytest.mark.parametrize(
    ("kafka", "key"),
    [
        ({"topics": ["ok"], "dead_letter_topic": "audit dlq!"}, "sources.kafka.dead_letter_topic"),
        ({"topics": ["ok", "a/b"]}, "sources.kafka.topics[1]"),
        ({"topics": [".."]}, "sources.kafka.topics[0]"),
    ],
)
def test_kafka_topic_names_the_broker_refuses_are_refused(
    kafka: dict[str, object], key: str
) -> None:
    # accepted before: consumption then stalled for a minute at the first reject, silently
    assert _error({"sources": {"kafka": kafka}}) == (
        f"{key}: not a Kafka topic name (1-249 of the letters, digits, '.', '_' and '-'; not "
        "'.' or '..'): the broker refuses it"
    )


_SECRET_SERVER = (
    "a server is HOST:PORT, without a user, password or scheme "
    "(its text is not shown: it may hold a secret)"
)


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ("127.0.0.1:99999", "'127.0.0.1:99999': the port 99999 is out of range (0-65535)"),
        ("k:-1", "'k:-1': the part after the last ':' is not a port number"),
        ("k:0", "'k:0': port 0 is no broker's port"),
        (":9092", "':9092': is not HOST:PORT (e.g. 127.0.0.1:9108)"),
        ("[::1", "'[::1': write an IPv6 host in brackets, e.g. [::1]:9108"),
        ("a:9092,,b:9093", "'': an empty server in the list"),
        # a user and password in a server: never quoted (the audit of 2026-12-01 saw them)
        ("user:Pw0rdK@kafka:9092", _SECRET_SERVER),
        ("ok:9092,user@host", _SECRET_SERVER),
        ("sasl_ssl://Pw0rdK:9093", _SECRET_SERVER),
    ],
)
def test_kafka_servers_that_cannot_be_dialled_are_refused(servers: str, problem: str) -> None:
    # accepted before: `run` then died at start-up with an OverflowError traceback
    assert _error({"sources": {"kafka": {"bootstrap_servers": servers}}}) == (
        f"sources.kafka.bootstrap_servers: {problem}"
    )
    for good in ("k", "a:9092, b:9093", "[::1]:9092", "broker-0.kafka.svc:9094"):
        parse_settings({"sources": {"kafka": {"bootstrap_servers": good}}})


@pytest.mark.parametrize("host", ["user:S3CRETmq@broker", "mqtts://S3CRETmq", "@broker"])
def test_an_mqtt_host_with_a_user_or_scheme_is_refused_without_its_text(host: str) -> None:
    # accepted before, and `run` logged it whole in mqtt_connect_failed (the audit of 2026-12-01)
    assert _error({"sources": {"mqtt": {"host": host}}}) == (
        "sources.mqtt.host: a host name or address, without a user, password or scheme (its "
        "text is not shown: it may hold a secret); set username and password instead"
    )
    for good in ("broker", "10.0.0.7", "::1", "mqtt.example.com"):
        parse_settings({"sources": {"mqtt": {"host": good}}})


@pytest.mark.parametrize("key", ["runbook_base_url", "dashboard_base_url"])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "https://ops:S3CRETrb@wiki.example.com/runbooks",
            (
                "has user:password@: every message's links would carry it (its text is not "
                "shown: it may be secret)"
            ),
        ),
        ("https://wiki.example.com:999999/runbooks", "has a port outside 1-65535"),
    ],
)
def test_a_link_base_with_credentials_or_a_bad_port_is_refused(
    key: str, url: str, problem: str
) -> None:
    # both were accepted, and every message's links carried them (the audit of 2026-12-01)
    assert _error({"alerts": {key: url}}) == f"alerts.{key}: {problem}"
    parse_settings({"alerts": {key: "https://wiki.example.com:8443/runbooks"}})


def test_the_short_abandon_default_never_exceeds_t() -> None:
    # a 3 s target without short_abandon_seconds was refused for the 5 s default it never wrote
    short = parse_settings({"channels": {"voice": {"answer_seconds": 3}}}).channels["voice"]
    assert short.short_abandon_seconds == 3
    usual = parse_settings({"channels": {"voice": {"answer_seconds": "20s"}}}).channels["voice"]
    assert usual.short_abandon_seconds == 5
    written = {"answer_seconds": 3, "short_abandon_seconds": 4}
    assert "short_abandon_seconds: 4 s is above answer_seconds 3 s" in _error(
        {"channels": {"voice": written}}
    )


def test_windows_may_be_plain_numbers_of_seconds() -> None:
    # `windows: [300, 1h]` was refused ("Input should be a valid string") though durations may
    # be numbers everywhere else; the label is the number as written
    settings = parse_settings({"windows": [300, 90.5, "1h"]})
    assert settings.windows == ("300", "90.5", "1h")
    assert settings.window_seconds == {"300": 300.0, "90.5": 90.5, "1h": 3600.0}


@pytest.mark.parametrize("one", ["5m", 300])
def test_one_window_not_in_a_list_says_how_to_write_it(one: object) -> None:
    # it said "Input should be a valid tuple" (audit of 2026-12-04)
    assert _error({"windows": one}) == (
        "windows: a list of window spans, e.g. [5m, 1h] (one span too: [5m])"
    )


def test_a_config_that_is_no_regular_file_or_too_long_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO (which blocked until a writer came, also a reload), ``/dev/zero`` (which grew to
    gigabytes) and a file over the limit are refused with one line (the audit of 2026-12-01)."""
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"windows: [5m]\n" + b"#" * CONFIG_MAX_BYTES)
    for path, problem in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (big, f"larger than {CONFIG_MAX_BYTES:,} bytes"),
        (tmp_path, "Is a directory"),
    ):
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert str(info.value) == f"{path}: cannot read: {problem}"
    secret = tmp_path / "token"
    os.mkfifo(secret)
    config = tmp_path / "c.yaml"
    config.write_text(f"notifiers: {{alertmanager: {{bearer_token_file: {secret}}}}}\n")
    with pytest.raises(
        ConfigError, match=f"bearer_token_file: cannot read {secret}: not a regular"
    ):
        load_settings(config)


def test_an_error_about_a_key_with_a_newline_stays_one_line() -> None:
    # Before, the key path was printed raw: "channels.vo" and "ice.queues[0]: ..." on two lines.
    with pytest.raises(ConfigError) as caught:
        parse_settings({"channels": {"vo\nice": {"answer_seconds": 20, "queues": ["q\n3"]}}})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("channels.vo\\nice.queues[0]: ")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        # each was accepted, and `run` then died with a traceback or rejected every event
        (
            {"sources": {"mqtt": {"topics": ["support/#/bad"]}}},
            (
                "sources.mqtt.topics[0]: 'support/#/bad': '#' stands alone in the last level "
                "(e.g. support/#)"
            ),
        ),
        (
            {"sources": {"mqtt": {"topics": ["a/b+"]}}},
            "sources.mqtt.topics[0]: 'a/b+': '+' stands alone in its level (e.g. support/+/events)",
        ),
        (
            {"sources": {"mqtt": {"topics": [""]}}},
            "sources.mqtt.topics[0]: '': an empty topic filter",
        ),
        (  # every bad filter, each by its position (only the first, unplaced, before)
            {"sources": {"mqtt": {"topics": ["a/#/b", "ok/#", "c/#/d"]}}},
            (
                "sources.mqtt.topics[0]: 'a/#/b': '#' stands alone in the last level (e.g. "
                "support/#); topics[2]: 'c/#/d': '#' stands alone in the last level (e.g. "
                "support/#)"
            ),
        ),
        (
            {"sources": {"simulator": {"speed": math.inf}}},
            "sources.simulator.speed: Input should be less than or equal to 3600",
        ),
        (
            {"ingest": {"max_event_age": 0}},
            "ingest.max_event_age: must be above 0 s (at 0 every event is too old)",
        ),
        (
            {"ingest": {"allowed_lateness": 10, "max_event_age": 5}},
            (
                "ingest.max_event_age: 5 s is below allowed_lateness (10 s): events the lateness "
                "still waits for would be rejected as too old"
            ),
        ),
        (
            {"exporter": {"tick_seconds": "1y"}},
            "exporter.tick_seconds: Input should be less than or equal to 60",
        ),
    ],
)
def test_settings_that_cannot_work_at_run_time_are_refused(
    data: dict[str, object], problem: str
) -> None:
    assert _error(data) == problem


def test_mqtt_filters_with_wildcards_in_whole_levels_are_accepted() -> None:
    mqtt = {"topics": ["support/+/events", "#", "support/#", "+", "a/+/#"]}
    assert parse_settings({"sources": {"mqtt": mqtt}}).sources.mqtt is not None


def test_a_burn_pair_no_rule_matches_is_said_by_check_config() -> None:
    # A pair with severity "critical" (the default rules match "page" and "ticket") was accepted
    # with no word: ServiceLevelBurn then never fired (the config audit of 2026-12-01).
    pair = {"long": "1h", "short": "5m", "burn_rate": 2, "severity": "critical"}
    settings = parse_settings({"detectors": {"sla_burn": {"windows": [pair]}}})
    notes = [n for n in config_notes(settings) if "sla_burn" in n]
    assert notes == [
        (
            "alerts.rules[0] (ServiceLevelBurn, critical) never fires: no "
            "detectors.sla_burn.windows pair has severity 'page'"
        ),
        (
            "alerts.rules[1] (ServiceLevelBurnSlow, warning) never fires: no "
            "detectors.sla_burn.windows pair has severity 'ticket'"
        ),
        (
            "detectors.sla_burn.windows[0] pages nobody: no alerts rule on sla_burn matches its "
            "severity 'critical' (the default rules match 'page' and 'ticket')"
        ),
    ]
    assert [n for n in config_notes(parse_settings({})) if "sla_burn" in n] == []


def test_today_as_a_burn_window_is_refused_with_its_key() -> None:
    # the message was "'today' is not a duration ..." with no key
    pair = {"long": "today", "short": "5m", "burn_rate": 2, "severity": "page"}
    data: dict[str, object] = {
        "windows": ["5m", "1h", "today"],
        "detectors": {"sla_burn": {"windows": [pair]}},
    }
    assert _error(data) == "detectors.sla_burn.windows[0].long: 'today' is not a sliding window"


def test_a_console_url_with_a_password_is_refused_without_showing_it() -> None:
    # every acknowledge link in every Slack message would have carried it
    message = _error({"console": {"external_url": "https://ops:Pw0rdC@monitor.example:9108"}})
    assert message == (
        "console.external_url: has user:password@: the acknowledge links in every message "
        "would carry it (its text is not shown: it may be secret)"
    )


def test_a_state_dir_that_is_a_file_and_a_letters_path_that_is_a_directory_are_refused(
    tmp_path: Path,
) -> None:
    # both were accepted: no snapshot was ever written, and /readyz stayed 503
    a_file = tmp_path / "f"
    a_file.write_text("x")
    assert _error({"state": {"dir": str(a_file)}}) == (
        f"state.dir: {a_file} is a file, not a directory: no snapshot could be written"
    )
    assert _error({"dead_letter": {"path": str(tmp_path)}}) == (
        f"dead_letter.path: {tmp_path} is a directory: name a file in it"
    )
    parse_settings({"state": {"dir": str(tmp_path / "new")}, "dead_letter": {"path": str(a_file)}})
    # accepted by check-config; run then kept the outbox and alert state in memory only
    assert _error({"notifiers": {"state_dir": str(a_file)}}) == (
        f"notifiers.state_dir: {a_file} is a file, not a directory: the outbox and alert state "
        "could not be stored"
    )
    parse_settings({"notifiers": {"state_dir": str(tmp_path / "new")}})


def test_a_for_longer_than_a_week_is_refused() -> None:
    # `for: 100y` was accepted: an alert that could never fire
    rule = {"alert": "A", "detector": "longest_wait", "for": "100y"}
    assert _error({"alerts": {"rules": [rule]}}) == (
        "alerts.rules[0].for: Input should be less than or equal to 604800"
    )
    rule = {"alert": "A", "detector": "longest_wait", "for": "1w", "keep_firing_for": "1w"}
    parse_settings({"alerts": {"rules": [rule]}})


def test_a_list_whose_items_all_fail_has_only_their_errors() -> None:
    # pydantic added "windows: Tuple should have at least 1 item after validation, not 0"
    pairs = [{"long": "1h", "short": "5m", "burn_rate": 0, "severity": "page"}]
    assert _error({"detectors": {"sla_burn": {"windows": pairs}}}) == (
        "detectors.sla_burn.windows[0].burn_rate: Input should be greater than 0"
    )


@pytest.mark.parametrize(
    ("text", "tag"),
    [("windows: !!map 5m", "map"), ("windows: !!set [a]", "set"), ("a: !!map [1]", "map")],
)
def test_a_mapping_tag_on_what_is_no_mapping_is_refused_by_its_place(
    tmp_path: Path, text: str, tag: str
) -> None:
    # PyYAML built it only as far as a ValueError or a TypeError: a traceback, exit 1
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n", encoding="utf-8")
    column = text.index("!!") + 1
    assert _load_error(config) == (
        f"{config}: not valid YAML at line 1, column {column}: the tag !!{tag} needs a "
        "mapping ({key: value}) here"
    )


NOT_UNICODE = (
    ": text that is not Unicode (a lone surrogate: an escape such as \\ud800, or bytes that are "
    "not UTF-8)"
)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            'alerts: {rules: [{alert: A, detector: sla_burn, annotations: {summary: "x\\ud800"}}]}',
            "alerts.rules[0].annotations.summary",
        ),
        ('sources: {mqtt: {topics: ["a", "b\\udfff"]}}', "sources.mqtt.topics[1]"),
        ('sources: {mqtt: {password: "\\ud800"}}', "sources.mqtt.password"),
        ('notifiers: {state_dir: "/tmp/\\udc80"}', "notifiers.state_dir"),
        ('"\\ud800x": 1', "(a top-level key)"),
    ],
)
def test_a_lone_surrogate_is_refused_by_its_key(tmp_path: Path, text: str, key: str) -> None:
    # accepted before, it broke run later: an Alertmanager post, a label, a file name
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n", encoding="utf-8")
    assert _load_error(config) == key + NOT_UNICODE


def test_an_env_override_with_bytes_that_are_not_utf8_is_refused_by_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("windows: [5m]\n", encoding="utf-8")
    # how Python gives an environment variable whose bytes are not UTF-8 (surrogateescape)
    monkeypatch.setenv(
        "SUPPORT_MONITOR_EXPORTER__LISTEN", b"127.0.0.1:\xff".decode(errors="surrogateescape")
    )
    assert _load_error(config) == "environment: SUPPORT_MONITOR_EXPORTER__LISTEN" + NOT_UNICODE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: {mqtt: {host: 'a..b'}}", "sources.mqtt.host: 'a..b': the host is not a valid"),
        ("sources: {mqtt: {host: ''}}", "sources.mqtt.host: '': the host is empty"),
        ("exporter: {listen: 'a..b:9464'}", "exporter.listen: 'a..b:9464': the host is not a"),
        (
            "sources: {kafka: {bootstrap_servers: 'ok:9092,b..c'}}",
            "sources.kafka.bootstrap_servers: 'b..c': the host is not a valid name",
        ),
        (
            f"sources: {{mqtt: {{host: '{'x' * 64}.example'}}}}",
            "sources.mqtt.host: 'xxxx",
        ),
    ],
)
def test_a_host_the_resolver_cannot_encode_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    # accepted before, then run ended with a traceback (UnicodeError from the idna codec)
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n", encoding="utf-8")
    error = _load_error(config)
    assert error.startswith(message), error
    assert "each dot-separated part must have 1 to 63 characters" in error or "empty" in error
    config.write_text(f"sources: {{mqtt: {{host: '{'x' * 63}.example'}}}}\n", encoding="utf-8")
    assert load_settings(config).sources.mqtt is not None


def test_an_oldest_wait_threshold_past_the_waiting_retention_is_refused(tmp_path: Path) -> None:
    # contacts are forgotten once they waited ingest.waiting_retention: accepted before, such
    # a threshold never fired (the default longest_wait at 2 minutes with a 1 s retention)
    config = tmp_path / "c.yaml"
    config.write_text(
        "channels: {voice: {answer_seconds: 20, queues: [a]}}\ningest: {waiting_retention: 1s}\n",
        encoding="utf-8",
    )
    assert _load_error(config) == (
        "ingest.waiting_retention: 1s is not above 2m, the level of threshold 'longest_wait' on "
        "voice (support_queue_oldest_wait_seconds > 120): a contact is forgotten once it has "
        "waited this long, so that threshold could never fire"
    )
    config.write_text(
        "channels: {voice: {answer_seconds: 20, queues: [a]}}\ningest: {waiting_retention: 121s}\n",
        encoding="utf-8",
    )
    assert load_settings(config).ingest.waiting_retention == 121
    config.write_text(
        "channels: {voice: {answer_seconds: 20, queues: [a]}}\ndetectors: {thresholds: [{name: "
        "w, metric: support_queue_oldest_wait_seconds, op: '>=', value: 86400}]}\n",
        encoding="utf-8",
    )
    assert _load_error(config).startswith("ingest.waiting_retention: 1d is not above 1d, ")


@pytest.mark.parametrize(
    "text",
    ["windows: ['\N{FULLWIDTH DIGIT FIVE}m']", "day_starts_at: '0\N{FULLWIDTH DIGIT SIX}:00'"],
)
def test_digits_other_than_ascii_are_no_duration_or_time(tmp_path: Path, text: str) -> None:
    # a fullwidth 5 and m became a window, labelled window with that fullwidth text
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n", encoding="utf-8")
    assert "is not a" in _load_error(config)


@pytest.mark.parametrize("target", ["1.0", "0", "1.2"])
def test_a_service_level_target_outside_0_1_says_why(tmp_path: Path, target: str) -> None:
    # before: "Input should be less than 1", which did not say why 1 (100%) is refused
    config = tmp_path / "c.yaml"
    config.write_text(
        f"channels: {{voice: {{answer_seconds: 20, service_level_target: {target}, "
        "queues: [a]}}\n",
        encoding="utf-8",
    )
    message = _load_error(config)
    assert message.startswith("channels.voice.service_level_target: "), message
    assert "is not a share between 0 and 1 (both excluded)" in message
    assert "no error budget" in message


def test_a_waiting_count_threshold_past_the_open_contact_limit_is_refused() -> None:
    # accepted before: no more than max_open_contacts contacts can wait (more are refused)
    limits = {"max_open_contacts": 1000}

    def threshold(op: str, value: float) -> dict[str, object]:
        rule = {"name": "huge", "metric": "support_queue_waiting", "op": op, "value": value}
        return {"limits": limits, "detectors": {"thresholds": [rule]}}

    assert _error(threshold(">", 5000)) == (
        "detectors.thresholds[0].value: support_queue_waiting > 5000 can never fire: "
        "limits.max_open_contacts (1000) bounds the contacts waiting"
    )
    assert "can never fire" in _error(threshold(">", 1000))
    parse_settings(threshold(">=", 1000))  # 1,000 waiting is possible
    parse_settings(threshold(">", 999))


def test_an_environment_json_value_with_a_repeated_key_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # JSON keeps the last of two equal keys silently (here the bad T of the first voice was
    # dropped without a word and the config passed); the same in a YAML file is refused
    monkeypatch.setenv(
        "SUPPORT_MONITOR_CHANNELS",
        '{"voice": {"answer_seconds": -1}, "voice": {"answer_seconds": 20}}',
    )
    assert _error({}) == (
        "environment: SUPPORT_MONITOR_CHANNELS: the key 'voice' twice (the last would silently win)"
    )
    monkeypatch.setenv("SUPPORT_MONITOR_CHANNELS", '{"voice": {"answer_seconds": 20}}')
    assert parse_settings({}).channels["voice"].answer_seconds == 20


@pytest.mark.parametrize("key", ["complaint_categories", "complaint_tags"])
def test_a_complaint_category_or_tag_named_twice_is_refused(key: str) -> None:
    # [billing, billing] was accepted, where repeated queues and windows are refused (audit of
    # 2026-12-05)
    assert _error({"ingest": {key: ["billing", "refund", "billing"]}}) == (
        f"ingest.{key}: must not repeat"
    )
    assert getattr(parse_settings({"ingest": {key: ["billing", "refund"]}}).ingest, key) == (
        "billing",
        "refund",
    )


def test_a_variable_inside_a_key_is_named_only_for_a_wrong_type() -> None:
    env = {"windows.0": "SUPPORT_MONITOR_WINDOWS__0"}
    assert config_env.source_of("windows", env, wrong_type=True) == "SUPPORT_MONITOR_WINDOWS__0"
    # another problem of the whole key (a cross-check) is not that variable's doing
    assert config_env.source_of("windows", env) is None
    assert config_env.source_of("windows[0]", {"windows": "SUPPORT_MONITOR_WINDOWS"}) == (
        "SUPPORT_MONITOR_WINDOWS"
    )
