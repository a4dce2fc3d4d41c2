"""Slack load benchmark: N mentions at once over signed HTTP while the fake LLM is slow.

    python -m bench.slack_load [--mentions 100] [--llm-seconds 2] [--workers 8,32] [--no-stream]

Everything real except the outside world: the app on a local port, the core, DuckDB (the
sample warehouse) and SQLite, the openai client against tests/fakes/fake_openai.py (in a
child process, as a real endpoint is never in our interpreter), the Slack Web API emulator.
Prints acknowledgement latency (Slack wants < 3 s), how many questions were answered, how
many placeholders and answers each thread got, and the wall time against what one worker
would have needed, for each worker-pool size.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench.common import gold_process, percentile, scratch, warehouse
from bot.config import Config
from bot.runtime import build_deps
from bot.slack import HttpServer, create_app
from states.ports import Limits
from tests.fakes.fake_slack import FakeSlack, SlackSender

SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH01"
SQL = "SELECT count(*) AS companies FROM companies"
ANSWER = "We have that many portfolio companies."
_percentile = percentile


def run(mentions: int, llm_seconds: float, workers: int, scale: float = 1.0,
        attack: bool = False, stream: bool = True) -> dict:
    """`attack`: 200 idle connections and 4 oversized bodies held against the app meanwhile.
    `stream`: answers streamed (the default) or posted, then updated."""
    db, _ = warehouse(scale)
    with scratch() as work, gold_process(llm_seconds, fixed=(SQL, ANSWER)) as llm:
        result = _run(mentions, llm_seconds, workers, db, work, llm.base_url, attack, stream)
    result["llm_calls"] = llm.requests  # counted by the fake, known once it has stopped
    result["llm_calls_expected"] = 2 * mentions
    return result


def _run(mentions: int, llm_seconds: float, workers: int, db: Path, work: Path,
         llm_url: str, attack: bool = False, stream: bool = True) -> dict:
    with FakeSlack() as slack:
        config = Config(openai_api_key="sk-bench", openai_base_url=llm_url,
                        db_path=str(db), state_path=str(work / "state.sqlite3"),
                        slack_bot_token=slack.token, slack_signing_secret=SECRET,
                        slack_api_url=slack.api_url, port=0, workers=workers,
                        limits=Limits(llm_retries=0, llm_timeout_s=llm_seconds + 30),
                        slack_stream=stream)
        deps = build_deps(config)
        app, dispatcher = create_app(config, deps)
        server = HttpServer(app, host="127.0.0.1", port=0, signing_secret=SECRET,
                            quiet=dispatcher.quiet).start()
        sender = SlackSender(server.url, SECRET)
        payloads = [sender.mention(CHANNEL, f"U{i:08d}", f"question {i}: how many companies?")
                    for i in range(mentions)]
        roots = {p["event"]["ts"] for p in payloads}

        def finished(m: dict) -> bool:  # an answer: not a placeholder, not still streaming
            return not m["text"].startswith(":hourglass") and not m.get("streaming")

        def answered() -> set[str]:
            return {m.get("thread_ts") for m in slack.messages.get(CHANNEL, [])
                    if m.get("thread_ts") in roots and finished(m)}

        attacker = None
        if attack:  # from another process too; waits until its connections are open
            Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on
            attacker = subprocess.Popen([sys.executable, "-m", "bench.slack_load", "--attacker",
                                         str(server.port)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
            assert attacker.stdout is not None and attacker.stdout.readline().strip() == "ready"
        # Slack sends from its own machines: the load comes from another process, so its
        # threads do not compete with the app for this interpreter's lock.
        start, first = _blast(server.url, payloads, retry=None)
        # Slack re-delivers everything once mid-way, as it would after a network blip.
        _, retries = _blast(server.url, payloads, retry=1)
        # One at a time, while the workers wait on the LLM: what one acknowledgement costs
        # the app. A burst of N is acknowledged in about N times this on a busy interpreter.
        _, serial = _blast(server.url, payloads[:20], retry=2, serial=True)
        slack.wait_for(lambda: len(answered()) == mentions,
                       timeout=llm_seconds * 2 * mentions + 60)
        total = time.time() - start  # from the first delivery (wall clock: another process)
        attacked = {}
        if attacker is not None:
            out, _ = attacker.communicate("stop\n", timeout=120)
            attacked = json.loads(out)
            attacked["bot_peak_rss_mib"] = round(_vm_hwm_kb() / 1024, 1)
        dispatcher.join(30)
        server.stop()
        dispatcher.shutdown()

        acks = [ms for _, ms in first]
        posts = [c for c in slack.calls_to("chat.postMessage")
                 if c.args.get("text", "").startswith(":hourglass")]
        streams: dict[str, int] = {}
        for call in slack.calls_to("chat.startStream"):
            streams[call.args["thread_ts"]] = streams.get(call.args["thread_ts"], 0) + 1
        # exactly once: one message in the thread, finished (streamed, or a placeholder
        # replaced), from at most one stream
        by_root: dict[str, list[dict]] = {}
        for m in slack.messages.get(CHANNEL, []):
            if m.get("thread_ts") in roots:
                by_root.setdefault(m["thread_ts"], []).append(m)
        exactly_once = sum(1 for root, msgs in by_root.items()
                           if len(msgs) == 1 and finished(msgs[0]) and streams.get(root, 0) <= 1)
        turn_s = 2 * llm_seconds
        return {
            "mentions": mentions,
            "streaming": stream,
            "llm_seconds_per_call": llm_seconds,
            "workers": workers,
            "ack_ms": {"p50": round(statistics.median(acks), 1),
                       "p95": round(_percentile(acks, 95), 1),
                       "p99": round(_percentile(acks, 99), 1),
                       "max": round(max(acks), 1)},
            "ack_statuses": sorted({status for status, _ in first + retries + serial}),
            "retry_ack_p99_ms": round(_percentile([ms for _, ms in retries], 99), 1),
            "one_at_a_time_ack_ms_p50": round(statistics.median([ms for _, ms in serial]), 2),
            "answered": len(answered()),
            "placeholders_posted": len(posts),
            "streams_started": sum(streams.values()),
            "status_calls": len(slack.calls_to("assistant.threads.setStatus")),
            "answered_exactly_once": exactly_once,
            "answered_twice": sum(1 for msgs in by_root.values() if len(msgs) > 1)
            + sum(1 for n in streams.values() if n > 1),
            "total_s": round(total, 2),
            "one_worker_would_take_s": round(mentions * turn_s, 1),
            "ideal_with_pool_s": round(-(-mentions // workers) * turn_s, 1),
            **({"attack": attacked} if attacked else {}),
        }


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _attacker(port: int) -> None:
    """200 idle connections (re-opened when the server drops them) and 4 unsigned bodies
    announcing 400 MB, streamed until the server answers; until a line arrives on stdin."""
    import threading

    stop = threading.Event()
    reopened = [0]
    statuses: list[int] = []

    def idle() -> None:
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        print("ready", flush=True)
        while not stop.is_set():
            for i, s in enumerate(socks):
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":  # dropped at the header time-out: come back
                        s.close()
                        socks[i] = socket.create_connection(("127.0.0.1", port))
                        reopened[0] += 1
                except BlockingIOError:
                    pass
            stop.wait(0.5)
        for s in socks:
            s.close()

    def oversized() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 400000000\r\n\r\n")
            chunk = b"x" * 2**20
            try:
                for _ in range(400):
                    s.sendall(chunk)
            except OSError:
                pass  # the server answered and closed: what it should do
            try:
                statuses.append(_status(s.recv(4096)))
            except OSError:
                statuses.append(0)

    threads = [threading.Thread(target=idle)] + [threading.Thread(target=oversized)
                                                 for _ in range(4)]
    for t in threads:
        t.start()
    sys.stdin.readline()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    print(json.dumps({"idle_connections": 200, "idle_reopened": reopened[0],
                      "oversized_bodies": 4, "oversized_statuses": statuses}))


def _blast(url: str, payloads: list[dict], retry: int | None, serial: bool = False
           ) -> tuple[float, list[tuple[int, float]]]:
    """POST every payload at once (or one by one) from a child process: (when it began,
    [(status, ms)])."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"url": url, "payloads": payloads, "retry": retry, "serial": serial}, f)
    out = subprocess.run([sys.executable, "-m", "bench.slack_load", "--client", f.name],
                         capture_output=True, text=True, check=True, timeout=300)
    Path(f.name).unlink()
    got = json.loads(out.stdout)
    return got["t0"], [tuple(x) for x in got["results"]]


def _client(spec_path: str) -> None:
    """Slack's side: every delivery at once from one thread over non-blocking sockets.

    A thread per request would put 100 Python threads on the same two cores as the app and
    bill their scheduling to the app's acknowledgement time. Each request is signed before
    the clock starts; its time runs from its connect() to the last byte of the response.
    """
    from slack_sdk.signature import SignatureVerifier

    spec = json.loads(Path(spec_path).read_text())
    url = urllib.parse.urlsplit(spec["url"])
    verifier = SignatureVerifier(SECRET)
    ts = str(int(time.time()))
    requests = []
    for payload in spec["payloads"]:
        body = json.dumps(payload).encode()
        head = [f"POST {url.path} HTTP/1.1", f"Host: {url.netloc}",
                "Content-Type: application/json", f"Content-Length: {len(body)}",
                f"X-Slack-Request-Timestamp: {ts}",
                f"X-Slack-Signature: {verifier.generate_signature(timestamp=ts, body=body)}",
                "Connection: close"]
        if spec["retry"]:
            head += [f"X-Slack-Retry-Num: {spec['retry']}", "X-Slack-Retry-Reason: http_timeout"]
        requests.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    t0 = time.time()
    if spec.get("serial"):  # one at a time: the app's own time per acknowledgement
        results = [r for raw in requests for r in _deliver(url, [raw])]
    else:
        results = _deliver(url, requests)
    print(json.dumps({"t0": t0, "results": results}))


def _deliver(url: urllib.parse.SplitResult, requests: list[bytes]) -> list[tuple[int, float]]:
    """Send every request at once; [(status, ms from connect to the response's last byte)]."""
    sel = selectors.DefaultSelector()
    state: dict[int, dict] = {}
    for i, raw in enumerate(requests):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        state[i] = {"sock": sock, "out": raw, "in": b"", "start": time.monotonic()}
        sock.connect_ex((url.hostname, url.port))
        sel.register(sock, selectors.EVENT_WRITE, i)
    results: list[tuple[int, float] | None] = [None] * len(requests)
    deadline = time.monotonic() + 60
    while any(r is None for r in results) and time.monotonic() < deadline:
        for key, events in sel.select(timeout=1):
            i, st = key.data, state[key.data]
            sock = st["sock"]
            if events & selectors.EVENT_WRITE:
                sent = sock.send(st["out"])
                st["out"] = st["out"][sent:]
                if not st["out"]:
                    sel.modify(sock, selectors.EVENT_READ, i)
                continue
            chunk = sock.recv(65536)
            st["in"] += chunk
            status = _complete(st["in"]) if chunk else _status(st["in"])
            if status is not None:
                results[i] = (status, (time.monotonic() - st["start"]) * 1000)
                sel.unregister(sock)
                sock.close()
    sel.close()
    # no answer within a minute: a failed delivery
    return [r if r is not None else (0, 60_000.0) for r in results]


def _status(data: bytes) -> int:
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def _complete(data: bytes) -> int | None:
    """The status of a complete HTTP response in `data`, else None (more to read)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return _status(data) if len(body) >= int(value.strip()) else None
    return None  # no length: the server ends the body by closing the connection


def ok(result: dict) -> bool:
    """The targets: acknowledgement p99 <= 100 ms, every mention answered exactly once."""
    n = result["mentions"]
    return (result["ack_ms"]["p99"] <= 100 and result["answered"] == n
            and result["answered_exactly_once"] == n and result["answered_twice"] == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=100)
    parser.add_argument("--llm-seconds", type=float, default=2.0)
    parser.add_argument("--workers", default="8,32", help="pool sizes, comma-separated")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--attack", action="store_true",
                        help="hold 200 idle connections and 4 oversized bodies meanwhile")
    parser.add_argument("--no-stream", action="store_true",
                        help="post-and-update instead of streaming (FUNDBOT_SLACK_STREAM=0)")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the load generator's own run
    parser.add_argument("--attacker", type=int, help=argparse.SUPPRESS)  # the attack's own run
    args = parser.parse_args(argv)
    if args.client:
        _client(args.client)
        return 0
    if args.attacker:
        _attacker(args.attacker)
        return 0
    results = [run(args.mentions, args.llm_seconds, int(w), args.scale, args.attack,
                   stream=not args.no_stream)
               for w in args.workers.split(",") if w.strip()]
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return 0 if all(ok(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
