"""Back-channel logout delivery, measured: the time from a revocation (the /revoke answer) to
the app's receipt of its logout token, first with every delivery answered at once, then with
every app answering its first attempt with 503 (one retry each). Driven by backchannel.sh,
which starts the server and passes its address, the receiver's port and the client in the
environment. Standard library only."""

import base64
import json
import os
import statistics
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE = os.environ["BENCH_BASE"]
METRICS = os.environ["BENCH_METRICS"]
CLIENT_ID, SECRET = os.environ["BENCH_CLIENT_ID"], os.environ["BENCH_CLIENT_SECRET"]
USERS = int(os.environ.get("BENCH_USERS", "50"))
PASSWORD = "correct horse battery staple"

received = {}  # sub -> receipt times (ns)
fail_first = set()  # subs whose first attempt gets 503
lock = threading.Lock()


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the handler's name is http.server's
        at = time.monotonic_ns()
        body = self.rfile.read(int(self.headers["Content-Length"]))
        token = urllib.parse.parse_qs(body.decode())["logout_token"][0]
        sub = claims(token)["sub"]
        with lock:
            times = received.setdefault(sub, [])
            times.append(at)
            status = 503 if sub in fail_first and len(times) == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def post(path, form, auth=None):
    req = urllib.request.Request(f"{BASE}{path}", data=urllib.parse.urlencode(form).encode())
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"{}")


def sign_in(user):
    token = post("/token", {"grant_type": "password", "username": user, "password": PASSWORD}, (CLIENT_ID, SECRET))
    info = urllib.request.Request(f"{BASE}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    with urllib.request.urlopen(info, timeout=30) as res:
        return token["refresh_token"], json.loads(res.read())["sub"]


def run(label, users, failing):
    families = [sign_in(u) for u in users]
    revoked_at = {}
    for refresh, sub in families:
        if failing:
            fail_first.add(sub)
        post("/revoke", {"token": refresh}, (CLIENT_ID, SECRET))
        revoked_at[sub] = time.monotonic_ns()
    deadline = time.monotonic() + 60
    want = 2 if failing else 1
    while time.monotonic() < deadline:
        with lock:
            if all(len(received.get(sub, [])) >= want for sub in revoked_at):
                break
        time.sleep(0.01)
    with lock:
        delays = sorted((received[sub][want - 1] - revoked_at[sub]) / 1e6 for sub in revoked_at)
    q = statistics.quantiles(delays, n=20)
    print(
        f"| {label} | {len(delays)} | {statistics.median(delays):.0f} | {q[18]:.0f} | {max(delays):.0f} |"
    )


class Server(ThreadingHTTPServer):
    # The default backlog (5) drops connections when the server posts a batch at once.
    request_queue_size = 256


def main():
    server = Server(("127.0.0.1", int(os.environ["BENCH_RECEIVER_PORT"])), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("| run | logouts | median ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    run("answered at once", [f"user{i}" for i in range(USERS)], failing=False)
    run("first attempt 503, one retry", [f"user{i}" for i in range(USERS, 2 * USERS)], failing=True)
    with urllib.request.urlopen(METRICS, timeout=10) as res:
        metrics = res.read().decode()
    print()
    for line in metrics.splitlines():
        if line.startswith(("tessera_backchannel_logouts_total", "tessera_backchannel_logout_delay_seconds_sum", "tessera_backchannel_logout_delay_seconds_count", "tessera_backchannel_logouts_pending")):
            print(f"    {line}")


main()
