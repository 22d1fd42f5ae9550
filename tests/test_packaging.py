"""The package as users get it: the wheel built from this checkout, installed in a fresh venv and
run from outside the checkout; its metadata checked with ``packaging`` (the PyPA's own parser and
validator); the dependency bounds and the dev lock."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.metadata import Metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import CONFIG, Stream, samples

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
PACKAGES = ("monitor", "detectors", "alerts", "dashboards")  # the folders, under support_monitor
# Runtime dependencies allowed an upper bound: a next major release known to break this code.
KNOWN_BREAKING_MAJORS = {
    "aiomqtt": 3,
    "pydantic": 3,
    "pydantic-settings": 3,
    "httpx": 1,
    "aiohttp": 4,
}
# Entries of the dev venv's site-packages the fresh venv must not see: the editable install of
# this checkout, the optional dashboards SDK (to see the command without it), installer tools.
HIDDEN = re.compile(
    r"(support_monitor|_editable_impl_support_monitor|grafana_foundation_sdk|pip|setuptools"
    r"|_distutils_hack|__pycache__).*|.*\.pth"
)


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{cmd}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built by pip with hatchling from the dev venv (no download)."""
    out = tmp_path_factory.mktemp("wheel")
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", out, ROOT,
        cwd=out,
    )  # fmt: skip
    (built,) = out.glob("support_monitor-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (no deps); its dependencies are the dev venv's,
    linked one by one, except those in ``HIDDEN``. Returns the venv's ``bin``."""
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    _run(
        sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
        "--no-deps", wheel,
        cwd=base,
    )  # fmt: skip
    deps = base / "deps"
    deps.mkdir()
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for entry in site.iterdir():
        if not HIDDEN.fullmatch(entry.name):
            (deps / entry.name).symlink_to(entry)
    (fresh_site,) = (venv / "lib").glob("python3*/site-packages")
    (fresh_site / "dev-venv-deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    return venv / "bin"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def test_console_script_runs_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    env = _clean_env()
    where = _run(
        installed / "python",
        "-c",
        "import support_monitor.monitor as m; print(m.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert where.startswith(str(installed.parent)), where  # the wheel's code, not the checkout's
    assert _run(installed / "support-monitor", "--version", cwd=tmp_path, env=env) == (
        f"support-monitor {PROJECT['version']}\n"
    )
    # the example config, its one secret file pointed at a temporary file
    config = yaml.safe_load((ROOT / "deploy/support-monitor/config.yaml").read_text("utf-8"))
    hook = tmp_path / "slack_webhook_url"
    hook.write_text("https://hooks.slack.com/services/T000/B000/XXXX\n", encoding="utf-8")
    for receiver in config["notifiers"]["receivers"].values():
        if "webhook_url_file" in receiver:
            receiver["webhook_url_file"] = str(hook)
    example = tmp_path / "example.yaml"
    example.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = _run(installed / "support-monitor", "check-config", example, cwd=tmp_path, env=env)
    assert out.startswith(f"{example}: ok ("), out
    # without the `dashboards` extra: one line saying how to install it, exit 2
    result = subprocess.run(
        [installed / "support-monitor", "dashboards", "build", "--out", tmp_path / "dash"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "dashboards build needs the grafana-foundation-sdk package: "
        "pip install 'support-monitor[dashboards]'\n"
    )
    assert not (tmp_path / "dash").exists()


def test_shell_completion_is_offered(installed: Path, tmp_path: Path) -> None:
    # typer detects the shell from the process tree, and finds none when the suite runs
    # detached from a shell (nohup, a CI runner); its test switch makes it read the argument
    env = {
        **_clean_env(),
        "SHELL": "/bin/bash",
        "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1",
    }
    out = _run(installed / "support-monitor", "--show-completion", "bash", cwd=tmp_path, env=env)
    assert "_SUPPORT_MONITOR_COMPLETE=complete_bash" in out
    assert "complete " in out


def _wheel_metadata(wheel: Path) -> tuple[Metadata, list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        raw = zf.read(meta)
    return Metadata.from_email(raw, validate=True), names


def test_wheel_metadata_and_contents(wheel: Path) -> None:
    meta, names = _wheel_metadata(wheel)  # validate=True: raises on any invalid field
    assert meta.name == "support-monitor"
    assert str(meta.version) == PROJECT["version"]
    assert meta.license_expression == "Apache-2.0"
    assert meta.license_files == ["LICENSE"]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta.provides_extra == ["dashboards", "dev"]
    sdk = [r for r in meta.requires_dist or [] if r.name == "grafana-foundation-sdk"]
    # only with an extra: `dashboards`, and `dev` (which includes it; hatchling expands it)
    assert sorted(str(r.marker) for r in sdk) == ['extra == "dashboards"', 'extra == "dev"']
    assert {str(r.specifier) for r in sdk} == {"==1769699379!11.6.0"}
    # one import package; the folders are its subpackages, never top-level names of their own
    assert {n.split("/")[0] for n in names} == {
        "support_monitor",
        f"support_monitor-{PROJECT['version']}.dist-info",
    }
    for package in PACKAGES:
        assert f"support_monitor/{package}/__init__.py" in names
    assert "support_monitor/py.typed" in names  # PEP 561: the types ship with the code
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_runtime_dependencies_bounded_only_at_known_breaking_majors() -> None:
    for text in PROJECT["dependencies"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name != "grafana-foundation-sdk", "the dashboards SDK is the `dashboards` extra"
        lower = [s for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{text}: one lower bound"
        upper = [s for s in req.specifier if s.operator.startswith("<")]
        if name in KNOWN_BREAKING_MAJORS:
            assert [(s.operator, s.version) for s in upper] == [
                ("<", str(KNOWN_BREAKING_MAJORS[name]))
            ], text
        else:
            assert upper == [], f"{text}: no upper bound without a known-breaking major"


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements-dev.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_dev_tools_pinned_exactly_and_as_locked() -> None:
    lock = _lock()
    for text in PROJECT["optional-dependencies"]["dev"]:
        req = Requirement(text)
        if canonicalize_name(req.name) == "support-monitor":
            continue  # the project's own extras
        (spec,) = req.specifier
        assert spec.operator == "==", text
        assert lock[canonicalize_name(req.name)] == spec.version, text


def _requirements(name: str, extras: frozenset[str]) -> Iterator[tuple[str, frozenset[str]]]:
    for text in metadata.requires(name) or []:
        req = Requirement(text)
        env = [{"extra": e} for e in extras] or [{"extra": ""}]
        if req.marker is None or any(req.marker.evaluate(e) for e in env):
            yield canonicalize_name(req.name), frozenset(req.extras)


def test_lock_covers_the_whole_dev_environment() -> None:
    """Every distribution `support-monitor[dev]` pulls in (walked through the installed
    metadata) is in the lock, so `pip install -c requirements-dev.lock` leaves nothing free."""
    lock = _lock()
    seen: set[str] = set()
    todo = [("support-monitor", frozenset({"dev"}))]
    while todo:
        name, extras = todo.pop()
        key = f"{name}{sorted(extras)}"
        if key in seen:
            continue
        seen.add(key)
        if name != "support-monitor":
            assert name in lock, f"{name} is installed for the dev extras but not locked"
        todo.extend(_requirements(name, extras))
    assert len(seen) > 30  # the walk did reach the transitive dependencies


def test_scripts_pass_shellcheck() -> None:
    scripts = [ROOT / "scripts" / n for n in ("install.sh", "run.sh", "test.sh")] + [
        ROOT / ".ci" / "run"
    ]
    for script in scripts:
        _run("bash", "-n", script, cwd=ROOT)
        assert os.access(script, os.X_OK), script
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (optional: apt-get install shellcheck)")
    _run(shellcheck, *scripts, cwd=ROOT)


def test_install_script_installs_what_is_asked_once(tmp_path: Path) -> None:
    """scripts/install.sh against a stand-in .venv whose pip logs its arguments: runtime only
    for --runtime, the dev extras otherwise, with the lock as constraints, and nothing again
    while pyproject.toml and the lock are unchanged (a dev install also serves --runtime)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "install.sh", tmp_path / "scripts" / "install.sh")
    for name in ("pyproject.toml", "requirements-dev.lock"):
        shutil.copy2(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "pip.log"
    for tool in ("python", "pip"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n', encoding="utf-8")
        (bin_dir / tool).chmod(0o755)

    def install(*args: str) -> list[str]:
        log.write_text("", encoding="utf-8")
        _run("bash", tmp_path / "scripts" / "install.sh", *args, cwd=tmp_path)
        return log.read_text(encoding="utf-8").splitlines()

    assert install("--runtime") == ["pip install -q -c requirements-dev.lock -e ."]
    assert install("--runtime") == []
    assert install() == ["pip install -q -c requirements-dev.lock -e .[dev]"]
    assert install() == []
    assert install("--runtime") == []
    with (tmp_path / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write("\n# changed\n")
    assert install("--runtime") == ["pip install -q -c requirements-dev.lock -e ."]
    result = subprocess.run(
        ["bash", tmp_path / "scripts" / "install.sh", "--bogus"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2


def test_installs_beside_distributions_that_own_the_generic_names(
    installed: Path, tmp_path: Path
) -> None:
    """PyPI has distributions named ``alerts`` and ``detectors`` (and any project may have a
    ``monitor`` or ``dashboards`` package): with top-level packages of those names in the same
    environment, support-monitor still runs, and theirs stay theirs."""
    (fresh_site,) = (installed.parent / "lib").glob("python3*/site-packages")
    others = tmp_path / "others"
    for name in PACKAGES:
        (others / name).mkdir(parents=True)
        (others / name / "__init__.py").write_text(f"OWNER = 'other-{name}'\n", encoding="utf-8")
    pth = fresh_site / "other-distributions.pth"
    pth.write_text(f"{others}\n", encoding="utf-8")
    try:
        env = _clean_env()
        owners = _run(
            installed / "python",
            "-c",
            "import alerts, dashboards, detectors, monitor;"
            "print(alerts.OWNER, dashboards.OWNER, detectors.OWNER, monitor.OWNER)",
            cwd=tmp_path,
            env=env,
        )
        assert owners.split() == [
            "other-alerts",
            "other-dashboards",
            "other-detectors",
            "other-monitor",
        ]
        out = _run(installed / "support-monitor", "--version", cwd=tmp_path, env=env)
        assert out == f"support-monitor {PROJECT['version']}\n"
        # the whole replay road (engine, detectors, rules) runs from the wheel's code
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
        s = Stream()
        s.add("contact.queued", 10.0, "voice", contact_id="c1", queue="billing")
        s.add("contact.answered", 25.0, "voice", contact_id="c1", queue="billing")
        s.add("contact.queued", 30.0, "voice", contact_id="c2", queue="billing")
        s.add("contact.answered", 90.0, "voice", contact_id="c2", queue="billing")
        events = tmp_path / "events.jsonl"
        events.write_text(s.text(), encoding="utf-8")
        got = samples(
            _run(installed / "support-monitor", "replay", events, "--config", config,
                 cwd=tmp_path, env=env)
        )  # fmt: skip
        voice = (("channel", "voice"), ("queue", "billing"))
        assert got["support_contacts_answered_total", voice] == 2
        # waits 15 s and 60 s, T 20 s: one answered within T
        assert got["support_contacts_answered_in_sla_total", voice] == 1
    finally:
        pth.unlink()
