"""`fundbot doctor`: checks what the configuration points at, one line each -- the state store,
the warehouse, the LLM endpoint, Slack -- and says what is wrong and how to fix it. Never prints
a secret (every message below is built from the endpoints' names and typed errors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from bot.config import Config

Check = tuple[str, bool, str]  # (name, ok, one line)


def check_store(config: Config) -> Check:
    from bot.store import open_store
    from states.ports import StoreError

    try:
        with open_store(config.state_path) as store:
            counts = store.inbox_counts()
            return ("store", True, f"{store.where}, schema {store.schema_version()}, "
                                   f"{counts['queued']} queued and {counts['leased']} leased "
                                   "Slack deliveries")
    except StoreError as err:
        return "store", False, err.message


def check_warehouse(config: Config) -> Check:
    from bot.warehouse import open_warehouse
    from states.ports import QueryError

    if config.warehouse_url:  # FUNDBOT_WAREHOUSE=sc://...: the Spark Connect warehouse
        return _check_spark(config)
    try:
        warehouse = open_warehouse(config.db_path, config.limits)
        catalog = warehouse.catalog
        return ("warehouse", True, f"DuckDB {config.db_path}, {len(catalog.tables)} tables, "
                                   f"data as of {catalog.as_of or 'unknown'}")
    except (FileNotFoundError, QueryError) as err:
        return "warehouse", False, str(err)
    except Exception as err:  # a damaged or foreign file: name it, not a traceback
        return "warehouse", False, (f"cannot open {config.db_path} ({type(err).__name__}); "
                                    "rebuild it with `fundbot db init` or fix FUNDBOT_DB")


def _check_spark(config: Config) -> Check:
    from bot.spark_warehouse import SparkWarehouse, redact_url

    try:
        with SparkWarehouse(config.warehouse_url, config.limits,
                            schema=config.warehouse_schema) as warehouse:
            catalog = warehouse.catalog
            return ("warehouse", True, f"Spark {redact_url(config.warehouse_url)}, "
                                       f"{len(catalog.tables)} tables, data as of "
                                       f"{catalog.as_of or 'unknown'}")
    except RuntimeError as err:  # one line, the URL's token removed
        return "warehouse", False, str(err)


def check_llm(config: Config) -> Check:
    from bot.config import NO_LLM_MESSAGE
    from bot.llm import OpenAIChat
    from states.ports import LLMError

    if not config.llm_configured:
        return "llm", False, NO_LLM_MESSAGE
    where = config.openai_base_url or "OpenAI"
    chat = OpenAIChat(api_key=config.openai_api_key or "not-needed",
                      base_url=config.openai_base_url or None, model=config.model,
                      timeout_s=min(config.limits.llm_timeout_s, 20), retries=0)
    try:
        chat.complete([{"role": "user", "content": "Reply with the word OK."}])
        return "llm", True, f"model {config.model} at {where} answers"
    except LLMError as err:
        return "llm", False, f"model {config.model} at {where}: {err.message}"
    finally:
        chat.close()


def check_slack(config: Config) -> Check:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError

    if not config.slack_bot_token:
        return "slack", False, ("not configured: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN "
                                "(Socket Mode) or SLACK_SIGNING_SECRET (HTTP)")
    if not (config.slack_app_token or config.slack_signing_secret):
        return "slack", False, ("SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket "
                                "Mode) nor SLACK_SIGNING_SECRET (HTTP) is")
    url = config.slack_api_url or "https://slack.com/api/"
    try:
        auth = WebClient(token=config.slack_bot_token, base_url=url if url.endswith("/")
                         else url + "/", timeout=10).auth_test()
    except SlackApiError as err:
        return "slack", False, (f"the bot token was refused ({err.response.get('error')}); "
                                "copy SLACK_BOT_TOKEN again from the app's OAuth page")
    except (SlackClientError, OSError) as err:
        return "slack", False, f"cannot reach Slack at {url} ({type(err).__name__})"
    mode = "Socket Mode" if config.slack_app_token else "HTTP (signing secret set)"
    return "slack", True, f"bot @{auth.get('user')} in {auth.get('team')}, {mode}"


CHECKS: list[Callable[[Config], Check]] = [check_store, check_warehouse, check_llm, check_slack]


def run_checks(config: Config) -> Iterator[Check]:
    for check in CHECKS:
        yield check(config)
