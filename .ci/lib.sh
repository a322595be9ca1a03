# shellcheck shell=bash
# .ci/lib.sh: what the CI scripts share. .ci/run and every .ci/*.sh source it
# first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sets no shell option and does not cd (each script does both). It gives:
#
#   ROOT                the repository, absolute
#   log MSG             a heading, with the seconds since the script started
#   die MSG             "NAME: ERROR: MSG" on stderr, "0 passed, 1 failed", exit 1
#   PIDS                background processes the script started, stopped by PID
#                       on exit (TERM, then KILL after 2 s); then the script's
#                       own `cleanup` function runs, if it has one
#   apt_install PKG...  installs those Debian packages that are not installed
#   step NAME CMD...    runs CMD as one check (PASS: NAME / FAIL: NAME), goes on
#   pass MSG, fail MSG  counts one check in PASSED / FAILED
#   summary             prints "N passed, N failed"; non-zero if any failed
#   free_port           a TCP port on 127.0.0.1 that nothing listens on
#   wait_port PORT PID [SECONDS]
#                       waits (default 30 s) until 127.0.0.1:PORT accepts a
#                       connection; fails as soon as PID is gone
#   test_server CA_FILE [LOG]
#                       starts the root crate's test server (its example,
#                       already built), its CA written to CA_FILE; sets
#                       WS_URL, WSS_URL and TEST_SERVER_PID
#   wsb_lib             WSB_LIB_DIR made absolute, the library built first when
#                       it is unset
#   cargo_tally LOG     sums the "test result:" lines of a cargo test log into
#                       TALLY_PASSED and TALLY_FAILED

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI_NAME=$(basename "$0" .sh)
export CARGO_TERM_COLOR=never
# A relative WSB_LIB_DIR means from where the script was started (it cds).
if [ -n "${WSB_LIB_DIR:-}" ] && [ -d "$WSB_LIB_DIR" ]; then WSB_LIB_DIR=$(cd "$WSB_LIB_DIR" && pwd); fi

log() { printf '\n==== [%4ds] %s\n' "$SECONDS" "$*"; }

die() {
    printf '%s: ERROR: %s\n' "$CI_NAME" "$*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

# ---------------------------------------------------------------- cleanup
PIDS=()
stop_pids() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
on_exit() {
    stop_pids
    if declare -F cleanup >/dev/null; then cleanup; fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- packages
# Callers pass the packages whose command they found missing; those that
# dpkg lists as installed are left alone. The package lists are updated once
# per CI run (APT_UPDATED is exported to the scripts .ci/run starts).
apt_install() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "apt-get install ${missing[*]}"
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq || return 1
        export APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- counting
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
step() {
    local name=$1
    shift
    log "$name"
    if "$@"; then pass "$name"; else fail "$name"; fi
}
summary() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

cargo_tally() {
    local lines
    lines=$(grep -Eo '^test result: .* [0-9]+ passed; [0-9]+ failed' "$1" || true)
    TALLY_PASSED=$(awk 'NF {s += $(NF - 3)} END {print s + 0}' <<<"$lines")
    TALLY_FAILED=$(awk 'NF {s += $(NF - 1)} END {print s + 0}' <<<"$lines")
}

# ---------------------------------------------------------------- servers and the library
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1 pid=$2 tries=$((${3:-30} * 5))
    for ((; tries > 0; tries--)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# The server prints its ws:// and wss:// URLs, then serves until killed.
test_server() {
    local exe=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/test_server ca=$1 err=${2:-}
    coproc SRV {
        if [ -n "$err" ]; then exec 2>"$err"; fi
        exec "$exe" --ca-out "$ca"
    }
    TEST_SERVER_PID=$SRV_PID
    PIDS+=("$TEST_SERVER_PID")
    WS_URL='' WSS_URL=''
    read -r -t 60 WS_URL <&"${SRV[0]}" || true
    read -r -t 60 WSS_URL <&"${SRV[0]}" || true
    [ -n "$WS_URL" ] && [ -n "$WSS_URL" ]
}

wsb_lib() {
    if [ -z "${WSB_LIB_DIR:-}" ]; then
        log "cargo build --release --lib"
        cargo build -q --release --lib
        WSB_LIB_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
    fi
    [ -d "$WSB_LIB_DIR" ] || die "WSB_LIB_DIR=$WSB_LIB_DIR is not a directory"
    WSB_LIB_DIR=$(cd "$WSB_LIB_DIR" && pwd)
    [ -f "$WSB_LIB_DIR/libwsbridge.so" ] || die "no libwsbridge.so in $WSB_LIB_DIR"
}
