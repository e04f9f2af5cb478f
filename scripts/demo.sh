#!/usr/bin/env bash
# The main job: start a throwaway PostgreSQL on 127.0.0.1:54329, then run
# validate -> plan -> apply -> plan (nothing left to do) -> drift on
# environments/demo, and remove the server again, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/local-postgres.sh

command -v cc >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null; }
ensure_postgres_server
bin="$(postgres_bin)"
cargo build --release --locked --quiet
fleetform="$PWD/target/release/fleetform"

work="$(mktemp -d /tmp/fleetform-demo.XXXXXX)"
cleanup() {
  as_server_user "$bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Throwaway credentials for this run only.
export FLEETFORM_DEMO_PG_PASSWORD="demo-superuser-$RANDOM$RANDOM"
export FLEETFORM_DEMO_APP_PASSWORD="demo-app-$RANDOM$RANDOM"
printf '%s' "$FLEETFORM_DEMO_PG_PASSWORD" > "$work/password"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work"
as_server_user "$bin/initdb" -D "$work/data" -U postgres -A scram-sha-256 --pwfile="$work/password" -E UTF8 --locale C >/dev/null
rm -f "$work/password"
as_server_user "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
  -o "-p 54329 -c listen_addresses=127.0.0.1 -k $work" start >/dev/null
echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') started on 127.0.0.1:54329 (data in $work, removed at exit)"

step() { echo; echo "== fleetform $*"; }
status=0
step validate -e demo;                 "$fleetform" validate -e demo
step plan -e demo;                     "$fleetform" plan -e demo || status=$?
[ "$status" = 2 ] || { echo "expected plan to exit 2 (changes pending), got $status"; exit 1; }
step apply -e demo --auto-approve;     "$fleetform" apply -e demo --auto-approve
status=0
step "plan -e demo (again)";           "$fleetform" plan -e demo || status=$?
[ "$status" = 0 ] || { echo "expected the second plan to exit 0 (nothing to do), got $status"; exit 1; }
step drift -e demo;                    "$fleetform" drift -e demo
echo
echo "== demo finished: converged, nothing left to do, no drift"
