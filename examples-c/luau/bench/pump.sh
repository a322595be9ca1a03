#!/usr/bin/env bash
# Instructions per wsluau_pump with IDLE idle sockets and one busy one,
# counted by callgrind (valgrind) around wsluau_pump only.
#
#   examples-c/luau/bench/pump.sh [WSB_LUAU [IDLE [ROUNDS]]]
#
# WSB_LUAU defaults to target/release/wsb-luau (cargo build --release),
# IDLE to 1000, ROUNDS to 1000. pump.luau runs twice, with ROUNDS and with
# 2*ROUNDS round trips on the busy socket; the difference between the two
# runs leaves out the connecting of the idle sockets and the shutdown:
#
#   instructions per pump = (Ir(2R) - Ir(R)) / (pumps(2R) - pumps(R))
#
# Ir is every instruction executed inside wsluau_pump (what it calls
# included: wsb_poll, the handlers' Luau code); pumps is how many times the
# host called it. Also prints the wall time per round trip of each run
# (under valgrind: only compare runs of this script with each other; run
# pump.luau directly for real wall times).
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=${1:-target/release/wsb-luau}
IDLE=${2:-1000}
ROUNDS=${3:-1000}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Prints "IR PUMPS" of one callgrind run with `rounds` round trips.
measure() {
    local rounds=$1 file=$OUT/callgrind.$1
    valgrind --tool=callgrind --toggle-collect=wsluau_pump --compress-strings=no --compress-pos=no \
        --max-threads=$((2 * IDLE + 100)) --callgrind-out-file="$file" \
        "$BIN" --timeout 1200 --echo-server examples-c/luau/bench/pump.luau "$IDLE" "$rounds" \
        2>"$OUT/valgrind.$rounds" | sed 's/^/    /' >&2
    awk '/^summary:/ { ir = $2 }
         /^cfn=wsluau_pump$/ { want = 1; next }
         want && /^calls=/ { split($1, c, "="); pumps += c[2]; want = 0 }
         END { print ir, pumps }' "$file"
}

echo "wsb-luau: $BIN, $IDLE idle sockets, $ROUNDS and $((2 * ROUNDS)) round trips" >&2
read -r ir1 pumps1 < <(measure "$ROUNDS")
read -r ir2 pumps2 < <(measure $((2 * ROUNDS)))
echo "run 1: Ir $ir1 in $pumps1 pumps"
echo "run 2: Ir $ir2 in $pumps2 pumps"
awk -v a="$ir1" -v b="$ir2" -v p="$pumps1" -v q="$pumps2" -v r="$ROUNDS" 'BEGIN {
    printf "instructions per pump: %.0f (%d more pumps for %d more round trips: %.2f per round trip)\n",
        (b - a) / (q - p), q - p, r, (q - p) / r
    printf "instructions per round trip: %.0f\n", (b - a) / r }'
