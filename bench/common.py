"""Shared pieces of the benchmarks: statistics, machine facts, cached warehouses, a gold fake LLM.

The fake LLM is the test suite's FakeOpenAI (real HTTP on 127.0.0.1) answering as eval's gold
replay model would: each case talks through its own client whose model name carries the case
id and turn, so concurrent cases never get each other's answers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FUNDBOT_BENCH_CACHE") or Path(__file__).with_name(".cache"))
API_KEY = "sk-bench-not-a-secret"

# ----------------------------------------------------------------- statistics


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


def dist(values: list[float], digits: int = 2) -> dict[str, float | int]:
    """n, p50, p95, p99, mean and max of a sample, rounded."""
    if not values:
        return {"n": 0}
    return {"n": len(values),
            "p50": round(percentile(values, 50), digits),
            "p95": round(percentile(values, 95), digits),
            "p99": round(percentile(values, 99), digits),
            "mean": round(statistics.fmean(values), digits),
            "max": round(max(values), digits)}


# -------------------------------------------------------------- machine facts


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import duckdb

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "usable_cores": usable, "cpu": cpu, "memory": mem,
            "load_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews tails
            "python": platform.python_version(), "duckdb": duckdb.__version__,
            "os": f"{platform.system()} {platform.release()}",
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": _commit()}


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, timeout=5, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=5,
                               check=False).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


# ----------------------------------------------------------------- warehouses


def _generator_key(scale: float) -> str:
    """Cache key: the scale and everything the file's contents depend on."""
    import duckdb

    h = hashlib.sha256(f"{scale}|{duckdb.__version__}".encode())
    for name in ("schemas/generate.py", "schemas/catalog.json"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:12]


def warehouse(scale: float = 1.0, *, via_cli: bool = False) -> tuple[Path, float | None]:
    """A sample warehouse at `scale` from the cache, built if missing: (path, build seconds).

    Build seconds is None when the file came from the cache (`build_record` has the figures
    of the build that made it). `via_cli` builds it the way a user would, with
    `fundbot db init --scale`, and records that process's peak RSS.
    """
    import time

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"fund-scale{scale:g}-{_generator_key(scale)}.duckdb"
    if path.is_file():
        return path, None
    for old in CACHE.glob(f"fund-scale{scale:g}-*"):  # stale: the generator changed
        old.unlink()
    record: dict[str, Any] = {"scale": scale}
    t0 = time.perf_counter()
    if via_cli:
        cmd = [str(Path(sys.executable).with_name("fundbot")), "db", "init",
               "--scale", f"{scale:g}", "--path", str(path)]
        if not Path(cmd[0]).exists():
            cmd[:1] = [sys.executable, "-m", "bot.cli"]
        record["command"] = f"fundbot db init --scale {scale:g} --path {path.name}"
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
        record["peak_rss_gib"] = round(usage.ru_maxrss / 2**20, 2)
    else:
        from schemas.generate import build

        build(path, scale=scale)
    seconds = time.perf_counter() - t0
    record["seconds"] = round(seconds, 1)
    record["built"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.with_suffix(".build.json").write_text(json.dumps(record))
    return path, seconds


def build_record(path: Path) -> dict[str, Any]:
    """How the cached warehouse at `path` was built (seconds, peak RSS), if recorded."""
    side = path.with_suffix(".build.json")
    return json.loads(side.read_text()) if side.is_file() else {}


@contextmanager
def scratch(prefix: str = "bench-") -> Iterator[Path]:
    """A temporary directory, removed afterwards (the tests check /tmp for leftovers)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------ gold over HTTP


class GoldServer:
    """A FakeOpenAI that answers every case as eval's GoldLLM does, `latency` s a call.

    Route a case to it with `RoutedChat(case.id, base_url)`. Run it in its own process with
    `gold_process()`: a real LLM endpoint never shares our interpreter, and a server thread in
    the measured process would bill its own work (and GIL waits) to the turn being measured.
    """

    def __init__(self, cases: list, latency: float = 0.0):
        from tests.fakes.fake_openai import FakeOpenAI

        self.cases = {c.id: c for c in cases}
        self.fake = FakeOpenAI(responder=self._respond, latency=latency)

    def close(self) -> None:
        self.fake.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _respond(self, body: dict[str, Any]):
        from eval.gold import GoldLLM
        from tests.fakes import fake_openai

        case_id, _, turn = str(body.get("model", "")).rpartition("#")
        case = self.cases.get(case_id)
        if case is None:
            return fake_openai.error(404, {"error": {"message": f"bench: no case {case_id!r}",
                                                     "type": "invalid_request_error"}})
        gold = GoldLLM(case)  # one per request: the turn comes with the request
        gold.turn = int(turn or 0)
        reply = gold.complete(body.get("messages", []), body.get("tools"))
        usage = {"prompt_tokens": reply.usage.prompt_tokens,
                 "completion_tokens": reply.usage.completion_tokens,
                 "total_tokens": reply.usage.prompt_tokens + reply.usage.completion_tokens}
        if reply.tool_calls:
            return fake_openai.tool_calls([(c.name, c.arguments) for c in reply.tool_calls],
                                          usage=usage)
        return fake_openai.text(reply.content, usage=usage)


@dataclass
class GoldProcess:
    base_url: str
    requests: int = 0  # chat completions served, known once the process has stopped


@contextmanager
def gold_process(latency: float = 0.0, fixed: tuple[str, str] | None = None
                 ) -> Iterator[GoldProcess]:
    """A fake LLM in a child process (its own interpreter and GIL), stopped afterwards.

    It answers as GoldServer does; with `fixed` = (sql, text) it answers every understand
    call with that SQL and every interpret call with that text, whatever the model name.
    """
    cmd = [sys.executable, "-m", "bench.common", "--gold-server", "--latency", str(latency)]
    if fixed:
        cmd += ["--fixed-sql", fixed[0], "--fixed-text", fixed[1]]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("http"):
            raise RuntimeError(f"the fake LLM did not start (said {line!r})")
        gp = GoldProcess(base_url=line)
        yield gp
    finally:
        if proc.stdin:
            proc.stdin.close()  # the child's signal to stop and report
        try:
            out = proc.stdout.read() if proc.stdout else ""
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its handle
            proc.wait()
            out = ""
    for ln in out.splitlines():
        if ln.startswith("{"):
            gp.requests = json.loads(ln).get("requests", 0)


def _serve(latency: float, fixed_sql: str | None, fixed_text: str | None) -> None:
    from eval.cases import load_cases
    from tests.fakes import fake_openai
    from tests.fakes.fake_openai import FakeOpenAI

    if fixed_sql:
        def answer(body: dict[str, Any]) -> Any:
            # understand gets the tool and answers with SQL; interpret gets none: words
            if body.get("tools"):
                return fake_openai.tool_call(fixed_sql)
            return fake_openai.text(fixed_text or "Done.")
        server: Any = FakeOpenAI(responder=answer, latency=latency)
        fake = server
    else:
        server = GoldServer(load_cases(), latency=latency)
        fake = server.fake
    try:
        print(fake.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        n = len(fake.chat_requests)
    finally:
        server.close()
    print(json.dumps({"requests": n}), flush=True)


class RoutedChat:
    """The real OpenAIChat client, its model name routing the request to one case and turn."""

    def __init__(self, case_id: str, base_url: str, timeout_s: float = 120.0):
        from bot.llm import OpenAIChat

        self.case_id = case_id
        self._chat = OpenAIChat(api_key=API_KEY, base_url=base_url, model=f"{case_id}#0",
                                timeout_s=timeout_s, retries=0)
        self._turn = 0

    @property
    def model(self) -> str:
        return self._chat.model

    @property
    def turn(self) -> int:
        return self._turn

    @turn.setter
    def turn(self, value: int) -> None:
        self._turn = value
        self._chat.model = f"{self.case_id}#{value}"

    def complete(self, messages, tools=None, tool_choice=None):
        return self._chat.complete(messages, tools=tools, tool_choice=tool_choice)

    def close(self) -> None:
        self._chat.close()


if __name__ == "__main__":
    _args = argparse.ArgumentParser()
    _args.add_argument("--gold-server", action="store_true")
    _args.add_argument("--latency", type=float, default=0.0)
    _args.add_argument("--fixed-sql")
    _args.add_argument("--fixed-text")
    _parsed = _args.parse_args()
    if _parsed.gold_server:
        _serve(_parsed.latency, _parsed.fixed_sql, _parsed.fixed_text)
