"""The README stays true: its commands, its diagram, its environment variables."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bot.config import LIMIT_ENV
from states.machine import mermaid
from states.ports import Limits

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    commands = [ln.split("#")[0].strip() for ln in first_block.splitlines()[1:] if ln.strip()]
    assert commands == ["make run", "make test"]


def test_readme_diagram_matches_the_machine():
    edges = lambda text: {ln.strip() for ln in text.splitlines() if "-->" in ln}  # noqa: E731
    block = re.search(r"```mermaid\n(.*?)```", README, re.S).group(1)
    assert edges(block) == edges(mermaid())


def test_every_limit_is_documented_with_its_variable():
    documented = [v for v in LIMIT_ENV.values() if v in README]
    assert len(documented) >= 7  # the main ones; all are listed in bot/config.py
    assert len(LIMIT_ENV) == len(dataclasses.fields(Limits))
