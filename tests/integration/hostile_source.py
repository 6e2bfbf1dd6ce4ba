"""A source that misbehaves on purpose, for test_hostile_inputs.py.

Run as `python3 hostile_source.py`: listens on 127.0.0.1, port 0, prints the port, serves until
killed. Every path ends in a valid package name so that only the misbehaviour is judged.
"""
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK_BODY = b"print('ok')\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def head(self, status, headers):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def do_GET(self):
        port = self.server.server_address[1]
        path = self.path.split("?", 1)[0]
        try:
            if path == "/ok.py":
                self.head(200, [("Content-Length", str(len(OK_BODY)))])
                self.wfile.write(OK_BODY)
            elif path == "/redirect-to-denied/ok.py":  # to a name the server denies
                self.head(302, [("Location", f"http://localhost:{port}/ok.py"),
                                ("Content-Length", "0")])
            elif path == "/redirect-to-metadata/ok.py":
                self.head(302, [("Location", "http://169.254.169.254/latest/meta-data/ok.py"),
                                ("Content-Length", "0")])
            elif path == "/short-body.py":  # promises 1 MB, sends 10 bytes, hangs up
                self.head(200, [("Content-Length", "1000000"), ("Connection", "close")])
                self.wfile.write(b"x" * 10)
                self.close_connection = True
            elif path == "/huge-length.py":  # claims 10 GiB up front
                self.head(200, [("Content-Length", str(10 << 30)), ("Connection", "close")])
                self.wfile.write(b"h" * 65536)
                self.close_connection = True
            elif path == "/endless.py":  # no length, never ends
                self.head(200, [("Transfer-Encoding", "chunked")])
                chunk = b"e" * 65536
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            elif path == "/no-answer.py":  # accepts, reads the request, says nothing
                time.sleep(120)
                self.close_connection = True
            elif path == "/stall.py":  # headers and a few bytes, then silence
                self.head(200, [("Content-Length", "100")])
                self.wfile.write(b"s" * 10)
                self.wfile.flush()
                time.sleep(120)
                self.close_connection = True
            else:
                self.head(404, [("Content-Length", "0")])
        except OSError:  # the client gave up: that is the point of most of these
            self.close_connection = True


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()
