#!/usr/bin/env bash
# CPU cost per message, as instruction counts (callgrind: stable where wall
# time is noisy): `wsb_client pipelined n=N` against the bench echo-server,
# for the library under test and a baseline library built from BASE_REV,
# runs alternating, medians compared. Also the library under test with the
# log on (WSBRIDGE_LOG=debug to /dev/null: every frame logged), to show
# what the log costs when someone listens.
#
#   bash bench/instructions.sh [BASE_REV] [--runs N] [--n N]
#       BASE_REV  git revision for the baseline (default: HEAD~1)
#       --runs N  runs per variant (default 5); --n N messages (default 50000)
#
# Needs valgrind. Builds the baseline in a temporary git worktree (a release
# build: a few minutes the first time; its target dir is kept in
# bench/target/base-<rev>). Ends with "N passed, N failed" (a variant passes
# if every run completed); the ratios are reported, not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE_REV=HEAD~1
RUNS=5
N=50000
while (($#)); do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --n) N=$2; shift ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) BASE_REV=$1 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "valgrind is not installed"; echo "0 passed, 1 failed"; exit 1; }
BT=${WSB_BENCH_TARGET:-$ROOT/bench/target}
WORK=$(mktemp -d)
SRV_PID=""
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
    git -C "$ROOT" worktree remove --force "$WORK/base" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

rev=$(git rev-parse --short "$BASE_REV")
echo "==== library under test: $(git rev-parse --short HEAD) (+ working tree); baseline: $rev"
cargo build -q --release --lib
mkdir -p "$WORK/new" "$WORK/base-lib"
cp target/release/libwsbridge.so "$WORK/new/"
git worktree add -q --detach "$WORK/base" "$rev"
CARGO_TARGET_DIR="$BT/base-$rev" cargo build -q --release --lib --manifest-path "$WORK/base/Cargo.toml"
cp "$BT/base-$rev/release/libwsbridge.so" "$WORK/base-lib/"
for d in new base-lib; do ln -sf libwsbridge.so "$WORK/$d/libwsbridge.so.1"; done

CARGO_TARGET_DIR=$BT cargo build -q --release --manifest-path bench/Cargo.toml --bin echo-server
# One client binary, linked by soname; LD_LIBRARY_PATH picks the library.
cc -O2 -g -std=c11 -Iinclude bench/c/wsb_client.c -L"$WORK/new" -lwsbridge -lpthread -o "$WORK/wsb_client"

"$BT/release/echo-server" --ca-out "$WORK/ca.pem" >"$WORK/urls" &
SRV_PID=$!
for _ in $(seq 100); do [ -s "$WORK/urls" ] && break; sleep 0.1; done
URL=$(head -1 "$WORK/urls")
[ -n "$URL" ] || { echo "echo-server did not start"; echo "0 passed, 1 failed"; exit 1; }

declare -A RESULTS
PASSED=0
FAILED=0
count() { # count VARIANT LIBDIR [ENV...]: one callgrind run; prints instructions
    local lib=$1; shift
    env LD_LIBRARY_PATH="$lib" "$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$WORK/wsb_client" pipelined "url=$URL" "n=$N" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for i in $(seq "$RUNS"); do
    for v in base new log-on; do
        case $v in
            base) c=$(count "$WORK/base-lib") ;;
            new) c=$(count "$WORK/new") ;;
            log-on) c=$(WSBRIDGE_LOG=debug count "$WORK/new" 2>/dev/null) ;;
        esac
        echo "run $i $v: ${c:-failed}"
        RESULTS[$v]="${RESULTS[$v]:-} ${c:-x}"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
b=$(echo "${RESULTS[base]}" | median)
echo
echo "| variant | median instructions ($RUNS runs, n=$N) | per message | vs baseline |"
echo "| --- | --- | --- | --- |"
for v in base new log-on; do
    if echo "${RESULTS[$v]}" | grep -q x; then
        FAILED=$((FAILED + 1)); echo "| $v | a run failed | | |"; continue
    fi
    PASSED=$((PASSED + 1))
    m=$(echo "${RESULTS[$v]}" | median)
    awk -v v="$v" -v m="$m" -v b="$b" -v n="$N" -v rev="$rev" 'BEGIN {
        name = (v == "base") ? "baseline (" rev ")" : (v == "new") ? "under test, log off" : "under test, WSBRIDGE_LOG=debug";
        printf "| %s | %.2f M | %.0f | %.3f |\n", name, m / 1e6, m / n, m / b }'
done
echo
echo "$PASSED passed, $FAILED failed"
