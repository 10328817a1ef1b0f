#!/usr/bin/env bash
# The main job, end to end on real data with the embedded defaults:
#   1. create a signed ledger and record the data set it reads;
#   2. validate example 2 (examples/stocks-summary) and run it natively and in
#      the zkVM executor (same journal, cycle counts);
#   3. prove it in RISC Zero over the real stocks.csv (composite receipt,
#      local CPU prover) and record the proof event in the ledger;
#   4. verify the receipt against the program registry, the plan, the data
#      and the expected output; prove the proof event's inclusion and fsck.
# Steps 2 to 4 run under `zkaudit record`, so the ledger also shows which
# processes read stocks.csv and wrote the receipt (step 7).
#
#   DATA=dir  data set directory  (default: ../shared/data)
#   OUT=dir   where results go    (default: target/main-job)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

DATA=${DATA:-../shared/data}
OUT=${OUT:-target/main-job}
STOCKS="$DATA/stocks.csv"
PLAN=examples/stocks-summary/plan.yaml
[ -f "$STOCKS" ] || { echo "main-job: $STOCKS not found" >&2; exit 1; }

# The dev profile builds every dependency at opt-level 3, and the prover's
# crates also without debug assertions and overflow checks (Cargo.toml says
# why: they kept rustc from inlining its field arithmetic); it shares its build (in
# $CARGO_TARGET_DIR, see scripts/setup.sh) with scripts/test.sh. The zkVM
# guest is built by crates/zkvm/build.rs.
cargo build --locked -q -p zkaudit-cli
Z=$ZKAUDIT_BIN

rm -rf "$OUT"
mkdir -p "$OUT"
LOG="$OUT/ledger"

echo "== 1. create the ledger (its Ed25519 verifier key follows) and record the data set"
$Z log init "$LOG" --origin zkaudit.example/main-job | tee "$OUT/vkey"
VKEY=$(cat "$OUT/vkey")
digest=$(sha256sum "$STOCKS" | cut -d' ' -f1)
printf '{"version":"1.0","timestamp":"%s","layer":"application","type":"dataset_recorded","input":"sha256:%s","output":"sha256:%s","metadata":{"file":"stocks.csv","bytes":%s}}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$digest" "$digest" "$(stat -c %s "$STOCKS")" > "$OUT/events.jsonl"
$Z log append "$LOG" "$OUT/events.jsonl" --json

echo
echo "== 2. validate the plan, run it natively and in the zkVM executor"
R=("$Z" record -q --ledger "$LOG" --)
"${R[@]}" "$Z" plan validate "$PLAN"
"${R[@]}" "$Z" run "$PLAN" --data prices="$STOCKS" --zkvm

echo
echo "== 3. prove it in RISC Zero (this is the slow part: minutes on 2 cores)"
"${R[@]}" "$Z" prove "$PLAN" --data prices="$STOCKS" --out "$OUT/stocks-summary.receipt" --ledger "$LOG"

echo
echo "== 4. verify the receipt: registry, seal, plan hash, data root and output"
"${R[@]}" "$Z" verify "$OUT/stocks-summary.receipt" --plan "$PLAN" --data prices="$STOCKS" \
  --expect-output examples/stocks-summary/expected-output.json

echo
echo "== 5. the proof event is in the signed ledger: prove its inclusion, then fsck"
$Z log checkpoint "$LOG" > "$OUT/checkpoint"
P=$($Z query "$LOG" "proof(I, _, _, _, _)." | sed -n 's/^I = \([0-9]*\).*/\1/p' | head -n1)
$Z log get "$LOG" --index "$P" > "$OUT/proof-event.json"
echo "   entry $P: $(cat "$OUT/proof-event.json")"
$Z log inclusion "$LOG" --index "$P" --json > "$OUT/inclusion-$P.json"
$Z log check-inclusion --proof "$OUT/inclusion-$P.json" --checkpoint "$OUT/checkpoint" \
  --vkey "$VKEY" --entry "$OUT/proof-event.json"
$Z log verify "$LOG" --vkey "$VKEY"

echo
echo "== 6. an auditor asks the ledger (Prolog over the index) which proof backs"
echo "      stocks-summary, and checks its receipt again now"
$Z query "$LOG" "zkaudit(computation('stocks-summary'), proof(Event, Receipt, ImageId, PlanHash, DataRoot, OutputHash, Verifies))."

echo
echo "== 7. what the recorder saw (zkaudit record): the processes that read"
echo "      stocks.csv, the one that wrote the receipt, and the lineage between them"
RECEIPT=$(sha256sum "$OUT/stocks-summary.receipt" | cut -d' ' -f1)
$Z query "$LOG" "file_read(_, Path, 'sha256:$digest', E), process(_, E, _, Args)."
$Z query "$LOG" "file_written(_, Path, 'sha256:$RECEIPT', E), process(_, E, _, Args)."
$Z query "$LOG" "zkaudit_trace('sha256:$digest', 'sha256:$RECEIPT', Path), findall(A, (member(I, Path), meta(I, 'process.entity_id', E), process(_, E, _, A)), Steps)."
