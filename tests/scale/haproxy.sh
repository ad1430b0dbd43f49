#!/usr/bin/env bash
# Scale scenario 3: three Tessera instances behind HAProxy, on one PostgreSQL through PgBouncer
# (transaction mode), restarted one after another under load as a rolling upgrade does.
#
# HAProxy checks each instance's /readyz every 500 ms (down after 2 failures, up after 2
# successes). Each instance runs with server.drain = 2s: on SIGTERM its /readyz turns 503 while it
# goes on serving, HAProxy takes it out, and only then does it stop accepting. Under refresh and
# sign-in load through HAProxy, each instance in turn gets SIGTERM, exits, starts again and waits
# until HAProxy has it back. Target: every answer the clients get is a 200 (no 5xx, no 400, no
# broken connection), and every token they hold refreshes at the end.
#
# Then reuse detection across instances: a token rotated on one instance and replayed on another
# revokes the family, seen by the third.
#
# Usage: tests/scale/haproxy.sh   (as root; PostgreSQL on 127.0.0.1:5432)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
trap scale_cleanup EXIT
scale_begin

bouncer=$(free_port)
start_pgbouncer "$bouncer" 5432
db=tessera_scale_haproxy
fresh_database "$db"

lb=$(free_port)
ports=("$(free_port)" "$(free_port)" "$(free_port)")
export TESSERA_DATABASE__URL="postgres://postgres@127.0.0.1:$bouncer/$db" TESSERA_DATABASE__POOLER=transaction
export TESSERA_MASTER_KEY_FILE="$scale_work/master.key"
export TESSERA_SERVER__ISSUER="http://127.0.0.1:$lb" TESSERA_SERVER__DRAIN=2s
# HAProxy adds X-Forwarded-For; the instances trust it from loopback.
export TESSERA_SERVER__TRUSTED_PROXIES=127.0.0.1
export TESSERA_PASSWORDS__ARGON2_MEMORY_KIB=4096 TESSERA_PASSWORDS__ARGON2_ITERATIONS=1
export RUST_LOG=warn
shared_master_key "$TESSERA_MASTER_KEY_FILE"
declare -A instance
start_instance() {
    local i=$1
    TESSERA_SERVER__LISTEN="127.0.0.1:${ports[$i]}" spawn "$scale_work/tessera-$i.log" "$tessera_bin"
    instance[$i]=$spawned
    wait_for "instance $i ready" 60 curl -sf "http://127.0.0.1:${ports[$i]}/readyz"
}
for i in 0 1 2; do start_instance "$i"; done

cat > "$scale_work/haproxy.cfg" <<CFG
global
    maxconn 4000
    stats socket $scale_work/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option forwardfor
    retries 3
    option redispatch

frontend api
    bind 127.0.0.1:$lb
    default_backend tessera

backend tessera
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    server t0 127.0.0.1:${ports[0]} check
    server t1 127.0.0.1:${ports[1]} check
    server t2 127.0.0.1:${ports[2]} check
CFG
chown "$run_as:$run_as" "$scale_work/haproxy.cfg"
spawn "$scale_work/haproxy.log" "${as_user[@]}" haproxy -db -f "$scale_work/haproxy.cfg"
# server_status NAME: UP, DOWN, … as HAProxy has it.
server_status() {
    python3 - "$scale_work/haproxy.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
for line in data.decode().splitlines():
    f = line.split(",")
    if len(f) > 17 and f[0] == "tessera" and f[1] == sys.argv[2]:
        print(f[17])
PY
}
is_up() { [ "$(server_status "$1")" = UP ]; }
for i in 0 1 2; do wait_for "HAProxy has t$i up" 30 is_up "t$i"; done
echo "== HAProxy $(haproxy -v | head -n1 | awk '{print $3}') on 127.0.0.1:$lb in front of three instances (PgBouncer in transaction mode behind them)"

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
c=$("$admin_bin" client register --name rolling --grant password --grant refresh_token -o json)
id=$(echo "$c" | field client_id); secret=$(echo "$c" | field client_secret)
echo "correct horse battery staple" | "$admin_bin" user create alice --password-stdin >/dev/null

echo "== refresh and sign-in load through HAProxy"
stop="$scale_work/stop"; ready="$scale_work/ready"
python3 "$here/load.py" --base "http://127.0.0.1:$lb" --client-id "$id" --client-secret "$secret" \
    --username alice --password "correct horse battery staple" --chains 6 --sign-in-threads 2 \
    --sign-in-pause 0.05 --seconds 120 --stop-file "$stop" --ready-file "$ready" \
    --allow 200 --out "$out/rolling.json" > "$scale_work/load.log" 2>&1 &
load=$!
scale_pids+=("$load")
wait_for "the load to start" 30 test -f "$ready"
sleep 2

echo "== rolling restart: SIGTERM, wait for the exit, start, wait until HAProxy has it back"
for i in 0 1 2; do
    t0=$(date +%s.%N)
    stop_pid "${instance[$i]}"
    t1=$(date +%s.%N)
    start_instance "$i"
    wait_for "HAProxy has t$i back" 30 is_up "t$i"
    t2=$(date +%s.%N)
    python3 -c "print(f'   t$i: stopped in {$t1 - $t0:.1f} s, back in HAProxy {$t2 - $t1:.1f} s later')"
done
sleep 2
touch "$stop"
# The load's own verdict: every answer 200, every token still refreshes.
wait "$load" || { echo "FAIL: the load saw a failure" >&2; cat "$scale_work/load.log" >&2; exit 1; }
forget "$load"
cat "$out/rolling.json"

echo "== reuse detection across instances"
token() {
    curl -s -u "$id:$secret" "http://127.0.0.1:$1/token" -d "$2"
}
t1=$(token "${ports[0]}" "grant_type=password&username=alice&password=correct+horse+battery+staple" | field refresh_token)
t2=$(token "${ports[1]}" "grant_type=refresh_token&refresh_token=$t1" | field refresh_token)
t3=$(token "${ports[2]}" "grant_type=refresh_token&refresh_token=$t2" | field refresh_token)
replay=$(token "${ports[0]}" "grant_type=refresh_token&refresh_token=$t1" | field error)
after=$(token "${ports[1]}" "grant_type=refresh_token&refresh_token=$t3" | field error)
echo "   rotated on t0, t1 and t2; the first token replayed on t0: $replay; the current one on t1 then: $after"
[ "$replay" = invalid_grant ] && [ "$after" = invalid_grant ] \
    || { echo "FAIL: a replay on another instance did not revoke the family" >&2; exit 1; }

python3 - "$out/rolling.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
by = s["by_kind_and_status"]
print(f"rolling restart: {s['requests']} requests in {s['seconds']} s "
      f"({sum(by.get('refresh', {}).values())} refreshes, {sum(by.get('sign_in', {}).values())} sign-ins), "
      f"{s['not_200']} not 200")
PY
stop_all
drop_database "$db"
echo "PASS haproxy: three instances restarted one after another with no failed request, $(( $(date +%s) - started )) s"
