"""A proxy in front of the API under test that loses answers the ways a network does, so that a
client's retries meet its own first attempt (as the Rust tests' ``tests/src/api_proxy.rs``):

- :data:`LOSE_ANSWER`: forwarded (a write applies), then answered ``503 UNAVAILABLE`` with
  ``Retry-After: 0`` instead of the service's answer — a gateway that timed out after the
  function wrote;
- :data:`CLOSE`: forwarded, then the connection closed without an answer;
- :class:`Hold`: forwarded at once, its answer held past the client's timeout: the retry meets a
  first attempt that has applied;
- :class:`Late`: held before it is forwarded: the retry that the client sends after its timeout
  reaches the service first, and the first attempt arrives after it;
- :class:`Before`: forwarded once a test's action ran (another writer, between two requests).

Each request is handled on a thread of its own, so it reaches the service even when the client
gave up on it. Every request is recorded with the fault it met and the status the service
answered it with.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass(frozen=True)
class Hold:
    """Forwarded at once; the answer is sent only after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Late:
    """Forwarded only after ``seconds`` (then answered, if the client still listens)."""

    seconds: float


@dataclass(frozen=True)
class Before:
    """Forwarded after ``action`` ran (another writer's change, between two steps of a call)."""

    action: Callable[[], None]


LOSE_ANSWER = "lose answer"
CLOSE = "close"
Fault = str | Hold | Late | Before


@dataclass
class Rule:
    """Which requests meet a fault: those with ``method`` (and a path ending with
    ``path_ending``), after the first ``skip`` of them, ``times`` of them."""

    method: str
    fault: Fault
    path_ending: str | None = None
    skip: int = 0
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and (
            self.path_ending is None or path.endswith(self.path_ending)
        )


@dataclass
class Seen:
    """A request the proxy received."""

    method: str
    target: str
    """Path and query."""
    headers: dict[str, str]
    body: bytes
    fault: Fault | None
    status: int | None = None
    """The status the service answered it with, once it did."""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    @property
    def request_id(self) -> str | None:
        values = self.query.get("requestId")
        return values[0] if values else None


_HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}
_SET_BY_THE_PROXY = {"date", "server", "content-encoding"}


class ApiProxy:
    """A running proxy to ``upstream`` on a free loopback port; :meth:`close` stops it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._forwarder = httpx.Client(timeout=60.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def requests(self, method: str | None = None, path_ending: str | None = None) -> list[Seen]:
        """What the proxy received, in order, of ``method`` and a path ending with
        ``path_ending``."""
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method)
                and (path_ending is None or s.path.endswith(path_ending))
            ]

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Waits until every request received has been answered by the service."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(s.status is not None for s in self.seen):
                    return
            time.sleep(0.05)
        raise TimeoutError("the proxy still forwards requests")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._forwarder.close()

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.times > 0 and rule.matches(method, path):
                    if rule.skip > 0:
                        rule.skip -= 1
                        return None
                    rule.times -= 1
                    return rule.fault
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        fault = self._fault_for(handler.command, urlsplit(handler.path).path)
        seen = Seen(handler.command, handler.path, headers, body, fault)
        with self._lock:
            self.seen.append(seen)
        if isinstance(fault, Late):
            time.sleep(fault.seconds)
        if isinstance(fault, Before):
            fault.action()
        try:
            answer = self._forwarder.request(
                handler.command,
                self.upstream + handler.path,
                headers={k: v for k, v in headers.items() if k not in _HOP_BY_HOP},
                content=body,
            )
            status, answer_headers, answer_body = (
                answer.status_code,
                answer.headers,
                answer.content,
            )
        except httpx.HTTPError:
            status, answer_headers, answer_body = 502, httpx.Headers(), b""
        with self._lock:
            seen.status = status
        try:
            if fault == CLOSE:
                handler.close_connection = True
                return
            if fault == LOSE_ANSWER:
                problem = json.dumps(
                    {"status": 503, "code": "UNAVAILABLE", "detail": "the proxy lost the answer"}
                ).encode()
                handler.send_response(503)
                handler.send_header("content-type", "application/problem+json")
                handler.send_header("retry-after", "0")
                handler.send_header("content-length", str(len(problem)))
                handler.end_headers()
                handler.wfile.write(problem)
                return
            if isinstance(fault, Hold):
                time.sleep(fault.seconds)
            handler.send_response(status)
            for name, value in answer_headers.items():
                if name.lower() not in _HOP_BY_HOP | _SET_BY_THE_PROXY:
                    handler.send_header(name, value)
            handler.send_header("content-length", str(len(answer_body)))
            handler.end_headers()
            handler.wfile.write(answer_body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


@contextmanager
def api_proxy(upstream: str) -> Iterator[ApiProxy]:
    proxy = ApiProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
