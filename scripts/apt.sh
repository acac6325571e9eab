# Sourced by scripts/check-deploy.sh and scripts/pushgateway.sh: apt_install PKG... installs
# Debian packages (as root, with apt-get) without starting the services they ship: we want
# their binaries (promtool, prometheus-pushgateway), not a daemon started by the package's init
# script. A policy-rc.d answering 101 ("action forbidden") is put in place for the install when
# none exists, and removed afterwards.

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "apt: need root and apt-get to install: $*" >&2
    return 1
  fi
  local policy=/usr/sbin/policy-rc.d placed="" rc=0 log
  log=$(mktemp)
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && placed=1
  fi
  echo "apt: installing $* from Debian's packages" >&2
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1 || rc=$?
  if [ -n "$placed" ]; then rm -f "$policy"; fi
  if [ "$rc" != 0 ]; then
    echo "apt: apt-get failed:" >&2
    tail -n 20 "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}
