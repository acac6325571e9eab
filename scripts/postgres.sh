# Sourced by scripts/demo.sh, scripts/test.sh and .ci/run: makes sure a Postgres server is
# reachable and exports DATABASE_URL (a superuser URL: #[sqlx::test] creates databases).
#
# Order of preference:
#   1. DATABASE_URL, when already set;
#   2. the local server on 127.0.0.1:5432 (trust auth, as on the project's machines);
#   3. a throwaway cluster under target/pg, from the system's Postgres binaries
#      (installed with apt-get when missing and running as root).

pg_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "postgres: using DATABASE_URL from the environment" >&2
    return 0
  fi

  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    for user in postgres "$(id -un)"; do
      if psql "postgres://$user@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
        export DATABASE_URL="postgres://$user@127.0.0.1:5432/postgres"
        echo "postgres: using the local server on 127.0.0.1:5432 as $user" >&2
        return 0
      fi
    done
  fi

  # A Debian cluster that is installed but stopped: start it.
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 1
    done
    if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
      export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
      echo "postgres: started the local cluster $version/main" >&2
      return 0
    fi
  fi

  bindir=$(pg_bindir)
  if [ -z "$bindir" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "postgres: installing PostgreSQL from Debian's packages" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bindir=$(pg_bindir)
    fi
    if [ -z "$bindir" ]; then
      echo "postgres: no server reachable and no PostgreSQL binaries; set DATABASE_URL" >&2
      return 1
    fi
  fi

  # Throwaway cluster. initdb refuses to run as root, so run it as the postgres user then.
  root_dir="$(pwd)/target/pg"
  port=54329
  run_as=""
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    run_as="runuser -u postgres --"
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
    mkdir -p "$root_dir"
    [ -n "$run_as" ] && chown postgres "$root_dir"
    if [ ! -f "$root_dir/data/PG_VERSION" ]; then
      $run_as "$bindir/initdb" -D "$root_dir/data" -U postgres -A trust >/dev/null
    fi
    $run_as "$bindir/pg_ctl" -D "$root_dir/data" -l "$root_dir/log" -w \
      -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "postgres: using a throwaway cluster in $root_dir on port $port" >&2
}
