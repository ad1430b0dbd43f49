#!/usr/bin/env bash
# Tessera's benchmark: the server on PostgreSQL, driven by wrk from a second process on
# loopback, next to the limits measured in the same run on the same machine (pgbench -N,
# raw Argon2id verifications, raw ES256 signatures). Prints one table and writes
# bench/RESULTS.md.
#
# Then bench/retention.sh adds retention at scale (a large store, pruning under load, a steady
# state): BENCH_RETENTION=0 skips it.
#
# Usage: bench/run.sh            (BENCH_SECONDS=10 per workload by default)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
secs="${BENCH_SECONDS:-10}"
conns=16
threads=2

. "$here/common.sh"
# PgBouncer in transaction mode, started as tests/scale does it.
. "$root/tests/scale/lib.sh"
scale_install

echo "== building (release)"
(cd "$root" && cargo build -q --release -p tessera --bin tessera --example bench_limits && cargo build -q --release -p tessera-admin)
bin="$root/target/release"

work="$(mktemp -d)"
server=""
scale_workdir
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    stop_all
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work" "$scale_work"
}
trap cleanup EXIT
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS tessera_bench WITH (FORCE)" -c "CREATE DATABASE tessera_bench"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="$base"
export TESSERA_DATABASE__URL="$pg/tessera_bench" TESSERA_MASTER_KEY_FILE="$work/master.key"
# Only failures count, but no more sign-ins of one user than its limit are checked at once (the
# rest wait for a place); the benchmark measures the grant, not the throttle.
export TESSERA_THROTTLE__MAX_FAILURES_PER_IP=1000000 TESSERA_THROTTLE__MAX_FAILURES_PER_USER=1000000
export RUST_LOG=${RUST_LOG:-warn}

start_server() {
    "$bin/tessera" > "$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 1000); do curl -sf "$base/healthz" >/dev/null && return; sleep 0.005; done
    echo "tessera did not start" >&2; cat "$work/server.log" >&2; exit 1
}
echo "== starting tessera on PostgreSQL"
start_server                       # first start: migrations, master key, signing key
kill "$server"; wait "$server" 2>/dev/null || true
t0=$(date +%s%N); start_server; t1=$(date +%s%N)
startup_ms=$(( (t1 - t0) / 1000000 ))

# A second instance on the same database through PgBouncer (pool_mode = transaction), for the
# rotation through the pooler.
bouncer=$(free_port)
start_pgbouncer "$bouncer" 5432
pooled_port=$(free_port)
pooled_base="http://127.0.0.1:$pooled_port"
TESSERA_SERVER__LISTEN="127.0.0.1:$pooled_port" TESSERA_DATABASE__URL="postgres://postgres@127.0.0.1:$bouncer/tessera_bench" \
    TESSERA_DATABASE__POOLER=transaction spawn "$work/pooled.log" "$bin/tessera"
for _ in $(seq 1 1000); do curl -sf "$pooled_base/readyz" >/dev/null && break; sleep 0.01; done

echo "== seeding"
admin() { "$bin/tessera-admin" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
c=$(admin client register --name bench --grant password --grant refresh_token --scope read -o json)
id=$(echo "$c" | field client_id); secret=$(echo "$c" | field client_secret)
c=$(admin client register --name bench-service --grant client_credentials --scope read -o json)
cc_id=$(echo "$c" | field client_id); cc_secret=$(echo "$c" | field client_secret)
echo "correct horse battery staple" | admin user create alice --password-stdin >/dev/null
basic="Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
cc_basic="Basic $(printf '%s:%s' "$cc_id" "$cc_secret" | base64 -w0)"
login="grant_type=password&username=alice&password=correct+horse+battery+staple&scope=read"
: > "$work/tokens"; : > "$work/tokens-pooled"; : > "$work/tokens-direct2"
# A spare family per thread: wrk asks each thread for one request up front that it never
# sends, and that token would otherwise be missing from the chains.
for _ in $(seq 1 $((conns + 2 * threads))); do
    for f in tokens tokens-pooled tokens-direct2; do
        curl -sf "$base/token" -H "Authorization: $basic" -d "$login" | field refresh_token >> "$work/$f"
    done
done
access=$(curl -sf "$base/token" -H "Authorization: $basic" -d "$login" | field access_token)
# DPoP (RFC 9449): families started with proofs from one key, refreshed with proofs from it.
dpop_proofs() { node "$here/dpop_proofs.mjs" "$work/dpop-key.json" "$1" POST "$base/token"; }
: > "$work/dpop-tokens"
dpop_proofs $((conns + 2 * threads)) > "$work/dpop-start"
while read -r proof; do
    curl -sf "$base/token" -H "Authorization: $basic" -H "DPoP: $proof" -d "$login" | field refresh_token >> "$work/dpop-tokens"
done < "$work/dpop-start"

# BENCH_PERF=DIR: also profile every process on the machine during each workload
# (perf record -a, call graphs), and write DIR/NAME.txt: CPU time per process and the
# server's hottest functions.
perf_dir="${BENCH_PERF:-}"
if [ -n "$perf_dir" ]; then
    mkdir -p "$perf_dir"; perf_dir="$(cd "$perf_dir" && pwd)"
    command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf; }
fi
profile_summary() {
    local data=$1 out=$2
    {
        echo "## CPU samples per process (all CPUs; idle is 'swapper')"
        perf report -i "$data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -8
        echo; echo "## PostgreSQL: time spent in (and under) these functions"
        perf report -i "$data" --children --comm postgres --sort symbol --stdio -g none 2>/dev/null \
            | grep -wE 'PostgresMain|exec_simple_query|exec_bind_message|exec_execute_message|pg_plan_queries|standard_ExecutorStart|standard_ExecutorRun|CommitTransactionCommand|XLogFlush|ExecInsertIndexTuples|heap_update|heap_insert|heap_lock_tuple|secure_read'
        echo; echo "## tessera: hottest functions, self time"
        perf report -i "$data" --no-children --pid "$server" --sort dso,symbol --stdio -g none 2>/dev/null \
            | grep -E '^ +[0-9]' | head -40
    } | sed -e 's/ *- *- *$//' -e 's/ *$//' | cut -c1-160 > "$out" || true
}

# run NAME SCRIPT [VAR=value…]: wrk with the summary hook; prints the BENCH JSON line. The
# server is $base unless BENCH_BASE says otherwise.
run() {
    local name=$1 script=$2 perf_pid=""; shift 2
    cat "$here/$script" "$here/summary.lua" > "$work/$name.lua"
    if [ -n "$perf_dir" ]; then
        # Started a second early, recording from the load's second second to its last: perf's
        # own start-up would otherwise stall the server and show in the latencies.
        perf record -D 2000 -F 499 -a -g -o "$perf_dir/$name.data" -- sleep "$secs" >/dev/null 2>&1 &
        perf_pid=$!
        sleep 1
    fi
    env "$@" BENCH_THREADS=$threads wrk -t$threads -c$conns -d"${secs}s" --timeout 10s -s "$work/$name.lua" "${BENCH_BASE:-$base}$BENCH_PATH" \
        | grep '^BENCH ' | sed 's/^BENCH //'
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        profile_summary "$perf_dir/$name.data" "$perf_dir/$name.txt"
    fi
}
echo "   (work directory: $work)"
echo "== workloads (${secs}s each, $conns connections)"
# Each limit is measured right before and right after its workload, and the two averaged:
# this machine's speed drifts over minutes (shared cores), and a limit measured at another
# time would measure the drift.
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS tessera_pgbench WITH (FORCE)" -c "CREATE DATABASE tessera_pgbench"
pgbench -q -i -s 1 "$pg/tessera_pgbench" >/dev/null 2>&1
pgbench_tps() { pgbench -N -c $conns -j $threads -T "$secs" "$pg/tessera_pgbench" 2>/dev/null | awk '/^tps/ {print $3; exit}'; }
limit() { "$bin/examples/bench_limits" "$1" "$secs"; }
# What a rotation costs the database and the machine (docs/scaling.md): WAL records, bytes and
# flushes (pg_stat_wal), and CPU time (clock ticks) of the server and of every PostgreSQL process.
counters() {
    local wal server_cpu pg_cpu
    wal=$(psql -tA "$pg/postgres" -c "SELECT wal_records || ' ' || wal_bytes || ' ' || wal_sync FROM pg_stat_wal")
    server_cpu=$(awk '{print $14 + $15}' "/proc/$server/stat")
    pg_cpu=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {s += $14 + $15} END {print s + 0}')
    echo "$wal $server_cpu $pg_cpu"
}
pg_before=$(pgbench_tps)
costs_before=$(counters)
BENCH_PATH=/token;    rotation=$(run rotation rotate.lua BENCH_TOKENS="$work/tokens" BENCH_BASIC="$basic")
costs_after=$(counters)
pg_after=$(pgbench_tps)
# Through PgBouncer, between two direct runs on families of their own: the ratio is to their mean.
BENCH_BASE=$pooled_base BENCH_PATH=/token; pooled=$(run rotation_pooled rotate.lua BENCH_TOKENS="$work/tokens-pooled" BENCH_BASIC="$basic")
BENCH_BASE=$base BENCH_PATH=/token; direct2=$(run rotation_direct2 rotate.lua BENCH_TOKENS="$work/tokens-direct2" BENCH_BASIC="$basic")
# Proofs for the whole run, made just before it (each is good for tokens.dpop_max_age): more
# than the plain rotation managed, so the run does not run out.
dpop_proofs $(python3 -c "import json; print(int(json.loads('''$rotation''')['rps'] * $secs * 1.5) + 1000)") > "$work/dpop-run"
BENCH_PATH=/token;    dpop=$(run dpop_rotation rotate.lua BENCH_TOKENS="$work/dpop-tokens" BENCH_PROOFS="$work/dpop-run" BENCH_BASIC="$basic")
argon_before=$(limit argon2)
BENCH_PATH=/token;    password=$(run password fixed.lua BENCH_METHOD=POST BENCH_BODY="$login" BENCH_AUTH="$basic")
argon_after=$(limit argon2)
BENCH_PATH=/token;    ccred=$(run client_credentials fixed.lua BENCH_METHOD=POST BENCH_BODY="grant_type=client_credentials" BENCH_AUTH="$cc_basic")
BENCH_PATH=/userinfo; userinfo=$(run userinfo fixed.lua BENCH_METHOD=GET BENCH_AUTH="Bearer $access")
BENCH_PATH=/healthz;  healthz=$(run healthz fixed.lua BENCH_METHOD=GET)
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

es256=$(limit es256)
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS tessera_pgbench WITH (FORCE)"

python3 - "$here/RESULTS.md" "$perf_dir" <<PY
import json, os, platform, subprocess, sys
r = {k: json.loads(v) for k, v in {
    "rotation": '''$rotation''', "rotation_pooled": '''$pooled''', "rotation_direct2": '''$direct2''', "dpop_rotation": '''$dpop''', "password": '''$password''', "client_credentials": '''$ccred''',
    "userinfo": '''$userinfo''', "healthz": '''$healthz'''}.items()}
limits = json.loads('''$es256''')
c0 = [float(x) for x in "$costs_before".split()]
c1 = [float(x) for x in "$costs_after".split()]
ticks = os.sysconf("SC_CLK_TCK")
n = r["rotation"]["requests"]
cost = {
    "wal_records": (c1[0] - c0[0]) / n, "wal_bytes": (c1[1] - c0[1]) / n, "wal_syncs": (c1[2] - c0[2]) / n,
    "server_cpu_ms": (c1[3] - c0[3]) / ticks * 1000 / n, "postgres_cpu_ms": (c1[4] - c0[4]) / ticks * 1000 / n,
}
argon = [json.loads(t)["argon2id_verify_per_s"] for t in ('''$argon_before''', '''$argon_after''')]
limits["argon2id_verify_per_s"] = sum(argon) / 2
pgb = [float("$pg_before"), float("$pg_after")]
pgbench = sum(pgb) / 2
ceiling = r["healthz"]["rps"]
direct = (r["rotation"]["rps"] + r["rotation_direct2"]["rps"]) / 2
rows = [
    ("refresh_token rotation", "rotation", "pgbench -N", pgbench, 0.7),
    ("rotation through PgBouncer (pool_mode = transaction)", "rotation_pooled", "rotation direct", direct, 0.8),
    ("rotation with DPoP (a fresh proof per request)", "dpop_rotation", "plain rotation", r["rotation"]["rps"], 0.7),
    ("password grant (Argon2id 19 MiB, t=2)", "password", "raw Argon2id verify", limits["argon2id_verify_per_s"], 0.9),
    ("client_credentials", "client_credentials", "/healthz ceiling", ceiling, 0.5),
    ("/userinfo", "userinfo", "/healthz ceiling", ceiling, 0.5),
    ("/healthz", "healthz", "-", None, None),
]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
pgv = subprocess.run(["psql", "-tA", "$pg/postgres", "-c", "SHOW server_version"], capture_output=True, text=True).stdout.strip()
lines = [
    "# Benchmark results",
    "",
    f"Machine: {os.cpu_count()} cores ({cpu}), {int(mem)//1024} MiB, Linux {platform.release()}, PostgreSQL {pgv}.",
    f"Each workload: wrk, $threads threads, $conns connections, ${secs} s, on loopback; Tessera release build on PostgreSQL.",
    "Produced by \`bench/run.sh\`.",
    "",
    "| workload | req/s | p50 ms | p99 ms | non-2xx | limit | limit/s | ratio | target |",
    "|---|---:|---:|---:|---:|---|---:|---:|---|",
]
for title, key, limit_name, limit, target in rows:
    w = r[key]
    ratio = w["rps"] / limit if limit else None
    ok = "" if target is None else ("met" if ratio >= target else "missed")
    lines.append("| {} | {:.0f} | {:.2f} | {:.2f} | {} | {} | {} | {} | {} |".format(
        title, w["rps"], w["p50_ms"], w["p99_ms"], w["non2xx"] + w["socket_errors"], limit_name,
        "-" if limit is None else f"{limit:.0f}", "-" if ratio is None else f"{ratio:.2f}",
        "-" if target is None else f"≥ {target} ({ok})"))
lines += [
    "",
    f"- Limits, before and after their workload (the table has the mean): pgbench -N {pgb[0]:.0f} and {pgb[1]:.0f} TPS; raw Argon2id {argon[0]:.0f} and {argon[1]:.0f} verifications/s.",
    f"- Rotation p99 {r['rotation']['p99_ms']:.2f} ms (target ≤ 20 ms at 16 connections).",
    f"- Rotation direct, before and after the run through PgBouncer (the table's limit is the mean): {r['rotation']['rps']:.0f} and {r['rotation_direct2']['rps']:.0f} req/s; through PgBouncer p99 {r['rotation_pooled']['p99_ms']:.2f} ms.",
    f"- Peak RSS of the server through the run: {int('$rss_kib')/1024:.1f} MiB (target ≤ 100 MiB).",
    f"- Per rotation (direct, {n} rotations): {cost['wal_records']:.1f} WAL records, {cost['wal_bytes']:.0f} WAL bytes, "
    f"{cost['wal_syncs']:.2f} WAL flushes; CPU {cost['server_cpu_ms']:.3f} ms in the server and {cost['postgres_cpu_ms']:.3f} ms in PostgreSQL "
    f"(so one core rotates {1000 / cost['server_cpu_ms']:.0f}/s in the server or {1000 / cost['postgres_cpu_ms']:.0f}/s in PostgreSQL).",
    f"- Start-up to ready on an existing database: $startup_ms ms (target ≤ 300 ms).",
    f"- Raw ES256 on {limits['cores']} cores: {limits['es256_sign_per_s']:.0f} signatures/s, {limits['es256_verify_per_s']:.0f} verifications/s.",
]
# The HTTP ceiling and the signature math share the same cores: a server that did nothing
# but answer HTTP and sign (or verify) once per request could reach at most this.
def with_crypto(per_s):
    return 1 / (1 / ceiling + 1 / per_s)
sign_cap = with_crypto(limits["es256_sign_per_s"])
verify_cap = with_crypto(limits["es256_verify_per_s"])
lines += [
    "",
    "The /healthz ceiling leaves out the signature each token needs, on the same cores. With it:",
    "",
    "| workload | HTTP + ES256 only, req/s | that / /healthz | workload / that |",
    "|---|---:|---:|---:|",
    f"| client_credentials (one signature) | {sign_cap:.0f} | {sign_cap / ceiling:.2f} | {r['client_credentials']['rps'] / sign_cap:.2f} |",
    f"| /userinfo (one verification) | {verify_cap:.0f} | {verify_cap / ceiling:.2f} | {r['userinfo']['rps'] / verify_cap:.2f} |",
]
perf_dir = sys.argv[2] if len(sys.argv) > 2 else ""
if perf_dir:
    names = ["rotation", "password", "client_credentials", "userinfo", "healthz"]
    share = {}
    for n in names:
        for line in open(os.path.join(perf_dir, n + ".txt")):
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith("%"):
                comm = " ".join(parts[1:])
                group = {"tokio-rt-worker": "tessera (blocking pool)", "actix-rt|system": "tessera (HTTP workers)",
                         "postgres": "PostgreSQL", "wrk": "wrk", "swapper": "idle"}.get(comm)
                if group:
                    share.setdefault(n, {})[group] = share.get(n, {}).get(group, 0) + float(parts[0][:-1])
    groups = ["tessera (HTTP workers)", "tessera (blocking pool)", "PostgreSQL", "wrk", "idle"]
    lines += ["", "CPU time per process during each workload (\`perf record -a\`, both cores, BENCH_PERF; the",
              f"latencies above include the profiler's own overhead; summaries in {os.path.relpath(perf_dir, '$root')}/):", "",
              "| workload | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{share.get(n, {}).get(g, 0):.0f}%" for g in groups) + " |")

text = "\n".join(lines) + "\n"
open(sys.argv[1], "w").write(text)
print(text)
PY

if [ "${BENCH_RETENTION:-1}" != 0 ]; then
    [ -n "$server" ] && kill "$server" 2>/dev/null; server=""
    "$here/retention.sh"
fi
