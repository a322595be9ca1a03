#!/usr/bin/env bash
# Brief fuzzing pass (bounded): each cargo-fuzz target for FUZZ_SECS seconds
# (default 20) from the committed seed corpus. Needs the nightly toolchain;
# skipped (and counted as passed, with a note) where it is not installed.
set -uo pipefail
. "$(dirname "$0")/lib.sh" # die, pass, fail, summary
cd "$ROOT/fuzz"
SECS=${FUZZ_SECS:-20}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain here; skipped"
    summary
    exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >/dev/null 2>&1 ||
    die "cargo-fuzz could not be installed"
cargo +nightly fuzz build -O >/dev/null 2>&1 || die "build failed"
for t in frames oracle handshake parsers; do
    work=$(mktemp -d)
    if timeout $((SECS + 60)) cargo +nightly fuzz run -O "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=1024 -timeout=10 >"$work.log" 2>&1; then
        pass "fuzz $t: $(grep -E '^Done' "$work.log")"
    else
        tail -40 "$work.log"
        fail "fuzz $t"
    fi
    rm -rf "$work" "$work.log"
done
summary
