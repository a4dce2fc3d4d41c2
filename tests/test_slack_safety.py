"""Issue 13's defects, each through the real Bolt app and the Slack emulator: escaping in one
place, events that must be ignored or refused, clarifications only the asker answers, names
for mentions, fallbacks that leave no placeholder behind, and the CSV a spreadsheet opens."""

# The app fixtures come from test_slack_app and are used by name (F811 would flag each use).
# ruff: noqa: F811

from __future__ import annotations

import csv
import io
import json
import re
import threading

import duckdb
import pytest

from bot.slack import render, safety
from bot.slack.access import Access, from_bot, is_dm, is_external
from tests.fakes.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack
from tests.test_slack_app import (  # noqa: F401 -- fixtures, used by name
    ALICE,
    BOB,
    CHANNEL,
    SQL_ADAM,
    SQL_COUNT,
    Bot,
    bot,
    make_bot,
    warehouse_path,
)

HOSTILE = ("Acme <!channel> & <@U0CEO> <#C0GENERAL> "
           "<https://evil.example/login|Open the fund portal>")
# A live control sequence: a broadcast, a user or channel mention, or a link.
CONTROL = re.compile(r"<(?:[!@#]|https?:|mailto:)[^>]*>")


def _strings(node) -> list[str]:
    if isinstance(node, str):
        parsed = None
        if node[:1] in "[{":
            try:
                parsed = json.loads(node)
            except ValueError:
                parsed = None
        return _strings(parsed) if parsed is not None else [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _live_sequences(bot: Bot, ours: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Every control sequence in every Web API call the bot made, except those we wrote
    (`ours`: how they start)."""
    found = []
    for call in bot.slack.calls:
        for text in _strings(call.args):
            found += [(call.method, m) for m in CONTROL.findall(text)
                      if not (ours and m.startswith(ours))]
    return found


def _barrier(bot: Bot) -> str:
    """Return once every event posted before has been through Bolt and its work is done: the
    app takes events in arrival order, so when a later mention is answered, all earlier
    events were handled (or ignored)."""
    if not any(rule.keyword == "barrier" for rule in bot.script.rules):
        bot.script.add("barrier", SQL_COUNT, "Barrier passed.")
    event, _ = bot.mention("barrier: how many companies?")
    bot.wait_answers(CHANNEL, event["ts"])
    bot.settle()
    return event["ts"]


def _understood(bot: Bot) -> list[str]:
    """The questions the model was asked to turn into SQL, without the facts appended."""
    return [q.split("\n\n")[0] for phase, q in bot.script.seen if phase == "understand"]


def _done(bot: Bot, root: str, n: int = 1) -> list[dict]:
    bot.wait_answers(CHANNEL, root, n=n)
    bot.settle()
    return bot.answers(CHANNEL, root)


# ------------------------------------------------------------------ 1. escaping


def test_hostile_text_never_becomes_a_live_mention_or_link(make_bot):
    bot = make_bot()
    hostile_sql = ("SELECT company_name, 'Acme <!channel> <https://evil.example/login|Open>' "
                   "AS note FROM companies ORDER BY company_name LIMIT 12")
    # An answer: the model quotes the hostile string; the data and the SQL carry it too.
    bot.script.add("portfolio", hostile_sql, f"Top holding: {HOSTILE}")
    event, _ = bot.mention("list the portfolio &lt;!channel&gt; &amp; <@U0CEO> please")
    answer = _done(bot, event["ts"])[0]
    assert "Top holding" in answer["text"]
    # The plain fallback: Slack refuses the rich message twice (stream stop, then update).
    bot.slack.fail_next("chat.stopStream", "invalid_blocks")
    bot.slack.fail_next("chat.update", "invalid_blocks")
    event, _ = bot.mention("the portfolio again")
    plain = _done(bot, event["ts"])[0]
    assert plain["blocks"] == [] and "Top holding" in plain["text"]
    # A clarification the model asks, quoting the hostile string.
    bot.llm.enqueue_text(f"Which company do you mean: {HOSTILE}?")
    event, _ = bot.mention("how much is the widget worth?")
    question = _done(bot, event["ts"])[0]
    assert "Which company" in question["text"]
    # An error: the model is down, and this workspace cannot stream (a fresh post).
    bot.llm.enqueue_error(503, {"error": {"message": HOSTILE}})
    bot.slack.fail_next("chat.startStream", "unknown_method")
    event, _ = bot.mention(f"and {HOSTILE}?")
    _done(bot, event["ts"])
    # A modal (👎 on the answer) and the Home tab, which lists the user's questions.
    up = answer["blocks"][-1]["elements"][0]
    down = {"type": "feedback_buttons", "action_id": "feedback", "block_id": "fb",
            "value": up["negative_button"]["value"]}
    bot.settle()
    assert bot.sender.click(user=ALICE, channel=CHANNEL, message=answer,
                            action=down).status == 200
    bot.slack.wait_calls("views.open")
    home = bot.sender.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE01",
                             "tab": "home", "event_ts": bot.sender.next_ts()})
    assert bot.sender.post(home).status == 200
    bot.slack.wait_calls("views.publish")
    # A refusal (a user not on the list) goes through the same client.
    refusing = make_bot(allowed_users={BOB})
    refusing.mention(HOSTILE)
    refusing.slack.wait_calls("chat.postEphemeral")
    bot.settle()
    refusing.settle()

    methods = set(bot.slack.methods())
    assert {"chat.startStream", "chat.stopStream", "chat.update", "views.open",
            "views.publish", "files.completeUploadExternal"} <= methods
    # Only our own links to the user's threads (Home tab) are live, their labels escaped.
    permalink = "<https://fund.slack.com/archives/"
    assert _live_sequences(bot, ours=(permalink,)) == []
    links = [m for c in bot.slack.calls_to("views.publish") for t in _strings(c.args)
             for m in CONTROL.findall(t)]
    assert any("|list the portfolio &lt;!channel&gt; &amp; @U0CEO please>" in m for m in links)
    # Every post went out with unfurling off.
    assert bot.slack.calls_to("chat.postMessage")
    for call in bot.slack.calls_to("chat.postMessage"):
        assert call.args.get("unfurl_links") in (False, "false", "0", 0)
        assert call.args.get("unfurl_media") in (False, "false", "0", 0)
    # The question reached the model as the words the user typed, entities undone once.
    assert ("understand", "list the portfolio <!channel> & @U0CEO please") in bot.script.seen


def test_our_own_mentions_stay_live_and_a_clicked_option_is_escaped(bot: Bot):
    bot.script.add("adam", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    event, _ = bot.mention("how much did Adam invest?")
    question = _done(bot, event["ts"])[0]
    levin = question["blocks"][1]["elements"][1]
    bot.sender.click(user=BOB, channel=CHANNEL, message=question, action=levin)
    bot.wait_answers(CHANNEL, event["ts"], n=2)
    bot.settle()
    chosen = bot.slack.thread(CHANNEL, event["ts"])[0]
    assert f"<@{BOB}> chose *Adam Levin*" in json.dumps(chosen["blocks"])
    assert _live_sequences(bot, ours=(f"<@{BOB}>",)) == []


def test_bolts_own_helpers_go_through_the_seal_too(bot: Bot):
    # A listener using Bolt's context (say, client) instead of ours is sealed as well.
    @bot.app.event("reaction_added")
    def on_reaction(say, event: dict) -> None:
        say(text=HOSTILE, channel=event["item"]["channel"])

    reaction = bot.sender.event({"type": "reaction_added", "user": ALICE, "reaction": "eyes",
                                 "item": {"type": "message", "channel": CHANNEL, "ts": "1.0"},
                                 "event_ts": bot.sender.next_ts()})
    assert bot.sender.post(reaction).status == 200
    (said,) = bot.slack.wait_calls("chat.postMessage")
    assert "&lt;!channel&gt;" in said.args["text"] and _live_sequences(bot) == []


# ------------------------------------------------------- 2, 3. events to ignore


def test_an_edited_mention_is_not_answered_again(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    payload = bot.sender.mention(CHANNEL, ALICE, "how many companies do we have?")
    assert bot.sender.post(payload).status == 200
    _done(bot, payload["event"]["ts"])
    # Slack re-sends the mention, edited, under a new event id.
    edited = bot.sender.event({**payload["event"], "text": f"<@{BOT_USER_ID}> how many "
                               "companies do we have now?",
                               "edited": {"user": ALICE, "ts": bot.sender.next_ts()}})
    assert bot.sender.post(edited).status == 200
    _barrier(bot)
    assert len(bot.slack.bot_replies(CHANNEL, payload["event"]["ts"])) == 1
    assert _understood(bot) == ["how many companies do we have?", "barrier: how many companies?"]


def test_other_apps_are_ignored_unless_allow_listed(make_bot):
    bot = make_bot(allowed_users={ALICE})  # with an allow-list on, no refusal goes out either
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    app_mention = bot.sender.mention(CHANNEL, "UOTHERBOT", "how many companies?")
    app_mention["event"].update(bot_id="BOTHER001", app_id="AOTHER001")
    dm = bot.sender.message("D0ALICE01", "UOTHERBOT", "how many companies?", channel_type="im",
                            bot_profile={"app_id": "AOTHER001"})
    for payload in (app_mention, dm):
        assert bot.sender.post(payload).status == 200
    _barrier(bot)
    assert _understood(bot) == ["barrier: how many companies?"]
    assert bot.slack.calls_to("chat.postEphemeral") == []  # not even a refusal
    assert bot.slack.bot_replies("D0ALICE01", dm["event"]["ts"]) == []

    allowed = make_bot(allowed_bots={"AOTHER001"})
    allowed.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    payload = allowed.sender.mention(CHANNEL, "UOTHERBOT", "how many companies?")
    payload["event"].update(bot_id="BOTHER001", app_id="AOTHER001")
    assert allowed.sender.post(payload).status == 200
    assert allowed.wait_answers(CHANNEL, payload["event"]["ts"])


# ------------------------------------------------- 4. only the asker answers


def test_a_pending_clarification_hears_only_the_asker(bot: Bot):
    bot.script.add("adam", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    event, _ = bot.mention("how much did Adam invest?")
    root = event["ts"]
    _done(bot, root)
    other = bot.sender.message(CHANNEL, BOB, "Adam Brooks", thread_ts=root)
    assert bot.sender.post(other).status == 200
    _barrier(bot)
    assert len(bot.answers(CHANNEL, root)) == 1
    assert bot.store.load(f"{CHANNEL}:{root}").status == "clarify"

    # Bob mentioning the bot in the thread is not taken as the answer either; he is told why.
    bot.mention("Adam Brooks", user=BOB, thread_ts=root)
    note = bot.slack.wait_calls("chat.postEphemeral")[0]
    assert note.args["user"] == BOB and note.args["text"] == render.WAITING_FOR_ASKER
    _barrier(bot)
    assert bot.store.load(f"{CHANNEL}:{root}").status == "clarify"

    mine = bot.sender.message(CHANNEL, ALICE, "Adam Levin", thread_ts=root)
    assert bot.sender.post(mine).status == 200
    answers = _done(bot, root, n=2)
    assert answers[1]["blocks"][0]["text"] == "Adam Levin led $883.5M of investments."
    resumed = bot.script.seen[-2][1]  # the understand call that followed Alice's reply
    assert "Adam Levin" in resumed and "Adam Brooks" not in resumed


# ---------------------------------------------------------- 5. Slack Connect


def test_slack_connect_guests_are_refused_unless_allowed(make_bot):
    bot = make_bot()
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    guest = bot.sender.mention(CHANNEL, "UGUEST001", "how many companies?")
    guest["event"]["user_team"] = "T0OTHERORG"
    guest["is_ext_shared_channel"] = True
    unknown = bot.sender.mention(CHANNEL, "UGUEST002", "how many companies?")
    unknown["is_ext_shared_channel"] = True  # shared channel, workspace not stated: outside
    member = bot.sender.mention(CHANNEL, ALICE, "how many companies?")
    member["event"]["user_team"] = TEAM_ID
    member["is_ext_shared_channel"] = True
    for payload in (guest, unknown, member):
        assert bot.sender.post(payload).status == 200
    assert bot.wait_answers(CHANNEL, member["event"]["ts"])
    bot.settle()
    refusals = bot.slack.calls_to("chat.postEphemeral")
    assert sorted(c.args["user"] for c in refusals) == ["UGUEST001", "UGUEST002"]
    assert all(c.args["text"] == render.external_refusal() for c in refusals)
    assert [c.args["thread_ts"] for c in refusals if c.args["user"] == "UGUEST001"] == [
        guest["event"]["ts"]]
    assert len(bot.slack.calls_to("chat.startStream")) == 1

    open_bot = make_bot(allow_external=True)
    guest2 = open_bot.sender.mention(CHANNEL, "UGUEST001", "how many companies?")
    guest2["event"]["user_team"] = "T0OTHERORG"
    guest2["is_ext_shared_channel"] = True
    assert open_bot.sender.post(guest2).status == 200
    assert open_bot.wait_answers(CHANNEL, guest2["event"]["ts"])


# --------------------------------------------------------- 6. CSV injection


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(bot: Bot):
    sql = ("SELECT company_name, '=HYPERLINK(\"https://evil.example\",\"x\")' AS a, "
           "'+1+2' AS b, '-3+4' AS c, '@SUM(A1)' AS d, -5 AS n FROM companies "
           "ORDER BY company_name LIMIT 15")
    bot.script.add("export", sql, "Here they are.")
    event, _ = bot.mention("export the companies")
    bot.slack.wait_calls("files.completeUploadExternal")
    bot.settle()
    (record,) = bot.slack.files.values()
    rows = list(csv.reader(io.StringIO(record["content"].decode())))
    assert rows[0] == ["company_name", "a", "b", "c", "d", "n"]
    assert rows[1][1:] == ["'=HYPERLINK(\"https://evil.example\",\"x\")", "'+1+2", "'-3+4",
                           "'@SUM(A1)", "-5"]  # a negative number is a number, left alone


# ------------------------------------------- 7. plain fallback, table cell caps


def test_plain_fallback_clears_the_placeholder_blocks(make_bot):
    bot = make_bot(slack_stream=False)
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    bot.slack.fail_next("assistant.threads.setStatus", "not_allowed")  # an older workspace
    bot.slack.fail_next("chat.update", "invalid_blocks")  # and Slack refuses the rich answer
    event, _ = bot.mention("how many companies do we have?")
    bot.slack.wait_calls("chat.update", n=2)
    bot.settle()
    (message,) = bot.slack.bot_replies(CHANNEL, event["ts"])
    assert message["text"] == "We have 120 portfolio companies."
    assert message["blocks"] == [] and message["attachments"] == []  # no "Working on it…"
    plain = bot.slack.calls_to("chat.update")[1].args
    assert plain["blocks"] in ([], "[]")


def test_long_values_are_capped_in_table_cells(bot: Bot):
    sql = f"SELECT company_name, '{'x' * 5000}' AS memo FROM companies LIMIT 3"
    bot.script.add("memos", sql, "Three memos.")
    event, _ = bot.mention("show the memos")
    answer = _done(bot, event["ts"])[0]
    cells = [c for row in answer["attachments"][0]["blocks"][0]["rows"] for c in row]
    assert max(len(c["text"]) for c in cells) == render.CELL_CHARS
    assert sum(len(c["text"]) for c in cells) <= render.TABLE_CHARS


# ---------------------------------------------- 9. other people's names, links


def test_other_users_mentions_become_their_names_and_links_their_labels(bot: Bot):
    bot.slack.add_user("U0ADAM001", "adam", "Adam Levin")
    bot.script.add("invest in", SQL_ADAM, "Adam Levin led $883.5M of investments.")
    bot.script.add("deck", SQL_COUNT, "We have 120 portfolio companies.")
    event, _ = bot.mention("what did <@U0ADAM001> invest in")
    _done(bot, event["ts"])
    event, _ = bot.mention("and <@U0ADAM001> per <https://docs.example/deck|the deck>?")
    _done(bot, event["ts"])
    assert _understood(bot) == ["what did @Adam Levin invest in", "and @Adam Levin per the deck?"]
    assert len(bot.slack.calls_to("users.info")) == 1  # remembered


# ------------------------------------------------ 10. context changes, scopes


def test_assistant_context_changes_cost_no_calls(bot: Bot):
    root = bot.sender.next_ts()
    for channel in ("C0ONE", "C0TWO", "C0THREE"):
        changed = bot.sender.event({
            "type": "assistant_thread_context_changed",
            "assistant_thread": {"user_id": ALICE, "channel_id": "D0PANEL01", "thread_ts": root,
                                 "context": {"channel_id": channel, "team_id": TEAM_ID}},
            "event_ts": bot.sender.next_ts()})
        assert bot.sender.post(changed).status == 200
    _barrier(bot)
    # Bolt's default store would read the thread and rewrite the greeting on every switch.
    panel = [c.method for c in bot.slack.calls if "D0PANEL01" in json.dumps(c.args)]
    assert panel == []


# ------------------------------------------------ 11. files, views.open deadline


def test_an_option_longer_than_a_button_value_still_works(make_bot, warehouse_path,
                                                          tmp_path):
    # A warehouse whose ambiguous company names are longer than a button value can carry.
    db = tmp_path / "long_names.duckdb"
    suffix = " (" + "formerly a very long legal name, " * 80 + ")"
    with duckdb.connect(str(db)) as con:  # a copy without the foreign keys, to edit a name
        con.execute(f"ATTACH '{warehouse_path}' AS src (READ_ONLY)")
        tables = con.execute("SELECT table_name FROM information_schema.tables "
                             "WHERE table_catalog = 'src'").fetchall()
        for (table,) in tables:
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table}")
        con.execute("UPDATE companies SET company_name = company_name || ? "
                    "WHERE company_name ILIKE 'acme robotic%'", [suffix])
    bot = make_bot(db_path=str(db))
    sql = "SELECT count(*) AS n FROM companies WHERE company_name ILIKE 'acme robotics, inc.%'"
    bot.script.add("acme", sql, "One company.")
    event, _ = bot.mention("how much did we put into acme?")
    question = _done(bot, event["ts"])[0]
    buttons = question["blocks"][1]["elements"]
    options = bot.store.load(f"{CHANNEL}:{event['ts']}").pending.options
    assert min(len(o) for o in options) > 2000
    assert all(len(b["value"]) < 40 for b in buttons)
    chosen = next(b for b, o in zip(buttons, options, strict=True)
                  if o.startswith("Acme Robotics, Inc."))
    assert bot.sender.click(user=ALICE, channel=CHANNEL, message=question,
                            action=chosen).status == 200
    answers = bot.wait_answers(CHANNEL, event["ts"], n=2)
    assert answers[1]["blocks"][0]["text"] == "One company."
    resumed = [q for phase, q in bot.script.seen if phase == "understand"][-1]
    assert "Acme Robotics, Inc. (formerly" in resumed and "Acme Robotic Systems" not in resumed


def test_a_dm_with_a_file_is_answered_with_a_note(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    dm = bot.sender.message("D0ALICE01", ALICE, "how many companies do we have?",
                            channel_type="im", subtype="file_share",
                            files=[{"id": "F1", "name": "deck.pdf"}])
    assert bot.sender.post(dm).status == 200
    answer = bot.slack.wait_for(lambda: [m for m in bot.slack.bot_replies("D0ALICE01",
                                                                           dm["event"]["ts"])
                                         if not m.get("streaming")])[0]
    assert answer["blocks"][0]["text"] == "We have 120 portfolio companies."
    assert render.FILES_NOTE in json.dumps(answer["blocks"])


def test_views_open_is_not_queued_behind_busy_slack_calls(bot: Bot):
    bot.script.add("how many companies", SQL_COUNT, "We have 120 portfolio companies.")
    event, _ = bot.mention("how many companies do we have?")
    answer = _done(bot, event["ts"])[0]
    release = threading.Event()
    blocked = [bot.dispatcher.ui(release.wait) for _ in range(16)]  # every ui worker busy
    try:
        up = answer["blocks"][-1]["elements"][0]
        down = {"type": "feedback_buttons", "action_id": "feedback", "block_id": "fb",
                "value": up["negative_button"]["value"]}
        assert bot.sender.click(user=ALICE, channel=CHANNEL, message=answer,
                                action=down, trigger_id="trig-now").status == 200
        opened = bot.slack.wait_calls("views.open")[0]
        assert opened.args["trigger_id"] == "trig-now"
    finally:
        release.set()
        for future in blocked:
            future.result(timeout=10)


# ------------------------------------------- the seal and access rules, function by function
# Direct and exact: each rule of `seal` and `Access`, with no app in the way.

Z = safety.ZWSP


def test_escape_mrkdwn_is_slacks_three_escapes():
    assert safety.escape_mrkdwn("<!channel> & <@U1> a>b") == (
        "&lt;!channel&gt; &amp; &lt;@U1&gt; a&gt;b")
    assert safety.escape_mrkdwn("&lt;") == "&amp;lt;"  # an entity typed is shown as typed


def test_defang_leaves_no_control_sequence_or_entity():
    assert safety.defang("<!channel> &amp; <@U1>") == f"<{Z}!channel> &{Z}amp; <{Z}@U1>"
    assert safety.defang("a > b") == "a > b"


@pytest.mark.parametrize(("text", "shown"), [
    ("[Open](https://evil.example/login)", "Open (https://evil.example/login)"),
    ("see ![img](https://x.example/a.png) now", "see img (https://x.example/a.png) now"),
    ('[t]( https://x.example "title")', "t (https://x.example)"),
    ("[](https://x.example)", " (https://x.example)"),
    ("[a\nb](https://x.example)", "[a\nb](https://x.example)"),  # not a link: left alone
    ("[a](b) and [c](d)", "a (b) and c (d)"),
])
def test_defang_shows_the_address_of_markdown_links(text, shown):
    assert safety.defang(text) == shown


def test_own_sequences_stay_live_and_forged_markers_do_not():
    ours = safety.mention("U0ALICE")
    assert safety.escape_mrkdwn(f"<b> {ours} & ") == "&lt;b&gt; <@U0ALICE> &amp; "
    assert safety.defang(f"<b>{ours}<") == f"<{Z}b><@U0ALICE><{Z}"
    # Markers typed by someone who does not know the per-process secret are dropped.
    forged = "\ue000<@U0CEO>\ue001 \ue000" + "0" * 16 + "<!channel>\ue001"
    assert safety.escape_mrkdwn(forged) == "&lt;@U0CEO&gt; " + "0" * 16 + "&lt;!channel&gt;"
    assert safety.defang("a\ue001b") == "ab"
    assert safety.escape_mrkdwn("a\ue000b" + ours) == "ab<@U0ALICE>"  # before our own too
    two = f"{safety.mention('U1')}<{safety.mention('U2')}>"
    assert safety.escape_mrkdwn(two) == "<@U1>&lt;<@U2>&gt;"
    assert safety.own("<x>") != "<x>" and safety.escape_mrkdwn(safety.own("<x>")) == "<x>"


@pytest.mark.parametrize(("user", "live"), [
    ("U0ALICE", "<@U0ALICE>"), ("U1> <!channel", "<@U1channel>"), ("w_1|x", "<@w1x>")])
def test_a_mention_holds_only_the_id(user, live):
    assert safety.escape_mrkdwn(safety.mention(user)) == live


def test_a_link_keeps_its_address_and_escapes_its_label():
    made = safety.link("https://fund.slack.com/a?b=1|2>3", "Q <!here> & <@U1>")
    assert safety.escape_mrkdwn(made) == (
        "<https://fund.slack.com/a?b=1%7C2%3E3|Q &lt;!here&gt; &amp; &lt;@U1&gt;>")


def test_seal_passes_other_methods_and_empty_arguments_untouched():
    args = {"text": "<!channel>", "channel": "C1"}
    assert safety.seal("conversations.replies", args) is args
    assert safety.seal("chat.postMessage", None) is None
    assert safety.seal("chat.postMessage", {}) == {}


def test_seal_text_by_kind():
    args = {"text": "<!channel> [a](b)", "channel": "C<1>", "thread_ts": "1.0",
            "markdown_text": "<@U1> [a](b)", "initial_comment": "<!here> [a](b)"}
    sealed = safety.seal("chat.update", args)
    assert sealed == {"text": "&lt;!channel&gt; [a](b)", "channel": "C<1>", "thread_ts": "1.0",
                      "markdown_text": f"<{Z}@U1> a (b)",
                      "initial_comment": "&lt;!here&gt; [a](b)"}
    assert args["text"] == "<!channel> [a](b)"  # a new dict: the caller's is left alone
    plain = safety.seal("chat.update", {"text": "<!channel> [a](b)", "mrkdwn": False})
    assert plain == {"text": f"<{Z}!channel> a (b)", "mrkdwn": False}
    assert safety.seal("chat.update", {"text": "<x>", "mrkdwn": True})["text"] == "&lt;x&gt;"
    assert safety.seal("chat.update", {"text": 5, "markdown_text": None,
                                       "initial_comment": 7}) == {
        "text": 5, "markdown_text": None, "initial_comment": 7}


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.scheduleMessage"])
def test_posts_go_out_without_unfurling(method):
    assert safety.seal(method, {"text": "a"}) == {
        "text": "a", "unfurl_links": False, "unfurl_media": False}
    asked = safety.seal(method, {"text": "a", "unfurl_links": True, "unfurl_media": True})
    assert asked["unfurl_links"] is True and asked["unfurl_media"] is True


def test_other_message_methods_take_no_unfurl_arguments():
    assert safety.seal("chat.update", {"text": "a"}) == {"text": "a"}
    assert safety.seal("chat.postEphemeral", {"text": "a"}) == {"text": "a"}


def _hostile_blocks() -> list[dict]:
    return [
        {"type": "section", "block_id": "<b>", "text": {"type": "mrkdwn", "text": "<!channel>"},
         "fields": [{"type": "plain_text", "text": "<@U1>", "emoji": True}]},
        {"type": "markdown", "text": "[x](https://e.example) <!here>"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "a & b"}, "<loose>"]},
        {"type": "actions", "elements": [{
            "type": "button", "action_id": "<a>", "value": "<v>", "url": "https://e/?a&b",
            "style": "primary", "text": {"type": "plain_text", "text": "<!subteam>"}}]},
        {"type": "table", "rows": [[{"type": "raw_number", "value": 2.5, "text": "<2>"}]],
         "column_settings": [{"is_wrapped": True}, None]},
    ]


def _sealed_blocks() -> list[dict]:
    return [
        {"type": "section", "block_id": "<b>", "text": {"type": "mrkdwn",
                                                        "text": "&lt;!channel&gt;"},
         "fields": [{"type": "plain_text", "text": f"<{Z}@U1>", "emoji": True}]},
        {"type": "markdown", "text": f"x (https://e.example) <{Z}!here>"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "a &amp; b"},
                                         f"<{Z}loose>"]},
        {"type": "actions", "elements": [{
            "type": "button", "action_id": "<a>", "value": "<v>", "url": "https://e/?a&b",
            "style": "primary", "text": {"type": "plain_text", "text": f"<{Z}!subteam>"}}]},
        {"type": "table", "rows": [[{"type": "raw_number", "value": 2.5,
                                     "text": f"<{Z}2>"}]],
         "column_settings": [{"is_wrapped": True}, None]},
    ]


@pytest.mark.parametrize("key", ["blocks", "attachments", "chunks"])
def test_seal_walks_blocks_by_how_slack_reads_each_string(key):
    sealed = safety.seal("chat.postEphemeral", {key: _hostile_blocks()})
    assert sealed == {key: _sealed_blocks()}


def test_seal_walks_views_and_blocks_sent_as_json_strings():
    view = {"type": "home", "callback_id": "<c>", "private_metadata": "<m>",
            "blocks": _hostile_blocks()}
    assert safety.seal("views.publish", {"user_id": "U1", "view": view}) == {
        "user_id": "U1", "view": {**view, "blocks": _sealed_blocks()}}
    view_json = safety.seal("views.publish", {"user_id": "U1", "view": json.dumps(view)})
    assert json.loads(view_json["view"]) == {**view, "blocks": _sealed_blocks()}
    as_json = safety.seal("chat.update", {"blocks": json.dumps(_hostile_blocks())})
    assert json.loads(as_json["blocks"]) == _sealed_blocks()
    # a string that is not JSON is still defanged, not sent raw
    assert safety.seal("chat.update", {"blocks": "[<!channel>"}) == {"blocks": f"[<{Z}!channel>"}
    assert safety.seal("chat.update", {"blocks": "<!channel>"}) == {"blocks": f"<{Z}!channel>"}


def test_seal_defangs_the_plain_top_level_arguments():
    prompts = [{"title": "<!channel>", "message": "[a](b)"}]
    sealed = safety.seal("assistant.threads.setSuggestedPrompts", {
        "channel_id": "D1", "title": "<@U1>", "prompts": prompts})
    assert sealed == {"channel_id": "D1", "title": f"<{Z}@U1>",
                      "prompts": [{"title": f"<{Z}!channel>", "message": "a (b)"}]}
    as_json = safety.seal("assistant.threads.setSuggestedPrompts",
                          {"prompts": json.dumps(prompts)})
    assert as_json == {"prompts": [{"title": f"<{Z}!channel>", "message": "a (b)"}]}
    status = safety.seal("assistant.threads.setStatus", {
        "status": "<!here>", "loading_messages": ["<@U1>", "ok"]})
    assert status == {"status": f"<{Z}!here>", "loading_messages": [f"<{Z}@U1>", "ok"]}


@pytest.fixture(scope="module")
def slack_api():
    with FakeSlack() as slack:
        yield slack


def test_the_sealed_client_seals_json_form_and_query_arguments(slack_api: FakeSlack):
    from slack_sdk.errors import SlackApiError, SlackRequestError

    client = safety.SealedClient(token="xoxb-test-token", base_url=slack_api.api_url)
    before = len(slack_api.calls)
    client.chat_postMessage(channel="C1", text="<!channel>", blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "<@U1>"}}])
    client.api_call("chat.postEphemeral", data={"channel": "C1", "user": "U1",
                                                "text": "<!here>"})
    client.api_call("chat.postEphemeral", http_verb="GET",
                    params={"channel": "C1", "user": "U1", "text": "<!everyone>"})
    with pytest.raises(SlackApiError, match="invalid_auth"):  # our headers reach Slack
        client.api_call("chat.postEphemeral", json={"channel": "C1", "user": "U1", "text": "x"},
                        headers={"Authorization": "Bearer xoxb-other"})
    client.api_call("auth.test", json={"text": "<!channel>"})
    calls = slack_api.calls[before:]
    assert [c.method for c in calls] == ["chat.postMessage"] + ["chat.postEphemeral"] * 3 + [
        "auth.test"]
    assert calls[0].args == {
        "channel": "C1", "text": "&lt;!channel&gt;", "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "&lt;@U1&gt;"}}]}
    assert [c.args["text"] for c in calls[1:4]] == ["&lt;!here&gt;", "&lt;!everyone&gt;", "x"]
    assert [c.token for c in calls] == ["xoxb-test-token"] * 3 + ["xoxb-other",
                                                                  "xoxb-test-token"]
    assert calls[4].args == {"text": "<!channel>"}  # not a message method: left as it is
    # the verb is passed on too: Slack's client refuses a JSON body sent with GET
    with pytest.raises(SlackRequestError):
        client.api_call("chat.postMessage", http_verb="GET", json={"channel": "C1"})


def test_the_sealed_client_passes_auth_through(slack_api: FakeSlack):
    from slack_sdk.errors import SlackApiError

    client = safety.SealedClient(token="xoxb-test-token", base_url=slack_api.api_url)
    # Basic auth instead of the bot token: the emulator sees no token and says so.
    with pytest.raises(SlackApiError, match="not_authed"):
        client.api_call("auth.test", auth={"client_id": "id", "client_secret": "secret"})
    assert slack_api.calls[-1].method == "auth.test" and slack_api.calls[-1].token is None


def test_access_of_builds_frozen_sets():
    assert Access.of(None, None) == Access(frozenset(), frozenset(), frozenset(), False,
                                           frozenset())
    made = Access.of({"U1"}, {"C1"}, {"B1"}, True, {"U2"})
    assert made == Access(users=frozenset({"U1"}), channels=frozenset({"C1"}),
                          bots=frozenset({"B1"}), external=True, reviewers=frozenset({"U2"}))
    assert Access.of({"U1"}, None).external is False


@pytest.mark.parametrize(("users", "channels", "user", "channel", "dm", "allowed"), [
    (None, None, "U1", "C1", False, True),
    (None, None, None, "C1", False, True),
    ({"U1"}, None, "U1", "C1", False, True),
    ({"U1"}, None, "U2", "C1", False, False),
    ({"U1"}, None, None, "C1", False, False),
    (None, {"C1"}, "U2", "C1", False, True),
    (None, {"C1"}, "U2", "C2", False, False),
    (None, {"C1"}, "U2", "D2", True, False),  # a DM is not a channel: only named users
    ({"U1"}, {"C1"}, "U1", "D1", True, True),
    ({"U1"}, {"C1"}, "U1", "C2", False, False),
    ({"U1"}, {"C1"}, "U2", "D2", True, False),
])
def test_access_allows(users, channels, user, channel, dm, allowed):
    assert Access.of(users, channels).allows(user, channel, dm) is allowed


def test_a_dm_is_not_allowed_by_default_when_channels_are_restricted():
    assert Access.of({"U1"}, {"C1"}).allows("U1", "D1") is False


@pytest.mark.parametrize(("event", "allowed"), [
    ({"bot_id": "B1"}, True),
    ({"app_id": "A1"}, True),
    ({"bot_profile": {"app_id": "A1"}}, True),
    ({"bot_id": "B2", "app_id": "A2", "bot_profile": {"app_id": "A3"}}, False),
    ({"bot_id": "B2", "bot_profile": None}, False),
    ({"bot_id": None, "app_id": "", "subtype": "bot_message"}, False),
])
def test_access_allows_only_named_bots(event, allowed):
    assert Access.of(None, None, bots={"B1", "A1"}).allows_bot(event) is allowed
    assert Access.of(None, None).allows_bot(event) is False


def test_an_empty_id_never_matches_an_empty_entry():
    assert Access(bots=frozenset({""})).allows_bot({"bot_id": "", "app_id": ""}) is False
    assert Access(bots=frozenset({None})).allows_bot({"bot_id": "B1"}) is False


@pytest.mark.parametrize(("event", "bot"), [
    ({"bot_id": "B1"}, True), ({"bot_profile": {"app_id": "A1"}}, True),
    ({"app_id": "A1"}, True), ({"subtype": "bot_message"}, True),
    ({"user": "U1", "subtype": "message_changed"}, False), ({"user": "U1"}, False),
    ({"bot_id": "", "bot_profile": None, "app_id": None}, False),
])
def test_from_bot(event, bot):
    assert from_bot(event) is bot


@pytest.mark.parametrize(("home", "team", "shared", "outside"), [
    ({"T1"}, "T1", True, False), ({"T1", "E1"}, "E1", False, False),
    ({"T1"}, "T2", False, True), ({"T1"}, None, True, True), ({"T1"}, None, False, False),
    ({"", None}, "T2", False, False), ({""}, "T2", True, True), (set(), "T2", False, False),
])
def test_is_external(home, team, shared, outside):
    assert is_external(home, team, shared) is outside


def test_a_channel_is_not_shared_unless_the_event_says_so():
    assert is_external({"T1"}, None) is False


@pytest.mark.parametrize(("channel", "kind", "dm"), [
    ("D123", None, True), ("C123", "im", True), ("C123", "channel", False),
    ("CD12", None, False), ("G123", "mpim", False), ("d123", None, False)])
def test_is_dm(channel, kind, dm):
    assert is_dm(channel, kind) is dm
