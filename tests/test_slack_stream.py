"""Slack's current agent platform through the real Bolt app and the emulator: the status
instead of a placeholder, answers streamed with the machine's steps, the fallback to
post-and-update when streaming is unavailable or breaks off, the agent DM's prompts, and the
App Home tab."""

# The app fixtures come from test_slack_app and are used by name (F811 would flag each use).
# ruff: noqa: F811

from __future__ import annotations

import json

from tests.test_slack_app import (  # noqa: F401 -- fixtures, used by name
    ALICE,
    CHANNEL,
    SQL_ADAM,
    SQL_COUNT,
    SQL_MANY,
    Bot,
    bot,
    make_bot,
    warehouse_path,
)

ANSWER = "We have 120 portfolio companies."


def _ask(bot: Bot, text: str = "how many companies do we have?") -> tuple[str, dict]:
    bot.script.add("how many companies", SQL_COUNT, ANSWER)
    event, _ = bot.mention(text)
    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()
    (answer,) = bot.slack.bot_replies(CHANNEL, event["ts"])
    return event["ts"], answer


def test_the_answer_streams_with_the_machines_steps(bot: Bot):
    root, answer = _ask(bot)
    methods = bot.slack.methods()
    # The status shows first (no placeholder), then one stream from start to stop.
    assert methods.index("assistant.threads.setStatus") < methods.index("chat.startStream")
    assert "chat.postMessage" not in methods
    (start,) = bot.slack.calls_to("chat.startStream")
    first = start.args["chunks"][0]
    assert first == {"type": "task_update", "id": "understand",
                     "title": "Understanding the question", "status": "in_progress"}
    assert answer["task_log"] == [
        ("understand", "in_progress"), ("understand", "complete"),
        ("execute", "in_progress"), ("execute", "complete"),
        ("interpret", "in_progress"), ("interpret", "complete"),
        ("verify", "in_progress"), ("verify", "complete")]
    # The text streamed; the stop brought the context, the SQL and the feedback buttons, and
    # the table followed on the same message.
    (stop,) = bot.slack.calls_to("chat.stopStream")
    assert [b["type"] for b in stop.args["blocks"]] == ["context", "section", "context_actions"]
    assert answer["text"] == ANSWER and answer["blocks"][0]["text"] == ANSWER
    assert answer["attachments"][0]["blocks"][0]["type"] == "table"
    assert bot.slack.calls_to("chat.update")[-1].args["ts"] == answer["ts"]


def test_a_clarification_streams_too_and_its_buttons_work(bot: Bot):
    bot.script.add("adam", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    event, _ = bot.mention("how much did Adam invest?")
    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()
    (question,) = bot.answers(CHANNEL, event["ts"])
    assert [t for t, s in question["task_log"] if s == "in_progress"] == ["understand",
                                                                           "clarify"]
    assert "Which Adam" in question["text"]
    levin = question["blocks"][1]["elements"][1]
    assert bot.sender.click(user=ALICE, channel=CHANNEL, message=question,
                            action=levin).status == 200
    answers = bot.wait_answers(CHANNEL, event["ts"], n=2)
    assert answers[1]["blocks"][0]["text"] == "Adam Levin led $883.5M of investments."
    assert [t for t, s in answers[1]["task_log"] if s == "in_progress"] == [
        "clarify", "understand", "execute", "interpret", "verify"]


def test_a_failed_turn_marks_its_last_step_as_an_error(bot: Bot):
    bot.llm.enqueue_error(503, {"error": {"message": "upstream unavailable"}})
    event, _ = bot.mention("how many companies do we have?")
    (answer,) = bot.wait_answers(CHANNEL, event["ts"])
    assert answer["tasks"]["understand"]["status"] == "error"
    assert "language model" in answer["text"]


def test_without_streaming_the_same_answer_is_posted(bot: Bot):
    bot.slack.fail_next("chat.startStream", "unknown_method")  # an older workspace
    root, answer = _ask(bot)
    assert [c.method for c in bot.slack.calls_to("chat.postMessage")] == ["chat.postMessage"]
    assert answer["blocks"][0]["text"] == ANSWER
    assert [b["type"] for b in answer["blocks"]] == ["markdown", "context", "section",
                                                     "context_actions"]
    assert answer["attachments"][0]["blocks"][0]["type"] == "table"


def test_a_stream_broken_off_by_an_error_is_finished_by_an_update(bot: Bot):
    bot.slack.fail_next("chat.appendStream", "internal_error")  # after the stream started
    root, answer = _ask(bot)
    (start,) = bot.slack.calls_to("chat.startStream")
    update = bot.slack.calls_to("chat.update")[-1]
    assert update.args["ts"] == answer["ts"]  # the streamed message, not a second one
    assert answer["blocks"][0]["text"] == ANSWER
    assert [b["type"] for b in answer["blocks"]] == ["markdown", "context", "section",
                                                     "context_actions"]
    assert answer["attachments"][0]["blocks"][0]["type"] == "table"
    assert bot.slack.calls_to("chat.stopStream") == []
    assert bot.slack.calls_to("chat.postMessage") == []


def test_a_stream_refused_at_the_stop_is_finished_by_an_update(bot: Bot):
    bot.slack.fail_next("chat.stopStream", "streaming_state_conflict")
    root, answer = _ask(bot)
    assert answer["blocks"][0]["text"] == ANSWER and len(answer["blocks"]) == 4
    assert bot.slack.calls_to("chat.postMessage") == []


def test_without_status_a_placeholder_is_replaced(bot: Bot):
    bot.slack.fail_next("assistant.threads.setStatus", "not_allowed")
    root, answer = _ask(bot)
    (post,) = bot.slack.calls_to("chat.postMessage")
    assert "Working on it" in post.args["text"]
    assert answer["ts"] == post_ts(bot, root) and answer["blocks"][0]["text"] == ANSWER
    assert bot.slack.calls_to("chat.startStream") == []


def post_ts(bot: Bot, root: str) -> str:
    return bot.slack.thread(CHANNEL, root)[0]["ts"]


def test_a_large_result_streams_and_its_csv_follows(bot: Bot):
    bot.script.add("list companies", SQL_MANY, "Here are the first 15 companies.")
    event, _ = bot.mention("list companies alphabetically")
    bot.slack.wait_calls("files.completeUploadExternal")
    bot.settle()
    (answer,) = bot.answers(CHANNEL, event["ts"])
    assert "Showing 10 of 15 rows" in json.dumps(answer["blocks"])


# ----------------------------------------------------------- the agent surfaces


def test_agent_dm_messages_tab_gets_prompts_without_a_thread(bot: Bot):
    opened = bot.sender.event({"type": "app_home_opened", "user": ALICE,
                               "channel": "D0ALICE01", "tab": "messages",
                               "event_ts": bot.sender.next_ts()})
    assert bot.sender.post(opened).status == 200
    (prompts,) = bot.slack.wait_calls("assistant.threads.setSuggestedPrompts")
    assert prompts.args["channel_id"] == "D0ALICE01" and "thread_ts" not in prompts.args
    assert "Databricks" in json.dumps(prompts.args["prompts"])


def test_home_tab_shows_scope_examples_data_date_and_recent_questions(bot: Bot):
    root, _ = _ask(bot)
    opened = bot.sender.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE01",
                               "tab": "home", "event_ts": bot.sender.next_ts()})
    assert bot.sender.post(opened).status == 200
    bot.slack.wait_calls("views.publish")
    view = bot.slack.home_views[ALICE]
    text = json.dumps(view["blocks"])
    catalog = bot.deps.warehouse.catalog
    assert f"Data as of {catalog.as_of}" in text
    assert all(name in text for name in catalog.tables)
    assert "What are our ten largest positions by current value?" in text
    link = f"<https://fund.slack.com/archives/{CHANNEL}/p{root.replace('.', '')}|"
    assert link + "how many companies do we have?>" in text


def test_home_tab_for_someone_not_allowed_shows_no_data(make_bot):
    bot = make_bot(allowed_users={"UOTHER001"})
    opened = bot.sender.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE01",
                               "tab": "home", "event_ts": bot.sender.next_ts()})
    assert bot.sender.post(opened).status == 200
    bot.slack.wait_calls("views.publish")
    text = json.dumps(bot.slack.home_views[ALICE])
    assert "Sorry" in text and "valuations" not in text


def test_streaming_can_be_turned_off(make_bot):
    bot = make_bot(slack_stream=False)
    root, answer = _ask(bot)
    assert bot.slack.calls_to("chat.startStream") == []
    assert answer["blocks"][0]["text"] == ANSWER
