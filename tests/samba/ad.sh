#!/usr/bin/env bash
# Provisions a throw-away Samba AD DC in DIR and starts it on loopback, as root (Samba's LDAP
# server listens on 389 and 636, which no option moves). Nothing outside DIR is read or written:
# the DC's smb.conf, databases, sockets, pid and logs are all under it (never /etc/samba).
#   tests/samba/ad.sh DIR [WATCH_PID]
# Speaks ldaps:// on 127.0.0.1:636 and StartTLS on 127.0.0.1:389 with the test-only certificate of
# tests/fixtures/tls (issued to 127.0.0.1 by a CA of its own); plain simple binds are refused
# (Samba's default: ldap server require strong auth).
# Realm PB.TEST, base DC=pb,DC=test; users go to CN=Users,DC=pb,DC=test. The administrator is
# CN=Administrator,CN=Users,DC=pb,DC=test, its password in DIR/admin.pw.
# The DC runs until killed: its pid is in DIR/samba.pid (SIGTERM stops it and its children).
# With WATCH_PID it also stops by itself when that process is gone (a test runner killed
# with SIGKILL leaves no DC holding the ports). A failed start stops what it started.
set -euo pipefail
DIR=$1 WATCH=${2:-}
FIXTURES="$(cd "$(dirname "$0")/../fixtures/tls" && pwd)"
SAMBA=$(command -v samba || echo /usr/sbin/samba)
[ -x "$SAMBA" ] || { echo "samba is not installed (apt-get install samba)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "a Samba AD DC needs root (its LDAP ports are 389 and 636)" >&2; exit 1; }
DIR=$(mkdir -p "$DIR" && cd "$DIR" && pwd)
for port in 389 636; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is taken (another DC still running?)" >&2
    exit 1
  fi
done

# AD's default password policy: 7 characters or more, three character classes.
PW="Pb-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')-A1"
printf '%s' "$PW" >"$DIR/admin.pw"
chmod 600 "$DIR/admin.pw"
mkdir -p "$DIR/run" "$DIR/log" "$DIR/tls"
# Samba refuses a private key readable by others.
install -m 600 "$FIXTURES/server.key" "$DIR/tls/key.pem"
install -m 644 "$FIXTURES/server.pem" "$DIR/tls/cert.pem"
install -m 644 "$FIXTURES/ca.pem" "$DIR/tls/ca.pem"

stop() {
  if [ -f "$DIR/samba.pid" ]; then
    kill "$(cat "$DIR/samba.pid")" 2>/dev/null || true
  fi
}
trap 'stop' ERR INT TERM

# Only the LDAP server: no file sharing, KDC, DNS or NetBIOS, so nothing but 389/636 is bound
# (and 3268/3269, the global catalog), on 127.0.0.1 alone.
OPTIONS=(
  "interfaces=127.0.0.1"
  "bind interfaces only=yes"
  "server services=ldap"
  "pid directory=$DIR/run"
  "ncalrpc dir=$DIR/run/ncalrpc"
  "winbindd socket directory=$DIR/run/winbindd"
  "log file=$DIR/log/log.%m"
  "tls enabled=yes"
  "tls keyfile=$DIR/tls/key.pem"
  "tls certfile=$DIR/tls/cert.pem"
  "tls cafile=$DIR/tls/ca.pem"
)
ARGS=()
for o in "${OPTIONS[@]}"; do ARGS+=("--option=$o"); done
samba-tool domain provision --use-rfc2307 --realm=PB.TEST --domain=PB --adminpass="$PW" \
  --server-role=dc --dns-backend=NONE --targetdir="$DIR/dc" "${ARGS[@]}" >"$DIR/log/provision.log" 2>&1 \
  || { tail -20 "$DIR/log/provision.log" >&2; exit 1; }

# Foreground (-F) in the background of a shell of its own, so its pid is known at once.
setsid "$SAMBA" -F --debug-stdout -s "$DIR/dc/etc/smb.conf" >"$DIR/log/samba.log" 2>&1 </dev/null &
echo $! >"$DIR/samba.pid"

for _ in $(seq 1 300); do
  if LDAPTLS_CACERT="$DIR/tls/ca.pem" ldapsearch -x -H ldaps://127.0.0.1:636 -D "CN=Administrator,CN=Users,DC=pb,DC=test" \
    -y "$DIR/admin.pw" -b "DC=pb,DC=test" -s base dn >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$(cat "$DIR/samba.pid")" 2>/dev/null; then
    echo "samba exited at start-up:" >&2
    tail -20 "$DIR/log/samba.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! LDAPTLS_CACERT="$DIR/tls/ca.pem" ldapsearch -x -H ldaps://127.0.0.1:636 -D "CN=Administrator,CN=Users,DC=pb,DC=test" \
  -y "$DIR/admin.pw" -b "DC=pb,DC=test" -s base dn >/dev/null 2>&1; then
  echo "the DC did not answer an ldaps:// bind within 30 s:" >&2
  tail -20 "$DIR/log/samba.log" >&2
  stop
  exit 1
fi

if [ -n "$WATCH" ]; then
  # A watchdog of its own session: it outlives this script and stops the DC once WATCH is gone.
  SAMBA_PID=$(cat "$DIR/samba.pid")
  setsid bash -c "while kill -0 $WATCH 2>/dev/null && kill -0 $SAMBA_PID 2>/dev/null; do sleep 1; done; kill $SAMBA_PID 2>/dev/null" \
    >/dev/null 2>&1 </dev/null &
fi
trap - ERR INT TERM
