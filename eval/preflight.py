"""Checks before a run spends anything: the endpoint answers and knows the model, and every
reference SQL runs (a broken reference is an error of the run, never a silent drop)."""

from __future__ import annotations

from typing import Any

import openai

from eval.cases import Case
from eval.runner import reference_result
from states.ports import Warehouse

PREFLIGHT_TIMEOUT_S = 15.0


class PreflightError(Exception):
    """The endpoint or model cannot serve this run; the message says what to fix."""


def check_endpoint(config: Any) -> None:
    """One cheap call (GET /models) to the configured endpoint: reachable, the key
    accepted, the model listed. Servers that do not list models are given the benefit of
    the doubt (the first case will tell)."""
    base = config.openai_base_url or "https://api.openai.com/v1"
    where = _origin(base)
    client = openai.OpenAI(api_key=config.openai_api_key or "not-needed", base_url=base,
                           timeout=PREFLIGHT_TIMEOUT_S, max_retries=0)
    try:
        listed = [m.id for m in client.models.list()]
    except openai.AuthenticationError:
        raise PreflightError(f"the endpoint {where} refused the API key "
                             "(check OPENAI_API_KEY)") from None
    except (openai.APIConnectionError, openai.APITimeoutError):
        raise PreflightError(f"the endpoint {where} is unreachable "
                             "(check OPENAI_BASE_URL and that the server is up)") from None
    except openai.NotFoundError:
        return  # no model listing on this server
    except openai.APIStatusError as exc:
        if exc.status_code in (405, 501):
            return
        raise PreflightError(f"the endpoint {where} answered HTTP {exc.status_code} to a "
                             "model listing") from None
    finally:
        client.close()
    if listed and config.model not in listed:
        shown = ", ".join(sorted(listed)[:8]) + (" …" if len(listed) > 8 else "")
        raise PreflightError(f"the endpoint {where} does not serve the model "
                             f"{config.model!r} (it lists: {shown})")


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname or ''}{f':{p.port}' if p.port else ''}"


def failing_references(cases: list[Case], warehouse: Warehouse) -> list[str]:
    """'case turn N: error' for every reference SQL that does not run on `warehouse`."""
    out = []
    for case in cases:
        for n, turn in enumerate(case.turns, 1):
            for sql in turn.sqls:
                ref = reference_result(warehouse, sql)
                if ref.error:
                    out.append(f"{case.id} turn {n}: reference SQL fails: {ref.error}")
    return out
