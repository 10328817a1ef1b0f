#!/usr/bin/env bash
# Lineage from a real build: record `gcc hello.c -o hello` with
# `zkaudit record`, then ask the ledger for the chain of events that leads
# from the digest of hello.c to the digest of the binary. The chain runs
# through the compiler proper (cc1), the assembler and the linker, each a
# file_write whose parents name what its process had read; the answer
# must equal expected-answer.json (Debian 12's gcc 12 and binutils).
#
#   ZKAUDIT_BIN=path  the zkaudit binary (default: zkaudit on PATH)
#   OUT=dir           where the ledger and the build go (default: a temp dir)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
Z=${ZKAUDIT_BIN:-zkaudit}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
cp "$here/hello.c" "$OUT/hello.c"
rm -rf "$OUT/ledger"
"$Z" log init "$OUT/ledger" --origin zkaudit.example/gcc-lineage >/dev/null 2>&1
(cd "$OUT" && "$Z" record --ledger ledger -- gcc hello.c -o hello)
src=$(sha256sum "$OUT/hello.c" | cut -d' ' -f1)
bin=$(sha256sum "$OUT/hello" | cut -d' ' -f1)
query="zkaudit_trace('sha256:$src', 'sha256:$bin', Path), findall(Name, (member(I, Path), meta(I, 'process.name', Name)), Stages)."
echo "query: $query"
"$Z" query "$OUT/ledger" "$query"
"$Z" query "$OUT/ledger" --json "$query" > "$OUT/answer.json"
python3 - "$OUT/answer.json" "$here/expected-answer.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["answers"][0]["bindings"]["Stages"]
want = json.load(open(sys.argv[2]))["Stages"]
if got != want:
    sys.exit(f"gcc-lineage: the trace passed through {got}, expected {want}")
print(f"gcc-lineage: hello.c -> {' -> '.join(got)} -> hello, as expected")
PY
