"""Wiring: build the core's ports from the configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from bot.config import NO_LLM_MESSAGE, Config, ConfigError
from states.machine import Deps


def build_llm(config: Config):
    from bot.llm import OpenAIChat

    if not config.llm_configured:
        raise ConfigError(NO_LLM_MESSAGE)
    # Local servers (Ollama, llama.cpp) ignore the key, but the SDK insists on one.
    return OpenAIChat(api_key=config.openai_api_key or "not-needed",
                      base_url=config.openai_base_url or None, model=config.model,
                      timeout_s=config.limits.llm_timeout_s, retries=config.limits.llm_retries,
                      max_completion_tokens=config.limits.max_completion_tokens)


def build_deps(config: Config, llm=None) -> Deps:
    """The ports for ``config``; ``llm`` replaces the configured endpoint (eval's gold model)."""
    from bot.store import open_store

    llm = llm if llm is not None else build_llm(config)
    warehouse = build_warehouse(config)
    # PostgreSQL: a connection per turn lock and one for the statements of each turn
    store = open_store(config.state_path, pool_size=2 * config.workers + 4)
    return Deps(llm=llm, warehouse=warehouse, store=store,
                limits=config.limits, today=config.today, library=store)


def build_warehouse(config: Config, db: str | None = None):
    """Spark Connect when FUNDBOT_WAREHOUSE is an sc:// URL, else the DuckDB file (`db`, or
    FUNDBOT_DB)."""
    if config.warehouse_url:
        from bot.spark_warehouse import SparkWarehouse

        return SparkWarehouse(config.warehouse_url, config.limits,
                              schema=config.warehouse_schema)
    from bot.warehouse import open_warehouse

    return open_warehouse(db or config.db_path, config.limits)


def one_turn_at_a_time(config: Config) -> Config:
    """`config` for a command that answers one thing at a time (sql, ask, chat): one warm SQL
    worker, not FUNDBOT_SQL_WORKERS -- a second would only cost a process start."""
    return replace(config, limits=replace(config.limits, sql_workers=1))


@contextmanager
def opened(config: Config, llm=None) -> Iterator[Deps]:
    """build_deps for one command: the warehouse and store are closed before it returns,
    so no DuckDB object is left for interpreter shutdown to destroy."""
    deps = build_deps(config, llm)
    try:
        yield deps
    finally:
        close_deps(deps)


def close_deps(deps: Deps) -> None:
    for part in (deps.warehouse, deps.store):
        close = getattr(part, "close", None)
        if close is not None:
            close()
