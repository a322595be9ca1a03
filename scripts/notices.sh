#!/usr/bin/env bash
# THIRD-PARTY-NOTICES: the licence texts of every crate compiled into the
# shipped binaries (libwsbridge.so/.a, wsbridge.dll, wsb-luau), generated
# from Cargo.lock by cargo-about (about.toml: the accepted licences and the
# targets; about.hbs: the layout), then Luau's licence (luau0-src, a build
# dependency of wsb-luau's luau-vm, compiled into wsb-luau).
#
#   bash scripts/notices.sh            # regenerates THIRD-PARTY-NOTICES
#   bash scripts/notices.sh --check    # fails if it is stale, or if a crate's
#                                      # licence is not on the accepted list
#
# Needs cargo-about (CARGO_ABOUT, default cargo-about on PATH; CI installs
# the version .ci/run pins). Reproducible: the crates are fetched first, then
# cargo-about runs --frozen (no network: the texts come from the crates).
set -euo pipefail
cd "$(dirname "$0")/.."
ABOUT=${CARGO_ABOUT:-cargo-about}
CHECK=0
[ "${1:-}" = --check ] && CHECK=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cargo fetch --locked -q # every target's crates (the Windows ones too)
if ! "$ABOUT" generate --frozen --fail -m Cargo.toml about.hbs -o "$TMP/crates" 2>"$TMP/about.log"; then
    grep -v '^\s*$' "$TMP/about.log" | grep -iv 'WARN' >&2 || true
    echo "notices.sh: cargo-about failed: a crate whose licence is not in about.toml's accepted list?" >&2
    exit 1
fi
LUAU=$(cargo metadata --format-version 1 --locked --offline | python3 -c '
import json, os, sys
p = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "luau0-src"]
print(os.path.dirname(p[0]["manifest_path"]) + " " + p[0]["version"] if p else "")')
[ -f "${LUAU%% *}/LICENSE" ] || { echo "notices.sh: luau0-src's LICENSE not found ($LUAU)" >&2; exit 1; }
{
    cat "$TMP/crates"
    printf '\n================================================================================\n'
    printf 'Luau (MIT License), from luau0-src %s\n' "${LUAU#* }"
    printf 'Compiled into: wsb-luau, wsb-luau.exe (examples-c/luau/vm builds it)\n'
    printf -- '--------------------------------------------------------------------------------\n'
    tr -d '\r' <"${LUAU%% *}/LICENSE"
} >"$TMP/notices"

if [ "$CHECK" = 1 ]; then
    if ! cmp -s "$TMP/notices" THIRD-PARTY-NOTICES; then
        diff -u THIRD-PARTY-NOTICES "$TMP/notices" | head -40 || true
        echo "notices.sh: THIRD-PARTY-NOTICES is stale: run bash scripts/notices.sh and commit it" >&2
        exit 1
    fi
    echo "THIRD-PARTY-NOTICES is up to date ($(grep -c '^  [^ ].*: ' THIRD-PARTY-NOTICES) crates, and Luau)"
else
    mv "$TMP/notices" THIRD-PARTY-NOTICES
    echo "wrote THIRD-PARTY-NOTICES"
fi
