"""The listener's address and its web config file (TLS and basic auth).

The web config file has the format of Prometheus' exporter-toolkit, so a file written for
node_exporter works here::

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      prometheus: $2b$12$...         # a bcrypt hash, never the password

This module imports neither aiohttp nor the settings tree, so ``monitor.config`` can call
``load_web_config`` while it validates ``exporter.web_config_file`` (``check-config`` too).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.files import read_bounded
from support_monitor.monitor.logs import register_secret
from support_monitor.monitor.redaction import non_text_key, read_yaml, yaml_problem

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNSUPPORTED_CLIENT_AUTH_TYPES = ("RequestClientCert", "RequireAnyClientCert")
ALLOWED_HEADERS = (
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
)
"""The response headers ``http_server_config.headers`` may set (exporter-toolkit's list)."""
_BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
MAX_PORT = 65535


class WebConfigError(ConfigError, ValueError):
    """A web config file that cannot be used; the message names the file, the key, the problem."""


def may_hold_secret(address: str) -> bool:
    """A user or a scheme in an address (``user:password@host:port``, ``sasl_ssl://...``):
    its text must not be quoted back."""
    return "@" in address or "//" in address


def host_problem(host: str) -> str:
    """Why ``host`` can be no host name or address, said of "the host" ("" when it can): it
    must be an IP address, or a name the resolver can encode (IDNA: each dot-separated label
    1-63 characters) that is not all digits and dots (``999.1.1.1``, ``1.2.3``). A
    well-formed name that does not resolve is not judged here: the connection retries it."""
    if not host:
        return "is empty"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return ""
    if all(part.isascii() and part.isdigit() for part in host.rstrip(".").split(".")):
        # no host name is all digits (its last label never is, RFC 3696): a mistyped address
        return "is not a valid IPv4 address"
    try:
        host.encode("idna")
    except UnicodeError:
        return "is not a valid name: each dot-separated part must have 1 to 63 characters"
    return ""


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); IPv6 hosts in brackets (``[::1]:9108``); port 0-65535
    (0: any free port). Raises ``ValueError`` naming the problem; a value with a user or a
    scheme (``user:password@host:port``, ``http://...``) is not quoted: it may hold a secret."""
    if may_hold_secret(listen):
        msg = (
            "is not HOST:PORT: it has a user, password or scheme "
            "(its text is not shown: it may hold a secret)"
        )
        raise ValueError(msg)
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{listen!r} is not HOST:PORT (e.g. 127.0.0.1:9108)")
    if not (port.isascii() and port.isdigit()):
        raise ValueError(f"{listen!r}: the part after the last ':' is not a port number")
    number = int(port)
    if number > MAX_PORT:
        raise ValueError(f"{listen!r}: the port {number} is out of range (0-{MAX_PORT})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{listen!r}: write an IPv6 host in brackets, e.g. [::1]:9108")
    if not host:
        raise ValueError(f"{listen!r} has no host")
    problem = host_problem(host)
    if problem:
        raise ValueError(f"{listen!r}: the host {problem}")
    return host, number


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Model):
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True

    @field_validator("client_auth_type")
    @classmethod
    def _auth_type(cls, value: str) -> str:
        if value in UNSUPPORTED_CLIENT_AUTH_TYPES:
            raise ValueError(
                f"{value} is not supported: Python's TLS verifies every client certificate it "
                "asks for; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )
        if value not in CLIENT_AUTH_TYPES:
            raise ValueError(f"unknown value {value!r} (one of {', '.join(CLIENT_AUTH_TYPES)})")
        return value

    @field_validator("min_version", "max_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in TLS_VERSIONS:
            raise ValueError(f"unknown TLS version {value!r} (one of {', '.join(TLS_VERSIONS)})")
        return value


class HttpServerConfig(_Model):
    headers: dict[str, str] = Field(default_factory=dict)
    http2: bool = True
    """Accepted so existing files load; the listener speaks HTTP/1.1 only."""

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {name.lower(): name for name in ALLOWED_HEADERS}
        for name, text in value.items():
            if name.lower() not in allowed:
                raise ValueError(
                    f"the header {name!r} cannot be set (allowed: {', '.join(ALLOWED_HEADERS)})"
                )
            if "\r" in text or "\n" in text:
                raise ValueError(f"the value of {name!r} must be one line")
        return value


class WebConfig(_Model):
    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _users(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, hashed in value.items():
            if not user or ":" in user:
                raise ValueError(f"user {user!r}: a user name must be non-empty, without ':'")
            # The hash is never echoed: only its shape is described.
            if not _BCRYPT.match(hashed.get_secret_value()):
                raise ValueError(
                    f"user {user!r}: not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)"
                )
        return value

    def users(self) -> dict[bytes, bytes]:
        """User name -> bcrypt hash, as bytes for ``bcrypt.checkpw``."""
        return {
            user.encode(): hashed.get_secret_value().encode()
            for user, hashed in self.basic_auth_users.items()
        }

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server ``SSLContext`` (``None`` without ``tls_server_config``). Raises
        ``WebConfigError`` naming the key when a certificate, key or CA cannot be loaded."""
        tls = self.tls_server_config
        if tls is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]
        if tls.prefer_server_cipher_suites:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        try:
            # An encrypted key is refused instead of prompting for a passphrase on the terminal.
            context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_password)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"tls_server_config.cert_file/key_file: cannot load {tls.cert_file} with "
                f"{tls.key_file}: {_reason(exc)}"
            ) from None
        context.verify_mode = CLIENT_AUTH_TYPES[tls.client_auth_type]
        if tls.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=tls.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(
                    f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file}: "
                    f"{_reason(exc)}"
                ) from None
        return context


def _no_password() -> bytes:
    raise WebConfigError("tls_server_config.key_file: the key is encrypted; use one without")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}" if key else msg)
    return "; ".join(lines)


def _resolve(data: dict[str, Any], base: Path) -> None:
    """exporter-toolkit reads relative file paths from the web config file's directory."""
    tls = data.get("tls_server_config")
    if not isinstance(tls, dict):
        return
    for key in ("cert_file", "key_file", "client_ca_file"):
        value = tls.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            tls[key] = str(base / value)


WEB_CONFIG_MAX_BYTES = 1024 * 1024
"""A web config file longer than this is refused (a few users' hashes and TLS file names)."""


def _read(path: Path) -> dict[str, Any]:
    """The YAML mapping of a web config file (bounded read); errors name the file."""
    try:
        text = read_bounded(path, WEB_CONFIG_MAX_BYTES).decode("utf-8")
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise WebConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{path}: {yaml_problem(exc)}") from None
    except RecursionError:
        raise WebConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: the top level must be a mapping of keys")
    kind = non_text_key(data)
    if kind is not None:
        raise WebConfigError(
            f"{path}: a top-level key is a {kind}, not a name; the keys are setting names such "
            "as tls_server_config or basic_auth_users"
        )
    return data


def load_web_config(path: Path) -> WebConfig:
    """Read and check a web config file: unknown keys, TLS files (loaded once), bcrypt hashes.

    Raises ``WebConfigError`` whose message starts with the file and names the key."""
    data = _read(path)
    # An empty section (``basic_auth_users:`` with nothing under it) is the same as none.
    data = {key: value for key, value in data.items() if value is not None}
    _resolve(data, path.parent)
    try:
        config = WebConfig(**data)
        tls = config.tls_server_config
        if tls is not None:
            _check_tls(tls)
        config.ssl_context()
    except ValidationError as exc:
        raise WebConfigError(f"{path}: {_format(exc)}") from None
    except WebConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from None
    for hashed in config.basic_auth_users.values():  # masked in any log line, as a safety net
        register_secret(hashed.get_secret_value())
    return config


def _check_tls(tls: TlsServerConfig) -> None:
    if TLS_VERSIONS[tls.min_version] > TLS_VERSIONS[tls.max_version]:
        raise WebConfigError(
            f"tls_server_config.min_version: {tls.min_version} is above max_version "
            f"{tls.max_version}"
        )
    verifies = tls.client_auth_type != "NoClientCert"
    if verifies and tls.client_ca_file is None:
        raise WebConfigError(
            f"tls_server_config.client_ca_file: client_auth_type {tls.client_auth_type} "
            "needs the CA that signs the client certificates"
        )
    if not verifies and tls.client_ca_file is not None:
        raise WebConfigError(
            "tls_server_config.client_auth_type: client_ca_file is set but NoClientCert "
            "asks for no client certificate (use RequireAndVerifyClientCert)"
        )
