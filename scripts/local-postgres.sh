#!/usr/bin/env bash
# Shared by the demo and the test command: make sure the PostgreSQL 15 server
# programs (Debian's postgresql-15) are installed, installing them with
# apt-get when they are missing. Sourced, not run.

ensure_postgres_server() {
  if [ -x /usr/lib/postgresql/15/bin/initdb ] || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    return 0
  fi
  echo "installing PostgreSQL server programs (postgresql-15) with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package would start a cluster of its own on port 5432; we only want the programs.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
  if [ "${trap_policy:-0}" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

postgres_bin() {
  local directory
  for directory in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$directory/initdb" ]; then echo "$directory"; return 0; fi
  done
  return 1
}

# Run a server program as the postgres user when we are root (PostgreSQL
# refuses to run as root).
as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
