"""clarify: save the open question with the thread; on the user's reply, resume understand.

An option's name or number selects it; any other reply is passed on as a fact.
"""

from __future__ import annotations

import json
import re

from states.context import TurnContext
from states.ports import Pending

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}


def run(ctx: TurnContext) -> str | None:
    if ctx.conv.status == "clarify" and ctx.conv.pending and ctx.clarification is None:
        return resume(ctx)
    previous = ctx.conv.pending
    ctx.conv.pending = Pending(
        question=ctx.question, prompt=ctx.clarification or "", options=list(ctx.options),
        rounds=(previous.rounds + 1) if previous else 1, kind=ctx.clarify_kind,
        mention=ctx.clarify_mention, facts=list(ctx.facts),
        settled=dict(previous.settled) if previous else {},
        asker=previous.asker if previous else ctx.user,
    )
    ctx.conv.status = "clarify"
    return None  # the thread waits for the user


def resume(ctx: TurnContext) -> str:
    pending = ctx.conv.pending
    assert pending is not None
    reply = ctx.text.strip()
    choice = pick_option(reply, pending.options)
    if choice is None and _out_of_range(reply, pending.options):
        # "3" to two options: say so and ask again; the question stays open, no round spent
        n = len(pending.options)
        ctx.clarification = (f'"{reply[:20]}" is not one of the options: there '
                             f"{'is only 1' if n == 1 else f'are only {n}'}. Answer with a "
                             f"number from 1 to {n} or a name. {pending.prompt}")
        ctx.options = list(pending.options)
        return None
    if choice and pending.kind == "entity":
        pending.settled[pending.mention.lower()] = choice
        # the choice is a warehouse value: quoted as data, so it cannot read as instructions
        pending.facts.append(f'By "{pending.mention}" the user means {_quoted(choice)}.')
    elif choice:
        pending.facts.append(f'Asked "{pending.prompt}", the user chose: {_quoted(choice)}.')
    elif reply:
        pending.facts.append(f'Asked "{pending.prompt}", the user answered: "{reply[:500]}".')
    return "reply"


def _out_of_range(reply: str, options: list[str]) -> bool:
    """A bare number or ordinal that names no option ("3" or "third" of two)."""
    text = reply.strip().strip(".!").lower()
    m = re.fullmatch(r"#?\s*(\d{1,3})|(?:the\s+)?(" + "|".join(_ORDINALS) + r")(?:\s+one)?", text)
    if not options or not m:
        return False
    n = int(m.group(1)) if m.group(1) else _ORDINALS[m.group(2)]
    return not (1 <= n <= len(options) or -len(options) <= n < 0)


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def exhausted_message(ctx: TurnContext) -> str:
    rounds = ctx.deps.limits.clarify_rounds
    return (f"I still can't tell exactly what you mean after {rounds} clarifying question"
            f"{'s' if rounds != 1 else ''} (the last was: {ctx.clarification}). Please ask "
            "again with full names, a fund, or a period.")


def pick_option(reply: str, options: list[str]) -> str | None:
    """The option a reply selects: its number, its ordinal, its name or a unique part of it."""
    if not options or not reply:
        return None
    text = reply.strip().strip(".!").lower()
    m = re.fullmatch(r"#?\s*(\d{1,2})", text)
    if m and 1 <= int(m.group(1)) <= len(options):
        return options[int(m.group(1)) - 1]
    for word, n in _ORDINALS.items():
        if re.search(rf"\b{word}\b", text):
            return options[n - 1 if n > 0 else n] if abs(n) <= len(options) else None
    exact = [o for o in options if o.lower() == text]
    if exact:
        return exact[0]
    words = set(re.findall(r"[a-z0-9]+", text))
    hits = [o for o in options if o.lower() in text or _distinctive(o, options) & words]
    return hits[0] if len(hits) == 1 else None


def _distinctive(option: str, options: list[str]) -> set[str]:
    """Words of an option that no other option has ("Levin" in "Adam Levin")."""
    mine = set(re.findall(r"[a-z0-9]+", option.lower()))
    others = set()
    for o in options:
        if o != option:
            others |= set(re.findall(r"[a-z0-9]+", o.lower()))
    return mine - others
