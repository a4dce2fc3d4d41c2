"""manifest.json against Slack's published manifest schema, and its scopes against what the
code calls: exactly the scopes the Web API methods and the subscribed events need."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

ROOT = Path(__file__).parent.parent
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
# slackapi/manifest-schema, vendored unchanged; source and commit in tests/data/README.md.
SCHEMA = json.loads((Path(__file__).parent / "data" / "slack_manifest.schema.2.0.0.json")
                    .read_text())

# Bot-token scopes each Web API method needs, from its reference page
# (https://docs.slack.dev/reference/methods/<method>). assistant.threads.setStatus takes
# chat:write since 2026-03 (changelog "Set status method scope update").
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.startStream": {"chat:write"},
    "chat.appendStream": {"chat:write"},
    "chat.stopStream": {"chat:write"},
    "assistant.threads.setStatus": {"chat:write"},
    "assistant.threads.setTitle": {"assistant:write"},
    "assistant.threads.setSuggestedPrompts": {"assistant:write"},
    "views.open": set(),
    "views.publish": set(),
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    "users.info": {"users:read"},
}
# slack_sdk helpers that stand for several methods.
HELPERS = {
    "files_upload_v2": ["files.getUploadURLExternal", "files.completeUploadExternal"],
    "chat_stream": ["chat.startStream", "chat.appendStream", "chat.stopStream"],
}
# Scopes each subscribed event needs (https://docs.slack.dev/reference/events/<event>).
EVENT_SCOPES: dict[str, set[str]] = {
    "app_mention": {"app_mentions:read"},
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "message.im": {"im:history"},
    "assistant_thread_started": {"assistant:write"},
    "assistant_thread_context_changed": {"assistant:write"},
    "app_home_opened": set(),
}


def _called_methods() -> set[str]:
    """Every Web API method the Slack app's code calls through its client."""
    methods: set[str] = set()
    for path in (ROOT / "bot" / "slack").rglob("*.py"):
        for name in re.findall(r"\bclient\.([a-z]+_[A-Za-z0-9_]+)\(", path.read_text()):
            methods.update(HELPERS.get(name) or [name.replace("_", ".")])
    return methods


def test_manifest_is_valid_against_slacks_published_schema():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(MANIFEST), key=str)
    assert errors == []


def test_schema_catches_a_broken_manifest():
    broken = json.loads(json.dumps(MANIFEST))
    broken["features"]["agent_view"]["suggested_prompts"].append({"title": "no message"})
    broken["features"]["agent_view"]["unknown"] = True
    assert len(list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))) == 2


def test_manifest_uses_the_agent_view_and_the_home_tab():
    features = MANIFEST["features"]
    assert "assistant_view" not in features  # Slack's legacy name
    assert features["agent_view"]["agent_description"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True


def test_scopes_are_exactly_what_the_code_and_the_events_need():
    called = _called_methods()
    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"add the scopes these methods need to METHOD_SCOPES: {unknown}"
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert events == EVENT_SCOPES.keys()
    needed = set().union(*(METHOD_SCOPES[m] for m in called),
                         *(EVENT_SCOPES[e] for e in events))
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_the_scan_sees_the_calls_the_app_makes():
    # The emulator-backed tests exercise these; the scan must find them in the source.
    assert {"chat.startStream", "assistant.threads.setStatus", "users.info", "views.publish",
            "files.completeUploadExternal", "views.open"} <= _called_methods()
