"""Fakes of outside services that speak the real protocols on 127.0.0.1."""

from tests.fakes.fake_openai import FakeOpenAI, RecordedRequest, Reply

__all__ = ["FakeOpenAI", "RecordedRequest", "Reply"]
