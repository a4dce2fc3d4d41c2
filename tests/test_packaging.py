"""Installing prints no setuptools deprecation: the licence is an SPDX string, which needs
setuptools 77 or newer at build time (a `{text = ...}` table warns three times per install)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_licence_is_an_spdx_string_with_a_setuptools_that_reads_it():
    meta = tomllib.loads(PYPROJECT.read_text())
    assert isinstance(meta["project"]["license"], str)
    setuptools = next(r for r in meta["build-system"]["requires"] if r.startswith("setuptools"))
    least = re.search(r">=\s*(\d+)", setuptools)
    assert least and int(least.group(1)) >= 77, setuptools
