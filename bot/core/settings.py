"""Settings: `config/segue.yml`, overridden by `SEGUE_*` environment variables.

Secrets are `SecretStr` so that a settings object printed or logged by
accident shows `**********` instead of the secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.core.errors import ConfigError

DEFAULT_CONFIG = Path("config/segue.yml")
# At most this many worker processes; each adds a row (256 KiB) to the memory
# they share to count connections per client address.
MAX_WORKERS = 64


class Settings(BaseSettings):
    """Every setting Segue reads. Environment variables are `SEGUE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # `text`: one readable line per record; `json`: one JSON object per line,
    # for a log collector.
    log_format: Literal["text", "json"] = "text"
    # Levels per component over `log_level`: "connectors.telegram=DEBUG,
    # context_store=WARNING" (logger names; a name covers those under it).
    log_levels: str | None = None
    # `segue run --workers N`: N processes serving one port, supervised. More
    # than one needs Redis: each process would keep its own memory store.
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    # Which of those workers this process is (0 to N-1), set by the
    # supervisor; unset in a process started on its own. Telegram allows one
    # getUpdates caller at a time, so only worker 0 (or a lone process) polls.
    worker_index: int | None = Field(default=None, ge=0, lt=MAX_WORKERS)

    redis_url: SecretStr | None = None

    telegram_token: SecretStr | None = None
    telegram_mode: Literal["webhook", "polling"] = "polling"
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_url: str | None = None
    # Telegram sends the next update only once the last is answered when this
    # is 1, which keeps each customer's messages in the order they wrote them
    # whichever worker answers; more connections trade that order for speed.
    telegram_webhook_max_connections: int = Field(default=1, ge=1, le=100)
    telegram_api_url: str = "https://api.telegram.org"
    # For "continue on Telegram" links (https://t.me/<username>?start=...).
    telegram_bot_username: str | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # Server-only: web chat sessions and resume links are signed with keys
    # derived from it, one per purpose. Never given to a host site.
    webchat_secret: SecretStr | None = None
    # The only key a host site gets: it signs its visitors' identity tokens.
    webchat_identity_secret: SecretStr | None = None
    # Comma-separated origins whose pages may embed the chat; unset: any page.
    webchat_allowed_origins: str | None = None
    public_url: str | None = None

    # Protection against floods and slow clients (README "Security").
    # `off` turns every per-client limit off (benchmarks, a trusted gateway).
    rate_limits: Literal["on", "off"] = "on"
    # The header a trusted reverse proxy sets to the client's address
    # (`X-Forwarded-For`: its last entry; `X-Real-IP`). Unset: the peer address.
    # Only set it behind a proxy that overwrites the header: clients can send it too.
    trusted_proxy_header: str | None = None
    # Mark the console cookie `Secure`: set it when Segue is served over HTTPS
    # (a TLS-terminating proxy). Direct TLS, or `X-Forwarded-Proto: https`
    # with `trusted_proxy_header` set, marks it too.
    cookie_secure: bool = False
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    http_keepalive_timeout_seconds: float = Field(default=15.0, gt=0)
    max_connections_per_address: int = Field(default=256, gt=0)
    # Customer text goes to the log only at DEBUG and only when this is true.
    log_customer_text: bool = False

    # Limits and retention.
    max_text_length: int = Field(default=4096, gt=0)
    history_max: int = Field(default=1000, gt=0, description="entries kept per customer")
    history_replay: int = Field(default=200, gt=0, description="entries sent on reconnect")
    retention_days: int = Field(default=90, ge=0, description="0 keeps customer data forever")
    session_max_age_days: int = Field(default=30, gt=0)
    lock_ttl_seconds: float = Field(default=30.0, gt=0)
    lock_wait_seconds: float = Field(default=10.0, gt=0)
    dedup_ttl_seconds: int = Field(default=3 * 86400, gt=0)

    dialogs_dir: str = "dialogs"
    demo_orders: str = "config/demo_orders.json"
    # A remote Rasa action server (its webhook URL); unset: actions run in-process.
    action_server_url: str | None = None
    action_timeout_seconds: float = Field(default=5.0, gt=0)
    # An external NLU service (a Rasa NLU server's /model/parse); unset: built-in.
    nlu_url: str | None = None
    nlu_threshold: float = Field(default=0.45, ge=0, le=1)

    # Handoff to people. `agents` creates console accounts at start-up:
    # "name:password[:agent|admin],..." (a secret: it holds passwords).
    agents: SecretStr | None = None
    agent_session_hours: float = Field(default=12.0, gt=0)
    agent_login_max_failures: int = Field(
        default=5, gt=0, description="per (username, address) before each try waits longer")
    agent_login_max_failures_per_address: int = Field(default=20, gt=0)
    agent_login_window_seconds: int = Field(default=900, gt=0)
    # Told to customers who ask for a person while no agent is online.
    business_hours: str = "Monday to Friday, 9:00-17:00"

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://", CLUSTER_SCHEME)
        if value is not None and not value.get_secret_value().startswith(schemes):
            raise ValueError("must start with " + ", ".join(schemes))
        if value is not None and (problem := cluster_url_problem(value.get_secret_value())):
            raise ValueError(problem)
        return value

    @field_validator("log_levels")
    @classmethod
    def _log_levels_pairs(cls, value: str | None) -> str | None:
        if value is not None:
            parse_log_levels(value)
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's own rule for secret_token.
        allowed = r"[A-Za-z0-9_-]{1,256}"
        if value is not None and not re.fullmatch(allowed, value.get_secret_value()):
            raise ValueError("may only hold 1-256 letters, digits, '_' and '-'")
        return value

    @model_validator(mode="after")
    def _telegram_webhook_needs_secret(self) -> Settings:
        if self.telegram_token and self.telegram_mode == "webhook":
            if not self.telegram_webhook_secret:
                raise ValueError(
                    "telegram_mode is 'webhook' but telegram_webhook_secret is not set "
                    "(SEGUE_TELEGRAM_WEBHOOK_SECRET)"
                )
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_app_token):
            raise ValueError(
                "slack_bot_token is set, so slack_signing_secret (for HTTP events) or "
                "slack_app_token (for Socket Mode) is needed too"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init arguments; the environment wins over it.
        return env_settings, init_settings


LOG_LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_levels(text: str) -> dict[str, str]:
    """`log_levels` as {logger name: level name}; a ValueError names the
    first entry that is not `name=LEVEL` with a known level."""
    levels: dict[str, str] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        name, sep, level = entry.partition("=")
        name, level = name.strip(), level.strip().upper()
        if not sep or not name or level not in LOG_LEVEL_NAMES:
            raise ValueError(f"{entry.strip()!r} is not logger=LEVEL with LEVEL one of "
                             + ", ".join(LOG_LEVEL_NAMES))
        levels[name] = level
    return levels


CLUSTER_SCHEME = "redis+cluster://"
# A node of a Redis Cluster URL: host:port, an IPv6 host in brackets.
_CLUSTER_NODE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\s\[\]:/,@]+):(\d{1,5})")


def cluster_url_problem(url: str) -> str | None:
    """What is wrong with a `redis+cluster://[[user]:password@]host:port[,host:port...]`
    URL (the store's connect reads it alike), None if nothing or not one."""
    if not url.startswith(CLUSTER_SCHEME):
        return None
    where = url.removeprefix(CLUSTER_SCHEME).rpartition("@")[2]  # past any password
    if "?" in where or "#" in where:
        return "a redis+cluster:// URL takes no query or fragment"
    nodes, _, path = where.partition("/")
    if path not in ("", "0"):
        return "a Redis Cluster has only database 0: end the URL with the last host:port"
    for node in nodes.split(","):
        match = _CLUSTER_NODE.fullmatch(node)
        if match is None or not 0 < int(match.group(1)) < 65536:
            return (f"a redis+cluster:// URL lists its nodes as host:port[,host:port...] "
                    f"with ports from 1 to 65535, not {node!r}")
    return None


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One error in a configuration file, with where it is."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping in `path` and the 1-based line of each top-level key."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(ConfigProblem(str(path), line, f"invalid YAML: {exc}")) from exc
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(ConfigProblem(str(path), 1, "the file must be a mapping of settings"))
    lines = {
        k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
    }
    return data, lines


def check_settings(path: Path | None) -> tuple[Settings | None, list[ConfigProblem]]:
    """Load settings, collecting every problem instead of stopping at the first."""
    config_path = path if path is not None else DEFAULT_CONFIG
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if config_path.exists():
        try:
            data, lines = _read_yaml(config_path)
        except ConfigError as exc:
            return None, [exc.args[0] if isinstance(exc.args[0], ConfigProblem)
                          else ConfigProblem(str(config_path), None, str(exc))]
    elif path is not None:
        return None, [ConfigProblem(str(config_path), None, "no such file")]
    try:
        return Settings(**data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            label = f"{key}: " if key else ""
            variable = f"SEGUE_{key.upper()}"
            if key and variable in os.environ:  # the environment overrides the file
                problems.append(ConfigProblem(f"environment {variable}", None, err["msg"]))
            else:
                problems.append(
                    ConfigProblem(str(config_path), lines.get(key), label + err["msg"]))
        return None, problems


def load_settings(path: Path | None = None) -> Settings:
    """Settings, or a `ConfigError` listing every problem."""
    settings, problems = check_settings(path)
    if settings is None:
        raise ConfigError("\n".join(str(p) for p in problems))
    return settings
