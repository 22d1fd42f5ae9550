"""Config validation: errors name the key and the problem; env overrides the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_settings, parse_settings


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
    assert settings.channels["email"].fr_lead == 360


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"channels": {"voice": {"answer_secs": 20}}}, "channels.voice.answer_secs: unknown key"),
        ({"channels": {"voice": {"answer_seconds": "soon"}}}, "channels.voice.answer_seconds"),
        ({"channels": {"voice": {"answer_seconds": -5}}}, "must not be negative"),
        ({"channels": {"voice": {"answer_seconds": 0}}}, "answer_seconds must be greater than 0"),
        (
            {"channels": {"voice": {"answer_seconds": 20, "service_level_target": 1.2}}},
            "channels.voice.service_level_target",
        ),
        (
            {"channels": {"email": {"first_response_warning_seconds": 60}}},
            "the warning could never fire",
        ),
        (
            {
                "channels": {
                    "email": {"first_response_seconds": 60, "first_response_warning_seconds": 60}
                }
            },
            "must be shorter than first_response_seconds",
        ),
        ({"windows": ["5 minutes"]}, "windows: '5 minutes' is not a duration"),
        ({"windows": ["5m", "300s"]}, "repeats another window"),
        (
            {"channels": {"voice": {"answer_seconds": 20, "queues": ["a b"]}}},
            "channels.voice.queues.0",
        ),
        ({"unknown": 1}, "unknown: unknown key"),
        ({"channels": {}}, "declare at least one channel"),
    ],
)
def test_errors_name_key_and_problem(data: dict[str, object], needle: str) -> None:
    assert needle in _error(data)


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


def test_settings_are_frozen() -> None:
    settings = parse_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.windows = ("1m",)  # type: ignore[misc]
