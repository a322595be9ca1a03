#!/usr/bin/env bash
# Brief fuzzing pass (bounded): each cargo-fuzz target for FUZZ_SECS seconds
# (default 20) from the committed seed corpus. Needs the nightly toolchain;
# skipped (and counted as passed, with a note) where it is not installed.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECS:-20}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain here; skipped"
    echo "0 passed, 0 failed"
    exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >/dev/null 2>&1 || {
    echo "fuzz: cargo-fuzz could not be installed"; echo "0 passed, 1 failed"; exit 1; }
cargo +nightly fuzz build -O >/dev/null 2>&1 || { echo "fuzz: build failed"; echo "0 passed, 1 failed"; exit 1; }
passed=0; failed=0
for t in frames oracle handshake parsers; do
    work=$(mktemp -d)
    if timeout $((SECS + 60)) cargo +nightly fuzz run -O "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=1024 -timeout=10 >"$work.log" 2>&1; then
        echo "PASS fuzz $t: $(grep -E '^Done' "$work.log")"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz $t"; tail -40 "$work.log"
        failed=$((failed + 1))
    fi
    rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
