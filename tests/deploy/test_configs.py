"""Static checks of the deploy configs: Prometheus, Alertmanager, Grafana provisioning, compose,
Dockerfile and the local service scripts. Needs promtool / amtool (deploy/local/install.sh), no
running server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support_monitor.alerts.config import default_rules

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROM_DIR = DEPLOY / "prometheus"
AM_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
COMPOSE = REPO / "docker-compose.yml"

# Host files compose mounts that are not in git: the Slack secret (users create it, see
# docs/deploy.md) and the daemon config.
NOT_IN_REPO = {
    "deploy/secrets/slack_webhook_url",
    "deploy/support-monitor/config.yaml",
}
EXPECTED_SERVICES = {
    "kafka",
    "mosquitto",
    "support-monitor",
    "simulator",
    "prometheus",
    "alertmanager",
    "grafana",
}
HEALTH_ALERTS = {
    "SupportMonitorDown",
    "SupportMonitorEventLagHigh",
    "SupportMonitorNoEvents",
    "SupportMonitorRejectingEvents",
    "SupportMonitorNotificationsFailing",
    "SupportMonitorNotificationsRetrying",
}
RUNBOOK_BASE = "{{ $externalLabels.docs_base_url }}/"


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rule_files() -> list[Path]:
    return sorted((PROM_DIR / "rules").glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted((PROM_DIR / "tests").glob("*.yml"))


def all_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in rule_files()
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    """Env for deploy/local/*.sh render commands: a private run dir, default ports."""
    return {**os.environ, "SUPPORT_MONITOR_RUN": str(tmp_path / "run")}


# --- Prometheus ------------------------------------------------------------------------------


def test_promtool_check_config(promtool: str) -> None:
    result = run([promtool, "check", "config", str(PROM_DIR / "prometheus.yml")])
    assert "SUCCESS" in result.stdout


def test_promtool_check_config_local_copy(promtool: str, local_env: dict[str, str]) -> None:
    out = run([str(DEPLOY / "local" / "prometheus.sh"), "render"], env=local_env).stdout
    rendered = Path(out.strip().splitlines()[-1])
    text = rendered.read_text(encoding="utf-8")
    assert "127.0.0.1:9108" in text
    assert "127.0.0.1:19093" in text
    assert "support-monitor:9108" not in text
    assert "alertmanager:9093" not in text
    run([promtool, "check", "config", str(rendered)])
    config = load_yaml(rendered)
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert all(target.startswith("127.0.0.1:") for target in targets), targets


def test_prometheus_config_scrapes_daemon() -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["support-monitor"]
    assert job["scrape_interval"] == "5s"
    assert job["static_configs"][0]["targets"] == ["support-monitor:9108"]
    assert config["rule_files"] == ["rules/*.yml"]
    am_targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am_targets == ["alertmanager:9093"]


def test_promtool_check_rules(promtool: str) -> None:
    files = rule_files()
    assert files
    run([promtool, "check", "rules", *map(str, files)])


def test_promtool_test_rules(promtool: str) -> None:
    files = rule_test_files()
    assert files
    result = run([promtool, "test", "rules", *map(str, files)], cwd=PROM_DIR)
    assert "FAILED" not in result.stdout + result.stderr


def test_health_alerts_defined_and_tested() -> None:
    rules = all_rules()
    alerts = {rule["alert"]: rule for rule in rules if "alert" in rule}
    assert set(alerts) >= HEALTH_ALERTS
    tests_text = "\n".join(path.read_text(encoding="utf-8") for path in rule_test_files())
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        # each alert has a firing case (exp_labels under its alertname) in the unit tests
        assert f"alertname: {name}" in tests_text, f"no promtool test for {name}"
    records = {rule["record"] for rule in rules if "record" in rule}
    assert "channel:support_service_level:ratio_5m" in records
    for record in records:
        assert record in tests_text, f"no promtool test for recording rule {record}"


def test_runbook_urls_are_external_label_templates_of_existing_headings() -> None:
    # runbook_url = "{{ $externalLabels.docs_base_url }}/<file under docs/>#<heading>", and
    # prometheus.yml sets that external label to an absolute URL.
    external = load_yaml(PROM_DIR / "prometheus.yml")["global"]["external_labels"]
    assert re.fullmatch(r"https://[^\s/]+(/\S*)?[^/]", external["docs_base_url"])
    alerts = [rule for rule in all_rules() if "alert" in rule]
    assert alerts
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), url
        path, _, anchor = url.removeprefix(RUNBOOK_BASE).partition("#")
        doc = REPO / "docs" / path
        assert doc.is_file(), url
        headings = {
            match.group(1).lower()
            for match in re.finditer(
                r"^#+\s+(\S+)\s*$", doc.read_text(encoding="utf-8"), flags=re.MULTILINE
            )
        }
        assert anchor == rule["alert"].lower(), url
        assert anchor in headings, f"{url}: no heading '{anchor}' in docs/{path}"


def test_notification_alerts_select_the_emitted_results() -> None:
    # the daemon counts result = ok | retry | failed | dropped (alerts/notify/delivery.py)
    from support_monitor.alerts.notify.delivery import RESULTS  # noqa: PLC0415

    assert set(RESULTS) == {"ok", "retry", "failed", "dropped"}
    alerts = {rule["alert"]: rule for rule in all_rules() if "alert" in rule}
    lost = alerts["SupportMonitorNotificationsFailing"]
    assert 'result=~"failed|dropped"' in lost["expr"]
    assert "for" not in lost
    assert lost["labels"]["severity"] == "critical"
    retrying = alerts["SupportMonitorNotificationsRetrying"]
    assert 'result="retry"' in retrying["expr"]
    assert retrying["labels"]["severity"] == "warning"


# --- Alertmanager ----------------------------------------------------------------------------


def test_amtool_check_config(amtool: str) -> None:
    result = run([amtool, "check-config", str(AM_CONFIG)])
    assert "SUCCESS" in result.stdout


def test_amtool_check_config_local_copy(amtool: str, local_env: dict[str, str]) -> None:
    out = run([str(DEPLOY / "local" / "alertmanager.sh"), "render"], env=local_env).stdout
    rendered = Path(out.strip().splitlines()[-1])
    assert "/etc/alertmanager/secrets" not in rendered.read_text(encoding="utf-8")
    run([amtool, "check-config", str(rendered)])


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ServiceLevelLow", "severity=critical", "channel=voice"], "slack-critical"),
        (["alertname=SupportMonitorNoEvents", "severity=warning", "source=kafka"], "slack-warning"),
        (["alertname=Heartbeat", "severity=info"], "null"),
        (["alertname=Unlabelled"], "null"),
    ],
)
def test_alertmanager_routes(amtool: str, labels: list[str], receiver: str) -> None:
    result = run([amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels])
    assert result.stdout.strip() == receiver


def test_alertmanager_config_shape() -> None:
    config = load_yaml(AM_CONFIG)
    route = config["route"]
    assert route["group_by"] == ["alertname", "channel"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "10s",
        "1m",
        "1h",
    )
    receivers = {r["name"]: r for r in config["receivers"]}
    assert route["receiver"] in receivers
    slack = [cfg for r in receivers.values() for cfg in r.get("slack_configs", [])]
    assert slack
    for cfg in slack:
        assert cfg["api_url_file"] == "/etc/alertmanager/secrets/slack_webhook_url"
        assert "api_url" not in cfg
        assert cfg["title"]
        assert cfg["text"]
    rules = config["inhibit_rules"]
    names = {rule["alert"] for rule in all_rules() if "alert" in rule}
    for inhibit in rules:
        for key in ("source_matchers", "target_matchers"):
            for matcher in inhibit[key]:
                match = re.fullmatch(r'(\w+) (=|=~) "(.*)"', matcher)
                assert match, matcher
                name, op, value = match.groups()
                if name == "alertname":
                    # shipped alerts (Prometheus health rules or the daemon's default rules)
                    values = value.split("|") if op == "=~" else [value]
                    assert set(values) <= names | DAEMON_DEFAULT_ALERTS, matcher


DAEMON_DEFAULT_ALERTS = {rule.alert for rule in default_rules()}


# --- Grafana ---------------------------------------------------------------------------------


def test_grafana_datasource_uid() -> None:
    config = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    by_type = {ds["type"]: ds for ds in config["datasources"]}
    assert by_type["prometheus"]["uid"] == "prometheus"
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    # the dashboards open on the provisioned datasource: their `datasource` variable's default
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        variables = json.loads(path.read_text(encoding="utf-8"))["templating"]["list"]
        (variable,) = [v for v in variables if v["type"] == "datasource"]
        assert variable["query"] == "prometheus", path.name
        assert variable["current"]["value"] == by_type["prometheus"]["uid"], path.name


def test_grafana_dashboard_provider() -> None:
    config = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "support-monitor.yml")
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- docker-compose.yml ----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def test_compose_services_present() -> None:
    assert set(compose()["services"]) >= EXPECTED_SERVICES


def test_compose_images_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        assert "${" not in image, f"{name}: image {image} uses a variable"
        if "@sha256:" in image:
            continue
        repo, sep, tag = image.rpartition(":")
        assert sep, f"{name}: image {image} has no tag"
        assert "/" not in tag, f"{name}: image {image} has no tag"
        assert repo
        assert tag != "latest", f"{name}: image {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: tag {tag} is not a version"


def test_compose_build_context_has_dockerfile() -> None:
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (REPO / context / dockerfile).is_file(), f"{name}: no {dockerfile} in {context}"


def _host_path(source: str) -> str | None:
    """The repo-relative host path of a bind mount source, or None for a named volume."""
    if source.startswith(("./", "../", "/", "~")) or source == ".":
        return os.path.normpath(source)
    return None


def test_compose_mounts_exist() -> None:
    data = compose()
    named = set(data.get("volumes") or {})
    secrets = data.get("secrets") or {}
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
            else:
                source = volume.get("source", "")
                if volume.get("type") == "volume":
                    assert source in named, f"{name}: named volume {source} not declared"
                    continue
            host = _host_path(source)
            if host is None:
                assert source in named, f"{name}: named volume {source} not declared"
                continue
            assert not host.startswith(("/", "..")), f"{name}: {source} is outside the repo"
            if host in NOT_IN_REPO:
                continue
            assert (REPO / host).exists(), f"{name}: mounted {source} does not exist"
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in secrets, f"{name}: secret {secret_name} not declared"
    for secret in secrets.values():
        host = os.path.normpath(secret["file"])
        assert host in NOT_IN_REPO or (REPO / host).exists(), secret["file"]


def test_compose_secret_paths_match_configs() -> None:
    data = compose()
    am_targets = [
        s["target"] for s in data["services"]["alertmanager"]["secrets"] if isinstance(s, dict)
    ]
    assert "/etc/alertmanager/secrets/slack_webhook_url" in am_targets
    assert data["secrets"]["slack_webhook_url"]["file"] == "./deploy/secrets/slack_webhook_url"
    assert "deploy/secrets" in (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")


def test_compose_ports_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} not bound to loopback"


def test_compose_depends_on_known_services() -> None:
    services = compose()["services"]
    for name, service in services.items():
        deps = service.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown {dep}"
            if isinstance(deps, dict) and deps[dep].get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"


def test_compose_grafana_home_dashboard_exists() -> None:
    env = compose()["services"]["grafana"].get("environment", {})
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert home.startswith("/var/lib/grafana/dashboards/")
        name = home.removeprefix("/var/lib/grafana/dashboards/")
        assert (DEPLOY / "grafana" / "dashboards" / name).is_file(), home


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert froms
    for image in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    assert re.search(r"^EXPOSE 9108$", text, flags=re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert (
        'CMD ["support-monitor", "run", "--config", "/etc/support-monitor/config.yaml", '
        '"--listen", "0.0.0.0:9108"]' in text
    )
    # everything the Dockerfile copies is let through .dockerignore's allow-list
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8")
    for line in re.findall(r"^COPY\s+(.+)$", text, flags=re.MULTILINE):
        *sources, _dest = line.split()
        for source in sources:
            if source.startswith("--"):
                continue
            assert f"!{source.rstrip('/')}" in ignore.replace("/\n", "\n"), source


# --- local scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted((DEPLOY / "local").glob("*.sh")), ids=lambda p: p.name)
def test_local_script_syntax(script: Path) -> None:
    run(["bash", "-n", str(script)])
    text = script.read_text(encoding="utf-8")
    if script.name != "common.sh":
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        assert "set -euo pipefail" in text
        assert "Usage:" in text


def test_local_scripts_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (optional: apt-get install shellcheck)")
    scripts = sorted(str(p) for p in (DEPLOY / "local").glob("*.sh"))
    run([shellcheck, "-x", "-P", str(DEPLOY / "local"), *scripts])
