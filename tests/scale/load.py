#!/usr/bin/env python3
"""Refresh and sign-in load for the scale scenarios, as apps would make it, and what it saw.

Each chain signs in once (password grant), then refreshes its token in a loop as an app does: the
new refresh token after a 200, the same one again after a 503 or a broken connection. Sign-in
threads make password grants in a loop. Every answer is recorded; the load stops when the stop
file appears, after --seconds, or after --max-requests per thread, whichever comes first.

At the end each chain refreshes the token it holds once more: every token a client received must
still work. The summary (JSON, on stdout and in --out) counts answers by status, and for each line
of --marks ("<unix seconds> <name>") the time from that mark to the first successful refresh sent
after it.

Standard library only.
"""

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

USER_AGENT = "tessera-scale/1.0"


class Endpoint:
    """One keep-alive connection to one of the bases, taken in turn."""

    def __init__(self, bases, offset):
        self.bases = bases
        self.next = offset
        self.conn = None

    def post(self, path, form, auth):
        if self.conn is None:
            url = urllib.parse.urlsplit(self.bases[self.next % len(self.bases)])
            self.next += 1
            self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        body = urllib.parse.urlencode(form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": auth,
            "User-Agent": USER_AGENT,
        }
        try:
            self.conn.request("POST", path, body, headers)
            res = self.conn.getresponse()
            data = res.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            return None, {}, str(e)
        if res.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return res.status, {k.lower(): v for k, v in res.getheaders()}, data


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples = []  # (kind, sent, status or "conn_error", answered)
        self.problems = []
        self.signed_in = set()  # chains that hold a token

    def add(self, kind, sent, status):
        with self.lock:
            self.samples.append((kind, sent, status, time.time()))

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)


def check_503(rec, kind, headers, body):
    """A 503 must say temporarily_unavailable and carry Retry-After."""
    try:
        error = json.loads(body).get("error")
    except ValueError:
        error = None
    if "retry-after" not in headers or error != "temporarily_unavailable":
        rec.problem(f"{kind}: a 503 without Retry-After or temporarily_unavailable: {body[:200]!r}")


def sign_in(ep, args, rec, stop, kind="sign_in"):
    """A password grant, repeated after a 503 or a broken connection; the refresh token."""
    form = {"grant_type": "password", "username": args.username, "password": args.password}
    while not stop.is_set():
        sent = time.time()
        status, headers, body = ep.post("/token", form, args.auth)
        rec.add(kind, sent, status if status is not None else "conn_error")
        if status == 200:
            return json.loads(body)["refresh_token"]
        if status == 503:
            check_503(rec, kind, headers, body)
        elif status is not None:
            rec.problem(f"{kind}: {status} {body[:200]!r}")
            return None
        time.sleep(0.05)
    return None


def chain(i, args, rec, stop, finals):
    ep = Endpoint(args.base, i)
    token = sign_in(ep, args, rec, stop)
    if token is None:
        return
    with rec.lock:
        rec.signed_in.add(i)
    for _ in range(args.max_requests):
        if stop.is_set():
            break
        sent = time.time()
        status, headers, body = ep.post(
            "/token", {"grant_type": "refresh_token", "refresh_token": token}, args.auth
        )
        rec.add("refresh", sent, status if status is not None else "conn_error")
        if status == 200:
            token = json.loads(body)["refresh_token"]
        elif status == 503:
            check_503(rec, "refresh", headers, body)
            time.sleep(0.05)
        elif status is None:
            time.sleep(0.05)
        else:
            # The token this chain was given no longer works: something acknowledged was lost.
            rec.problem(f"refresh: {status} {body[:300]!r}")
            token = None
            break
        if args.pause:
            time.sleep(args.pause)
    finals[i] = token


def sign_ins(i, args, rec, stop):
    ep = Endpoint(args.base, i)
    for _ in range(args.max_requests):
        if stop.is_set() or sign_in(ep, args, rec, stop, "sign_in") is None:
            break
        time.sleep(args.sign_in_pause)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", action="append", required=True, help="server address; several are used in turn")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--chains", type=int, default=6)
    p.add_argument("--sign-in-threads", type=int, default=0)
    p.add_argument("--sign-in-pause", type=float, default=0.2)
    p.add_argument("--pause", type=float, default=0.0, help="seconds between a chain's refreshes")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-requests", type=int, default=100000, help="per thread")
    p.add_argument("--stop-file", required=True)
    p.add_argument("--ready-file", help="written once every chain has signed in")
    p.add_argument("--marks", help="lines '<unix seconds> <name>' to time recoveries from")
    p.add_argument("--out", required=True)
    p.add_argument("--allow", default="200", help="the statuses every answer must have, comma-separated")
    args = p.parse_args()
    pair = f"{urllib.parse.quote(args.client_id, safe='')}:{urllib.parse.quote(args.client_secret, safe='')}"
    args.auth = "Basic " + base64.b64encode(pair.encode()).decode()

    rec = Recorder()
    stop = threading.Event()
    finals = {}
    def guarded(target, *a):
        """A thread that fails (a 200 without a token, say) is a problem, not a silent end."""
        def run():
            try:
                target(*a)
            except Exception as e:  # noqa: BLE001 - every failure counts
                rec.problem(f"{target.__name__}: {type(e).__name__}: {e}")
        return threading.Thread(target=run)

    threads = [guarded(chain, i, args, rec, stop, finals) for i in range(args.chains)]
    threads += [guarded(sign_ins, args.chains + i, args, rec, stop) for i in range(args.sign_in_threads)]
    started = time.time()
    for t in threads:
        t.start()
    ready_written = False
    while any(t.is_alive() for t in threads):
        if not ready_written and args.ready_file:
            with rec.lock:
                signed_in = len(rec.signed_in)
            if signed_in >= args.chains:
                open(args.ready_file, "w").close()
                ready_written = True
        if os.path.exists(args.stop_file):
            stop.set()
        elif time.time() - started > args.seconds and not stop.is_set():
            # The scenario did not end in time: what it did after this went unmeasured.
            rec.problem(f"the load ran out of time ({args.seconds} s) before the stop file")
            stop.set()
        time.sleep(0.05)
    for t in threads:
        t.join()

    # Every token a client holds still refreshes.
    not_refreshing = 0
    for i in range(args.chains):
        token = finals.get(i)
        ep = Endpoint(args.base, i)
        status = None
        for _ in range(50):
            status, _, body = ep.post(
                "/token", {"grant_type": "refresh_token", "refresh_token": token or "-"}, args.auth
            )
            if status != 503 and status is not None:
                break
            time.sleep(0.1)
        if status != 200:
            not_refreshing += 1
            rec.problem(f"chain {i}: its last token does not refresh: {status} {body[:200]!r}")

    counts = {}
    for kind, _, status, _ in rec.samples:
        counts.setdefault(kind, {}).setdefault(str(status), 0)
        counts[kind][str(status)] += 1
    # For each mark: the first refresh sent after it that failed (the outage, as clients saw
    # it), and the first one sent after that which succeeded. The time from the mark to that
    # success's answer is the recovery; requests sent in the moment between the mark and the
    # kill do not count as recovered.
    recoveries = {}
    if args.marks and os.path.exists(args.marks):
        refreshes = sorted((s, st, done) for k, s, st, done in rec.samples if k == "refresh")
        for line in open(args.marks):
            at, name = line.split(maxsplit=1)
            at = float(at)
            failed = next((s for s, st, _ in refreshes if s >= at and st != 200), None)
            ok = None
            if failed is not None:
                ok = next((done for s, st, done in refreshes if s > failed and st == 200), None)
            recoveries[name.strip()] = {
                "first_failure_after": None if failed is None else round(failed - at, 3),
                "first_success_answered_after": None if ok is None else round(ok - at, 3),
            }
    failed = sum(
        n for kind in counts.values() for status, n in kind.items() if status != "200"
    )
    summary = {
        "seconds": round(time.time() - started, 1),
        "requests": len(rec.samples),
        "by_kind_and_status": counts,
        "not_200": failed,
        "chains_not_refreshing_at_the_end": not_refreshing,
        "recovery_seconds": recoveries,
        "problems": rec.problems,
    }
    text = json.dumps(summary, indent=2)
    open(args.out, "w").write(text + "\n")
    print(text)

    # The verdict: every answer had an allowed status, no problem was seen, every chain's last
    # token still refreshes.
    allowed = set(args.allow.split(","))
    errors = [
        f"{n} {kind} answers were {status}"
        for kind, statuses in counts.items()
        for status, n in statuses.items()
        if status not in allowed
    ]
    if rec.problems:
        errors.append("problems: " + "; ".join(rec.problems[:5]))
    if not_refreshing:
        errors.append(f"{not_refreshing} chains hold a token that no longer refreshes")
    if errors:
        print("FAIL: " + "; ".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
