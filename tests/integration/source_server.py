"""The one HTTP source of the integration tests whose behaviour is scripted per path.

Runs in a thread of the test process on 127.0.0.1, port 0 (SourceServer().start(), .stop()).
Scripted answers, for the async-upload tests:
  /flaky/<key>/<name>?fail=N  answers 503 to the first N requests of <key>, then the bytes
  /stall/<name>               sends headers and 10 bytes of 1000, then nothing until stop()
  /trickle/<name>             sends headers, then one byte of 1000 every 0.3 s (never silent)
  /ok/<name>                  the bytes of <name>: `name * 100`
Misbehaviour on purpose, for test_hostile_inputs.py (every path ends in a valid package name,
so that only the misbehaviour is judged):
  /hostile/ok.py                    a well-formed small answer
  /hostile/redirect-to-denied/ok.py a redirect to a host name the server denies
  /hostile/redirect-to-metadata/ok.py  a redirect to the cloud metadata address
  /hostile/short-body.py            promises 1 MB, sends 10 bytes, hangs up
  /hostile/huge-length.py           claims 10 GiB up front
  /hostile/endless.py               no length, never ends
  /hostile/no-answer.py             reads the request, says nothing until stop()
  /hostile/stall.py                 headers and a few bytes, then silence until stop()
"""
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

OK_BODY = b"print('ok')\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, length=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _head(self, status, headers):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def do_GET(self):
        url = urlparse(self.path)
        if url.path.startswith("/hostile/"):
            try:
                return self._hostile(url.path[len("/hostile"):])
            except OSError:  # the client gave up: that is the point of most of these
                self.close_connection = True
                return None
        return self._scripted(url)

    def _scripted(self, url):
        parts = url.path.strip("/").split("/")
        source = self.server.source
        if parts[0] == "flaky" and len(parts) == 3:
            fail = int(parse_qs(url.query).get("fail", ["0"])[0])
            with source.lock:
                source.hits[parts[1]] += 1
                count = source.hits[parts[1]]
            if count <= fail:
                return self._send(503, b"try later")
            return self._send(200, source.body(parts[2]))
        if parts[0] == "stall" and len(parts) == 2:
            with source.lock:
                source.hits["stall"] += 1
            self._send(200, b"0123456789", length=1000)
            self.wfile.flush()
            source.stopping.wait(60)
            return None
        if parts[0] == "trickle" and len(parts) == 2:
            with source.lock:
                source.hits["trickle"] += 1
            self._send(200, b"", length=1000)
            try:
                for _ in range(1000):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    if source.stopping.wait(0.3):
                        break
            except OSError:
                pass
            self.close_connection = True
            return None
        if parts[0] == "ok" and len(parts) == 2:
            return self._send(200, source.body(parts[1]))
        return self._send(404, b"no such object")

    def _hostile(self, path):
        port = self.server.server_address[1]
        stopping = self.server.source.stopping
        if path == "/ok.py":
            self._head(200, [("Content-Length", str(len(OK_BODY)))])
            self.wfile.write(OK_BODY)
        elif path == "/redirect-to-denied/ok.py":  # to a name the server denies
            self._head(302, [("Location", f"http://localhost:{port}/hostile/ok.py"),
                             ("Content-Length", "0")])
        elif path == "/redirect-to-metadata/ok.py":
            self._head(302, [("Location", "http://169.254.169.254/latest/meta-data/ok.py"),
                             ("Content-Length", "0")])
        elif path == "/short-body.py":
            self._head(200, [("Content-Length", "1000000"), ("Connection", "close")])
            self.wfile.write(b"x" * 10)
            self.close_connection = True
        elif path == "/huge-length.py":
            self._head(200, [("Content-Length", str(10 << 30)), ("Connection", "close")])
            self.wfile.write(b"h" * 65536)
            self.close_connection = True
        elif path == "/endless.py":  # ends when the client hangs up (OSError) or at stop()
            self._head(200, [("Transfer-Encoding", "chunked")])
            chunk = b"e" * 65536
            while not stopping.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.close_connection = True
        elif path == "/no-answer.py":
            stopping.wait(120)
            self.close_connection = True
        elif path == "/stall.py":
            self._head(200, [("Content-Length", "100")])
            self.wfile.write(b"s" * 10)
            self.wfile.flush()
            stopping.wait(120)
            self.close_connection = True
        else:
            self._head(404, [("Content-Length", "0")])


class SourceServer:
    def __init__(self):
        self.hits = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.source = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def body(name):
        return name.encode() * 100

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
