#!/usr/bin/env bash
# Windows CI (issue 7): cross-builds wsbridge.dll for x86_64-pc-windows-gnu
# with Debian's Rust toolchain and mingw-w64, then runs the C examples and the
# C contract tests under Wine against the loopback test server.
#
#   bash .ci/windows.sh
#
# Self-contained on a fresh Debian 12 machine (root, apt reachable). Leaves:
#   target/windows/dist/  what to ship: wsbridge.dll, libwsbridge.dll.a
#                         (mingw import library), wsbridge.def, wsbridge.h
#   target/windows/bin/   the test programs, plus a TEST-ONLY
#                         bcryptprimitives.dll (see tests/windows/)
# Prints one line per check and ends with "N passed, N failed"; exits
# non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

TARGET=x86_64-pc-windows-gnu
WIN=$ROOT/target/windows          # cargo target dir of the Windows build
DIST=$WIN/dist
BIN=$WIN/bin
LOGS=$WIN/logs
HOST_PATH=$PATH                   # rustup's cargo, for the host-side test server
WINE=/usr/lib/wine/wine64         # Debian's wine64 puts no `wine` on PATH
MINGW_CC=x86_64-w64-mingw32-gcc

log() { printf '\n==== [%4ds] %s\n' "$SECONDS" "$*"; }

# ---------------------------------------------------------------- cleanup
SERVER_PID=
WINE_STARTED=0
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    # Stop the wineserver of *our* prefix only (and every process in it).
    if [ "$WINE_STARTED" = 1 ]; then
        WINEPREFIX=$WINEPREFIX /usr/lib/wine/wineserver -k 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- packages
# The smaller set: the win32-threads mingw compiler (no libwinpthread DLL to
# ship), not the full `mingw-w64` metapackage. rustc-web/cargo-web 1.96 (in
# bookworm-security) ship their std source, so -Zbuild-std works with them.
PKGS=(gcc-mingw-w64-x86-64-win32 binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev
      wine64 rustc-web cargo-web rust-web-src)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! [ -x /usr/bin/$MINGW_CC ]; then
    log "no $MINGW_CC after the small set: installing the full mingw-w64"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mingw-w64 >/dev/null
fi
/usr/bin/rustc --version
/usr/bin/cargo --version
$MINGW_CC --version | head -1
mkdir -p "$DIST" "$BIN" "$LOGS"

# ---------------------------------------------------------------- host test server
# Built first with the normal (rustup) toolchain into the default target dir,
# as .ci/run does; it may also refresh Cargo.lock before the --locked build.
log "cargo build --example test_server (host)"
PATH=$HOST_PATH cargo build -q --example test_server

# ---------------------------------------------------------------- wsbridge.dll
# Debian's toolchain, not rustup's (rustup here has no Windows std): a clean
# environment, PATH=/usr/bin:/bin, its own CARGO_HOME, std rebuilt from
# rust-web-src for the target. panic = "unwind" (Cargo.toml) is kept, so the
# FFI panic boundary works in the DLL too.
log "cargo build --release --lib --target $TARGET -Zbuild-std (Debian rustc $(/usr/bin/rustc --version | cut -d' ' -f2))"
env -i HOME="$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 CARGO_TERM_COLOR=never \
    RUSTC_BOOTSTRAP=1 \
    CARGO_HOME="$WIN/cargo-home" \
    CARGO_TARGET_DIR="$WIN" \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$MINGW_CC \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_AR=x86_64-w64-mingw32-ar \
    CC_x86_64_pc_windows_gnu=$MINGW_CC \
    AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar \
    /usr/bin/cargo build --release --locked --lib -p wsbridge --target $TARGET \
    -Zbuild-std=std,panic_unwind

REL=$WIN/$TARGET/release
# Shipped stripped (28 MB of DWARF that no Windows debugger reads -> ~4 MB);
# the unstripped DLL stays in $REL. The tests below run the stripped one.
x86_64-w64-mingw32-strip -o "$DIST/wsbridge.dll" "$REL/wsbridge.dll"
cp "$REL/libwsbridge.dll.a" "$DIST/"
cp include/wsbridge.h "$DIST/"
# A .def of the DLL's exports: MSVC users make wsbridge.lib from it with
#   lib /def:wsbridge.def /machine:x64 /out:wsbridge.lib
exports() { # names in the DLL's export table
    x86_64-w64-mingw32-objdump -p "$1" |
        awk '/^\[Ordinal\/Name Pointer\] Table/ {t=1; next} t && /^\t\[ *[0-9]+\]/ {print $NF; next} t && !/^\t/ {t=0}'
}
{
    echo "LIBRARY wsbridge.dll"
    echo "EXPORTS"
    exports "$DIST/wsbridge.dll" | sed 's/^/    /'
} >"$DIST/wsbridge.def"
ls -l "$DIST"

# ---------------------------------------------------------------- C programs (mingw)
log "mingw: C examples, contract tests, test-only bcryptprimitives.dll"
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -O2 -g -Iinclude)
$MINGW_CC "${CFLAGS[@]}" examples-c/echo.c -L"$DIST" -lwsbridge -o "$BIN/echo.exe"
$MINGW_CC "${CFLAGS[@]}" tests/c/contract.c -L"$DIST" -lwsbridge -o "$BIN/contract.exe"
$MINGW_CC "${CFLAGS[@]}" examples-c/event_loop.c -L"$DIST" -lwsbridge -o "$BIN/event_loop.exe"
$MINGW_CC "${CFLAGS[@]}" examples-c/dlopen_echo.c -o "$BIN/dlopen_echo.exe" # LoadLibrary: no import lib
# Wine 8 lacks bcryptprimitives.dll (ProcessPrng, imported by Rust's std):
# a stand-in next to the .exe files. Tests only; never shipped.
$MINGW_CC -std=c99 -Wall -Wextra -Werror -O2 -shared -o "$BIN/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c tests/windows/bcryptprimitives.def -lbcrypt
cp "$DIST/wsbridge.dll" "$BIN/"

# ---------------------------------------------------------------- checks
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

log "wsbridge.dll: exports and imports"
imports=$(x86_64-w64-mingw32-objdump -p "$DIST/wsbridge.dll" | awk '/DLL Name:/ {print $3}' | sort -u | tr '\n' ' ')
header_fns=$(grep -Eo '\bwsb_[a-z_0-9]+\(' include/wsbridge.h | tr -d '(' | sort -u)
dll_fns=$(exports "$DIST/wsbridge.dll" | sort -u)
echo "imports: $imports"
echo "exports: $(echo "$dll_fns" | wc -l) symbols"
bad_imports=$(echo "$imports" | tr ' ' '\n' | grep -Ei '^(lib|msvcp|vcruntime|ucrtbased)' || true)
if [ "$header_fns" = "$dll_fns" ] && [ -z "$bad_imports" ]; then
    pass "wsbridge.dll exports exactly the header's functions, imports only system DLLs"
else
    [ -n "$bad_imports" ] && echo "non-system imports: $bad_imports"
    diff <(echo "$header_fns") <(echo "$dll_fns") || true
    fail "wsbridge.dll exports/imports"
fi

log "Wine: fresh prefix"
export WINEPREFIX=$WIN/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY
rm -rf "$WINEPREFIX"
WINE_STARTED=1
timeout 300 "$WINE" wineboot --init >"$LOGS/wineboot.log" 2>&1 || { cat "$LOGS/wineboot.log"; exit 1; }
"$WINE" --version

log "loopback test server"
coproc SRV { exec target/debug/examples/test_server --ca-out "$BIN/ca.pem" 2>"$LOGS/test_server.log"; }
SERVER_PID=$SRV_PID
read -r -t 60 WS_URL <&"${SRV[0]}"
read -r -t 60 WSS_URL <&"${SRV[0]}"
echo "$WS_URL $WSS_URL"

# run KEY NAME TIMEOUT EXE ARGS...: one Wine run, one line; output in
# logs/KEY.log (shown if it fails). Runs in bin/, so the loader finds the DLLs.
run() {
    local key=$1 name=$2 secs=$3 rc=0; shift 3
    local out=$LOGS/$key.log
    (cd "$BIN" && timeout -k 10 "$secs" "$WINE" "$@") >"$out" 2>&1 || rc=$?
    tr -d '\r' <"$out" >"$out.tmp" && mv "$out.tmp" "$out"
    if [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        sed 's/^/    | /' "$out" | tail -40
        fail "$name (exit $rc$([ "$rc" -eq 124 ] && echo ", timed out after ${secs}s"))"
    fi
}

log "Wine runs"
run echo-ws "echo.exe ws:// (import library)" 120 ./echo.exe "$WS_URL/echo"
run echo-wss "echo.exe wss:// (CA file by option)" 120 ./echo.exe "$WSS_URL/echo" ca.pem
run dlopen_echo "dlopen_echo.exe (LoadLibrary, wsb_shutdown + FreeLibrary)" 120 ./dlopen_echo.exe "$WS_URL/echo" wsbridge.dll
run event_loop "event_loop.exe (wsb_set_notify wakes the host)" 120 ./event_loop.exe "$WS_URL/echo" 100
run contract "contract.exe" 300 ./contract.exe "$WS_URL"
c_sum=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$LOGS/contract.log" | tail -1 || true)
echo "contract.exe: ${c_sum:-no summary line}"
grep '^FAIL' "$LOGS/contract.log" || true

log "summary (logs in ${LOGS#"$ROOT"/}, DLL in ${DIST#"$ROOT"/})"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
