# Sourced by the scale scenarios (tests/scale/*.sh) and by bench/run.sh: the Debian packages they
# need, processes started and stopped by PID, and PgBouncer in transaction mode.
#
# Every process a scenario starts goes through `spawn`, which records its PID; `stop_all` (run on
# exit, pass or fail) sends SIGTERM to each, waits up to 10 s, then sends SIGKILL. PostgreSQL,
# PgBouncer and HAProxy run as the unprivileged `postgres` user, on loopback ports of their own.

scale_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pg_major="$(ls /usr/lib/postgresql | sort -n | tail -n1)"
pg_bin="/usr/lib/postgresql/$pg_major/bin"
run_as=postgres
scale_pids=()

# The packages, from Debian, when missing. The services their packages would start are not used.
scale_install() {
    local missing=()
    for pkg in pgbouncer haproxy pg-auto-failover-cli "postgresql-$pg_major-auto-failover" python3 curl; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A work directory the unprivileged user owns; removed on exit unless SCALE_KEEP is set.
scale_workdir() {
    scale_work="$(mktemp -d /tmp/tessera-scale.XXXXXX)"
    chmod 755 "$scale_work"
    chown "$run_as:$run_as" "$scale_work"
    as_user=(setpriv "--reuid=$run_as" "--regid=$run_as" --init-groups --reset-env --
             env "PATH=$pg_bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$scale_work")
}

# spawn LOG CMD…: CMD in the background, its output in LOG, its PID in $spawned and in the list
# `stop_all` stops. "${as_user[@]}" before CMD runs it as the unprivileged user (setpriv execs,
# so the PID is the program's own). Each gets a process group of its own (setsid), so that a
# "machine" can be killed whole.
spawn() {
    local log=$1; shift
    setsid "$@" >"$log" 2>&1 < /dev/null &
    spawned=$!
    scale_pids+=("$spawned")
}

# forget PID: no longer ours to stop (it ended), so that a reused PID is never signalled.
forget() {
    local pid=$1 kept=() p
    for p in "${scale_pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    scale_pids=("${kept[@]}")
}

# stop PID: SIGTERM, up to 10 s, then SIGKILL; then forgotten.
stop_pid() {
    local pid=$1
    forget "$pid"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "   (pid $pid did not stop in 10 s: SIGKILL)"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
    local i
    for (( i=${#scale_pids[@]}-1; i>=0; i-- )); do
        stop_pid "${scale_pids[$i]}"
    done
    scale_pids=()
}

scale_cleanup() {
    local status=$?
    stop_all
    if [ "$status" -ne 0 ] && [ -n "${scale_work:-}" ]; then
        echo "--- logs (${scale_work}) ---" >&2
        for f in "$scale_work"/*.log; do
            [ -f "$f" ] || continue
            echo "--- $f (last 30 lines)" >&2
            tail -n 30 "$f" >&2
            # r2d2's reconnect attempts can fill the tail of an instance's log during an
            # outage; the errors Tessera itself logged are what explains a failed request.
            if grep -v 'r2d2' "$f" | grep -q 'ERROR'; then
                echo "--- $f (its own errors, last 20)" >&2
                grep -v 'r2d2' "$f" | grep 'ERROR' | tail -n 20 >&2
            fi
        done
    fi
    if [ -z "${SCALE_KEEP:-}" ] && [ -n "${scale_work:-}" ]; then
        rm -rf "$scale_work"
    fi
    return "$status"
}

# wait_for WHAT SECONDS CMD…: runs CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_for() {
    local what=$1 secs=$2; shift 2
    local deadline=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "FAIL: $what not within ${secs}s" >&2
            return 1
        fi
        sleep 0.1
    done
}

# A database of its own on the machine's PostgreSQL (127.0.0.1:5432), made anew or dropped.
pg_admin() {
    local args=() sql
    for sql in "$@"; do args+=(-c "$sql"); done
    PGOPTIONS="-c client_min_messages=warning" psql -q -h 127.0.0.1 -U postgres -d postgres "${args[@]}"
}
fresh_database() { pg_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)" "CREATE DATABASE $1"; }
drop_database() { pg_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

# shared_master_key FILE: one master key for instances that start at once (each would otherwise
# make its own).
shared_master_key() {
    head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$1"
    chmod 600 "$1"
}

# start_pgbouncer PORT UPSTREAM_PORT [POOL_SIZE]: PgBouncer 1.18 in transaction mode on
# 127.0.0.1:PORT in front of PostgreSQL on 127.0.0.1:UPSTREAM_PORT, every database, trust
# authentication, the default max_prepared_statements (none). Its PID in $pgbouncer_pid.
start_pgbouncer() {
    local port=$1 upstream=$2 size=${3:-20}
    local dir="$scale_work/pgbouncer-$port"
    mkdir -p "$dir"
    cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$upstream

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $size
max_client_conn = 2000
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
INI
    echo '"postgres" ""' > "$dir/userlist.txt"
    chown -R "$run_as:$run_as" "$dir"
    spawn "$scale_work/pgbouncer-$port.log" "${as_user[@]}" pgbouncer "$dir/pgbouncer.ini"
    pgbouncer_pid=$spawned
    wait_for "PgBouncer on $port" 10 psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc 'SELECT 1'
}

# What every scenario does first: the packages, a work directory, the binaries; `started` and
# `out` (target/scale, where each leaves its figures). The caller sets `trap scale_cleanup EXIT`.
scale_begin() {
    scale_install
    scale_workdir
    scale_binaries
    started=$(date +%s)
    out="$scale_root/target/scale"
    mkdir -p "$out"
}

# The debug binaries the test suite builds (cargo builds them only when they are missing or old).
scale_binaries() {
    (cd "$scale_root" && cargo build -q -p tessera --bin tessera && cargo build -q -p tessera-admin)
    tessera_bin="$scale_root/target/debug/tessera"
    admin_bin="$scale_root/target/debug/tessera-admin"
}
