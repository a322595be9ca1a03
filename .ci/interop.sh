#!/usr/bin/env bash
# Interop with third-party servers, through the C API (tests/interop/interop.c):
# Python `websockets` 17.x and Node `ws` 8.x, each on ws:// and wss:// (a CA and
# a leaf certificate made for the run), all on 127.0.0.1. Each runs once without
# permessage-deflate (the offer is declined), and with it: websockets with its
# default compression and with server_max_window_bits=10, ws with
# perMessageDeflate: true and with no context takeover either way; against
# those every check runs with compression offered and asserted negotiated, plus
# the compression checks (text and binary, 0 bytes to 4 MiB, both ways).
#
#   bash .ci/interop.sh
#
# Env:
#   WSB_LIB_DIR     directory holding libwsbridge.so (when unset: built here with
#                   `cargo build --release --lib`, in $CARGO_TARGET_DIR or target/)
#   WSB_IOP_CACHE   where the Python venv is cached
#                   (default: ${XDG_CACHE_HOME:-~/.cache}/wsbridge/interop)
#   WSB_IOP_OUT     where node_modules and the server logs go (default: target/interop)
#
# Ends with the C program's "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh" # log, die, PIDS, apt_install, wsb_lib
cd "$ROOT"

CACHE=${WSB_IOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsbridge/interop}
OUT=${WSB_IOP_OUT:-$ROOT/target/interop}

TMP=$(mktemp -d)
cleanup() { rm -rf "$TMP"; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc libc6-dev)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
apt_install "${need_apt[@]}"

# ---------------------------------------------------------------- Python websockets 17.x (cached venv)
WS_REQ='websockets>=17,<18'
mkdir -p "$CACHE" "$OUT"
exec 9>"$CACHE/.lock"
flock -w 600 9 || die "could not lock $CACHE/.lock within 600 s"
STAMP="$(python3 -V 2>&1) $WS_REQ"
if [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -x "$CACHE/py3/bin/python" ]; then
    log "creating the Python venv in $CACHE"
    rm -rf "$CACHE/py3" "$CACHE/stamp"
    python3 -m venv "$CACHE/py3"
    "$CACHE/py3/bin/pip" install -q "$WS_REQ"
    printf '%s' "$STAMP" >"$CACHE/stamp"
fi
flock -u 9
PY=$CACHE/py3/bin/python
echo "python websockets $("$PY" -c 'import websockets; print(websockets.__version__)')"

# ---------------------------------------------------------------- Node ws 8.x (under target/)
NODE_DIR=$OUT/node
if ! cmp -s tests/interop/node/package.json "$NODE_DIR/package.json" ||
    [ ! -f "$NODE_DIR/node_modules/ws/package.json" ]; then
    log "npm install (ws 8.x) into $NODE_DIR"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp tests/interop/node/package.json "$NODE_DIR/"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "node $(node --version), ws $(node -p "require('$NODE_DIR/node_modules/ws/package.json').version")"

# ---------------------------------------------------------------- certificates for the run
log "making a CA and a 127.0.0.1 certificate"
(
    cd "$TMP"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=wsbridge interop test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout leaf.key -out leaf.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=IP:127.0.0.1,DNS:localhost" >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out leaf.pem -days 2 -extfile leaf.ext 2>/dev/null
) || die "openssl could not make the certificates"

# ---------------------------------------------------------------- library and test program
wsb_lib
log "building tests/interop/interop.c against $WSB_LIB_DIR/libwsbridge.so"
cc -std=c99 -Wall -Wextra -Werror -O2 -Iinclude tests/interop/interop.c \
    -L"$WSB_LIB_DIR" -lwsbridge -Wl,-rpath,"$WSB_LIB_DIR" -o "$TMP/interop"

# ---------------------------------------------------------------- servers
# start_server NAME CMD...: runs it in the background (PID recorded), waits for
# its two URL lines, sets URLS_WS / URLS_WSS.
start_server() {
    local name=$1; shift
    "$@" >"$OUT/$name.out" 2>"$OUT/$name.log" &
    local pid=$! alive=1
    PIDS+=("$pid")
    URLS_WS='' URLS_WSS=''
    for _ in $(seq 1 150); do
        URLS_WS=$(grep -s -m1 -x 'ws://127\.0\.0\.1:[0-9]*' "$OUT/$name.out" || true)
        URLS_WSS=$(grep -s -m1 -x 'wss://127\.0\.0\.1:[0-9]*' "$OUT/$name.out" || true)
        [ -n "$URLS_WS" ] && [ -n "$URLS_WSS" ] && break
        kill -0 "$pid" 2>/dev/null || { alive=0; break; }
        sleep 0.2
    done
    if [ -z "$URLS_WS" ] || [ -z "$URLS_WSS" ]; then
        echo "--- $name: pid $pid $([ $alive = 1 ] && echo 'still running' || echo 'exited'); stdout:" >&2
        cat "$OUT/$name.out" >&2 || true
        echo "--- $name: stderr:" >&2
        cat "$OUT/$name.log" >&2 || true
        die "the $name server did not start"
    fi
    echo "$name (pid $pid): $URLS_WS $URLS_WSS"
}

log "starting the servers on 127.0.0.1"
# SERVERS: the test program's arguments, `[--deflate] NAME WS_BASE WSS_BASE` per server.
SERVERS=()
for mode in plain deflate deflate-w10; do
    name=websockets$([ "$mode" = plain ] || echo "-$mode")
    start_server "$name" "$PY" -u tests/interop/server_websockets.py "$TMP/leaf.pem" "$TMP/leaf.key" "$mode"
    [ "$mode" = plain ] || SERVERS+=(--deflate)
    SERVERS+=("$name" "$URLS_WS" "$URLS_WSS")
done
for mode in plain deflate deflate-nct; do
    name=node-ws$([ "$mode" = plain ] || echo "-$mode")
    start_server "$name" env NODE_PATH="$NODE_DIR/node_modules" \
        node tests/interop/node/server.js "$TMP/leaf.pem" "$TMP/leaf.key" "$mode"
    [ "$mode" = plain ] || SERVERS+=(--deflate)
    SERVERS+=("$name" "$URLS_WS" "$URLS_WSS")
done

# ---------------------------------------------------------------- checks
log "running tests/interop/interop.c"
set +e
timeout -k 10 600 "$TMP/interop" "$TMP/ca.pem" "${SERVERS[@]}"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
    for f in websockets websockets-deflate websockets-deflate-w10 node-ws node-ws-deflate node-ws-deflate-nct; do
        if [ -s "$OUT/$f.log" ]; then
            echo "--- $f server log (tail)" >&2
            tail -n 20 "$OUT/$f.log" >&2
        fi
    done
    if [ "$rc" -ge 124 ]; then
        echo "interop: the test program ended with status $rc (timeout or crash)" >&2
        echo "0 passed, 1 failed"
    fi
fi
exit "$rc"
