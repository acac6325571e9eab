# Sourced by scripts/test.sh: makes sure a Prometheus Pushgateway answers and exports
# PUSHGATEWAY_URL (the tests that push metrics read it).
#
# Order of preference:
#   1. PUSHGATEWAY_URL, when already set;
#   2. a Pushgateway already answering on 127.0.0.1:9091 (its standard port);
#   3. the one this script started earlier, on 127.0.0.1:$PUSHGATEWAY_PORT (default 19091);
#   4. Debian's prometheus-pushgateway (installed with apt-get when missing, as root), started
#      in the background on 127.0.0.1:$PUSHGATEWAY_PORT (or a free port if that one is taken by
#      something else), logging to target/pushgateway/log. It keeps running for the next runs,
#      like the throwaway Postgres cluster; stop it with `kill "$(cat target/pushgateway/pid)"`.
# No persistence file (Debian's build defaults to one under /var/lib/prometheus): its groups
# live as long as the process. The admin API is on (loopback only), so a test can wipe every
# group with `curl -X PUT $PUSHGATEWAY_URL/api/v1/admin/wipe`.

. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

pushgateway_answers() {
  # A Pushgateway answers /-/ready; /api/v1/status tells it apart from another server there.
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 "$1/-/ready" >/dev/null 2>&1 &&
      curl -fsS --max-time 2 "$1/api/v1/status" 2>/dev/null | grep -q '"status":"success"'
  else
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
base = sys.argv[1]
urllib.request.urlopen(base + "/-/ready", timeout=2)
body = urllib.request.urlopen(base + "/api/v1/status", timeout=2).read().decode()
sys.exit(0 if '"status":"success"' in body else 1)
PY
  fi
}

pushgateway_port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_pushgateway() {
  if [ -n "${PUSHGATEWAY_URL:-}" ]; then
    echo "pushgateway: using PUSHGATEWAY_URL from the environment" >&2
    return 0
  fi
  if pushgateway_answers http://127.0.0.1:9091; then
    export PUSHGATEWAY_URL=http://127.0.0.1:9091
    echo "pushgateway: using the one running on 127.0.0.1:9091" >&2
    return 0
  fi

  local port=${PUSHGATEWAY_PORT:-19091}
  local dir bin
  dir="$(pwd)/target/pushgateway"
  if pushgateway_answers "http://127.0.0.1:$port"; then
    export PUSHGATEWAY_URL="http://127.0.0.1:$port"
    echo "pushgateway: using the one started earlier on 127.0.0.1:$port" >&2
    return 0
  fi

  bin=$(command -v prometheus-pushgateway || true)
  [ -z "$bin" ] && [ -x /usr/bin/prometheus-pushgateway ] && bin=/usr/bin/prometheus-pushgateway
  if [ -z "$bin" ]; then
    if ! apt_install prometheus-pushgateway; then
      echo "pushgateway: none reachable and Debian's prometheus-pushgateway could not be installed; set PUSHGATEWAY_URL" >&2
      return 1
    fi
    bin=/usr/bin/prometheus-pushgateway
    # Where services may start from packages, the package's own daemon may now be up on 9091.
    if pushgateway_answers http://127.0.0.1:9091; then
      export PUSHGATEWAY_URL=http://127.0.0.1:9091
      echo "pushgateway: using the one the package started on 127.0.0.1:9091" >&2
      return 0
    fi
  fi

  if pushgateway_port_taken "$port"; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  mkdir -p "$dir"
  # setsid: its own session, so it outlives this shell like a service would.
  setsid "$bin" --web.listen-address="127.0.0.1:$port" --persistence.file="" --web.enable-admin-api \
    >"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local _
  for _ in $(seq 1 50); do
    if pushgateway_answers "http://127.0.0.1:$port"; then
      export PUSHGATEWAY_URL="http://127.0.0.1:$port"
      echo "pushgateway: started $bin on 127.0.0.1:$port (pid $(cat "$dir/pid"), log $dir/log)" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "pushgateway: $bin did not answer on 127.0.0.1:$port within 10 s; its log:" >&2
  tail -n 20 "$dir/log" >&2
  return 1
}
