"""An HTTP source whose misbehaviour is scripted per path, for the async-upload tests.

Runs in a thread of the test process on 127.0.0.1, port 0:
  /flaky/<key>/<name>?fail=N  answers 503 to the first N requests of <key>, then the bytes
  /stall/<name>               sends headers and 10 bytes of 1000, then nothing for 60 s
  /trickle/<name>             sends headers, then one byte of 1000 every 0.3 s (never silent)
  /ok/<name>                  the bytes
The bytes of <name> are `name * 100`.
"""
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, length=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
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
            source.stalled.wait(60)
            return None
        if parts[0] == "trickle" and len(parts) == 2:
            with source.lock:
                source.hits["trickle"] += 1
            self._send(200, b"", length=1000)
            try:
                for _ in range(1000):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    if source.stalled.wait(0.3):
                        break
            except OSError:
                pass
            self.close_connection = True
            return None
        if parts[0] == "ok" and len(parts) == 2:
            return self._send(200, source.body(parts[1]))
        return self._send(404, b"no such object")


class ScriptedSource:
    def __init__(self):
        self.hits = Counter()
        self.lock = threading.Lock()
        self.stalled = threading.Event()
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
        self.stalled.set()
        self.server.shutdown()
        self.server.server_close()
