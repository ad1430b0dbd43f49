#!/usr/bin/env bash
# The Debian package, end to end on this machine: built with cargo-deb, its systemd unit checked
# with systemd-analyze, installed with apt, started as the `tessera` user exactly as the unit
# starts it (its ExecStart, working directory and master-key credential), asked for a token with
# curl, stopped with SIGTERM (exit 0), then purged. Needs root (apt, runuser).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v curl >/dev/null || missing+=(curl)
command -v adduser >/dev/null || missing+=(adduser)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb

echo "== building the package"
cargo build --release --quiet -p tessera --bin tessera
cargo build --release --quiet -p tessera-admin
deb=$(cargo deb --no-build --quiet 2>/dev/null | tail -n1)
[ -f "$deb" ] || { echo "cargo deb made no package" >&2; exit 1; }
echo "$deb"
dpkg-deb --contents "$deb" | awk '{print $1, $2, $6}'

server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tessera >/dev/null 2>&1 || true
    rm -rf /var/lib/tessera "${cred:-}"
    getent passwd tessera >/dev/null && deluser --quiet --system tessera >/dev/null 2>&1 || true
    getent group tessera >/dev/null && delgroup --quiet --system tessera >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== installing"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" >/dev/null
unit=$(dpkg -L tessera | grep -E '/systemd/system/tessera\.service$')
# Any output is a finding: an unknown key is only a warning to systemd.
verify=$(systemd-analyze verify "$unit" 2>&1) || true
[ -z "$verify" ] || { echo "systemd-analyze verify $unit:" >&2; echo "$verify" >&2; exit 1; }
echo "systemd-analyze verify $unit: ok"
for directive in 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/tessera' 'NoNewPrivileges=true' \
    'PrivateTmp=true' 'CapabilityBoundingSet=$' 'LoadCredential=master.key:/etc/tessera/master.key' \
    'User=tessera' 'PrivateUsers=true' 'PrivateMounts=true'; do
    grep -qE "^$directive" "$unit" || { echo "the unit lacks $directive" >&2; exit 1; }
done
# systemd's own exposure score (0 best, 10 worst): 1.5 before PrivateUsers= and PrivateMounts=.
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security $unit: $exposure"
python3 -c "import sys; sys.exit(0 if float('$exposure') <= 1.2 else 1)" \
    || { echo "exposure $exposure is above 1.2" >&2; exit 1; }
getent passwd tessera >/dev/null || { echo "no tessera user" >&2; exit 1; }
# The master key is root's: only systemd reads it, and hands the service a copy.
[ "$(stat -c '%U %G %a' /etc/tessera/master.key)" = "root root 600" ]
if runuser -u tessera -- cat /etc/tessera/master.key >/dev/null 2>&1; then
    echo "the service's user can read /etc/tessera/master.key" >&2; exit 1
fi
[ "$(stat -c '%U %a' /var/lib/tessera)" = "tessera 750" ]

echo "== starting tessera as the unit does"
# LoadCredential: systemd copies the key into a private directory the service's user can read.
cred=$(mktemp -d)
install -m 0400 -o tessera -g tessera /etc/tessera/master.key "$cred/master.key"
chown tessera:tessera "$cred"; chmod 0500 "$cred"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The packaged configuration, but on a free port (8080 may be taken on a build machine).
# setpriv execs the server itself (runuser would stand between it and the signal).
(cd /var/lib/tessera && exec setpriv --reuid=tessera --regid=tessera --init-groups -- env -i PATH=/usr/bin:/bin \
    TESSERA_MASTER_KEY_FILE="$cred/master.key" \
    TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="$base" \
    $exec_start) > /tmp/tessera-package.log 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/readyz"; echo
[ "$(stat -c %U /var/lib/tessera/tessera.db)" = tessera ]

admin() { runuser -u tessera -- tessera-admin --config /etc/tessera/tessera.toml "$@"; }
client=$(admin client register --name package-check --grant password --grant refresh_token --scope read -o json)
id=$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
echo "correct horse battery staple" | admin user create alice --password-stdin >/dev/null
tokens=$(curl -sf -u "$id:$secret" "$base/token" \
    -d grant_type=password -d username=alice -d 'password=correct horse battery staple')
refresh=$(echo "$tokens" | python3 -c 'import json,sys; t=json.load(sys.stdin); assert t["token_type"]=="Bearer" and t["access_token"]; print(t["refresh_token"])')
curl -sf -u "$id:$secret" "$base/token" -d grant_type=refresh_token -d "refresh_token=$refresh" \
    | python3 -c 'import json,sys; assert json.load(sys.stdin)["refresh_token"]'
echo "a token from the packaged server: ok"
# The one command that needs the master key gets it as the server does, from a copy root made.
admin_with_key() {
    runuser -u tessera -- env TESSERA_MASTER_KEY_FILE="$cred/master.key" \
        tessera-admin --config /etc/tessera/tessera.toml "$@"
}
admin_with_key key rotate -o json | python3 -c 'import json,sys; assert json.load(sys.stdin)["kid"]'
if admin key rotate >/dev/null 2>&1; then
    echo "key rotate read the root-owned master key as the service's user" >&2; exit 1
fi
echo "key rotate with the credential copy: ok"

kill -TERM "$server"
status=0; wait "$server" || status=$?
server=""
[ "$status" -eq 0 ] || { echo "tessera exited $status after SIGTERM" >&2; cat /tmp/tessera-package.log >&2; exit 1; }

echo "== purging"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tessera >/dev/null
[ ! -e /usr/bin/tessera ] && [ ! -e /usr/bin/tessera-admin ] && [ ! -e /etc/tessera ]
echo "package: built, verified, installed, served a token, stopped cleanly, purged"
