"""The Slack app: Bolt listeners that hand questions to the core and render its answers."""

from bot.slack.app import HttpServer, create_app, serve

__all__ = ["HttpServer", "create_app", "serve"]
