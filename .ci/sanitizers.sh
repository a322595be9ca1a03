#!/usr/bin/env bash
# A sanitizer over the Rust FFI tests (nightly, -Zbuild-std, so std is
# instrumented too). Skipped with a note where the nightly toolchain or its
# rust-src is missing, or where it cannot build with the sanitizer.
#   SAN=address (default): AddressSanitizer over the C API contract's tests
#               (library, options, connect, messages, close, events), faults,
#               misuse, shutdown, shutdown_data.
#   SAN=thread: ThreadSanitizer over the tests that exercise concurrency
#               (the C API contract's six, faults, misuse, shutdown,
#               shutdown_race). Not shutdown_data: it
#               reads a payload before a running wsb_shutdown frees it, ordered
#               by a 3 s wait on the network, which TSan cannot see.
# Any sanitizer report (ERROR: ...Sanitizer / WARNING: ThreadSanitizer) fails
# the run, even if the tests themselves passed.
set -uo pipefail
. "$(dirname "$0")/lib.sh" # die, cargo_tally
cd "$ROOT"
SAN=${SAN:-address}
# The C API contract, one test file per subject (ARCHITECTURE.md, Tests).
contract=(--test library --test options --test connect --test messages --test close --test events)
case $SAN in
address) tests=("${contract[@]}" --test faults --test misuse --test shutdown --test shutdown_data) ;;
thread)
    tests=("${contract[@]}" --test faults --test misuse --test shutdown --test shutdown_race)
    # Test binaries end without joining every thread (libtest's, the test
    # server's): that is not a race. Races are still reported, and make a
    # test binary exit with 66.
    export TSAN_OPTIONS="report_thread_leaks=0 ${TSAN_OPTIONS:-}"
    ;;
*) die "unknown SAN=$SAN (address or thread)" ;;
esac
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "sanitizers: no nightly toolchain; skipped"; echo "0 passed, 0 failed"; exit 0
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain nightly >/dev/null 2>&1 || {
        echo "sanitizers: nightly has no rust-src (needed by -Zbuild-std); skipped"
        echo "0 passed, 0 failed"; exit 0; }
fi
export RUSTFLAGS="-Zsanitizer=$SAN" RUSTDOCFLAGS="-Zsanitizer=$SAN"
export CARGO_TARGET_DIR=target/san-$SAN
# std and the dependencies unoptimised (Cargo.toml asks for opt-level 2) and
# line tables only (enough for the reports' stacks): the cold build takes a
# third of the time (TSan, 2 cores: 4m16s -> 1m30s), the tests about twice
# as long (17 s -> 37 s).
profile=(--config 'profile.dev.package."*".opt-level=0'
    --config 'profile.dev.debug="line-tables-only"')
log=$(mktemp)
cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu "${profile[@]}" --no-fail-fast \
    -p wsbridge "${tests[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
cargo_tally "$log"
p=$TALLY_PASSED f=$TALLY_FAILED
san=$(grep -Ec '(ERROR|WARNING): [A-Za-z]*Sanitizer' "$log")
ran=0; grep -Eq '^ +Running ' "$log" && ran=1
rm -f "$log"
if [ "$rc" -ne 0 ] && [ "$ran" -eq 0 ]; then
    # The toolchain could not build with the sanitizer here: say so, do not fail.
    echo "sanitizers: the $SAN build did not complete on this toolchain; skipped"
    echo "0 passed, 0 failed"; exit 0
fi
[ "$san" -gt 0 ] && echo "sanitizers: $san $SAN sanitizer report(s) above"
f=$((f + san))
echo "$SAN: $p passed, $f failed"
[ "$rc" -eq 0 ] && [ "$f" -eq 0 ]
