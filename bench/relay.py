"""Relay throughput and latency under a webhook storm: the relay on aiohttp against the
same relay on the standard library's threading server, and a bare server, in the same run.

    python bench/relay.py [--webhooks 2000] [--issues 50] [--clients 8]

Starts each relay (SQLite state, the default number of workers) on loopback with a local
GitHub dispatch stand-in, sends --webhooks signed Sentry alerts covering --issues distinct
issues from --clients clients, with keep-alive and with a new connection per webhook, and
prints webhooks/s, p50/p99 latency and how many were forwarded (exactly --issues). The bare
standard-library server answers 202 without looking at the body. Bounded: a fixed number of
requests and a 120 s deadline per run. Goal: 3,000 webhooks/s or more with keep-alive on 2
cores, p99 under 50 ms, and exact dedupe.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import relay_helpers as rh
from tests.conftest import load_fixture
from tests.servers.github import FakeGitHub

GOAL = 3000.0
P99_GOAL = 50.0
STDLIB = Path(__file__).resolve().parent / "relay_stdlib.py"


def _client_process(
    port: int, bodies: list[bytes], threads: int, out: Any, keep_alive: bool = True
) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    signed = {body: rh.sentry_headers(body) for body in bodies}  # signed before the clock

    def client(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine = []
        for body in chunk:
            if time.monotonic() > deadline:
                break
            if not keep_alive:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = signed[body]
            started = time.perf_counter()
            conn.request("POST", "/hooks/sentry", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client, args=(bodies[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(latencies)


def blast(
    port: int, bodies: list[bytes], clients: int, processes: int = 2, keep_alive: bool = True
) -> tuple[float, list[float]]:
    """Clients in ``processes`` processes (so that the client side is not one GIL)."""
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_client_process,
            args=(port, bodies[i::processes], clients // processes, queue, keep_alive),
        )
        for i in range(processes)
    ]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    latencies = [lat for _ in procs for lat in queue.get(timeout=150)]
    for proc in procs:
        proc.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def bare_server() -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"decision":"ignored"}'
            self.send_response(202)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def p(latencies: list[float], q: float) -> float:
    return statistics.quantiles(latencies, n=100)[int(q) - 1]


def report(
    name: str, rate: float, latencies: list[float], extra: Callable[[], str] = lambda: ""
) -> None:
    print(
        f"{name:<30} {rate:8.0f} webhooks/s   p50 {p(latencies, 50):6.2f} ms   "
        f"p99 {p(latencies, 99):6.2f} ms {extra()}"
    )


def storm(
    tmp: Path, script: Path | None, bodies: list[bytes], args: Any, keep_alive: bool
) -> tuple[float, list[float], int]:
    """One relay (aiohttp, or the stdlib baseline ``script``) under one storm: its rate,
    latencies, and how many issues it forwarded."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    github = FakeGitHub(folder / "gh", rh.GITHUB_TOKEN, "octo/shop")
    with github:
        config = rh.write_config(folder / "relay.yml", github.url)
        with rh.RelayProcess(config, folder / "relay.log", script=script) as relay:
            rate, latencies = blast(relay.port, bodies, args.clients, keep_alive=keep_alive)
            deadline = time.monotonic() + 30
            while len(github.dispatches) < args.issues and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # a duplicate forward would show up by now
        return rate, latencies, len(github.dispatches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--issues", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    template = load_fixture("sentry/event_alert.triggered.issue-alert.json")
    print(f"{args.webhooks} signed webhooks, {args.issues} distinct issues, {args.clients} clients")
    results: dict[tuple[str, bool], tuple[float, float, int]] = {}
    for keep_alive in (True, False):
        mode = "keep-alive" if keep_alive else "new connection each"
        bare = bare_server()
        blank = [b"{}"] * args.webhooks
        base_rate, base_lat = blast(
            bare.server_address[1], blank, args.clients, keep_alive=keep_alive
        )
        bare.shutdown()
        report(f"bare server, {mode}", base_rate, base_lat)
        with tempfile.TemporaryDirectory() as tmp:
            for name, script in (("stdlib relay", STDLIB), ("aiohttp relay", None)):
                bodies = [
                    rh.alert_for_issue(template, i % args.issues) for i in range(args.webhooks)
                ]
                rate, latencies, sent = storm(Path(tmp), script, bodies, args, keep_alive)
                results[(name, keep_alive)] = (rate, p(latencies, 99), sent)
                report(
                    f"{name}, {mode}",
                    rate,
                    latencies,
                    lambda r=rate, f=sent, b=base_rate: f"  {r / b:.2f}x bare; forwarded {f}",
                )
        new, old = results[("aiohttp relay", keep_alive)], results[("stdlib relay", keep_alive)]
        print(f"aiohttp relay / stdlib relay, {mode}: {new[0] / old[0]:.2f}x webhooks/s")
    rate, p99, sent = results[("aiohttp relay", True)]
    verdict = "meets" if rate >= GOAL and p99 < P99_GOAL and sent == args.issues else "MISSES"
    print(
        f"goal {GOAL:.0f} webhooks/s, p99 under {P99_GOAL:.0f} ms, exactly {args.issues} "
        f"forwarded (keep-alive): {verdict}"
    )
    summary = {
        f"{name.split()[0]}_{'keepalive' if ka else 'new_conn'}": {
            "per_s": round(r),
            "p99_ms": round(q, 2),
            "forwarded": f,
        }
        for (name, ka), (r, q, f) in results.items()
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
