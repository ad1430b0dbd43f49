#!/usr/bin/env bash
# Scale scenario 2: automatic failover by pg_auto_failover, twice, under refresh load.
#
# A monitor, a primary and a secondary (synchronous replication, pg_auto_failover's default for
# two nodes), each a `pg_autoctl` keeper with its PostgreSQL, run as the `postgres` user on
# loopback ports of their own. Tessera is given the formation's multi-host URL with
# target_session_attrs=read-write. Under refresh and sign-in load:
#
#  1. The primary's "machine" dies: SIGKILL to its keeper, its postmaster and everything in its
#     process group. The monitor promotes the secondary by itself.
#  2. The old primary's keeper starts again; it rejoins as the secondary.
#  3. The new primary's machine dies the same way; the monitor promotes the first node back.
#
# Every answer must be 200 or 503 with Retry-After; every refresh token a client received must
# still refresh at the end (nothing acknowledged was lost); tests/sql/family_invariants.sql must
# hold on the last primary; /metrics must count the server changes. Printed: the time from each
# kill to the first successful refresh sent after it.
#
# The monitor's health checks are tightened (1 s period, unhealthy after 2 s, 3 s demote timeout)
# so that the scenario fits in CI; pg_auto_failover's defaults (5 s, 20 s, 30 s) make each
# failover take about 30 s more, and production should keep them unless its network is known.
#
# Usage: tests/scale/failover.sh   (as root)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
trap scale_cleanup EXIT
scale_begin

monitor_port=$(free_port); port1=$(free_port); port2=$(free_port)
autoctl() { "${as_user[@]}" pg_autoctl "$@"; }
# state NODE: "<reported>/<assigned>" of node NODE (1 or 2), as the monitor has them.
state() {
    autoctl show state --pgdata "$scale_work/monitor" --json 2>/dev/null | python3 -c "
import json, sys
for n in json.load(sys.stdin):
    if n['nodename'] == 'node$1':
        print(n['current_group_state'] + '/' + n['assigned_group_state'])"
}
is_state() { [ "$(state "$1")" = "$2" ]; }
# The node's whole machine, its keeper and PostgreSQL, killed at once.
declare -A keeper
kill_machine() {
    local n=$1 postmaster
    postmaster=$(head -n1 "$scale_work/node$n/postmaster.pid" 2>/dev/null || true)
    kill -KILL -- "-${keeper[$n]}" 2>/dev/null || true
    if [ -n "$postmaster" ]; then
        # Its process group too, should it have one of its own: no backend outlives it.
        kill -KILL -- "-$postmaster" 2>/dev/null || true
        kill -KILL "$postmaster" 2>/dev/null || true
    fi
    wait "${keeper[$n]}" 2>/dev/null || true
    forget "${keeper[$n]}"
}

echo "== pg_auto_failover $(pg_autoctl --version 2>/dev/null | head -n1 | awk '{print $3}'): a monitor and two nodes"
spawn "$scale_work/monitor.log" "${as_user[@]}" pg_autoctl create monitor --pgdata "$scale_work/monitor" \
    --pgport "$monitor_port" --hostname 127.0.0.1 --auth trust --no-ssl --run
wait_for "the monitor" 60 psql -h 127.0.0.1 -p "$monitor_port" -U postgres -d pg_auto_failover -Atc 'SELECT 1'
psql -q -h 127.0.0.1 -p "$monitor_port" -U postgres -d pg_auto_failover \
    -c "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" \
    -c "ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000" \
    -c "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" \
    -c "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500" \
    -c "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 2000" \
    -c "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 3000" \
    -c "SELECT pg_reload_conf()" >/dev/null
monitor_url="postgres://autoctl_node@127.0.0.1:$monitor_port/pg_auto_failover?sslmode=disable"
create_node() {
    local n=$1 port=$2
    spawn "$scale_work/node$n.log" "${as_user[@]}" pg_autoctl create postgres --pgdata "$scale_work/node$n" \
        --pgport "$port" --hostname 127.0.0.1 --auth trust --no-ssl --name "node$n" \
        --monitor "$monitor_url" --run
    keeper[$n]=$spawned
}
create_node 1 "$port1"
wait_for "node1 primary" 90 is_state 1 single/single
create_node 2 "$port2"
wait_for "node2 secondary" 120 is_state 2 secondary/secondary
wait_for "node1 primary with a secondary" 60 is_state 1 primary/primary
sync=$(psql -h 127.0.0.1 -p "$port1" -U postgres -Atc "SELECT sync_state FROM pg_stat_replication")
echo "   node1 primary, node2 secondary (replication: $sync; synchronous_standby_names = '$(psql -h 127.0.0.1 -p "$port1" -U postgres -Atc "SHOW synchronous_standby_names")')"
[ "$sync" = quorum ] || [ "$sync" = sync ] || { echo "FAIL: replication is $sync, not synchronous" >&2; exit 1; }

# The URL the formation gives, with the user and database Tessera uses.
uri=$(autoctl show uri --pgdata "$scale_work/monitor" --formation default)
echo "   formation URI: $uri"
case "$uri" in *target_session_attrs=read-write*) ;; *) echo "FAIL: no target_session_attrs in $uri" >&2; exit 1 ;; esac
psql -q -h 127.0.0.1 -p "$port1" -U postgres -d postgres -c "CREATE DATABASE tessera"
url=$(echo "$uri" | sed -e 's|^postgres://|postgres://postgres@|' -e 's|/postgres?|/tessera?|')

echo "== tessera on $url"
api=$(free_port); metrics=$(free_port)
export TESSERA_DATABASE__URL="$url" TESSERA_MASTER_KEY_FILE="$scale_work/master.key"
export TESSERA_SERVER__LISTEN="127.0.0.1:$api" TESSERA_SERVER__ISSUER="http://127.0.0.1:$api"
export TESSERA_SERVER__METRICS_LISTEN="127.0.0.1:$metrics"
# A request waits at most 1 s for a connection before its 503; a refresh whose answer was lost
# in the outage is answered again when retried (the grace window is longer than a failover).
export TESSERA_DATABASE__CONNECT_TIMEOUT=1s TESSERA_TOKENS__REUSE_GRACE=60s
export TESSERA_PASSWORDS__ARGON2_MEMORY_KIB=4096 TESSERA_PASSWORDS__ARGON2_ITERATIONS=1
export RUST_LOG=warn
spawn "$scale_work/tessera.log" "$tessera_bin"
wait_for "tessera ready" 60 curl -sf "http://127.0.0.1:$api/readyz"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
c=$("$admin_bin" client register --name failover --grant password --grant refresh_token -o json)
id=$(echo "$c" | field client_id); secret=$(echo "$c" | field client_secret)
echo "correct horse battery staple" | "$admin_bin" user create alice --password-stdin >/dev/null

echo "== refresh load: 6 chains and a sign-in loop"
stop="$scale_work/stop"; ready="$scale_work/ready"; marks="$scale_work/marks"; : > "$marks"
python3 "$here/load.py" --base "http://127.0.0.1:$api" --client-id "$id" --client-secret "$secret" \
    --username alice --password "correct horse battery staple" --chains 6 --sign-in-threads 1 \
    --seconds 150 --stop-file "$stop" --ready-file "$ready" --marks "$marks" \
    --allow 200,503 --out "$out/failover.json" > "$scale_work/load.log" 2>&1 &
load=$!
scale_pids+=("$load")
wait_for "the load to start" 30 test -f "$ready"
sleep 2

echo "== 1: node1's machine dies"
date +"%s.%N first_failover" >> "$marks"
kill_machine 1
wait_for "node2 promoted" 60 bash -c "psql -h 127.0.0.1 -p $port2 -U postgres -Atc 'SHOW transaction_read_only' | grep -qx off"
echo "   node2 accepts writes: $(state 2)"
sleep 2
echo "== 2: node1 comes back as the secondary"
spawn "$scale_work/node1-again.log" "${as_user[@]}" pg_autoctl run --pgdata "$scale_work/node1"
keeper[1]=$spawned
wait_for "node1 secondary again" 120 is_state 1 secondary/secondary
wait_for "node2 primary with a secondary" 60 is_state 2 primary/primary
echo "   node1 $(state 1), node2 $(state 2)"
sleep 2
echo "== 3: node2's machine dies"
date +"%s.%N second_failover" >> "$marks"
kill_machine 2
wait_for "node1 promoted" 60 bash -c "psql -h 127.0.0.1 -p $port1 -U postgres -Atc 'SHOW transaction_read_only' | grep -qx off"
echo "   node1 accepts writes: $(state 1)"
sleep 3
touch "$stop"
# The load's own verdict: every answer 200 or 503 with Retry-After, every token still refreshes.
wait "$load" || { echo "FAIL: the load saw a failure" >&2; cat "$scale_work/load.log" >&2; exit 1; }
forget "$load"
cat "$out/failover.json"

violations=$(psql -h 127.0.0.1 -p "$port1" -U postgres -d tessera -At -f "$scale_root/tests/sql/family_invariants.sql" | sort -u | tr '\n' ' ')
changes=$(curl -sf "http://127.0.0.1:$metrics/metrics" | awk '/^tessera_db_server_changes_total/ {print $2}')
python3 - "$out/failover.json" "$violations" "$changes" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
violations, changes = sys.argv[2].split(), float(sys.argv[3] or 0)
errors = []
for name, t in s["recovery_seconds"].items():
    if t["first_failure_after"] is None:
        errors.append(f"the load never saw {name}: no refresh failed after it")
    elif t["first_success_answered_after"] is None:
        errors.append(f"no successful refresh after {name}")
if violations != ["0"]:
    errors.append(f"family invariants violated on the new primary: {violations}")
if changes < 2:
    errors.append(f"/metrics counted {changes} server changes, not 2")
refreshes = s["by_kind_and_status"].get("refresh", {})
print(f"refreshes: {sum(refreshes.values())} ({refreshes.get('503', 0)} answered 503); "
      f"sign-ins: {sum(s['by_kind_and_status'].get('sign_in', {}).values())}; "
      "kill to the first successful refresh after the outage: "
      + ", ".join(f"{k} {v['first_success_answered_after']} s" for k, v in s["recovery_seconds"].items())
      + f"; server changes seen: {changes:.0f}")
if errors:
    print("FAIL failover: " + "; ".join(errors), file=sys.stderr)
    sys.exit(1)
PY
echo "PASS failover: two automatic failovers, $(( $(date +%s) - started )) s"
