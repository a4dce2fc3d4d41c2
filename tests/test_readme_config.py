"""The README's configuration table lists every setting the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import LIMIT_ENV

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme_table():
    code = (ROOT / "bot" / "config.py").read_text()
    read = set(re.findall(r'get\("([A-Z][A-Z0-9_]+)"', code)) | set(LIMIT_ENV.values())
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert len(read) > 20
    assert read <= listed, f"settings missing from the README table: {sorted(read - listed)}"
