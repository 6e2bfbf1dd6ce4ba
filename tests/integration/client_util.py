"""Running the `dlipkg` client (build/dlipkg push|ls|...) in the integration tests: an
environment per credential mode, a runner that checks no secret leaks into its output, a
pseudo-terminal runner for progress bars, and a proxy that corrupts downloads.
Only 127.0.0.1 is ever used."""
import http.client
import http.server
import os
import pty
import select
import subprocess
import threading
import time

from harness import DLIPKG

ALICE_AK = "AKCLIENT000000000001"
ALICE_SK = "sk-client-7d1e0c4b9a8f6e5d4c3b2a1908f7e6d5"
ALICE_TOKEN = "tok-client-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SECRETS = [ALICE_SK, ALICE_TOKEN]
USERS = [
    {"name": "alice", "projects": ["p1"],
     "access_keys": [{"ak": ALICE_AK, "sk": ALICE_SK}],
     "tokens": [{"token": ALICE_TOKEN}]},
    {"name": "bobby", "projects": ["p1"]},
]


def client_env(server, mode, home, **extra):
    """The environment of a client talking to `server` as alice: mode "aksk" or "token"; HOME
    is a fresh directory so no real profile is read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DLIPKG_") and k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(home), DLIPKG_ENDPOINT=server.url, DLIPKG_PROJECT="p1")
    if mode == "aksk":
        env.update(DLIPKG_AK=ALICE_AK, DLIPKG_SK=ALICE_SK)
    elif mode == "token":
        env.update(DLIPKG_TOKEN=ALICE_TOKEN)
    env.update(extra)
    return env


def run(env, *args, input=None, timeout=120, cwd=None):
    """Runs `dlipkg ARGS`; returns the CompletedProcess (text). Fails the test if a secret
    appears in what it printed."""
    done = subprocess.run([str(DLIPKG), *args], env=env, input=input, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr, f"a secret was printed by {args}"
    return done


def ok(env, *args, **kw):
    done = run(env, *args, **kw)
    assert done.returncode == 0, f"dlipkg {' '.join(args)} exited {done.returncode}:\n" \
                                 f"{done.stdout}\n{done.stderr}"
    return done


def run_in_pty(env, *args, timeout=300):
    """Runs `dlipkg ARGS` with stderr on a pseudo-terminal (stdout a pipe); returns
    (exit code, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(DLIPKG), *args], env=env, stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    received = bytearray()
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            received += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.stdout.read().decode()
    code = proc.wait(timeout=max(1, deadline - time.time()))
    return code, stdout, received.decode(errors="replace")


class CorruptingProxy:
    """A loopback HTTP proxy in front of `target` (host:port) that forwards every request as
    received (so signatures still verify) and flips one byte in the body of 2xx GET answers
    whose path contains `corrupt_marker` (with `uploads=True`: in the body of PUT requests
    whose path contains it instead)."""

    def __init__(self, target, corrupt_marker, uploads=False):
        self.target, self.marker, self.uploads = target, corrupt_marker, uploads
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.uploads and self.command == "PUT" and proxy.marker in self.path and body:
                    body = bytes([body[0] ^ 0x01]) + body[1:]
                host, port = proxy.target.split(":")
                upstream = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items()}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                if (not proxy.uploads and self.command == "GET" and 200 <= answer.status < 300
                        and proxy.marker in self.path and data):
                    data = bytes([data[0] ^ 0x01]) + data[1:]
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
