"""Settings: `config/segue.yml`, overridden by `SEGUE_*` environment variables.

Secrets are `SecretStr` so that a settings object printed or logged by
accident shows `**********` instead of the secret.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.core.config_problems import (
    CROSS_SETTING_ERROR,
    problem_of,
    read_yaml,
    unknown_environment,
)
from bot.core.config_problems import ConfigProblem as ConfigProblem
from bot.core.errors import ConfigError
from bot.core.redis_urls import CLUSTER_SCHEME as CLUSTER_SCHEME
from bot.core.redis_urls import cluster_url_problem as cluster_url_problem
from bot.core.redis_urls import store_url_problem

DEFAULT_CONFIG = Path("config/segue.yml")
# The fewest characters of a web chat signing key (`token_urlsafe(32)` gives 43).
MIN_SIGNING_KEY = 16
# At most this many worker processes; each adds a row (256 KiB) to the memory
# they share to count connections per client address.
MAX_WORKERS = 64


# One entry of `api_keys`: a key's name, the key, and its scope.
API_KEY_ENTRY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:[A-Za-z0-9_-]{32,128}"
                           r"(?::(?:read|notify|admin))?")

class Settings(BaseSettings):
    """Every setting Segue reads. Environment variables are `SEGUE_<NAME>`."""

    # A duration or threshold of inf or nan would pass every bound it has
    # (inf > 0) or fail it with a message about the bound, not the number.
    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="forbid", allow_inf_nan=False)

    host: str = Field(default="127.0.0.1", description="Address `segue run` listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port `segue run` listens on.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the log (any case).")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: one readable line per record; `json`: one JSON object per line, "
                    "for a log collector.")
    log_levels: str | None = Field(
        default=None,
        description="Levels per component over `log_level`, as logger=LEVEL pairs: "
                    "`connectors.telegram=DEBUG,context_store=WARNING` (a logger name covers "
                    "those under it).")
    workers: int = Field(
        default=1, ge=1, le=MAX_WORKERS,
        description="Worker processes `segue run` starts on its port, supervised; more than "
                    "one needs `redis_url`.")
    # Telegram allows one getUpdates caller at a time, hence only one poller.
    worker_index: int | None = Field(
        default=None, ge=0, lt=MAX_WORKERS,
        description="Which worker this process is, set by `segue run --workers` in each; only "
                    "worker 0 (or a process without it) polls Telegram: a separate process "
                    "sets 1 to leave polling to another.")

    redis_url: SecretStr | None = Field(
        default=None,
        description="The store: `redis://`, `rediss://`, `unix://`, `redis+sentinel://` or "
                    "`redis+cluster://` URL (`?replicas=N` waits for N replicas); unset: "
                    "the in-memory store of this process.")

    telegram_token: SecretStr | None = Field(
        default=None, description="Bot token from BotFather; set, it enables Telegram.")
    telegram_mode: Literal["webhook", "polling"] = Field(
        default="polling",
        description="`polling`: Segue asks Telegram for updates; `webhook`: Telegram posts "
                    "them to `/telegram/webhook`.")
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Required in webhook mode: every update must carry it in "
                    "`X-Telegram-Bot-Api-Secret-Token` (1-256 letters, digits, `_`, `-`).")
    telegram_webhook_url: str | None = Field(
        default=None,
        description="Public URL of `/telegram/webhook`; set, Segue calls `setWebhook` with it "
                    "and the secret at start.")
    # More connections would let a customer's updates overtake each other on
    # different workers.
    telegram_webhook_max_connections: int = Field(
        default=1, ge=1, le=100,
        description="`max_connections` given to `setWebhook`: 1 keeps each customer's "
                    "messages in the order written; more trades that order for throughput.")
    telegram_api_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server base; a self-hosted Bot API server's URL otherwise.")
    telegram_bot_username: str | None = Field(
        default=None,
        description="The bot's username, for \"continue on Telegram\" links "
                    "(`https://t.me/<username>?start=...`).")

    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot token (`xoxb-...`); set, it enables Slack.")
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Verifies every request to `/slack/events`; unset: HTTP events are off "
                    "(Socket Mode only).")
    slack_app_token: SecretStr | None = Field(
        default=None,
        description="App-level token (`xapp-...`); set, Slack events arrive over Socket Mode.")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Web API base.")

    # Keys are derived from it per purpose, so it is never handed out.
    webchat_secret: SecretStr | None = Field(
        default=None,
        description="Server-only key that signs web chat sessions and resume links; unset: a "
                    "random one per start (sessions end on restart). The same on every worker; at "
                    "least 16 characters.")
    webchat_identity_secret: SecretStr | None = Field(
        default=None,
        description="The only key a host site gets: it signs its signed-in visitors' identity "
                    "tokens; unset: identity tokens are refused. At least 16 characters.")
    webchat_allowed_origins: str | None = Field(
        default=None,
        description="Comma-separated origins (`https://shop.example`) whose pages may open the "
                    "web chat socket; unset: any site, with a warning at start.")
    public_url: str | None = Field(
        default=None,
        description="The server's public base URL (`https://segue.example.com`), for the "
                    "\"continue on the web\" links the bot shows.")

    rate_limits: Literal["on", "off"] = Field(
        default="on",
        description="`off` turns every per-client limit off (a benchmark, a trusted gateway "
                    "that limits on its own).")
    # Clients can send the header too: trusting it without a proxy that
    # overwrites it lets them pick their own address.
    trusted_proxy_header: str | None = Field(
        default=None,
        description="Behind a reverse proxy that overwrites it: the header holding the "
                    "client's address (`X-Forwarded-For`: its last entry; `X-Real-IP`); "
                    "unset: the TCP peer.")
    cookie_secure: bool = Field(
        default=False,
        description="Mark the console cookie `Secure`: set it when served over HTTPS through "
                    "a proxy (`X-Forwarded-Proto: https` with `trusted_proxy_header` does too).")
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request's headers must arrive within this.")
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A request's body must arrive within this.")
    http_keepalive_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Idle keep-alive connections are closed after this.")
    max_connections_per_address: int = Field(
        default=256, gt=0, description="Connections open at once per client address.")
    log_customer_text: bool = Field(
        default=False,
        description="Let customer text appear in the log (at DEBUG only); off: never.")

    max_text_length: int = Field(
        default=4096, gt=0, description="Longest customer or agent message accepted, in "
                                        "characters.")
    history_max: int = Field(
        default=1000, gt=0, description="History entries kept per customer.")
    history_replay: int = Field(
        default=200, gt=0, description="History entries a web chat gets on (re)connect.")
    retention_days: int = Field(
        default=90, ge=0,
        description="Customer data expires this long after their last message; 0 keeps it "
                    "forever.")
    session_max_age_days: int = Field(
        default=30, gt=0, description="A web chat session token is accepted this long.")
    lock_ttl_seconds: float = Field(
        default=30.0, gt=0,
        description="How long a worker's hold on a customer lasts if it dies mid-turn; then "
                    "another worker takes over.")
    lock_wait_seconds: float = Field(
        default=10.0, gt=0,
        description="How long a turn waits for a customer another turn holds.")
    dedup_ttl_seconds: int = Field(
        default=3 * 86400, gt=0,
        description="How long a message id is remembered, so a redelivery is not processed "
                    "again.")

    dialogs_dir: str = Field(
        default="dialogs", description="Directory of the dialogs: flows, intents and responses.")
    demo_orders: str = Field(
        default="config/demo_orders.json",
        description="Orders the demo bot's order-status action looks up.")
    action_server_url: str | None = Field(
        default=None,
        description="A remote Rasa action server's webhook URL; unset: actions run in-process.")
    action_timeout_seconds: float = Field(
        default=5.0, gt=0,
        description="How long a call to the action server or the NLU service may take.")
    nlu_url: str | None = Field(
        default=None,
        description="An external NLU service (a Rasa NLU server's `/model/parse`); unset: the "
                    "built-in one.")
    nlu_threshold: float = Field(
        default=0.45, ge=0, le=1,
        description="Intent confidence below which the fallback answers.")

    agents: SecretStr | None = Field(
        default=None,
        description="Console accounts created at start-up: `name:password[:agent|admin],...` "
                    "(a secret: it holds passwords).")
    agent_session_hours: float = Field(
        default=12.0, gt=0, description="A console login lasts this long.")
    agent_login_max_failures: int = Field(
        default=5, gt=0,
        description="Failed logins per (username, address) before each try waits longer.")
    agent_login_max_failures_per_address: int = Field(
        default=20, gt=0,
        description="Failed logins per client address within `agent_login_window_seconds`.")
    agent_login_window_seconds: int = Field(
        default=900, gt=0, description="The window failed logins are counted in.")
    business_hours: str = Field(
        default="Monday to Friday, 9:00-17:00",
        description="Told to customers who ask for a person while no agent is online.")
    agent_capacity: int = Field(
        default=0, ge=0, le=1000,
        description="Open conversations automatic assignment gives each agent with the "
                    "console open, round-robin (an account's own `--capacity` overrides it); "
                    "0: none, agents claim by hand.")
    queue_alert_seconds: float = Field(
        default=300.0, gt=0,
        description="A conversation waiting longer for a person is flagged in the queue.")

    api_keys: SecretStr | None = Field(
        default=None,
        description="Public API keys accepted from start-up, besides those `segue apikeys add` "
                    "keeps in Redis: `name:key[:read|notify|admin],...` (default scope "
                    "notify; a key is 32 to 128 letters, digits, `_` or `-`; a secret). The "
                    "way to give keys to the embedded store.")
    events_url: str | None = Field(
        default=None,
        description="An `http://` or `https://` URL of yours that Segue POSTs each event "
                    "about a conversation to (a message, a handoff, a link, an erase), signed, "
                    "in order per customer, retried until it answers 2xx; unset: no events.")
    # Only HMAC signatures leave Segue, never the key itself.
    events_secret: SecretStr | None = Field(
        default=None,
        description="Signs every event POSTed to `events_url` (`X-Segue-Signature`, "
                    "HMAC-SHA256); required with it. At least 16 characters.")

    @field_validator("*")
    @classmethod
    def _secret_not_empty(cls, value: Any) -> Any:
        # An empty signing key is a key anyone knows: tokens signed with it
        # would be accepted. Unset means "off" or "a random one" instead.
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            raise ValueError("is empty: unset it or give it a value")
        return value

    @field_validator("webchat_secret", "webchat_identity_secret", "events_secret")
    @classmethod
    def _signing_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short key can be found by trying: every session or identity
        # token would then be forgeable.
        if value is not None and len(value.get_secret_value().strip()) < MIN_SIGNING_KEY:
            raise ValueError(
                f"is shorter than {MIN_SIGNING_KEY} characters: make one with "
                "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (problem := store_url_problem(value.get_secret_value())):
            raise ValueError(problem)
        return value

    @field_validator("log_levels")
    @classmethod
    def _log_levels_pairs(cls, value: str | None) -> str | None:
        if value is not None:
            parse_log_levels(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_key_entries(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        entries = [e.strip() for e in value.get_secret_value().split(",") if e.strip()]
        seen: set[str] = set()
        for number, entry in enumerate(entries, 1):
            if not API_KEY_ENTRY.fullmatch(entry):
                # Which entry, never what it holds: it is a key.
                raise ValueError(f"entry {number} is not name:key[:read|notify|admin] with a "
                                 "key of 32 to 128 letters, digits, '_' or '-'")
            name, key = entry.split(":")[:2]
            if name in seen or key in seen:
                raise ValueError(f"entry {number} repeats the name or the key of an earlier one")
            seen.update((name, key))
        return value

    @field_validator("events_url")
    @classmethod
    def _events_url_http(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/?#\s]+\S*", value.strip()):
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.strip() if value is not None else None

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
        # The settings a rule joins travel with its error, so that the error
        # is blamed on where they were given (`involved_settings`).
        if self.telegram_token and self.telegram_mode == "webhook":
            if not self.telegram_webhook_secret:
                raise PydanticCustomError(
                    CROSS_SETTING_ERROR,
                    "telegram_mode is 'webhook' but telegram_webhook_secret is not set "
                    "(SEGUE_TELEGRAM_WEBHOOK_SECRET)",
                    {"settings": ("telegram_token", "telegram_mode",
                                  "telegram_webhook_secret")},
                )
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_app_token):
            raise PydanticCustomError(
                CROSS_SETTING_ERROR,
                "slack_bot_token is set, so slack_signing_secret (for HTTP events) or "
                "slack_app_token (for Socket Mode) is needed too",
                {"settings": ("slack_bot_token", "slack_signing_secret", "slack_app_token")},
            )
        if self.events_url and not self.events_secret:
            # Unsigned events could not be told from anyone else's POSTs.
            raise PydanticCustomError(
                CROSS_SETTING_ERROR,
                "events_url is set but events_secret is not (SEGUE_EVENTS_SECRET): events are "
                "only sent signed",
                {"settings": ("events_url", "events_secret")},
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


# The settings by topic, in the order the configuration reference shows them
# (`python -m bot.assembly.config_reference`); every field is in one group.
SETTING_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Server and logs", ("host", "port", "log_level", "log_format", "log_levels", "workers",
                         "worker_index")),
    ("Store", ("redis_url",)),
    ("Telegram", ("telegram_token", "telegram_mode", "telegram_webhook_secret",
                  "telegram_webhook_url", "telegram_webhook_max_connections",
                  "telegram_api_url", "telegram_bot_username")),
    ("Slack", ("slack_bot_token", "slack_signing_secret", "slack_app_token", "slack_api_url")),
    ("Web chat", ("webchat_secret", "webchat_identity_secret", "webchat_allowed_origins",
                  "public_url")),
    ("Protection against floods and slow clients",
     ("rate_limits", "trusted_proxy_header", "cookie_secure", "http_header_timeout_seconds",
      "http_body_timeout_seconds", "http_keepalive_timeout_seconds",
      "max_connections_per_address", "log_customer_text")),
    ("Limits and retention", ("max_text_length", "history_max", "history_replay",
                              "retention_days", "session_max_age_days", "lock_ttl_seconds",
                              "lock_wait_seconds", "dedup_ttl_seconds")),
    ("Dialogs", ("dialogs_dir", "demo_orders", "action_server_url", "action_timeout_seconds",
                 "nlu_url", "nlu_threshold")),
    ("Handoff to people", ("agents", "agent_session_hours", "agent_login_max_failures",
                           "agent_login_max_failures_per_address",
                           "agent_login_window_seconds", "business_hours", "agent_capacity",
                           "queue_alert_seconds")),
    ("The public API and events to your systems", ("api_keys", "events_url", "events_secret")),
)


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


def check_settings(path: Path | None) -> tuple[Settings | None, list[ConfigProblem]]:
    """Load settings, collecting every problem instead of stopping at the first."""
    config_path = path if path is not None else DEFAULT_CONFIG
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if config_path.exists():
        try:
            data, lines = read_yaml(config_path)
        except ConfigError as exc:
            return None, [exc.args[0] if isinstance(exc.args[0], ConfigProblem)
                          else ConfigProblem(str(config_path), None, str(exc))]
    elif path is not None:
        return None, [ConfigProblem(str(config_path), None, "no such file")]
    unknown = unknown_environment(os.environ, Settings.model_fields)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        return None, [problem_of(err, config_path=str(config_path), lines=lines,
                                 environ=os.environ) for err in exc.errors()] + unknown
    return (None, unknown) if unknown else (settings, [])


def load_settings(path: Path | None = None) -> Settings:
    """Settings, or a `ConfigError` listing every problem."""
    settings, problems = check_settings(path)
    if settings is None:
        raise ConfigError("\n".join(str(p) for p in problems))
    return settings
