"""Relay throughput and latency under a webhook storm, against a bare server baseline.

    python bench/relay.py [--webhooks 2000] [--issues 50] [--clients 8]

Starts the relay (SQLite state) on loopback with a local GitHub dispatch stand-in, sends
--webhooks signed Sentry alerts covering --issues distinct issues from --clients keep-alive
clients, and prints webhooks/s and p50/p99 latency, next to the same clients against a bare
standard-library server that answers 202 without looking at the body (the baseline, measured
in the same run). Bounded: a fixed number of requests and a 120 s deadline. Goal: 1,000
webhooks/s or more.
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

GOAL = 1000.0


def _client_process(port: int, bodies: list[bytes], threads: int, out: Any) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 120

    def client(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine = []
        for body in chunk:
            if time.monotonic() > deadline:
                break
            headers = rh.sentry_headers(body)
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
    port: int, bodies: list[bytes], clients: int, processes: int = 2
) -> tuple[float, list[float]]:
    """Clients in ``processes`` processes (so that the client side is not one GIL)."""
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_client_process, args=(port, bodies[i::processes], clients // processes, queue)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--issues", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    template = load_fixture("sentry/event_alert.triggered.issue-alert.json")
    bodies = [rh.alert_for_issue(template, i % args.issues) for i in range(args.webhooks)]
    bare = bare_server()
    base_rate, base_lat = blast(bare.server_address[1], bodies, args.clients)
    bare.shutdown()
    with tempfile.TemporaryDirectory() as tmp:
        github = FakeGitHub(Path(tmp) / "gh", rh.GITHUB_TOKEN, "octo/shop")
        with github:
            config = rh.write_config(Path(tmp) / "relay.yml", github.url)
            with rh.RelayProcess(config, Path(tmp) / "relay.log") as relay:
                rate, latencies = blast(relay.port, bodies, args.clients)
                deadline = time.monotonic() + 30
                while len(github.dispatches) < args.issues and time.monotonic() < deadline:
                    time.sleep(0.05)
            forwarded = len(github.dispatches)
    print(
        f"{args.webhooks} signed webhooks, {args.issues} distinct issues, "
        f"{args.clients} keep-alive clients"
    )
    report("bare server (baseline)", base_rate, base_lat)
    report(
        "relay (verify, parse, dedupe)",
        rate,
        latencies,
        lambda: f"  {rate / base_rate:.2f}x baseline; forwarded {forwarded}",
    )
    verdict = "meets" if rate >= GOAL else "MISSES"
    print(f"goal {GOAL:.0f} webhooks/s: {verdict}")
    print(
        json.dumps(
            {
                "relay_per_s": round(rate),
                "baseline_per_s": round(base_rate),
                "ratio": round(rate / base_rate, 3),
                "forwarded": forwarded,
            }
        )
    )


if __name__ == "__main__":
    main()
