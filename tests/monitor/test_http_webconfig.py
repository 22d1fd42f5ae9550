"""TLS (real handshakes) and basic auth from an exporter-toolkit web config file, and its checks.

Certificates are made by the ``openssl`` CLI in each test; bcrypt hashes by the ``bcrypt``
library itself; clients are httpx with Python's ``ssl`` module.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from prometheus_client.registry import CollectorRegistry
from structlog.testing import capture_logs

from support_monitor.monitor.config import ExporterSettings, parse_settings
from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.http import MetricsServer
from support_monitor.monitor.webconfig import WebConfigError, load_web_config

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(d: Path, name: str, ca: str, ext: str) -> None:
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
             f"/CN={name}", cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(ext, encoding="utf-8")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
             cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "1",
                 "-subj", f"/CN={ca}", cwd=d)  # fmt: skip
    _issue(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _issue(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _issue(d, "stranger", "other-ca", "extendedKeyUsage=clientAuth\n")
    return Pki(
        d / "ca.crt",
        d / "server.crt",
        d / "server.key",
        d / "client.crt",
        d / "client.key",
        d / "stranger.crt",
        d / "stranger.key",
    )


def write_web_config(path: Path, config: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _one_user(tmp_path: Path) -> tuple[bytes, Path]:
    """A web config with basic auth for ``prometheus``/``PASSWORD``: (its bcrypt hash, path)."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))
    web = write_web_config(
        tmp_path / "web.yml", {"basic_auth_users": {"prometheus": hashed.decode()}}
    )
    return hashed, web


@asynccontextmanager
async def serving(web_config: Path) -> AsyncIterator[MetricsServer]:
    exporter = ExporterSettings(web_config_file=web_config, header_timeout=2, idle_timeout=5)
    async with MetricsServer(
        CollectorRegistry(), "127.0.0.1:0", lambda: True, exporter=exporter
    ) as server:
        yield server


def client_context(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


async def test_tls_serves_metrics_to_a_client_that_trusts_the_ca(pki: Pki, tmp_path: Path) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {"tls_server_config": {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}},
    )
    async with serving(web) as s:
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            response = await client.get(f"https://127.0.0.1:{s.port}/metrics", timeout=5)
            assert response.status_code == 200
            assert "support_monitor_http_connections_open" in response.text
            # The stream is TLS: the server's certificate is the one configured.
            tls = response.extensions["network_stream"].get_extra_info("ssl_object")
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        # Plain HTTP on the TLS port gets no HTTP answer.
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{s.port}/metrics", timeout=5)
        await asyncio.sleep(0.1)
        assert s.stats.tls_handshake_failures == 1


async def test_at_the_cap_a_stalled_tls_handshake_is_evicted(pki: Pki, tmp_path: Path) -> None:
    # connections that never start their handshake filled the cap: every HTTPS probe was closed
    # without an answer until the header timeout, and again as soon as they were reopened
    web = write_web_config(
        tmp_path / "web.yml",
        {"tls_server_config": {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}},
    )
    exporter = ExporterSettings(
        web_config_file=web, header_timeout=30, idle_timeout=30, max_connections=3
    )
    async with MetricsServer(
        CollectorRegistry(), "127.0.0.1:0", lambda: True, exporter=exporter
    ) as s:
        silent = [await asyncio.open_connection("127.0.0.1", s.port) for _ in range(3)]
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            response = await client.get(f"https://127.0.0.1:{s.port}/healthz", timeout=5)
        assert response.status_code == 200
        assert s.stats.evicted >= 1
        for _, writer in silent:
            writer.close()


async def test_relative_paths_are_read_from_the_web_config_files_directory(
    pki: Pki, tmp_path: Path
) -> None:
    web = write_web_config(
        pki.ca.parent / "relative-web.yml",
        {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}},
    )
    config = load_web_config(web)
    assert config.tls_server_config is not None
    assert config.tls_server_config.cert_file == pki.server_cert


async def test_min_version_tls13_refuses_a_tls12_client(pki: Pki, tmp_path: Path) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {
            "tls_server_config": {
                "cert_file": str(pki.server_cert),
                "key_file": str(pki.server_key),
                "min_version": "TLS13",
            }
        },
    )
    async with serving(web) as s:
        old = client_context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        async with httpx.AsyncClient(verify=old) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://127.0.0.1:{s.port}/healthz", timeout=5)
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            response = await client.get(f"https://127.0.0.1:{s.port}/healthz", timeout=5)
            assert response.status_code == 200
            tls = response.extensions["network_stream"].get_extra_info("ssl_object")
            assert tls.version() == "TLSv1.3"


async def test_require_and_verify_client_cert(pki: Pki, tmp_path: Path) -> None:
    web = write_web_config(
        tmp_path / "web.yml",
        {
            "tls_server_config": {
                "cert_file": str(pki.server_cert),
                "key_file": str(pki.server_key),
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": str(pki.ca),
            }
        },
    )
    async with serving(web) as s:
        url = f"https://127.0.0.1:{s.port}/metrics"
        with_cert = client_context(pki, (pki.client_cert, pki.client_key))
        async with httpx.AsyncClient(verify=with_cert) as client:
            assert (await client.get(url, timeout=5)).status_code == 200
        for context in (
            client_context(pki),
            client_context(pki, (pki.stranger_cert, pki.stranger_key)),
        ):
            async with httpx.AsyncClient(verify=context) as client:
                # No certificate, or one from another CA: no response (TLS 1.3 reports the
                # server's refusal on the first read, so any transport error).
                with pytest.raises(httpx.TransportError):
                    await client.get(url, timeout=5)
        await asyncio.sleep(0.1)
        assert s.stats.tls_handshake_failures >= 2


async def test_basic_auth_with_bcrypt(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = write_web_config(
        tmp_path / "web.yml",
        {
            "basic_auth_users": {"prometheus": hashed},
            "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
        },
    )
    with capture_logs() as logs:
        async with serving(web) as s, httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{s.port}"
            missing = await client.get(f"{url}/metrics", timeout=5)
            wrong = await client.get(f"{url}/metrics", auth=("prometheus", "nope"), timeout=5)
            stranger = await client.get(f"{url}/readyz", auth=("root", PASSWORD), timeout=5)
            garbage = await client.get(
                f"{url}/metrics", headers={"Authorization": "Basic !!!"}, timeout=5
            )
            right = await client.get(f"{url}/metrics", auth=("prometheus", PASSWORD), timeout=5)
            again = await client.get(f"{url}/readyz", auth=("prometheus", PASSWORD), timeout=5)
            health = await client.get(f"{url}/healthz", timeout=5)
            unauthorized = s.stats.unauthorized
    for response in (missing, wrong, stranger, garbage):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="support-monitor"'
    assert right.status_code == 200
    assert "support_monitor_http_requests_unauthorized_total 4.0" in right.text
    assert again.status_code == 200
    assert health.status_code == 200  # /healthz needs no credentials
    assert right.headers["X-Frame-Options"] == "deny"
    assert missing.headers["X-Frame-Options"] == "deny"
    assert unauthorized == 4
    text = repr(logs)
    assert PASSWORD not in text
    assert hashed not in text
    assert base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode() not in text


async def test_wrong_credentials_repeated_cost_one_bcrypt_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a flood repeating one wrong password ran bcrypt (two at a time) for every request and
    # held every connection slot: probes got 503. Now its outcome is remembered too.
    hashed, web = _one_user(tmp_path)
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed_password: bytes) -> bool:
        checked.append(hashed_password)
        return real(password, hashed_password)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    async with serving(web) as s, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{s.port}/metrics"
        wrong = [await client.get(url, auth=("prometheus", "nope"), timeout=5) for _ in range(5)]
        stranger = [await client.get(url, auth=("root", "x"), timeout=5) for _ in range(3)]
        right = await client.get(url, auth=("prometheus", PASSWORD), timeout=5)
    assert [r.status_code for r in [*wrong, *stranger]] == [401] * 8
    assert right.status_code == 200
    # one run for the wrong password, one for the unknown user (against the configured user's
    # hash, so it costs what a wrong password costs), one for the right password
    assert checked == [hashed, hashed, hashed]


async def test_a_flood_of_distinct_passwords_waits_a_bounded_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each new wrong password waits for one of the two bcrypt slots inside a request (never
    # evicted at the connection cap): a flood of distinct ones held every connection and the
    # scrape with remembered credentials got 503. Now at most 2 run and 16 wait; the rest is
    # refused unchecked, and the remembered scrape passes while bcrypt is still blocked.
    _, web = _one_user(tmp_path)
    real = bcrypt.checkpw
    gate = threading.Event()
    started: list[bytes] = []

    def gated(password: bytes, hashed_password: bytes) -> bool:
        if password != PASSWORD.encode():
            started.append(password)
            gate.wait(10)
        return real(password, hashed_password)

    monkeypatch.setattr(bcrypt, "checkpw", gated)
    async with serving(web) as s, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{s.port}/metrics"
        assert (await client.get(url, auth=("prometheus", PASSWORD))).status_code == 200
        flood = [
            asyncio.create_task(client.get(url, auth=("prometheus", f"w{i}"), timeout=15))
            for i in range(30)
        ]
        done: list[asyncio.Task[httpx.Response]] = []
        for _ in range(500):  # 30 - 2 running - 16 waiting answer at once, unchecked
            done = [t for t in flood if t.done()]
            if len(done) >= 12:
                break
            await asyncio.sleep(0.01)
        assert len(done) == 12
        assert all(t.result().status_code == 401 for t in done)
        assert len(started) == 2  # both slots held, bcrypt blocked
        remembered = await client.get(url, auth=("prometheus", PASSWORD), timeout=5)
        assert remembered.status_code == 200
        gate.set()
        rest = await asyncio.gather(*flood)
    assert [r.status_code for r in rest] == [401] * 30
    assert len(started) == 18  # 2 + 16 checked, 12 never


def _error(tmp_path: Path, config: object) -> str:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_web_config_key_that_is_not_a_name_is_refused(tmp_path: Path) -> None:
    # Before, ``WebConfig(**data)`` raised TypeError, not WebConfigError: a traceback.
    path = tmp_path / "web.yml"
    path.write_text("1: x\n", encoding="utf-8")
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert str(caught.value) == (
        f"{path}: a top-level key is a number, not a name; the keys are setting names such as "
        "tls_server_config or basic_auth_users"
    )


def test_web_config_errors_name_the_key(pki: Pki, tmp_path: Path) -> None:
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    assert _error(tmp_path, {"tls_config": {}}) == "tls_config: unknown key"
    assert _error(tmp_path, {"tls_server_config": {**tls, "cipher_suite": []}}) == (
        "tls_server_config.cipher_suite: unknown key"
    )
    assert _error(tmp_path, {"tls_server_config": {**tls, "min_version": "TLS14"}}) == (
        "tls_server_config.min_version: unknown TLS version 'TLS14' "
        "(one of TLS10, TLS11, TLS12, TLS13)"
    )
    assert (
        _error(
            tmp_path, {"tls_server_config": {**tls, "min_version": "TLS13", "max_version": "TLS12"}}
        )
        == "tls_server_config.min_version: TLS13 is above max_version TLS12"
    )
    assert _error(
        tmp_path,
        {"tls_server_config": {**tls, "client_auth_type": "RequireAndVerifyClientCert"}},
    ).startswith("tls_server_config.client_ca_file: client_auth_type RequireAndVerifyClientCert")
    assert _error(
        tmp_path, {"tls_server_config": {**tls, "client_auth_type": "RequireAnyClientCert"}}
    ).startswith("tls_server_config.client_auth_type: RequireAnyClientCert is not supported")
    assert _error(tmp_path, {"tls_server_config": {"cert_file": str(pki.server_cert)}}) == (
        "tls_server_config.key_file: Field required"
    )
    missing = _error(tmp_path, {"tls_server_config": {**tls, "cert_file": "/nonexistent.crt"}})
    assert missing.startswith("tls_server_config.cert_file/key_file: cannot load /nonexistent.crt")
    # A certificate with the key of another one.
    mismatched = _error(tmp_path, {"tls_server_config": {**tls, "key_file": str(pki.client_key)}})
    assert mismatched.startswith("tls_server_config.cert_file/key_file: cannot load")
    assert "KEY_VALUES_MISMATCH" in mismatched
    assert _error(
        tmp_path, {"http_server_config": {"headers": {"Content-Type": "text/html"}}}
    ).startswith("http_server_config.headers: the header 'Content-Type' cannot be set")


def test_a_bad_hash_is_refused_without_being_echoed(tmp_path: Path) -> None:
    not_a_hash = "plaintext-password-oops"
    message = _error(tmp_path, {"basic_auth_users": {"prometheus": not_a_hash}})
    assert message == (
        "basic_auth_users: user 'prometheus': not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)"
    )
    assert not_a_hash not in message


def test_an_existing_exporter_toolkit_file_loads(pki: Pki, tmp_path: Path) -> None:
    # The shape node_exporter's documentation shows, with empty sections and http2.
    hashed = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        f"""
tls_server_config:
  cert_file: {pki.server_cert}
  key_file: {pki.server_key}
  client_auth_type: VerifyClientCertIfGiven
  client_ca_file: {pki.ca}
  min_version: TLS12
  prefer_server_cipher_suites: true
http_server_config:
  http2: true
  headers:
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: {hashed}
""",
        encoding="utf-8",
    )
    config = load_web_config(path)
    assert config.users() == {b"alice": hashed.encode()}
    context = config.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_settings_check_the_web_config_file_and_the_listen_address(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  bob: nope\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        parse_settings({"exporter": {"web_config_file": str(web)}})
    assert str(caught.value).startswith(f"exporter.web_config_file: {web}: basic_auth_users:")
    for listen, problem in (
        ("0.0.0.0:99108", "'0.0.0.0:99108': the port 99108 is out of range (0-65535)"),
        ("localhost", "'localhost' is not HOST:PORT (e.g. 127.0.0.1:9108)"),
        ("::1:9108", "'::1:9108': write an IPv6 host in brackets, e.g. [::1]:9108"),
        ("host:http", "'host:http': the part after the last ':' is not a port number"),
        # all digits and dots is no host name: a mistyped address (accepted before, then
        # "cannot resolve the host" only once run had started)
        ("999.1.1.1:9108", "'999.1.1.1:9108': the host is not a valid IPv4 address"),
        ("1.2.3:9108", "'1.2.3:9108': the host is not a valid IPv4 address"),
        (
            "admin:Pw0rdL@0.0.0.0:9108",
            (
                "is not HOST:PORT: it has a user, password or scheme "
                "(its text is not shown: it may hold a secret)"
            ),
        ),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_settings({"exporter": {"listen": listen}})
        assert str(caught.value) == f"exporter.listen: {problem}"
    assert parse_settings({"exporter": {"listen": "[::1]:9108"}}).exporter.listen == "[::1]:9108"


def test_check_config_names_the_web_config_key(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  bogus: 1\n")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"exporter": {"web_config_file": str(web)}}))
    result = subprocess.run(
        [sys.executable, "-m", "support_monitor", "check-config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"exporter.web_config_file: {web}: tls_server_config.bogus: unknown key" in (
        result.stderr
    )


def test_the_documented_example_loads(pki: Pki, tmp_path: Path) -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text.split("## Exposing the listener: TLS and basic auth", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "tls_server_config:" in example
    assert "basic_auth_users:" in example
    # The example's relative file names, next to the file as the example says.
    for name, source in (
        ("server.crt", pki.server_cert),
        ("server.key", pki.server_key),
        ("ca.crt", pki.ca),
    ):
        (tmp_path / name).write_bytes(source.read_bytes())
    path = tmp_path / "web.yml"
    path.write_text(example, encoding="utf-8")
    config = load_web_config(path)
    assert config.tls_server_config is not None
    assert config.tls_server_config.client_auth_type == "RequireAndVerifyClientCert"
    assert set(config.users()) == {b"prometheus"}
    context = config.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED


async def test_a_password_longer_than_72_bytes_matches_as_htpasswd_and_go_hash_it(
    tmp_path: Path,
) -> None:
    """Audit of 2026-12-05: bcrypt 5 refuses a password over 72 bytes, and the check turned
    that into a silent 401, although htpasswd and Go's bcrypt (node_exporter's web config,
    whose files load here) read only its first 72 bytes when they hash and compare. A long
    generated secret (e.g. `openssl rand -base64 64`, 88 characters) never got in."""
    password = "A" * 80 + "tail-end"  # 88 bytes
    hashed = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    web = write_web_config(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": hashed}})
    async with serving(web) as s, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{s.port}/metrics"
        whole = await client.get(url, auth=("prometheus", password), timeout=5)
        first_72 = await client.get(url, auth=("prometheus", password[:72]), timeout=5)
        other_start = await client.get(url, auth=("prometheus", "B" + password[1:]), timeout=5)
    assert (whole.status_code, first_72.status_code, other_start.status_code) == (200, 200, 401)
