#!/usr/bin/env bash
# The main job, end to end on real data: create a signed ledger, record one
# event for each file in the shared data set, print the checkpoint, prove one
# entry's inclusion and check that proof offline, then fsck the whole log.
#
#   DATA=dir  data set to record   (default: ../shared/data)
#   OUT=dir   where the log goes   (default: target/main-job)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

DATA=${DATA:-../shared/data}
OUT=${OUT:-target/main-job}
[ -d "$DATA" ] || { echo "main-job: data directory $DATA not found" >&2; exit 1; }

cargo build --release --locked -q -p zkaudit-cli
Z=target/release/zkaudit

rm -rf "$OUT"
mkdir -p "$OUT"
LOG="$OUT/log"

echo "== 1. create the ledger (its Ed25519 verifier key follows)"
$Z log init "$LOG" --origin zkaudit.example/main-job | tee "$OUT/vkey"
VKEY=$(cat "$OUT/vkey")

echo
echo "== 2. record one event per file in $DATA"
: > "$OUT/events.jsonl"
for f in "$DATA"/*; do
  [ -f "$f" ] || continue
  digest=$(sha256sum "$f" | cut -d' ' -f1)
  bytes=$(stat -c %s "$f")
  lines=$(wc -l < "$f")
  ts=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  name=$(basename "$f")
  printf '{"version":"1.0","timestamp":"%s","layer":"application","type":"dataset_recorded","input":"sha256:%s","output":"sha256:%s","metadata":{"file":"%s","bytes":%s,"lines":%s}}\n' \
    "$ts" "$digest" "$digest" "$name" "$bytes" "$lines" >> "$OUT/events.jsonl"
  echo "   $name  sha256:$digest  ($bytes bytes)"
done
$Z log append "$LOG" "$OUT/events.jsonl" --json

echo
echo "== 3. the signed checkpoint (origin, tree size, root hash, signature)"
$Z log checkpoint "$LOG" | tee "$OUT/checkpoint"

echo
echo "== 4. prove that entry 1 is in the log, then check the proof offline"
$Z log get "$LOG" --index 1 > "$OUT/entry-1.json"
echo "   entry 1: $(cat "$OUT/entry-1.json")"
$Z log inclusion "$LOG" --index 1 --json | tee "$OUT/inclusion-1.json"
$Z log check-inclusion --proof "$OUT/inclusion-1.json" --checkpoint "$OUT/checkpoint" \
  --vkey "$VKEY" --entry "$OUT/entry-1.json"

echo
echo "== 5. fsck: recompute every hash from the entries and check the signature"
$Z log verify "$LOG" --vkey "$VKEY"
