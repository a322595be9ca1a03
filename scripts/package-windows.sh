#!/usr/bin/env bash
# Lays out and zips the Windows package (issue 14), from what .ci/windows.sh
# built:
#
#   bash scripts/package-windows.sh DIST BIN OUT_ZIP
#
# DIST holds wsbridge.dll (stripped), wsbridge.lib, libwsbridge.dll.a and
# wsbridge.def; BIN holds wsb-luau.exe. The zip's root:
#
#   bin/wsbridge.dll  bin/wsb-luau.exe
#   lib/wsbridge.lib  (MSVC)  lib/libwsbridge.dll.a  (mingw)  lib/wsbridge.def
#   include/wsbridge.h  include/wsbridge.hpp  (the C header; the C++17 wrapper)
#   luau/websocket.c  luau/websocket.h  luau/signals.c  luau/signals.h
#   luau/ready_set.c  luau/ready_set.h
#   README-windows.md  LICENSE-MIT  LICENSE-APACHE  LICENSE-Luau.txt
#   THIRD-PARTY-NOTICES  (every crate compiled into the DLL, and Luau: their licences)
#
# Prints the zip's file list. Needs python3 (its zipfile module makes the zip:
# no zip package to install).
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=$1 BIN=$2 ZIP=$3
STAGE=$(dirname "$ZIP")/package
rm -rf "$STAGE" "$ZIP"
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/include" "$STAGE/luau"
cp "$DIST/wsbridge.dll" "$BIN/wsb-luau.exe" "$STAGE/bin/"
cp "$DIST/wsbridge.lib" "$DIST/libwsbridge.dll.a" "$DIST/wsbridge.def" "$STAGE/lib/"
cp include/wsbridge.h include/wsbridge.hpp "$STAGE/include/"
cp examples-c/luau/websocket.c examples-c/luau/websocket.h examples-c/luau/signals.c examples-c/luau/signals.h \
    examples-c/luau/ready_set.c examples-c/luau/ready_set.h "$STAGE/luau/"
cp scripts/README-windows.md LICENSE-MIT LICENSE-APACHE THIRD-PARTY-NOTICES "$STAGE/"
# wsb-luau.exe contains Luau (MIT, Roblox).
cp examples-c/luau/vm/include/LICENSE.txt "$STAGE/LICENSE-Luau.txt"
# Same bytes for the same inputs: fixed timestamps, sorted names.
find "$STAGE" -exec touch -h -d '2000-01-01 00:00:00 UTC' {} +
(cd "$STAGE" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for name in sys.stdin.read().split("\n"):
        if name:
            z.write(name)
' "$ZIP")
python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$ZIP"
