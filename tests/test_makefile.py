"""The Makefile as a newcomer meets it: `make clean` keeps the conversations (state is only
removed by the explicit `make clean-state`), and a .venv made by the wrong Python is rebuilt
instead of failing every later `make` until someone thinks of `make clean`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for a Python: `-c` checks pass or fail by its version, `-m venv DIR` makes DIR
# with a copy of the stand-in as its python, `-m pip ...` is recorded; all in a scratch dir.
FAKE_PY = """#!/bin/sh
echo "$0 $*" >> "{log}"
case "$1" in
  --version) echo "Python {version}" ;;
  -c) [ "{ok}" = yes ] ;;
  -m) if [ "$2" = venv ]; then mkdir -p "$3/bin"; sed 's/{version}/3.12.0/; s/"{ok}"/"yes"/' \\
        "$0" > "$3/bin/python"; chmod +x "$3/bin/python"; fi ;;
esac
"""


def _python(path: Path, log: Path, version: str, ok: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PY.format(log=log, version=version, ok="yes" if ok else "no"))
    path.chmod(0o755)
    return path


def _project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return tmp_path


def _make(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_clean_keeps_the_conversations(tmp_path):
    proj = _project(tmp_path)
    for f in (".venv/bin/python", "data/fund.duckdb", "data/state.sqlite3", "eval-out/x.json"):
        (proj / f).parent.mkdir(parents=True, exist_ok=True)
        (proj / f).write_text("x")
    assert _make(proj, "clean").returncode == 0
    assert (proj / "data/state.sqlite3").exists()
    assert not (proj / ".venv").exists() and not (proj / "data/fund.duckdb").exists()
    assert not (proj / "eval-out").exists()
    assert _make(proj, "clean-state").returncode == 0
    assert not (proj / "data/state.sqlite3").exists()


def test_a_venv_of_the_wrong_python_is_rebuilt(tmp_path):
    proj = _project(tmp_path)
    log = tmp_path / "calls.log"
    _python(proj / ".venv/bin/python", log, "3.10.14", ok=False)  # left by PY=python3.10
    good = _python(tmp_path / "py311", log, "3.11.9", ok=True)
    done = _make(proj, f"PY={good}", ".venv/.installed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilding it" in done.stdout
    calls = log.read_text()
    assert f"{good} -m venv .venv" in calls and ".venv/bin/python -m pip install" in calls
    assert (proj / ".venv/.installed").exists()


def test_a_too_old_python_is_named_before_anything_is_built(tmp_path):
    proj = _project(tmp_path)
    old = _python(tmp_path / "py310", tmp_path / "calls.log", "3.10.14", ok=False)
    done = _make(proj, f"PY={old}", ".venv/.installed")
    assert done.returncode != 0
    assert "fundbot needs Python >= 3.11" in done.stderr and "3.10.14" in done.stderr
    assert not (proj / ".venv").exists()
