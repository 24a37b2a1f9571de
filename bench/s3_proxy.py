"""A small proxy in front of the loopback S3 server (bench.s3_servers) that injects faults:
HTTP 503 SlowDown, 403 AccessDenied, a change to an object between a client's HEAD and
one of its GETs, a GET body cut off before its Content-Length, or a Range header dropped."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied</Message></Error>")
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


def client(endpoint: str):
    """A plain boto3 S3 client for ``endpoint``, to set up and inspect what a test expects."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


class FaultProxy:
    """Forwards every request to ``upstream``; ``slowdown`` GETs answer 503 SlowDown first,
    paths (key and query) containing ``deny`` answer 403, ``before_get`` runs once before
    GET number ``hook_at_get`` (the first by default), and ``truncate`` GETs send half their
    body and close the connection."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.split("//", 1)[1]
        self.slowdown = 0
        self.injected = 0
        self.deny = ""
        self.before_get = None
        self.hook_at_get = 1
        self.gets = 0
        self.truncate = 0
        self.truncated = 0
        self.drop_range = False  # forward GETs without their Range header
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []  # of each request, names in lower case
        self.lock = threading.Lock()  # handlers run on a thread each
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                body = self._body()
                proxy.requests.append(f"{self.command} {self.path}")
                proxy.headers.append({k.lower(): v for k, v in self.headers.items()})
                if proxy.deny and proxy.deny in self.path:
                    return self._reply(403, DENIED if self.command != "HEAD" else b"")
                hook, cut = None, False
                with proxy.lock:
                    if self.command == "GET" and proxy.slowdown > 0:
                        proxy.slowdown -= 1
                        proxy.injected += 1
                        slow = True
                    else:
                        slow = False
                        if self.command == "GET":
                            proxy.gets += 1
                            if proxy.before_get is not None and proxy.gets >= proxy.hook_at_get:
                                hook, proxy.before_get = proxy.before_get, None
                            if proxy.truncate > 0:
                                proxy.truncate -= 1
                                proxy.truncated += 1
                                cut = True
                if slow:
                    return self._reply(503, SLOWDOWN)
                if hook is not None:
                    hook()
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Content-Length"] = str(len(body))
                if proxy.drop_range:
                    headers = {k: v for k, v in headers.items() if k.lower() != "range"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)) if self.command != "HEAD"
                                 else resp.getheader("Content-Length", "0"))
                self.end_headers()
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                elif self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
