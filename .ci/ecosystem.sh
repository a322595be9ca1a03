#!/usr/bin/env bash
# Ecosystem CI (issue 8): wsbridge as C/C++ developers and binding generators
# consume it. Builds the release library, installs it with scripts/install.sh
# into a temporary prefix, then against the loopback test server:
#   - the install layout, the soname (readelf -d) and that only wsb_* symbols
#     are exported (nm -D --defined-only), exactly the functions the header declares;
#   - a CMake project (find_package(wsbridge)) building examples-c/echo.c against
#     the .so and the .a, and examples-c/cpp/echo.cpp (wsbridge.hpp) through
#     wsbridge::wsbridge_cpp; a `pkg-config --cflags --libs wsbridge` build of echo.c;
#   - Python cffi (ABI mode, from PyPI in a venv) and LuaJIT FFI, both fed the
#     header preprocessed by `gcc -E -P`: echo + close;
#   - wsb_options_set_proxy through a real proxy (Debian's tinyproxy on
#     127.0.0.1: an open one, and one demanding Basic auth and allowing CONNECT
#     to the wss port only), and wsb_options_set_native_roots with the test CA
#     in a bundle named by SSL_CERT_FILE.
#
#   bash .ci/ecosystem.sh        # ends with "N passed, N failed"; non-zero on failure
#
# Self-contained on a fresh Debian 12 machine (root; apt and PyPI reachable).
# Every wait is bounded, everything listens on 127.0.0.1, and every process it
# starts is recorded by PID and killed by PID on exit. Honours CARGO_TARGET_DIR.
set -euo pipefail
. "$(dirname "$0")/lib.sh" # log, PIDS, apt_install, step, summary, test_server, free_port, wait_port
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
ECO=$TARGET_DIR/ecosystem          # kept between runs: the Python venv
WORK=$(mktemp -d /tmp/wsb-ecosystem.XXXXXX)
PREFIX=$WORK/prefix
RUN_TIMEOUT=60                     # seconds, for each program run

cleanup() { rm -rf "$WORK"; }
run() { timeout "$RUN_TIMEOUT" "$@"; }   # every program run is bounded

# ---------------------------------------------------------------- packages
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v nm >/dev/null && command -v readelf >/dev/null || need+=(binutils)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v luajit >/dev/null || need+=(luajit)
command -v tinyproxy >/dev/null || need+=(tinyproxy)
apt_install "${need[@]}"
cmake --version | head -1
luajit -v
tinyproxy -v

# Python cffi from PyPI, in a venv kept under the target dir.
mkdir -p "$ECO"
VENV=$ECO/venv
if ! "$VENV/bin/python" -c 'import cffi' 2>/dev/null; then
    log "python venv + pip install cffi"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        apt_install python3-venv
        /usr/bin/python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check cffi
fi
"$VENV/bin/python" -c 'import cffi, sys; print("python", sys.version.split()[0], "cffi", cffi.__version__)'

# ---------------------------------------------------------------- build + install
log "cargo build --release --lib; cargo build --example test_server"
cargo build -q --release --lib -p wsbridge
cargo build -q --example test_server -p wsbridge
log "PREFIX=$PREFIX scripts/install.sh"
PREFIX=$PREFIX WSB_NO_BUILD=1 bash scripts/install.sh
LIB=$PREFIX/lib
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# ---------------------------------------------------------------- loopback test server
test_server "$WORK/ca.pem"
WS=$WS_URL WSS=$WSS_URL
WSS_PORT=${WSS##*:}
echo "test server: $WS $WSS (pid $TEST_SERVER_PID)"

# ---------------------------------------------------------------- install layout, soname, symbols
layout() {
    local ok=0
    for f in include/wsbridge.h include/wsbridge.hpp lib/libwsbridge.a lib/pkgconfig/wsbridge.pc \
             lib/cmake/wsbridge/wsbridgeConfig.cmake lib/cmake/wsbridge/wsbridgeConfigVersion.cmake \
             "lib/libwsbridge.so.1.$VERSION" share/doc/wsbridge/THIRD-PARTY-NOTICES \
             share/doc/wsbridge/LICENSE-MIT share/doc/wsbridge/LICENSE-APACHE; do
        [ -f "$PREFIX/$f" ] || { echo "missing $f"; ok=1; }
    done
    [ "$(readlink "$LIB/libwsbridge.so")" = libwsbridge.so.1 ] || { echo "bad libwsbridge.so link"; ok=1; }
    [ "$(readlink "$LIB/libwsbridge.so.1")" = "libwsbridge.so.1.$VERSION" ] || { echo "bad libwsbridge.so.1 link"; ok=1; }
    cmp -s include/wsbridge.h "$PREFIX/include/wsbridge.h" || { echo "installed header differs"; ok=1; }
    cmp -s include/wsbridge.hpp "$PREFIX/include/wsbridge.hpp" || { echo "installed C++ header differs"; ok=1; }
    cmp -s THIRD-PARTY-NOTICES "$PREFIX/share/doc/wsbridge/THIRD-PARTY-NOTICES" || { echo "installed notices differ"; ok=1; }
    ls -l "$LIB" "$LIB/pkgconfig" "$LIB/cmake/wsbridge"
    return $ok
}
step "install layout (lib, soname links, .a, headers, .pc, CMake config, notices)" layout

soname() {
    readelf -d "$LIB/libwsbridge.so.1" | grep SONAME
    readelf -d "$LIB/libwsbridge.so.1" | grep -q 'Library soname: \[libwsbridge.so.1\]'
}
step "readelf -d: soname libwsbridge.so.1" soname

symbols() {
    nm -D --defined-only "$LIB/libwsbridge.so.1" | awk '{print $NF}' | sort -u > "$WORK/exported"
    # Every function the header declares (comments stripped by the preprocessor).
    cc -E -P include/wsbridge.h | grep -oE '\bwsb_[a-z0-9_]+\(' | tr -d '(' | sort -u > "$WORK/declared"
    echo "$(wc -l < "$WORK/exported") symbols exported, $(wc -l < "$WORK/declared") functions declared"
    if grep -v '^wsb_' "$WORK/exported"; then
        echo "^ exported symbols without the wsb_ prefix"
        return 1
    fi
    diff "$WORK/declared" "$WORK/exported"
}
step "nm -D --defined-only: only wsb_* symbols, exactly the header's functions" symbols

# ---------------------------------------------------------------- echo.c through pkg-config and CMake
# echo.c prints the echoes and exits 0 only if both came back and the close was clean.
echo_runs() { # echo_runs EXE
    run "$1" "$WS/echo" && run "$1" "$WSS/echo" "$WORK/ca.pem"
}

pkgconfig_build() {
    export PKG_CONFIG_PATH=$LIB/pkgconfig
    echo "pkg-config --cflags --libs wsbridge: $(pkg-config --cflags --libs wsbridge)"
    [ "$(pkg-config --modversion wsbridge)" = "$VERSION" ] || return 1
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Werror -pedantic examples-c/echo.c \
        $(pkg-config --cflags --libs wsbridge) \
        -Wl,-rpath,"$(pkg-config --variable=libdir wsbridge)" -o "$WORK/echo_pc" || return 1
    readelf -d "$WORK/echo_pc" | grep -q 'Shared library: \[libwsbridge.so.1\]' || {
        echo "echo_pc does not need libwsbridge.so.1"; return 1; }
    echo_runs "$WORK/echo_pc"
}
step "pkg-config build of examples-c/echo.c, run over ws:// and wss://" pkgconfig_build

cmake_build() {
    local b=$WORK/cmake-build
    cmake -S tests/cmake -B "$b" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 || {
        cat "$WORK/cmake.log"; return 1; }
    grep 'found wsbridge' "$WORK/cmake.log"
    cmake --build "$b" >>"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log"; return 1; }
    readelf -d "$b/echo_shared" | grep -q 'Shared library: \[libwsbridge.so.1\]' || {
        echo "echo_shared does not need libwsbridge.so.1"; return 1; }
    if readelf -d "$b/echo_static" | grep -q 'libwsbridge'; then
        echo "echo_static needs libwsbridge at run time"; return 1
    fi
    readelf -d "$b/echo_cpp" | grep -q 'Shared library: \[libwsbridge.so.1\]' || {
        echo "echo_cpp does not need libwsbridge.so.1"; return 1; }
    echo_runs "$b/echo_shared" && echo_runs "$b/echo_static" && echo_runs "$b/echo_cpp"
}
step "CMake find_package(wsbridge): echo.c against the .so and the .a, echo.cpp via wsbridge::wsbridge_cpp, run over ws:// and wss://" cmake_build

cmake_version_check() {
    # The version file: a newer version than installed must not be accepted.
    if cmake -S tests/cmake -B "$WORK/cmake-too-new" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DWSB_REQUIRE_VERSION=99.0 >"$WORK/cmake-new.log" 2>&1; then
        echo "find_package(wsbridge 99.0) succeeded"; return 1
    fi
    grep -A3 'compatible with requested version' "$WORK/cmake-new.log" || { cat "$WORK/cmake-new.log"; return 1; }
}
step "CMake: find_package(wsbridge 99.0) is refused by the version file" cmake_version_check

# ---------------------------------------------------------------- header-driven bindings
# The header preprocessed without the system headers (cffi and LuaJIT know
# bool, size_t and the <stdint.h> types), as binding generators are fed it.
mkdir -p "$WORK/noinc"
touch "$WORK/noinc/stdbool.h" "$WORK/noinc/stddef.h" "$WORK/noinc/stdint.h"
gcc -E -P -nostdinc -I"$WORK/noinc" "$PREFIX/include/wsbridge.h" > "$WORK/wsbridge.cdef"
echo "cdef: $(wc -l < "$WORK/wsbridge.cdef") lines"
PY=("$VENV/bin/python" tests/bindings/cffi_echo.py --lib "$LIB/libwsbridge.so.1" --cdef "$WORK/wsbridge.cdef")

step "Python cffi (ABI mode): echo + close over ws://" run "${PY[@]}" --url "$WS/echo"
step "Python cffi (ABI mode): echo + close over wss://" run "${PY[@]}" --url "$WSS/echo" --ca "$WORK/ca.pem"
step "LuaJIT FFI: echo + close over ws://" \
    run luajit tests/bindings/luajit_echo.lua "$LIB/libwsbridge.so.1" "$WORK/wsbridge.cdef" "$WS/echo"
step "LuaJIT FFI: echo + close over wss://" \
    run luajit tests/bindings/luajit_echo.lua "$LIB/libwsbridge.so.1" "$WORK/wsbridge.cdef" "$WSS/echo" "$WORK/ca.pem"

# ---------------------------------------------------------------- native roots via SSL_CERT_FILE
step "native roots: the test CA trusted from SSL_CERT_FILE (cffi, wss://)" \
    env SSL_CERT_FILE="$WORK/ca.pem" "${PY[@]}" --url "$WSS/echo" --native-roots
step "native roots off: the same CA is unknown (WSB_ERR_TLS)" \
    env SSL_CERT_FILE="$WORK/ca.pem" "${PY[@]}" --url "$WSS/echo" \
    --expect-error WSB_ERR_TLS --expect-detail UnknownIssuer

# ---------------------------------------------------------------- a real proxy: tinyproxy
start_tinyproxy() { # start_tinyproxy NAME EXTRA-CONFIG-LINES; sets TP_PORT
    local name=$1 extra=$2 port pid
    port=$(free_port)
    cat > "$WORK/$name.conf" <<CONF
Port $port
Listen 127.0.0.1
Timeout 30
MaxClients 20
LogFile "$WORK/$name.log"
LogLevel Info
Allow 127.0.0.1
$extra
CONF
    tinyproxy -d -c "$WORK/$name.conf" >"$WORK/$name.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if wait_port "$port" "$pid" 10; then
        TP_PORT=$port
        echo "tinyproxy $name on 127.0.0.1:$port (pid $pid)"
        return 0
    fi
    echo "tinyproxy $name did not start:"; cat "$WORK/$name.out" "$WORK/$name.log" 2>/dev/null
    return 1
}
TP_PORT=
if start_tinyproxy open ""; then OPEN_PROXY=http://127.0.0.1:$TP_PORT; else OPEN_PROXY=http://127.0.0.1:1; fi
# (tinyproxy takes only [A-Za-z0-9._-] in a password; the URL below spells
# the "3" as %33 to exercise the %-decoding.)
if start_tinyproxy auth "BasicAuth wsb s3cr3t.pw
ConnectPort $WSS_PORT"; then AUTH_PORT=$TP_PORT; else AUTH_PORT=1; fi

step "tinyproxy: ws:// echo + close through CONNECT" run "${PY[@]}" --url "$WS/echo" --proxy "$OPEN_PROXY"
step "tinyproxy: wss:// echo + close through CONNECT (TLS end to end)" \
    run "${PY[@]}" --url "$WSS/echo" --ca "$WORK/ca.pem" --proxy "$OPEN_PROXY"
step "tinyproxy: Basic auth from the proxy URL (password %-escaped), wss://" \
    run "${PY[@]}" --url "$WSS/echo" --ca "$WORK/ca.pem" --proxy "http://wsb:s3cr%33t.pw@127.0.0.1:$AUTH_PORT"
step "tinyproxy: no credentials -> WSB_ERR_CONNECT, HTTP 407" \
    run "${PY[@]}" --url "$WSS/echo" --ca "$WORK/ca.pem" --proxy "http://127.0.0.1:$AUTH_PORT" \
    --expect-error WSB_ERR_CONNECT --expect-detail "requires authentication (HTTP 407"
step "tinyproxy: CONNECT to a port it does not allow -> WSB_ERR_CONNECT, HTTP 403" \
    run "${PY[@]}" --url "$WS/echo" --proxy "http://wsb:s3cr%33t.pw@127.0.0.1:$AUTH_PORT" \
    --expect-error WSB_ERR_CONNECT --expect-detail "refused CONNECT to 127.0.0.1:${WS##*:}: HTTP 403"
bad_proxy_url() {
    local out
    if out=$(run "${PY[@]}" --url "$WS/echo" --proxy "socks5://127.0.0.1:1080" 2>&1); then
        echo "$out"; return 1
    fi
    echo "$out"
    grep -q "set_proxy: WSB_ERR_INVALID_URL: invalid proxy URL" <<<"$out"
}
step "a proxy URL that is not http:// -> WSB_ERR_INVALID_URL when set" bad_proxy_url

log "summary"
summary
