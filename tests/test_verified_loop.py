"""The verified-query loop end to end in Slack: a thumbs-up proposes, a reviewer verifies, a
paraphrase about another company is answered from the verified SQL with one LLM call, the
library is exported and `fundbot eval` passes on it; a thumbs-down with a comment pulls it.

The Slack emulator and the fake OpenAI server stand in for Slack and the model; the app, the
core, DuckDB, SQLite and the `fundbot` command are the real ones.
"""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.slack import render
from tests.test_slack_app import ALICE, BOB, CHANNEL, Bot, make_bot  # noqa: F401 - fixture

SQL_DB = ("SELECT SUM(i.amount_usd) AS invested FROM investments i JOIN companies c "
          "ON c.company_id = i.company_id WHERE c.company_name = 'Databricks, Inc.'")


@pytest.fixture(scope="session")
def warehouse_path(sample_db: str) -> str:  # the make_bot fixture runs on the sample warehouse
    return sample_db


def _feedback_click(bot: Bot, answer: dict, user: str, vote: str, **kw):
    buttons = answer["blocks"][-1]["elements"][0]
    button = buttons["positive_button" if vote == "up" else "negative_button"]
    action = {"type": "feedback_buttons", "action_id": render.FEEDBACK_ACTION, "block_id": "fb",
              "value": button["value"]}
    assert bot.sender.click(user=user, channel=CHANNEL, message=answer, action=action,
                            **kw).status == 200


def _review_click(bot: Bot, message: dict, channel: str, user: str, decision: str):
    button = next(e for b in message["blocks"] if b["type"] == "actions"
                  for e in b["elements"] if e["action_id"] == f"{render.REVIEW_ACTION}_{decision}")
    assert bot.sender.click(user=user, channel=channel, message=message,
                            action={**button, "block_id": "review"}).status == 200


def test_thumbs_up_to_verified_to_one_call_answer_to_eval(make_bot, tmp_path, monkeypatch,  # noqa: F811
                                                          capsys):
    bot: Bot = make_bot(reviewers={BOB})
    bot.script.add("invest in databricks", SQL_DB, "We invested $X in Databricks.")
    bot.script.add("mimo", "SELECT 1 AS wrong", "We have put $Y into Mimo so far.")

    # 1. Alice asks; the model writes the SQL; she gives the answer a thumbs-up: proposed
    event, _ = bot.mention("how much did we invest in databricks?")
    answer = bot.wait_answers(CHANNEL, event["ts"])[0]
    bot.settle()
    _feedback_click(bot, answer, ALICE, "up")
    request = bot.slack.wait_for(lambda: bot.slack.messages.get(BOB))[0]  # reviewer's DM
    (proposed,) = bot.store.list_verified("proposed")
    assert proposed.question == "how much did we invest in databricks?"
    assert proposed.sql == SQL_DB and proposed.proposed_by == ALICE
    assert [(s.kind, s.value, s.swappable) for s in proposed.slots] == [
        ("company", "Databricks, Inc.", True)]
    assert "Proposed verified query" in request["text"]

    # 2. Alice is no reviewer: her click verifies nothing; Bob's does
    _review_click(bot, request, BOB, ALICE, "verify")
    refusal = bot.slack.wait_calls("chat.postEphemeral", n=2)[-1]
    assert refusal.args["user"] == ALICE and "FUNDBOT_REVIEWERS" in refusal.args["text"]
    assert bot.store.get_verified(proposed.id).status == "proposed"
    _review_click(bot, request, BOB, BOB, "verify")
    bot.slack.wait_for(lambda: bot.slack.messages[BOB][0].get("edited"))  # buttons replaced
    assert "verified by" in bot.slack.messages[BOB][0]["text"]
    verified = bot.store.get_verified(proposed.id)
    assert verified.status == "verified" and verified.verified_by == BOB and verified.verified_at

    # 3. A paraphrase about another company: the verified SQL with Mimo, one LLM call
    before = len(bot.llm.requests)
    event, _ = bot.mention("What did we put into Mimo so far?")
    reply = bot.wait_answers(CHANNEL, event["ts"])[0]
    bot.settle()
    calls = bot.llm.requests[before:]
    assert len(calls) == 1 and not calls[0].body.get("tools")  # interpret only
    blocks = json.dumps(reply["blocks"])
    assert f"Verified query #{verified.id}" in blocks and "Mimo, Inc." in blocks
    assert "Databricks" not in blocks and "SELECT 1 AS wrong" not in blocks

    # 4. Export the library as evaluation cases; the eval passes on them
    cases = tmp_path / "verified.jsonl"
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("FUNDBOT_DB", bot.config.db_path)
    monkeypatch.setenv("FUNDBOT_STATE", bot.config.state_path)
    assert main(["verified", "export", "--out", str(cases)]) == 0
    (case,) = [json.loads(line) for line in cases.read_text().splitlines()]
    assert case["sql"] == SQL_DB and case["tags"] == ["verified"] and case["values"]
    assert main(["eval", "--cases", str(cases), "--model", "gold", "--quiet",
                 "--out", str(tmp_path / "eval"), "--min-execution-accuracy", "1"]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["summary"]["passed"] == 1
    capsys.readouterr()

    # 5. A thumbs-down with a comment on the verified answer pulls the query for review
    _feedback_click(bot, reply, BOB, "down", trigger_id="trig-bob")
    opened = bot.slack.wait_calls("views.open")[0]
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    values = {"comment": {"text": {"type": "plain_text_input", "value": "Counts exits too."}}}
    assert bot.sender.submit_view(user=BOB, view=view, values=values).status == 200
    assert "Counts exits too." in bot.store.get_verified(verified.id).broken
    dispute = bot.slack.wait_for(lambda: len(bot.slack.messages[BOB]) > 1
                                 and bot.slack.messages[BOB][-1])  # the reviewers are told
    assert "Counts exits too." in dispute["text"] and f"#{verified.id}" in json.dumps(dispute)
    assert main(["verified", "reviews", "--json"]) == 0
    (review,) = json.loads(capsys.readouterr().out)
    assert review["verified_query"] == verified.id and review["comment"] == "Counts exits too."


def test_review_request_keeps_user_text_inert():
    from states.ports import Slot, VerifiedQuery

    q = VerifiedQuery(id=7, question="<!channel> how much in <https://x.test|Mimo>?",
                      sql="SELECT 1", slots=[Slot("company", "A <b> & Co", swappable=True)])
    from bot.slack.safety import seal

    sent = seal("chat.postMessage", {"channel": "U9", **render.review_request(q, "U1")})
    text = json.dumps(sent)
    assert "<!channel>" not in text and "<https://x.test" not in text and "A <b>" not in text
    assert "<@U1>" in text  # our own mention of the proposer stays live
    assert "verified_verify" in text and "verified_retire" in text
