"""Configuration from the environment (and .env): endpoints, paths, tokens, limits."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date

from dotenv import load_dotenv

from states.ports import Limits

# FUNDBOT_<NAME> overrides Limits.<name>, e.g. FUNDBOT_QUERY_TIMEOUT_S=5
LIMIT_ENV = {f.name: f"FUNDBOT_{f.name.upper()}" for f in dataclasses.fields(Limits)}

NO_LLM_MESSAGE = (
    "No LLM endpoint is configured. Set OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL (for any "
    "OpenAI-compatible server: Ollama, vLLM, llama.cpp, Azure OpenAI, Databricks Model Serving) "
    "in .env or the environment; see .env.example."
)


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


class UnavailableError(RuntimeError):
    """Something outside fundbot that cannot be used now (a locked warehouse file)."""


@dataclass
class Config:
    openai_api_key: str = ""
    openai_base_url: str = ""
    model: str = "gpt-4o-mini"
    db_path: str = "data/fund.duckdb"
    state_path: str = "data/state.sqlite3"
    today: date | None = None
    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str = ""
    port: int = 3000
    allowed_channels: set[str] = field(default_factory=set)
    allowed_users: set[str] = field(default_factory=set)
    workers: int = 8
    inbox_lease_s: float = 30.0  # a dead process's Slack deliveries are taken after this
    limits: Limits = field(default_factory=Limits)
    mcp_token: str = ""  # FUNDBOT_MCP_TOKEN: a token, or name:token pairs (bot/mcp_server.py)
    mcp_rate: str = "60/minute"  # FUNDBOT_MCP_RATE: tool calls per MCP client
    chart_dir: str = "data/charts"  # FUNDBOT_CHART_DIR: where `fundbot chat` saves charts
    allowed_bots: set[str] = field(default_factory=set)  # bot/app ids whose events we answer
    allow_external: bool = False  # answer Slack Connect guests from other organisations
    slack_stream: bool = True  # stream answers (chat.startStream); off: post, then update
    reviewers: set[str] = field(default_factory=set)  # FUNDBOT_REVIEWERS: Slack user ids
    warehouse_url: str = ""  # FUNDBOT_WAREHOUSE: sc://host:port selects Spark Connect
    warehouse_schema: str = ""  # FUNDBOT_WAREHOUSE_SCHEMA: [catalog.]schema to USE on Spark

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def slack_configured(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_app_token or self.slack_signing_secret))

    def __repr__(self) -> str:  # never print secrets
        hidden = {"openai_api_key", "slack_bot_token", "slack_app_token", "slack_signing_secret",
                  "mcp_token"}
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "warehouse_url" and value:  # an sc:// URL may carry a token
                from bot.spark_warehouse import redact_url

                value = redact_url(value)
            parts.append(f"{f.name}={'***' if f.name in hidden and value else repr(value)}")
        return f"Config({', '.join(parts)})"


# Limits that may be 0 (no retries, no debugging, no clarifying, no history); the rest must
# be positive. A bound that could be switched off by a typo would not be a bound.
_MAY_BE_ZERO = {"llm_retries", "debug_attempts", "clarify_rounds", "history_turns"}
# An absolute size: DuckDB would read "-1" or "80%" as "no limit" or a share of the machine.
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _check_limit(name: str, value: object, raw: str) -> None:
    env = LIMIT_ENV[name]
    if name == "memory_limit":
        size = _MEMORY.fullmatch(str(value))
        if not size or not float(size.group(1)):
            raise ConfigError(f"{env} must be a size such as 512MB or 2GB, not {raw!r}")
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{env} must be a finite number, not {raw!r}")
    if isinstance(value, (int, float)) and (value < 0 or (value == 0 and name not in _MAY_BE_ZERO)):
        least = "0 or more" if name in _MAY_BE_ZERO else "more than 0"
        raise ConfigError(f"{env} must be {least}, not {raw!r}")


def _csv(value: str) -> set[str]:
    return {v.strip() for v in value.split(",") if v.strip()}


def load_config(env: dict[str, str] | None = None, dotenv: bool = True) -> Config:
    """Read the configuration; ``env`` defaults to os.environ (after loading .env)."""
    if env is None:
        if dotenv:
            load_dotenv(os.environ.get("FUNDBOT_ENV_FILE", ".env"), override=False)
        env = dict(os.environ)
    def get(key: str, default: str = "") -> str:
        return (env.get(key) or default).strip()
    today = None
    if get("FUNDBOT_TODAY"):
        try:
            today = date.fromisoformat(get("FUNDBOT_TODAY"))
        except ValueError as exc:
            raise ConfigError(f"FUNDBOT_TODAY must be a date like 2026-06-30, not "
                              f"{get('FUNDBOT_TODAY')!r}") from exc
    if get("FUNDBOT_CATALOG"):  # checked at start-up: a typo must not silently drop the docs
        from schemas.catalog import CatalogError, load_docs

        try:
            load_docs(get("FUNDBOT_CATALOG"))
        except CatalogError as exc:
            raise ConfigError(str(exc)) from None
    limits = Limits()
    for f in dataclasses.fields(Limits):
        raw = get(LIMIT_ENV[f.name])
        if raw:
            try:
                value = type(getattr(limits, f.name))(raw)
            except ValueError as exc:
                raise ConfigError(f"{LIMIT_ENV[f.name]} must be a {f.type}, not {raw!r}") from exc
            _check_limit(f.name, value, raw)
            setattr(limits, f.name, value)
    try:
        port, workers = int(get("PORT", "3000")), int(get("FUNDBOT_WORKERS", "8"))
    except ValueError as exc:
        raise ConfigError("PORT and FUNDBOT_WORKERS must be whole numbers") from exc
    try:
        lease_s = float(get("FUNDBOT_INBOX_LEASE_S", "30"))
        if not 0.5 <= lease_s <= 60:
            raise ValueError
    except ValueError as exc:
        raise ConfigError("FUNDBOT_INBOX_LEASE_S must be seconds between 0.5 and 60") from exc
    warehouse = get("FUNDBOT_WAREHOUSE")
    if warehouse and not warehouse.startswith("sc://"):
        raise ConfigError("FUNDBOT_WAREHOUSE must be a Spark Connect URL such as "
                          "sc://host:15002 (leave it unset for the DuckDB file in FUNDBOT_DB)")
    return Config(
        warehouse_url=warehouse,
        warehouse_schema=get("FUNDBOT_WAREHOUSE_SCHEMA"),
        openai_api_key=get("OPENAI_API_KEY"),
        openai_base_url=get("OPENAI_BASE_URL"),
        model=get("FUNDBOT_MODEL", "gpt-4o-mini"),
        db_path=get("FUNDBOT_DB", "data/fund.duckdb"),
        state_path=get("FUNDBOT_STATE", "data/state.sqlite3"),
        today=today,
        slack_bot_token=get("SLACK_BOT_TOKEN"),
        slack_app_token=get("SLACK_APP_TOKEN"),
        slack_signing_secret=get("SLACK_SIGNING_SECRET"),
        slack_api_url=get("SLACK_API_URL"),
        port=port,
        allowed_channels=_csv(get("FUNDBOT_ALLOWED_CHANNELS")),
        allowed_users=_csv(get("FUNDBOT_ALLOWED_USERS")),
        workers=max(1, workers),
        inbox_lease_s=lease_s,
        limits=limits,
        mcp_token=get("FUNDBOT_MCP_TOKEN"),
        mcp_rate=get("FUNDBOT_MCP_RATE", "60/minute"),
        chart_dir=get("FUNDBOT_CHART_DIR", "data/charts"),
        allowed_bots=_csv(get("FUNDBOT_ALLOWED_BOTS")),
        allow_external=_flag("FUNDBOT_ALLOW_EXTERNAL", get, False),
        slack_stream=_flag("FUNDBOT_SLACK_STREAM", get, True),
        reviewers=_csv(get("FUNDBOT_REVIEWERS")),
    )


def _flag(name: str, get, default: bool) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off; empty keeps the default."""
    raw = (get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be on or off (1/0, true/false), not {raw!r}")
