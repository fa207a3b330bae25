"""The server core every emulator shares: real HTTP/1.1 on loopback, request
parsing, fault injection, a control API and a start/stop helper.

An emulator is an `App`: it turns a parsed `Request` into a `Response`. The
core does everything that is not the service's protocol:

* keep-alive HTTP/1.1 (clients pool connections, as they do in production);
* request bodies of any size (Content-Length or chunked) spooled to disk;
* faults (tests/emulators/faults.py) applied before or after the app runs;
* a control API under `/__emulator__/` (no auth: loopback test servers only):
      GET|POST|DELETE /__emulator__/faults     list / add (JSON Fault) / clear
      GET|DELETE      /__emulator__/requests   the request log / clear it
      POST            /__emulator__/config     app options (JSON object)
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Protocol

from tests.emulators.faults import Fault, Faults

SPOOL_IN_MEMORY = 1 << 20
COPY_CHUNK = 1 << 16


@dataclass
class Request:
    method: str
    raw_path: str                      # as sent, still percent-encoded, no query
    query: dict[str, list[str]]
    headers: Message
    body: IO[bytes]                    # the whole body, spooled, positioned at 0
    body_size: int
    client: str
    raw_query: str = ""                # the query string exactly as sent (signed requests cover it)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int
    body: bytes | IO[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None          # required when body is a stream
    on_close: Any = None               # called after the body is sent (close a file)

    @classmethod
    def json(cls, status: int, obj: Any, **headers: str) -> Response:
        # Exactly "application/json", no charset: the official SmartFile client
        # compares the header with string equality.
        data = json.dumps(obj).encode()
        return cls(status, data, {"Content-Type": "application/json", **headers})

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status, text.encode(), {"Content-Type": content_type})


class App(Protocol):
    name: str

    def handle(self, request: Request) -> Response: ...

    def fault_response(self, fault: Fault) -> Response: ...

    def configure(self, options: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int = 0
    response_bytes: int = 0            # body bytes of the answer (a download's size on the wire)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], app: App) -> None:
        self.app = app
        self.faults = Faults()
        self.log: list[LoggedRequest] = []
        self.log_lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.stopping = threading.Event()  # ends "hang" and "trickle" faults at shutdown
        super().__init__(addr, _Handler)

    def drop_connections(self) -> None:
        """End every keep-alive connection, so no handler thread outlives the server."""
        with self.log_lock:
            conns, self.open = list(self.open), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30  # an idle keep-alive connection ends its thread eventually

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without NODELAY the
        # client's delayed ACK costs 40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.log_lock:
            self.server.open.add(self.connection)

    def finish(self) -> None:
        with self.server.log_lock:
            self.server.open.discard(self.connection)
        with contextlib.suppress(OSError):  # the peer (or a reset fault) already closed it
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the request log instead of stderr."""

    def _dispatch(self) -> None:
        raw_path, _, query = self.path.partition("?")
        if raw_path.startswith("/__emulator__/"):
            self._control(raw_path, query)
            return
        entry = LoggedRequest(self.command, raw_path, query,
                              {k: v for k, v in self.headers.items() if k.lower() != "authorization"})
        with self.server.log_lock:
            self.server.log.append(entry)
        fault = self.server.faults.take(self.command, urllib.parse.unquote(raw_path))
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        if fault is not None and fault.kind == "reset":
            self._reset()
            return
        if fault is not None and fault.kind == "hang":
            with self._read_body():
                self.server.stopping.wait(fault.delay)
            self.close_connection = True
            return
        with self._read_body() as body:
            if fault is not None and fault.kind not in ("reset-mid", "trickle"):
                response = self.server.app.fault_response(fault)
            else:
                request = Request(self.command, raw_path, urllib.parse.parse_qs(query, keep_blank_values=True),
                                  self.headers, body, body.tell(), self.client_address[0], query)
                body.seek(0)
                response = self._run_app(request)
        entry.status = response.status
        if fault is not None and fault.kind == "trickle":
            self._trickle(response, fault.delay)
            return
        cut = fault is not None and fault.kind == "reset-mid"
        # recorded before sending: a client reading the log right after its answer sees it
        length = len(response.body) if isinstance(response.body, bytes) else response.length or 0
        entry.response_bytes = 0 if self.command == "HEAD" else length // 2 if cut else length
        self._send(response, cut=cut)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def _run_app(self, request: Request) -> Response:
        try:
            return self.server.app.handle(request)
        except Exception as exc:  # a bug in the emulator: answer like a server would
            return Response.text(500, f"emulator error: {type(exc).__name__}: {exc}")

    # ---- bodies -----------------------------------------------------------------
    def _read_body(self) -> tempfile.SpooledTemporaryFile[bytes]:
        spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115 (caller closes)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            for chunk in self._chunks():
                spool.write(chunk)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                chunk = self.rfile.read(min(left, COPY_CHUNK))
                if not chunk:
                    raise ConnectionError("client closed mid-body")
                spool.write(chunk)
                left -= len(chunk)
        return spool

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    # ---- answers ----------------------------------------------------------------
    def _send(self, response: Response, cut: bool = False) -> None:
        body = response.body
        length = len(body) if isinstance(body, bytes) else response.length
        assert length is not None, "a streamed body needs a length"
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD":
                self._send_body(body, length // 2 if cut else length)
            if cut:
                self._reset()
        finally:
            if response.on_close is not None:
                response.on_close()

    def _send_body(self, body: bytes | IO[bytes], limit: int) -> None:
        if isinstance(body, bytes):
            self.wfile.write(body[:limit])
            return
        while limit > 0:
            chunk = body.read(min(limit, COPY_CHUNK))
            if not chunk:
                break
            self.wfile.write(chunk)
            limit -= len(chunk)

    def _trickle(self, response: Response, delay: float) -> None:
        """The whole answer, one byte every `delay` seconds, until done, the
        client goes away, or the server stops."""
        real, buffer = self.wfile, io.BytesIO()
        self.wfile = buffer
        try:
            self._send(response)
        finally:
            self.wfile = real
        for byte in buffer.getvalue():
            if self.server.stopping.wait(delay):
                break
            try:
                real.write(bytes([byte]))
                real.flush()
            except OSError:
                break
        self.close_connection = True

    def _reset(self) -> None:
        """Cut the connection with a RST, the way a crashing proxy does."""
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True

    # ---- control API ------------------------------------------------------------
    def _control(self, raw_path: str, query: str) -> None:
        with self._read_body() as body:
            body.seek(0)
            data = body.read()
        payload: Any = json.loads(data) if data.strip() else {}
        what = raw_path.removeprefix("/__emulator__/").strip("/")
        result: Any = {"ok": True}
        if what == "faults" and self.command == "POST":
            result = self.server.faults.add(**payload).as_dict()
        elif what == "faults" and self.command == "DELETE":
            self.server.faults.clear()
        elif what == "faults":
            result = self.server.faults.pending()
        elif what == "requests" and self.command == "DELETE":
            with self.server.log_lock:
                self.server.log.clear()
        elif what == "requests":
            with self.server.log_lock:
                result = [vars(e) for e in self.server.log]
        elif what == "config" and self.command == "POST":
            self.server.app.configure(payload)
        else:
            self._send(Response.text(404, "unknown control endpoint"))
            return
        self._send(Response.json(200, result))


class EmulatorServer:
    """One emulator on 127.0.0.1, served from a background thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = _Server((host, port), app)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def faults(self) -> Faults:
        return self._server.faults

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._server.log_lock:
            return list(self._server.log)

    def clear_log(self) -> None:
        with self._server.log_lock:
            self._server.log.clear()

    def inject(self, kind: str, count: int = 1, **match: Any) -> Fault:
        return self.faults.add(kind, count, **match)

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"emulator-{self.app.name}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        self._server.drop_connections()
        self.app.close()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
