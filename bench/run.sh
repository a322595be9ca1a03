#!/usr/bin/env bash
# The issue-6 benchmark: builds everything, runs every scenario against every
# client (alternating, repeated), prints a table and writes a report.
#
#   bash bench/run.sh            # full run (~15 min on 2 cores): bench/results/latest.md
#   bash bench/run.sh --smoke    # tiny counts, 1 repetition (~25 s once built):
#                                # bench/target/smoke.md; what CI runs
#   options (passed to bench/harness.py):
#     --reps N                   repetitions (default 5; smoke 1)
#     --only ID,ID               variants: pingpong pipelined bulk scale-1000 scale-6000
#                                handshake-ws handshake-wss pipelined-deflate bulk-deflate
#                                scale-1000-deflate scale-1000-deflate-nct
#     --clients NAME,NAME        floor tungstenite wsbridge tokio-tungstenite node-ws
#                                python-websockets libwebsockets
#     --out FILE                 where the report goes
#
# Env:
#   WSB_LIB_DIR         directory holding libwsbridge.so (default: built here with
#                       `cargo build --release --lib` into the repo's target/release)
#   WSB_BENCH_TARGET    cargo target dir for the bench crate (default bench/target)
#   WSB_BENCH_PY_CACHE  where the Python venv goes
#                       (default ${XDG_CACHE_HOME:-~/.cache}/wsbridge/bench)
#
# Optional clients (skipped, not failed, when missing): node-ws (node + npm),
# python-websockets (python3 -m venv), libwebsockets (libwebsockets-dev + pkg-config).
#
# Ends with "N passed, N failed": a (scenario, client) pair passes if it ran and
# produced numbers; the issue's targets are reported (met/missed), not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bench
export CARGO_TERM_COLOR=never

ORIG_ARGS="$*"
SMOKE=0
PASS=()
OUT=""
while (($#)); do
    case $1 in
        --smoke) SMOKE=1; PASS+=(--smoke) ;;
        --out) OUT=$2; shift ;;
        --reps | --only | --clients) PASS+=("$1" "$2"); shift ;;
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$OUT" ]; then
    if ((SMOKE)); then OUT=${WSB_BENCH_TARGET:-$BENCH/target}/smoke.md; else OUT=$BENCH/results/latest.md; fi
fi
T0=$(date +%s)
log() { printf '\n==== bench: %s\n' "$*"; }

# ---------------------------------------------------------------- the library under test
if [ -n "${WSB_LIB_DIR:-}" ]; then
    LIB_DIR=$(cd "$WSB_LIB_DIR" && pwd)
else
    log "cargo build --release --lib (libwsbridge.so)"
    env -u CARGO_TARGET_DIR cargo build -q --release --lib
    LIB_DIR=$ROOT/target/release
fi
[ -f "$LIB_DIR/libwsbridge.so" ] || { echo "no libwsbridge.so in $LIB_DIR"; echo "0 passed, 1 failed"; exit 1; }

# ---------------------------------------------------------------- the bench crate (own workspace)
export CARGO_TARGET_DIR=${WSB_BENCH_TARGET:-$BENCH/target}
log "cargo build --release (echo-server, deflate-server, rs-client) into $CARGO_TARGET_DIR"
cargo build -q --release --manifest-path "$BENCH/Cargo.toml"
BIN=$CARGO_TARGET_DIR/release

log "cc bench/c/wsb_client.c -lwsbridge"
cc -O2 -g -std=c11 -Wall -Wextra -Werror -I"$ROOT/include" "$BENCH/c/wsb_client.c" \
    -L"$LIB_DIR" -lwsbridge -Wl,-rpath,"$LIB_DIR" -lpthread -o "$CARGO_TARGET_DIR/wsb_client"

# ---------------------------------------------------------------- libwebsockets (optional, the C peer)
LWS_ARGS=()
LWS_VER="not installed"
if command -v pkg-config >/dev/null && pkg-config --exists libwebsockets; then
    log "cc bench/c/lws_client.c -lwebsockets"
    # shellcheck disable=SC2046 # pkg-config output is meant to be split
    cc -O2 -g -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags libwebsockets) "$BENCH/c/lws_client.c" \
        $(pkg-config --libs libwebsockets) -o "$CARGO_TARGET_DIR/lws_client"
    LWS_ARGS=(--lws-client "$CARGO_TARGET_DIR/lws_client")
    LWS_VER="libwebsockets $(pkg-config --modversion libwebsockets | sed 's/-$//')"
else
    log "libwebsockets not found (pkg-config libwebsockets): the libwebsockets client is skipped" \
        "(apt-get install libwebsockets-dev pkg-config)"
fi

# ---------------------------------------------------------------- Node ws 8.x (under bench/node)
NODE_ARGS=()
NODE_VER="not installed"
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [ ! -f "$BENCH/node/node_modules/ws/package.json" ]; then
        log "npm install (ws 8.x) in bench/node"
        (cd "$BENCH/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null) || true
    fi
    if [ -f "$BENCH/node/node_modules/ws/package.json" ]; then
        NODE_ARGS=(--node)
        NODE_VER="node $(node --version), ws $(node -p "require('$BENCH/node/node_modules/ws/package.json').version")"
    fi
fi

# ---------------------------------------------------------------- Python websockets 17.x (cached venv)
PY=""
PY_VER="not installed"
PYC=${WSB_BENCH_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsbridge/bench}
WS_REQ='websockets>=17,<18'
if command -v python3 >/dev/null; then
    mkdir -p "$PYC"
    (
        flock -w 600 9 || exit 1
        STAMP="$(python3 -V 2>&1) $WS_REQ"
        if [ "$(cat "$PYC/stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -x "$PYC/py3/bin/python" ]; then
            log "creating the Python venv ($WS_REQ) in $PYC"
            rm -rf "$PYC/py3" "$PYC/stamp"
            python3 -m venv "$PYC/py3" && "$PYC/py3/bin/pip" install -q "$WS_REQ" &&
                printf '%s' "$STAMP" >"$PYC/stamp"
        fi
    ) 9>"$PYC/.lock" || true
    if "$PYC/py3/bin/python" -c 'import websockets' 2>/dev/null; then
        PY=$PYC/py3/bin/python
        PY_VER="Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), websockets $("$PY" -c 'import websockets; print(websockets.__version__)')"
    fi
fi

# ---------------------------------------------------------------- run
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$ROOT" diff --quiet HEAD -- src include Cargo.toml 2>/dev/null || COMMIT="$COMMIT + uncommitted changes in src/include/Cargo.toml"
log "running the scenarios"
set +e
python3 "$BENCH/harness.py" --bin-dir "$BIN" --wsb-client "$CARGO_TARGET_DIR/wsb_client" \
    "${NODE_ARGS[@]}" "${LWS_ARGS[@]}" --python "$PY" --out "$OUT" --work "$CARGO_TARGET_DIR/bench-work" \
    --command "bash bench/run.sh${ORIG_ARGS:+ $ORIG_ARGS}" --t0 "$T0" \
    --meta "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --meta "machine=$(nproc) cores, $(uname -sr), $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), ulimit -n $(ulimit -n)" \
    --meta "wsbridge=$COMMIT, libwsbridge.so from $LIB_DIR" \
    --meta "rust=$(rustc --version)" \
    --meta "node=$NODE_VER" \
    --meta "python=$PY_VER" \
    --meta "libwebsockets=$LWS_VER" \
    "${PASS[@]}"
rc=$?
set -e
exit $rc
