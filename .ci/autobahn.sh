#!/usr/bin/env bash
# Autobahn|Testsuite client conformance, through the C API (tests/autobahn/driver.c).
#
#   bash .ci/autobahn.sh
#
# Env:
#   WSB_LIB_DIR   directory holding libwsbridge.so (when unset: built here with
#                 `cargo build --release --lib`, in $CARGO_TARGET_DIR or target/)
#   WSB_PY27      Python 2.7 interpreter (default: ~/.pyenv/versions/2.7.18/bin/python)
#   WSB_AB_CACHE  where the Python environments are cached
#                 (default: ${XDG_CACHE_HOME:-~/.cache}/wsbridge/autobahn)
#   WSB_AB_OUT    where the driver logs and the reports go (default: target/autobahn):
#                 driver-K.log, wstest-K.log, reports/K/index.html per shard K
#   WSB_AB_JOBS   fuzzing servers (shards) run side by side, each with its own
#                 driver (default 2; 1 to 9)
#   WSB_AB_PORT   first fuzzing server port on 127.0.0.1, shard K on PORT+K-1
#                 (default: free ones)
#   WSB_AB_CASES  the fuzzing server's "cases" list, as JSON, run as one shard
#                 (default: all 517); e.g. '["12.1.*", "13.*"]' while debugging
#
# wstest (Python 2.7 only) runs as fuzzing servers bound to 127.0.0.1, without
# their web UI; the drivers run every case: 1.* to 11.* without compression,
# 12.* and 13.* (permessage-deflate) with it, each 13.x offered as its server
# side expects (the table in tests/autobahn/driver.c, offer_for); a driver
# fails if compression was not negotiated where offered. Gate, over every
# case: no behavior FAILED / FAILED BY CLIENT / UNIMPLEMENTED (a declined
# offer), nor behaviorClose FAILED / UNCLEAN / WRONG CODE. Ends with
# "N passed, N failed"; exits non-zero on any failure.
#
# Time: 1.* to 11.* take about 25 s. 12.* and 13.* are 216 cases of 1000
# messages each, up to 128 KiB, echoed one at a time: the whole suite costs
# about 600 CPU seconds here (2 vCPUs), three quarters of them the Python
# server's (zlib, SHA-1, framing), the rest the driver's. Measured on a
# shared machine (other builds running, load average 3 to 19): 797 s with
# one server, 634 s and 768 s with two.
set -euo pipefail
. "$(dirname "$0")/lib.sh" # log, die, PIDS, free_port, wait_port, wsb_lib
cd "$ROOT"

PY27=${WSB_PY27:-$HOME/.pyenv/versions/2.7.18/bin/python}
CACHE=${WSB_AB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsbridge/autobahn}
OUT=${WSB_AB_OUT:-$ROOT/target/autobahn}

TMP=$(mktemp -d)
cleanup() { rm -rf "$TMP"; }

command -v cc >/dev/null || die "no C compiler (cc) on PATH"
command -v python3 >/dev/null || die "python3 is needed (to create the virtualenv tool)"
if ! { [ -x "$PY27" ] && "$PY27" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; }; then
    die "Python 2.7 not found at $PY27 (wstest, the Autobahn fuzzing server, runs only on Python 2.7; install it with pyenv as ~/.pyenv/versions/2.7.18 or point WSB_PY27 at a 2.7 interpreter)"
fi

# ---------------------------------------------------------------- Python 2.7 environment (cached)
PINS="autobahntestsuite==25.10.1 attrs==21.4.0 autobahn==0.10.9 Automat==22.10.0 cffi==1.15.1
constantly==15.1.0 cryptography==3.3.2 enum34==1.1.10 hyperlink==21.0.0 idna==2.10
incremental==16.10.1 ipaddress==1.0.23 Jinja2==2.11.3 klein==17.10.0 linecache2==1.0.0
MarkupSafe==1.1.1 pyasn1==0.5.1 pyasn1-modules==0.3.0 pycparser==2.21 PyHamcrest==1.10.1
pyOpenSSL==19.1.0 service-identity==18.1.0 six==1.16.0 traceback2==1.4.0 Twisted==19.10.0
txaio==2.1.0 typing==3.10.0.0 ujson==2.0.3 unittest2==1.1.0 Werkzeug==1.0.1 wsaccel==0.6.6
zope.interface==4.6.0"
STAMP="$PY27 $("$PY27" -V 2>&1) virtualenv<20.22 $PINS"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 600 9 || die "could not lock $CACHE/.lock within 600 s"
if [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -x "$CACHE/py27/bin/wstest" ]; then
    log "creating the Python 2.7 environment in $CACHE (first run only)"
    t0=$SECONDS
    rm -rf "$CACHE/py3" "$CACHE/py27" "$CACHE/stamp"
    python3 -m venv "$CACHE/py3"
    "$CACHE/py3/bin/pip" install -q 'virtualenv<20.22'
    "$CACHE/py3/bin/virtualenv" -q -p "$PY27" "$CACHE/py27"
    # shellcheck disable=SC2086
    "$CACHE/py27/bin/pip" install -q --no-python-version-warning $PINS
    printf '%s' "$STAMP" >"$CACHE/stamp"
    echo "environment ready in $((SECONDS - t0)) s"
fi
flock -u 9

# wstest that listens on 127.0.0.1 only (stock wstest binds every interface).
cat >"$TMP/wstest_local.py" <<'EOF'
import sys
import autobahntestsuite.fuzzing as fuzzing
from autobahn.twisted.websocket import listenWS as _listenWS

def listenWS(factory, contextFactory=None, backlog=50, interface=''):
    return _listenWS(factory, contextFactory, backlog, interface='127.0.0.1')

fuzzing.listenWS = listenWS
from autobahntestsuite.wstest import run
sys.argv[0] = 'wstest'
sys.exit(run())
EOF

# ---------------------------------------------------------------- library and driver
wsb_lib
log "building the driver against $WSB_LIB_DIR/libwsbridge.so"
cc -std=c99 -Wall -Wextra -Werror -O2 -Iinclude tests/autobahn/driver.c \
    -L"$WSB_LIB_DIR" -lwsbridge -Wl,-rpath,"$WSB_LIB_DIR" -o "$TMP/driver"

# ---------------------------------------------------------------- shards
# The fuzzing server is one Python 2.7 process, and the 12.* / 13.* cases keep
# it busy (it compresses 128 MiB per case in the larger ones; the driver mostly
# waits), so the cases are split over JOBS servers, each with its own driver.
# A shard is a list of case patterns: the groups below go longest first to the
# least loaded shard, by their time here (seconds, one server, 2 vCPUs).
JOBS=${WSB_AB_JOBS:-2}
case "$JOBS" in [1-9]) ;; *) die "WSB_AB_JOBS=$JOBS: 1 to 9" ;; esac
mapfile -t SHARDS < <(python3 - "$JOBS" "${WSB_AB_CASES:-}" <<'EOF'
import json, sys
jobs, custom = int(sys.argv[1]), sys.argv[2]
if custom:
    # WSB_AB_CASES: one shard
    print(json.dumps(json.loads(custom)))
    sys.exit(0)
groups = [(["%d.*" % i for i in range(1, 12)], 25),
          (["12.1.*"], 30), (["12.2.*"], 75), (["12.3.*"], 100), (["12.4.*"], 32), (["12.5.*"], 72),
          (["13.1.*"], 46), (["13.2.*"], 52), (["13.3.*"], 78), (["13.4.*"], 44),
          (["13.5.*"], 90), (["13.6.*"], 56), (["13.7.*"], 105)]
shards = [[[], 0] for _ in range(jobs)]
for patterns, weight in sorted(groups, key=lambda g: -g[1]):
    s = min(shards, key=lambda s: s[1])
    s[0].extend(patterns)
    s[1] += weight
for patterns, _ in shards:
    if patterns:
        print(json.dumps(patterns))
EOF
)
JOBS=${#SHARDS[@]}
[ "$JOBS" -ge 1 ] || die "no shards"

# ---------------------------------------------------------------- fuzzing servers
rm -rf "$OUT/reports" "$OUT"/driver*.log "$OUT"/wstest*.log "$OUT"/fuzzingserver*.json
mkdir -p "$OUT"
PORTS=()
for k in $(seq 1 "$JOBS"); do
    if [ -n "${WSB_AB_PORT:-}" ]; then port=$((WSB_AB_PORT + k - 1)); else port=$(free_port); fi
    PORTS+=("$port")
    cat >"$OUT/fuzzingserver-$k.json" <<EOF
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$OUT/reports/$k",
  "cases": ${SHARDS[$((k - 1))]},
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
    log "starting wstest fuzzingserver $k/$JOBS on 127.0.0.1:$port: ${SHARDS[$((k - 1))]}"
    (cd "$OUT" && exec "$CACHE/py27/bin/python" "$TMP/wstest_local.py" -m fuzzingserver \
        -s "$OUT/fuzzingserver-$k.json" -u 0 >"$OUT/wstest-$k.log" 2>&1) &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    if ! wait_port "$port" "$SERVER_PID" 30; then
        cat "$OUT/wstest-$k.log" >&2 || true
        die "fuzzing server $k did not come up on 127.0.0.1:$port"
    fi
done

# ---------------------------------------------------------------- run the cases
log "running the cases: $JOBS driver(s), logs $OUT/driver-K.log"
t0=$(date +%s.%N)
DRIVERS=()
for k in $(seq 1 "$JOBS"); do
    timeout -k 10 2400 "$TMP/driver" "ws://127.0.0.1:${PORTS[$((k - 1))]}" wsbridge \
        >"$OUT/driver-$k.log" 2>&1 &
    DRIVERS+=("$!")
    PIDS+=("$!")
done
drc=0
for k in $(seq 1 "$JOBS"); do
    set +e
    wait "${DRIVERS[$((k - 1))]}"
    rc=$?
    set -e
    echo "driver $k: $(tail -n 1 "$OUT/driver-$k.log")"
    if [ "$rc" -ne 0 ]; then
        echo "driver $k exited with status $rc$([ "$rc" -eq 124 ] && echo ' (timeout)'); cases with problems:"
        grep -E 'NO CLOSE|open:|connect:|echo:|getCaseInfo|COMPRESSION' "$OUT/driver-$k.log" | head -n 40 || true
        drc=$rc
    fi
done
t1=$(date +%s.%N)
elapsed=$(python3 -c "print('%.1f' % ($t1 - $t0))")

# ---------------------------------------------------------------- gate on the reports
INDEXES=()
for k in $(seq 1 "$JOBS"); do
    INDEX=$OUT/reports/$k/index.json
    if [ ! -f "$INDEX" ]; then
        echo "autobahn: no report at $INDEX (driver status $drc)" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    INDEXES+=("$INDEX")
    echo "reports: $OUT/reports/$k/index.html"
done
set +e
python3 - "$elapsed" "$drc" "${INDEXES[@]}" <<'EOF'
import collections, json, os, re, sys

elapsed, driver_status, index_paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cases = {}
for index_path in index_paths:
    index = json.load(open(index_path))
    if "wsbridge" not in index:
        print("no results for agent wsbridge in", index_path)
        print("0 passed, 1 failed")
        sys.exit(1)
    for cid, r in index["wsbridge"].items():
        r["reportfile"] = os.path.join(os.path.dirname(index_path), r.get("reportfile", ""))
        cases[cid] = r

def case_key(cid):
    return [int(p) for p in cid.split(".")]

def load(cid):
    path = cases[cid]["reportfile"]
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return {}

def plain(text, n=300):
    text = re.sub(r"<[^>]+>", " ", str(text))
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."

# UNIMPLEMENTED: a 12.* / 13.* case whose server declined our offer.
BAD_BEHAVIOR = {"FAILED", "FAILED BY CLIENT", "UNIMPLEMENTED"}
BAD_CLOSE = {"FAILED", "UNCLEAN", "WRONG CODE"}
behaviors = collections.Counter()
closes = collections.Counter()
failed = []
for cid in sorted(cases, key=case_key):
    r = cases[cid]
    behaviors[r["behavior"]] += 1
    closes[r["behaviorClose"]] += 1
    if r["behavior"] in BAD_BEHAVIOR or r["behaviorClose"] in BAD_CLOSE:
        failed.append(cid)
    elif r["behavior"] != "OK" or r["behaviorClose"] != "OK":
        rep = load(cid)
        if r["behavior"] == "NON-STRICT":
            why = "OK would need %s, received %s" % (
                plain(json.dumps((rep.get("expected") or {}).get("OK")), 100),
                plain(json.dumps(rep.get("received")), 100))
        else:
            why = plain(rep.get("result", ""), 160)
        print("note: case %s (driver case %s): behavior %s, behaviorClose %s: %s" % (
            cid, rep.get("case", "?"), r["behavior"], r["behaviorClose"], why))

for cid in failed:
    r, rep = cases[cid], load(cid)
    print("FAILED case %s (driver case %s): behavior %s, behaviorClose %s" % (
        cid, rep.get("case", "?"), r["behavior"], r["behaviorClose"]))
    print("    description: %s" % plain(rep.get("description", "")))
    print("    expectation: %s" % plain(rep.get("expectation", "")))
    print("    expected: %s" % plain(json.dumps(rep.get("expected"))))
    print("    received: %s" % plain(json.dumps(rep.get("received"))))
    print("    result: %s" % plain(rep.get("result", "")))
    print("    close: %s (wasClean %s, %s; local code %s, remote code %s)" % (
        plain(rep.get("resultClose", "")), rep.get("wasClean"), rep.get("wasNotCleanReason"),
        rep.get("localCloseCode"), rep.get("remoteCloseCode")))
    print("    report: %s" % r["reportfile"])

order = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "FAILED BY CLIENT"]
shown = [b for b in order if b in behaviors or b in ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED")]
shown += sorted(set(behaviors) - set(order))
print("Autobahn: %d cases in %s s: %s" % (
    len(cases), elapsed, ", ".join("%s %d" % (b, behaviors[b]) for b in shown)))
print("behaviorClose: " + ", ".join("%s %d" % kv for kv in sorted(closes.items())))
nfailed = len(failed)
if driver_status != 0:
    print("FAILED: a driver exited with status %d (see driver-K.log)" % driver_status)
    nfailed += 1
print("%d passed, %d failed" % (len(cases) - len(failed), nfailed))
sys.exit(1 if nfailed else 0)
EOF
grc=$?
set -e
exit "$grc"
