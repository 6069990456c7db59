"""The HTTP plumbing shared by the tests' local vendor fakes (Twilio, FCM, Google Wallet, Square, Clover,
Stripe, HubSpot, Klaviyo, Salesforce, the test CRM, the webhook receiver).

Each fake is a real HTTP/1.1 server on a free loopback port, so the code under test goes through its
real HTTP client (connection reuse, timeouts, headers) rather than a mocked one. What differs between
fakes is the vendor's behaviour, which stays in their files; what is the same lives here once:

- `LocalServer`: a ThreadingHTTPServer on 127.0.0.1:0 served from a daemon thread, with `url`,
  `start()` (returns the fake, for `Fake(...).start()`), `stop()` and a `lock` for the fake's state.
- `JsonRequestHandler`: keep-alive HTTP/1.1, no request log on stderr, `read_body()` by Content-Length
  and `send_json()` / `send_raw()` answering with Content-Type and Content-Length.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self


class JsonRequestHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON the way the vendors do; subclasses set the details.

    `content_type` is the vendor's exact Content-Type; `default_headers` go on every answer (a request
    id, rate-limit counters), before the per-answer `headers`.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, as the vendors speak: clients may reuse connections
    content_type: ClassVar[str] = "application/json"
    default_headers: ClassVar[dict[str, str]] = {}

    def log_message(self, *args):
        pass  # no line on stderr per request

    def read_body(self) -> bytes:
        """The request body, read by its Content-Length (b"" without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body, headers: dict | None = None) -> None:
        """Answer `status` with `body` as JSON (an empty body when `body` is None)."""
        data = json.dumps(body).encode() if body is not None else b""
        self.send_raw(status, data, headers, self.content_type)

    def send_raw(self, status: int, data: bytes, headers: dict | None = None, content_type: str | None = None) -> None:
        """Answer `status` with `data` as is (no Content-Type header when `content_type` is None).

        A client that already gave up (a timeout test, a killed worker) is not an error: the
        connection is closed and nothing is raised.
        """
        try:
            self.send_response(status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in {**self.default_headers, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # nobody left to answer


class LocalServer:
    """Serves the handler class that `_handler_class()` builds on 127.0.0.1, on a port the OS picks.

    Subclasses call `super().__init__()` once the state their handler uses is set. `poll_interval` is how
    long `stop()` may wait for the serving loop to notice; `block_on_close = False` lets `stop()` return
    while a handler still sleeps (a fake that hangs past the client's timeout).
    """

    poll_interval: ClassVar[float] = 0.5
    block_on_close: ClassVar[bool] = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = self.block_on_close
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": self.poll_interval}, daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
