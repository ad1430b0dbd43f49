#!/usr/bin/env bash
# Retention at scale, on PostgreSQL (bench/run.sh ends with it; it also runs alone):
#  1. refresh rotation and client_credentials on an empty store;
#  2. the same on a store of a million families with several tokens each (generated in SQL, as
#     a store looks after weeks), and the server's start-up on it;
#  3. rotation again while `tessera-admin prune` deletes a backlog of a million dead families;
#  4. a steady state: short lifetimes (30 s idle, 2 min absolute), retention of a minute, apps
#     signing in and refreshing for BENCH_STEADY_SECONDS (600), the database's size sampled.
# Writes its section of bench/RESULTS.md (after run.sh's table).
#
# Usage: bench/retention.sh    BENCH_FAMILIES=1000000 BENCH_SECONDS=10 BENCH_STEADY_SECONDS=600
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
secs="${BENCH_SECONDS:-10}"
families="${BENCH_FAMILIES:-1000000}"
steady_secs="${BENCH_STEADY_SECONDS:-600}"
conns=16
threads=2

. "$here/common.sh"

echo "== building (release)"
(cd "$root" && cargo build -q --release -p tessera --bin tessera && cargo build -q --release -p tessera-admin)
bin="$root/target/release"

work="$(mktemp -d)"
server=""
sampler=""
autovacuum_restore=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    [ -n "$autovacuum_restore" ] && psql -q "$pg/postgres" -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="$base"
export TESSERA_MASTER_KEY_FILE="$work/master.key"
export TESSERA_THROTTLE__MAX_FAILURES_PER_IP=1000000 TESSERA_THROTTLE__MAX_FAILURES_PER_USER=1000000
# The server does not prune on its own here: pruning runs where it is measured.
export TESSERA_RETENTION__INTERVAL=0s
export RUST_LOG=${RUST_LOG:-warn}

fresh_db() {
    psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
    export TESSERA_DATABASE__URL="$pg/$1"
}
start_server() {
    "$bin/tessera" > "$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 2000); do curl -sf "$base/healthz" >/dev/null && return; sleep 0.005; done
    echo "tessera did not start" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
admin() { "$bin/tessera-admin" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
sql() { psql -qtA "$TESSERA_DATABASE__URL" "$@"; }

# register: a client that refreshes, a service client, the user.
register() {
    local c
    c=$(admin client register --name bench --grant password --grant refresh_token --scope read -o json)
    id=$(echo "$c" | field client_id); secret=$(echo "$c" | field client_secret)
    c=$(admin client register --name bench-service --grant client_credentials --scope read -o json)
    cc_id=$(echo "$c" | field client_id); cc_secret=$(echo "$c" | field client_secret)
    echo "correct horse battery staple" | admin user create alice --password-stdin >/dev/null
    user_id=$(sql -c "SELECT id FROM users WHERE username = 'alice'")
    basic="Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
    cc_basic="Basic $(printf '%s:%s' "$cc_id" "$cc_secret" | base64 -w0)"
    login="grant_type=password&username=alice&password=correct+horse+battery+staple&scope=read"
}
# seed: fresh families for the rotation chains (run.sh explains the spare ones).
seed() {
    : > "$work/tokens"
    for _ in $(seq 1 $((conns + 2 * threads))); do
        curl -sf "$base/token" -H "Authorization: $basic" -d "$login" | field refresh_token >> "$work/tokens"
    done
}
# run NAME SCRIPT SECONDS [VAR=value…]: wrk with the summary hook; prints the BENCH JSON line.
run() {
    local name=$1 script=$2 duration=$3; shift 3
    cat "$here/$script" "$here/summary.lua" > "$work/$name.lua"
    env "$@" BENCH_THREADS=$threads wrk -t$threads -c$conns -d"${duration}s" --timeout 10s \
        -s "$work/$name.lua" "$base/token" | grep '^BENCH ' | sed 's/^BENCH //'
}
rotation() { run "$1" rotate.lua "$secs" BENCH_TOKENS="$work/tokens" BENCH_BASIC="$basic"; }
ccred() { run "$1" fixed.lua "$secs" BENCH_METHOD=POST BENCH_BODY="grant_type=client_credentials" BENCH_AUTH="$cc_basic"; }

# generate PREFIX COUNT DEAD: COUNT families with four tokens each (three rotated), for the
# bench user and client; DEAD=1 makes them revoked two months ago.
generate() {
    local prefix=$1 n=$2 dead=$3 now
    now=$(date +%s%3N)
    sql -v n="$n" -v now="$now" -v dead="$dead" -v prefix="$prefix" -v client="$id" -v usr="$user_id" <<'SQL'
\set day 86400000::bigint
INSERT INTO token_families (id, client_id, user_id, scope, auth_method, created_at, expires_at,
                            revoked_at, revoked_reason)
SELECT :'prefix' || lpad(g::text, 19, '0'), :'client', :'usr', 'read', 'password',
       :now - 7 * :day - :dead * 60 * :day, :now + 23 * :day - :dead * 60 * :day,
       CASE WHEN :dead = 1 THEN :now - 60 * :day END, CASE WHEN :dead = 1 THEN 'bench' END
FROM generate_series(1, :n) AS g;
INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at,
                            rotated_at, replaced_by, client_ip, user_agent)
SELECT :'prefix' || lpad(g::text, 16, '0') || '-' || k,
       :'prefix' || lpad(g::text, 19, '0'),
       CASE WHEN k > 1 THEN :'prefix' || lpad(g::text, 16, '0') || '-' || (k - 1) END,
       md5(:'prefix' || g || '-' || k) || md5(k || '-' || g || :'prefix'),
       :now - (8 - k) * :day - :dead * 60 * :day,
       :now + 7 * :day - :dead * 60 * :day,
       CASE WHEN k < 4 THEN :now - (7 - k) * :day - :dead * 60 * :day END,
       CASE WHEN k < 4 THEN :'prefix' || lpad(g::text, 16, '0') || '-' || (k + 1) END,
       '203.0.113.7', 'bench/1.0'
FROM generate_series(1, :n) AS g, generate_series(1, 4) AS k;
SQL
    sql -c "VACUUM ANALYZE token_families" -c "VACUUM ANALYZE refresh_tokens"
}
# settle: after a bulk load, a checkpoint and a short unmeasured run, so that the next measured
# run sees the store as a server that has been running on it does (the load's gigabyte of WAL
# otherwise forces a checkpoint in the middle of it, and its pages are cold), not the load.
settle() {
    sql -c "CHECKPOINT"
    seed
    rotation warm_up >/dev/null
}

echo "== 1. empty store"
fresh_db tessera_large
start_server
register
settle
seed
empty_rot=$(rotation empty_rotation)
empty_cc=$(ccred empty_cc)
stop_server

echo "== 2. a store of $families families (generating)"
g0=$(date +%s)
generate live "$families" 0
gen_secs=$(( $(date +%s) - g0 ))
db_bytes=$(sql -c "SELECT pg_database_size(current_database())")
t0=$(date +%s%N); start_server; t1=$(date +%s%N)
startup_ms=$(( (t1 - t0) / 1000000 ))
settle
seed
large_rot=$(rotation large_rotation)
large_cc=$(ccred large_cc)

echo "== 3. a backlog of $families dead families, pruned under load"
generate dead "$families" 1
settle
seed
(
    p0=$(date +%s%N)
    admin prune -o json > "$work/prune.json"
    echo $(( $(date +%s%N) - p0 )) > "$work/prune.ns"
    date +%s%N > "$work/prune.end"
) &
pruner=$!
sleep 1
during_rot=$(rotation during_prune)
during_end=$(date +%s%N)
wait "$pruner"
prune_secs=$(python3 -c "print(round($(cat "$work/prune.ns") / 1e9, 1))")
prune_busy_through_run=$([ "$(cat "$work/prune.end")" -gt "$during_end" ] && echo yes || echo no)
stop_server

echo "== 4. steady state for ${steady_secs}s"
# Deleted rows become reusable space through (auto)vacuum, on by default in PostgreSQL; a test
# machine may turn it off. On for this run, as it would be in production, then put back.
autovacuum=$(psql -qtA "$pg/postgres" -c "SHOW autovacuum")
if [ "$autovacuum" = off ]; then
    psql -q "$pg/postgres" -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
    autovacuum_restore=1
fi
fresh_db tessera_steady
export TESSERA_TOKENS__REFRESH_IDLE_TTL=30s TESSERA_TOKENS__REFRESH_ABSOLUTE_TTL=2m
export TESSERA_RETENTION__INTERVAL=10s TESSERA_RETENTION__DEAD_FAMILIES=1m TESSERA_RETENTION__AUDIT=1m
export TESSERA_PASSWORDS__ARGON2_MEMORY_KIB=4096 TESSERA_PASSWORDS__ARGON2_ITERATIONS=1
start_server
register
: > "$work/sizes"
(
    s0=$(date +%s)
    while true; do
        echo "$(( $(date +%s) - s0 )) $(sql -c "SELECT pg_database_size(current_database()), (SELECT count(*) FROM token_families), (SELECT count(*) FROM refresh_tokens), (SELECT count(*) FROM audit_events)" | tr '|' ' ')" >> "$work/sizes"
        sleep 30
    done
) &
sampler=$!
steady=$(run steady steady.lua "$steady_secs" BENCH_BASIC="$basic" BENCH_LOGIN="$login")
kill "$sampler"; sampler=""
if [ -n "$autovacuum_restore" ]; then
    psql -q "$pg/postgres" -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null
    autovacuum_restore=""
fi
echo "$(( steady_secs )) $(sql -c "SELECT pg_database_size(current_database()), (SELECT count(*) FROM token_families), (SELECT count(*) FROM refresh_tokens), (SELECT count(*) FROM audit_events)" | tr '|' ' ')" >> "$work/sizes"
stop_server
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS tessera_large WITH (FORCE)" -c "DROP DATABASE IF EXISTS tessera_steady WITH (FORCE)"

python3 - "$here/RESULTS.md" "$work/sizes" "$work/prune.json" <<PY
import json, sys
r = {k: json.loads(v) for k, v in {
    "empty_rot": '''$empty_rot''', "empty_cc": '''$empty_cc''', "large_rot": '''$large_rot''',
    "large_cc": '''$large_cc''', "during_rot": '''$during_rot''', "steady": '''$steady'''}.items()}
prune = json.load(open(sys.argv[3]))
sizes = [list(map(int, l.split())) for l in open(sys.argv[2]) if l.strip()]
def rate(k): return r[k]["rps"]
def check(ok): return "met" if ok else "missed"
large_ratio = rate("large_rot") / rate("empty_rot")
during_ratio = rate("during_rot") / rate("empty_rot")
p99_ratio = r["during_rot"]["p99_ms"] / r["empty_rot"]["p99_ms"]
lines = [
    "",
    "## Retention at scale",
    "",
    f"Produced by \`bench/retention.sh\` (the end of \`bench/run.sh\`): {int('$families'):,} families with four refresh tokens each",
    f"(three rotated), generated in SQL in $gen_secs s; the database was then {int('$db_bytes') / 2**20:,.0f} MiB. wrk as above, ${secs} s per run,",
    f"each after a checkpoint and an unmeasured run of as long.",
    "",
    "| run | req/s | p50 ms | p99 ms | non-2xx | vs empty store | target |",
    "|---|---:|---:|---:|---:|---:|---|",
]
def row(title, k, base, target):
    w = r[k]
    ratio = w["rps"] / rate(base) if base else None
    lines.append("| {} | {:.0f} | {:.2f} | {:.2f} | {} | {} | {} |".format(
        title, w["rps"], w["p50_ms"], w["p99_ms"], w["non2xx"] + w["socket_errors"],
        "-" if ratio is None else f"{ratio:.2f}", target))
row("rotation, empty store", "empty_rot", None, "-")
row("rotation, large store", "large_rot", "empty_rot", f"≥ 0.9 ({check(large_ratio >= 0.9)})")
row(f"rotation while {int('$families'):,} dead families are pruned", "during_rot", "empty_rot",
    f"≥ 0.8 ({check(during_ratio >= 0.8)}); p99 {p99_ratio:.2f} × empty ≤ 2 ({check(p99_ratio <= 2)})")
row("client_credentials, empty store", "empty_cc", None, "-")
row("client_credentials, large store", "large_cc", "empty_cc", "-")
removed = prune.get("tables", {})
lines += [
    "",
    f"- Start-up to ready on the large store: $startup_ms ms (target ≤ 300 ms: {check(int('$startup_ms') <= 300)}).",
    f"- The prune took $prune_secs s (still running when the measured run ended: $prune_busy_through_run) and removed "
    + ", ".join(f"{n:,} {t}" for t, n in removed.items() if n) + ".",
    "",
    f"Steady state: refresh idle 30 s, absolute 2 min, retention of 1 min (dead families, audit), pruning every 10 s;",
    f"wrk apps sign in (Argon2id 4 MiB, t=1 here), refresh until the family ends, sign in again: {r['steady']['rps']:.0f} req/s",
    f"over {int('$steady_secs')} s, with PostgreSQL's autovacuum on (its default; this machine's configuration turns it off,",
    f"the run turns it on: was '$autovacuum'). The database's size and rows, sampled every 30 s:",
    "",
    "| s | database MiB | families | refresh tokens | audit events |",
    "|---:|---:|---:|---:|---:|",
]
for t, size, fam, tok, aud in sizes:
    lines.append(f"| {t} | {size / 2**20:.1f} | {fam:,} | {tok:,} | {aud:,} |")
later = [s[1] for s in sizes if s[0] >= 240]
if later:
    lines += ["", f"From 4 min on, the size stays within {min(later) / 2**20:.1f}–{max(later) / 2**20:.1f} MiB "
              f"({(max(later) / min(later) - 1) * 100:.0f}% apart)."]
path = sys.argv[1]
text = open(path).read()
marker = "\n## Retention at scale\n"
if marker in text:
    text = text[:text.index(marker)]
text = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
open(path, "w").write(text)
print("\n".join(lines))
PY
