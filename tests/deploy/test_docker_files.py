"""The Dockerfile, .dockerignore and docker-compose.yml, without a Docker engine.

The compose file is loaded by compose-go, the library Docker Compose v2 is built on
(deploy/compose-check, built with Go into the run dir): the Compose Specification's schema,
interpolation and consistency checks, as `docker compose config` applies them. Its resolved
project is then checked for what the deployment needs. The health probes in both files are run
for real against a ``MetricsServer``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.http import MetricsServer
from tests.conftest_services import unavailable

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "deploy" / "compose-check"
RUN_DIR = Path(os.environ.get("SUPPORT_MONITOR_RUN", "/tmp/support-monitor-run"))
STATE_MOUNT = "/var/lib/support-monitor"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            steps.append((word.upper(), rest.strip()))
    return steps


@pytest.fixture(scope="module")
def compose_check() -> Path:
    go = shutil.which("go")
    if go is None:
        unavailable("go not found (needed to build deploy/compose-check)")
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((CHECKER / name).read_bytes())
    target = RUN_DIR / "compose-check" / digest.hexdigest()[:16] / "compose-check"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [go, "build", "-mod=readonly", "-o", str(target), "."],
            cwd=CHECKER,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            unavailable(f"go build of {CHECKER} failed: {result.stderr[-2000:]}")
    return target


def load_compose(checker: Path, text: str, tmp_path: Path) -> tuple[int, str, str]:
    (tmp_path / "docker-compose.yml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [str(checker), "docker-compose.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COMPOSE_PROJECT_NAME": ""},
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def project(compose_check: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """docker-compose.yml as compose-go resolves it."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    code, out, err = load_compose(compose_check, text, tmp_path_factory.mktemp("compose"))
    assert code == 0, err
    resolved: dict[str, Any] = yaml.safe_load(out)
    return resolved


def test_compose_checker_rejects_a_broken_file(compose_check: Path, tmp_path: Path) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    broken = text.replace(f"support-monitor-state:{STATE_MOUNT}", f"undeclared:{STATE_MOUNT}")
    assert broken != text
    code, _, err = load_compose(compose_check, broken, tmp_path)
    assert code == 1
    assert "refers to undefined volume undeclared" in err


def test_compose_keeps_the_daemon_state_on_a_named_volume(project: dict[str, Any]) -> None:
    assert project["name"] == "support-monitor"
    daemon = project["services"]["support-monitor"]
    mounts = {m["target"]: m for m in daemon["volumes"]}
    state = mounts[STATE_MOUNT]
    assert state["type"] == "volume"
    assert state["source"] == "support-monitor-state"
    assert not state.get("read_only", False)
    assert "support-monitor-state" in project["volumes"]
    env = daemon["environment"]
    # both state directories of the config are inside the volume (and distinct)
    assert env["SUPPORT_MONITOR_STATE__DIR"] == f"{STATE_MOUNT}/state"
    assert env["SUPPORT_MONITOR_NOTIFIERS__STATE_DIR"] == f"{STATE_MOUNT}/notifiers"


def test_compose_healthcheck_is_readiness(project: dict[str, Any]) -> None:
    check = project["services"]["support-monitor"]["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"]
    assert "http://127.0.0.1:9108/readyz" in check["test"][3]


def test_services_of_the_image_that_serve_no_http_disable_its_healthcheck(
    project: dict[str, Any],
) -> None:
    # the image's HEALTHCHECK probes /healthz of `support-monitor run`; any other command of
    # the same image (the simulator's `simulate`) would be marked unhealthy by it
    image = project["services"]["support-monitor"]["image"]
    others = {
        name: service
        for name, service in project["services"].items()
        if service.get("image") == image and name != "support-monitor"
    }
    assert "simulator" in others
    for name, service in others.items():
        assert "run" not in service["command"], name
        assert service.get("healthcheck", {}).get("disable") is True, name


def test_environment_overrides_reach_the_example_config(tmp_path: Path) -> None:
    """The compose environment moves the example config's state dirs into the volume."""
    config = yaml.safe_load((ROOT / "deploy/support-monitor/config.yaml").read_text("utf-8"))
    hook = tmp_path / "hook"
    hook.write_text("https://hooks.slack.com/services/T000/B000/XXXX\n", encoding="utf-8")
    for receiver in config["notifiers"]["receivers"].values():
        if "webhook_url_file" in receiver:
            receiver["webhook_url_file"] = str(hook)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env = {**os.environ, **compose["services"]["support-monitor"]["environment"]}
    code = (
        "import sys; from pathlib import Path; from monitor.config import load_settings; "
        "s = load_settings(Path(sys.argv[1])); print(s.state.dir, s.notifiers.state_dir)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.split() == [f"{STATE_MOUNT}/state", f"{STATE_MOUNT}/notifiers"]


def test_dockerfile_installs_dependencies_before_the_code() -> None:
    steps = dockerfile()
    copies = [(i, args) for i, (word, args) in enumerate(steps) if word == "COPY"]
    runs = [(i, args) for i, (word, args) in enumerate(steps) if word == "RUN"]
    first_copy, first_args = copies[0]
    assert first_args.split() == ["pyproject.toml", "requirements-dev.lock", "./"]
    deps_run = next(args for i, args in runs if i > first_copy)
    assert "pip install -c requirements-dev.lock -r requirements.txt" in deps_run
    code_copies = [i for i, args in copies if args.split()[0] in {"monitor", "detectors"}]
    deps_index = next(i for i, args in runs if args == deps_run)
    assert min(code_copies) > deps_index  # a code change does not invalidate the deps layer
    project_run = next(args for i, args in runs if i > max(code_copies))
    assert "pip install --no-deps ." in project_run
    assert "pip check" in project_run
    assert f"chown 10001:10001 {STATE_MOUNT}" in project_run
    assert ("USER", "10001:10001") in steps


def test_dockerignore_lets_in_every_copied_file() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    sources = {
        src.rstrip("/")
        for word, args in dockerfile()
        if word == "COPY"
        for src in args.split()[:-1]
    }
    assert sources == allowed
    for src in sources:
        assert (ROOT / src).exists(), src


def _probe(command: list[str], port: int) -> list[str]:
    assert command[:2] == ["python", "-c"]
    code = command[2]
    assert ":9108/" in code
    return [sys.executable, "-c", code.replace(":9108/", f":{port}/")]


async def _exit_code(argv: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(proc.wait(), 30)


async def test_health_probes_against_a_real_listener() -> None:
    """The Dockerfile's HEALTHCHECK (liveness, /healthz) passes while the daemon is not ready;
    the compose healthcheck (/readyz) fails then, and passes once ready."""
    healthcheck = next(args for word, args in dockerfile() if word == "HEALTHCHECK")
    options, _, cmd = healthcheck.partition(" CMD ")
    assert re.search(r"--interval=\d+s", options)
    image_probe: list[str] = json.loads(cmd)
    assert "/healthz" in image_probe[2]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    compose_probe: list[str] = compose["services"]["support-monitor"]["healthcheck"]["test"][1:]
    ready = False
    async with MetricsServer(CollectorRegistry(), "127.0.0.1:0", lambda: ready) as server:
        assert await _exit_code(_probe(image_probe, server.port)) == 0
        assert await _exit_code(_probe(compose_probe, server.port)) != 0  # 503 not ready
        ready = True
        assert await _exit_code(_probe(compose_probe, server.port)) == 0
    # nothing listening: both fail
    assert await _exit_code(_probe(image_probe, server.port)) != 0
