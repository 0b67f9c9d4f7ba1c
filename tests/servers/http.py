"""A small routed HTTP server for local stand-ins of forge APIs, with fault injection and a
real git smart-HTTP endpoint (``git http-backend``) backed by bare repositories."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HTTPError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


Handler = Callable[[Request], Any]


class APIServer:
    """Routes, recorded requests, injected faults, and git smart HTTP under /git/."""

    bare: Path  # the repository behind the forge; set by each forge server

    def __init__(self, git_root: Path, check_git_auth: Callable[[str, str], bool]) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.git_root = git_root
        self.check_git_auth = check_git_auth
        self.before_push: list[Callable[[str], None]] = []
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def seed(self, source: Path) -> None:
        """The remote starts as a bare clone of ``source``. Like GitHub and GitLab it takes
        push options, and it records them (``push_options``)."""
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(source), str(self.bare)], check=True)
        subprocess.run(
            ["git", "-C", str(self.bare), "config", "receive.advertisePushOptions", "true"],
            check=True,
        )
        hook = self.bare / "hooks" / "pre-receive"
        hook.write_text(
            "#!/bin/sh\ncat >/dev/null\nopts=\n"
            'i=0; while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do '
            'eval "opts=\\"$opts \\$GIT_PUSH_OPTION_$i\\""; i=$((i+1)); done\n'
            'echo "push:$opts" >> "$GIT_DIR/push-options.log"\n'
        )
        hook.chmod(0o755)

    def push_options(self) -> list[list[str]]:
        """The push options of every push, in order."""
        log = self.bare / "push-options.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.removeprefix("push:").split() for line in lines]

    def default_branch(self) -> str:
        head = subprocess.run(
            ["git", "-C", str(self.bare), "symbolic-ref", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return head.stdout.strip()

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(f"^{pattern}$"), handler))
            return handler

        return register

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        self.faults.append(
            Fault(
                method,
                re.compile(f"^{pattern}$"),
                status,
                headers or {},
                body if body is not None else {"message": "injected fault"},
                times,
            )
        )

    def writes(self) -> list[str]:
        """Every non-GET API request and every git push, in order."""
        return [
            f"{r.method} {r.path}"
            for r in self.requests
            if (r.method != "GET" and not r.path.startswith("/git/"))
            or r.path.endswith("/git-receive-pack")
        ]

    def __enter__(self) -> APIServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def before_dispatch(self, request: Request) -> None:
        """Called for each API request before its handler, outside the lock."""

    # -- dispatch ---------------------------------------------------------------------------
    def _dispatch(self, request: Request) -> Response:
        self.before_dispatch(request)
        with self.lock:
            self.requests.append(request)
            for fault in self.faults:
                if (
                    fault.times
                    and fault.method == request.method
                    and fault.pattern.match(request.path)
                ):
                    fault.times -= 1
                    return Response(fault.status, fault.body, fault.headers)
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                request.params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                try:
                    with self.lock:
                        result = handler(request)
                except HTTPError as exc:
                    return Response(exc.status, exc.body)
                return result if isinstance(result, Response) else Response(200, result)
        return Response(404, {"message": "Not Found"})

    def _git(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        auth = handler.headers.get("Authorization", "")
        user, token = "", ""
        if auth.startswith("Basic "):
            user, _, token = base64.b64decode(auth[6:]).decode().partition(":")
        if not self.check_git_auth(user, token):
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="git"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        path, _, query = handler.path[len("/git") :].partition("?")
        if method == "POST" and path.endswith("/git-receive-pack"):
            for hook in list(self.before_push):
                hook(path)
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "LANG")},
            "GIT_PROJECT_ROOT": str(self.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user or "anonymous",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": os.devnull,
        }
        if handler.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = handler.headers["Content-Encoding"]
        if handler.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = handler.headers["Git-Protocol"]
        with self.lock:
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _ and b"\n\n" in result.stdout:
            head, _, payload = result.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key.strip(), value.strip()))
        handler.send_response(status)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self, method: str) -> None:
                body = self._body()
                path, _, query = self.path.partition("?")
                request = Request(
                    method,
                    path,
                    dict(urllib.parse.parse_qsl(query)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                if path.startswith("/git/"):
                    with server.lock:
                        server.requests.append(request)
                    server._git(self, method, body)
                    return
                response = server._dispatch(request)
                if isinstance(response.body, bytes):  # a log or another raw download
                    data, kind = response.body, "text/plain; charset=utf-8"
                else:
                    data = b"" if response.body is None else json.dumps(response.body).encode()
                    kind = "application/json; charset=utf-8"
                self.send_response(response.status)
                self.send_header("Content-Type", kind)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return H


def branch_exists(bare: Path, branch: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def commits_between(bare: Path, base: str, head: str) -> list[dict[str, str]]:
    """The commits of ``head`` not on ``base`` in a bare repository, oldest first."""
    log = subprocess.run(
        [
            "git",
            "-C",
            str(bare),
            "log",
            "--reverse",
            "--format=%H%x00%ae%x00%an%x00%B%x1e",
            f"refs/heads/{base}..refs/heads/{head}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commits = []
    for record in log.split("\x1e"):
        record = record.strip("\n")
        if record:
            sha, email, name, message = record.split("\x00", 3)
            commits.append({"sha": sha, "email": email, "name": name, "message": message})
    return commits


def tip(bare: Path, branch: str) -> str:
    """The commit a branch of a bare repository points at ("" when it has none)."""
    found = subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip()
