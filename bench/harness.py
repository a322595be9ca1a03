#!/usr/bin/env python3
"""Runs the issue-6 scenarios against every client, alternating clients,
repeated; prints a table and writes a Markdown report. Started by run.sh
(which builds everything first); see bench/README.md.

Each client is a separate program that runs one scenario and prints one JSON
object. The harness starts the echo server once, then for each scenario and
each repetition runs every client in turn (the order rotates each
repetition), and reports medians with min/max over the repetitions, plus
ratios against baselines measured in the same repetition (paired).
"""
import argparse
import datetime
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CLIENT_ORDER = ["floor", "tungstenite", "wsbridge", "tokio-tungstenite", "node-ws",
                "python-websockets", "libwebsockets"]
# Which client runs which scenario (the floor has no WebSocket).
SUPPORTS = {
    "floor": {"pingpong", "bulk"},
}
ALL = {"pingpong", "pipelined", "bulk", "scale", "handshake"}
# The clients that can compress (permessage-deflate): the only ones run in the
# compressed variants (tungstenite, tokio-tungstenite and this libwebsockets
# client have no permessage-deflate).
COMPRESSING = {"wsbridge", "node-ws", "python-websockets"}


def client_cmd(name, args):
    rs = os.path.join(args.bin_dir, "rs-client")
    return {
        "floor": [rs, "floor"],
        "tungstenite": [rs, "tungstenite"],
        "tokio-tungstenite": [rs, "tokio"],
        "wsbridge": [args.wsb_client],
        "node-ws": ["node", os.path.join(HERE, "node", "client.js")] if args.node else None,
        "python-websockets": [args.python, os.path.join(HERE, "python", "client.py")]
        if args.python else None,
        "libwebsockets": [args.lws_client] if args.lws_client else None,
    }[name]


def big_scale_n():
    """The large scale count: 10 000 if the fd limit allows 3 fds per
    wsbridge socket (TCP socket, epoll, eventfd), else the largest multiple
    of 1 000 that fits."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = (soft - 200) // 3 // 1000 * 1000
    return max(0, min(10000, n))


def json_corpus(path, count=256, size=1024):
    """Writes `count` lines of JSON-like text, each exactly `size` bytes, the
    same every run (seeded): the messages of the compressed variants."""
    rnd = random.Random(7692)
    words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
             "mike november oscar papa quebec romeo sierra tango uniform victor").split()
    kinds = ["update", "snapshot", "delta", "heartbeat", "order", "trade"]
    with open(path, "w") as f:
        for i in range(count):
            obj = {"seq": i, "type": rnd.choice(kinds), "ts": 1764000000000 + i * 37 + rnd.randrange(1000),
                   "user": {"id": rnd.randrange(10 ** 6), "name": rnd.choice(words) + str(rnd.randrange(100)),
                            "roles": rnd.sample(["admin", "editor", "viewer", "guest"], 2)},
                   "items": []}
            while len(json.dumps(obj, separators=(",", ":"))) < size - 160:
                obj["items"].append({"id": rnd.randrange(10 ** 5), "sku": f"SKU-{rnd.randrange(10 ** 4):04d}",
                                     "price": round(rnd.uniform(1, 500), 2), "qty": rnd.randrange(1, 20),
                                     "tags": rnd.sample(words, 2), "ok": rnd.random() < 0.8})
                if len(json.dumps(obj, separators=(",", ":"))) > size - 60:
                    obj["items"].pop()
                    break
            head = json.dumps(obj, separators=(",", ":"))[:-1] + ',"note":"'
            note = ""
            while len(head) + len(note) + 2 < size:
                note += rnd.choice(words) + " "
            line = head + note[:size - len(head) - 2] + '"}'
            assert len(line) == size, len(line)
            json.loads(line)
            f.write(line + "\n")


def variants(smoke, big, corpus):
    """(id, scenario, per-client params, title). Variants whose params have
    `compress` run the compressing clients against the deflate server."""
    if smoke:
        pp = {"n": 200, "warmup": 50}
        pl = {"n": 5000}
        pl_py = {"n": 2000}
        bk = {"size": 1 << 20, "reps": 1}
        sc = [("scale-20", {"n": 20, "idle": 0.2})]
        hs = {"n": 5}
        zpl, zpl_slow = {"n": 500}, {"n": 200}
        zbk = {"size": 1 << 20, "reps": 1}
        zsc = []
    else:
        pp = {"n": 20000, "warmup": 1000}
        pl = {"n": 1000000}
        pl_py = {"n": 200000}  # ~35k msg/s: 1M would take ~30 s per run
        bk = {"size": 16 << 20, "reps": 3}
        sc = [("scale-1000", {"n": 1000, "idle": 5})]
        if big > 1000:
            sc.append((f"scale-{big}", {"n": big, "idle": 5}))
        hs = {"n": 200}
        # ~20k msg/s for wsbridge, ~3-5k for Node and Python: ~5-10 s each.
        zpl, zpl_slow = {"n": 100000}, {"n": 30000}
        zbk = {"size": 16 << 20, "reps": 3}
        zsc = [("scale-1000-deflate", {"n": 1000, "idle": 5}, "context takeover, window 15"),
               ("scale-1000-deflate-nct", {"n": 1000, "idle": 5, "nct": 1}, "no context takeover")]
    out = [
        ("pingpong", "pingpong", {"*": pp}, "1. ping-pong RTT, 64 B text"),
        ("pipelined", "pipelined", {"*": pl, "python-websockets": pl_py},
         "2. pipelined echo, 64 B text"),
        ("bulk", "bulk", {"*": bk}, "3. bulk binary echo"),
    ]
    for vid, p in sc:
        out.append((vid, "scale", {"*": p}, f"4. scale: {p['n']} sockets open at once"))
    out.append(("handshake-ws", "handshake", {"*": hs, "url": "ws"},
                "5a. handshake ws:// connect-to-OPEN"))
    out.append(("handshake-wss", "handshake", {"*": hs, "url": "wss"},
                "5b. handshake wss:// connect-to-OPEN"))
    z = {"compress": 1, "corpus": corpus}
    out.append(("pipelined-deflate", "pipelined",
                {"*": {**zpl, **z}, "node-ws": {**zpl_slow, **z},
                 "python-websockets": {**zpl_slow, **z}},
                "6a. compressed pipelined echo, 1 KiB JSON-like text"))
    out.append(("bulk-deflate", "bulk", {"*": {**zbk, **z, "text": 1}},
                "6b. compressed echo of one JSON-like text message"))
    for vid, p, what in zsc:
        out.append((vid, "scale", {"*": {**p, **z, "warm": 1}},
                    f"6c. scale, compressed: {p['n']} sockets, one 1 KiB message echoed on each; {what}"))
    return out


def start_deflate_server(args):
    p = subprocess.Popen([os.path.join(args.bin_dir, "deflate-server")],
                         stdout=subprocess.PIPE, text=True)
    ws = p.stdout.readline().strip()
    if not ws.startswith("ws://"):
        p.kill()
        sys.exit("deflate-server did not start")
    return p, ws


def start_server(args):
    ca = os.path.join(args.work, "ca.pem")
    p = subprocess.Popen([os.path.join(args.bin_dir, "echo-server"), "--ca-out", ca],
                         stdout=subprocess.PIPE, text=True)
    ws = p.stdout.readline().strip()
    wss = p.stdout.readline().strip()
    if not ws.startswith("ws://") or not wss.startswith("wss://"):
        p.kill()
        sys.exit("echo-server did not start")
    return p, ws, wss, ca


def run_one(cmd, timeout):
    t = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout} s", time.monotonic() - t
    dt = time.monotonic() - t
    if r.returncode != 0:
        err = (r.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return None, f"exit {r.returncode}: {err}", dt
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]), None, dt
    except (ValueError, IndexError):
        return None, f"bad output: {r.stdout.strip()[:200]!r}", dt


# ------------------------------------------------------------------ stats

def med(v):
    return statistics.median(v) if v else None


def fmt(x, nd=1):
    if x is None:
        return "—"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k"
    return f"{x:.{nd}f}"


def mmm(v, nd=1):
    """median [min–max] of a list."""
    if not v:
        return "—"
    if len(v) == 1:
        return fmt(v[0], nd)
    return f"{fmt(med(v), nd)} [{fmt(min(v), nd)}–{fmt(max(v), nd)}]"


def paired(res, vid, client, base, key):
    """Per-repetition ratios client/base for metric `key`."""
    a = res.get((vid, client), {})
    b = res.get((vid, base), {})
    return [a[r][key] / b[r][key] for r in a if r in b and b[r][key]]


def ok_(v, pred):
    """None without data, else whether the median satisfies pred."""
    return None if not v else bool(pred(med(v)))


def vals(res, vid, client, key):
    return [d[key] for _, d in sorted(res.get((vid, client), {}).items())]


# --------------------------------------------------------------- report

def build_report(res, errors, vlist, clients, meta, smoke):
    L = []
    L.append("# wsbridge benchmark (issue 6)" + (" — smoke pass" if smoke else ""))
    L.append("")
    for k, v in meta.items():
        L.append(f"- {k}: {v}")
    L.append("")
    L.append("Values: median over repetitions [min–max]. Ratios: per repetition, against the "
             "baseline measured in the same repetition, then median [min–max].")
    L.append("")
    targets = []

    def table(title, header, rows):
        L.append(f"## {title}")
        L.append("")
        L.append("| " + " | ".join(header) + " |")
        L.append("| " + " | ".join("---" for _ in header) + " |")
        for r in rows:
            L.append("| " + " | ".join(r) + " |")
        L.append("")

    for vid, scn, params, title in vlist:
        runs = [c for c in clients if (vid, c) in res or (vid, c) in errors]
        rows = []
        if scn == "pingpong":
            for c in runs:
                rows.append([c, mmm(vals(res, vid, c, "median_us")),
                             mmm(vals(res, vid, c, "p99_us")),
                             mmm(paired(res, vid, c, "tungstenite", "median_us"), 2),
                             mmm(paired(res, vid, c, "floor", "median_us"), 2)])
            table(f"{title} ({params['*']['n']} rounds after {params['*']['warmup']} warm-up)",
                  ["client", "median µs", "p99 µs", "median / tungstenite", "median / TCP floor"],
                  rows)
            r = paired(res, vid, "wsbridge", "tungstenite", "median_us")
            targets.append(("1. ping-pong median ≤ 1.2× raw tungstenite", ok_(r, lambda m: m <= 1.2),
                            f"{mmm(r, 2)}× ({mmm(vals(res, vid, 'wsbridge', 'median_us'))} µs "
                            f"vs {mmm(vals(res, vid, 'tungstenite', 'median_us'))} µs)"))
        elif scn == "pipelined" and params["*"].get("compress"):
            for c in runs:
                n = params.get(c, params["*"])["n"]
                rows.append([c, str(n), mmm(vals(res, vid, c, "msgs_per_s")),
                             mmm([v / 1024 for v in vals(res, vid, c, "msgs_per_s")]),
                             mmm(paired(res, vid, c, "node-ws", "msgs_per_s"), 2),
                             mmm(paired(res, vid, c, "python-websockets", "msgs_per_s"), 2)])
            table(title + " (permessage-deflate, deflate-server)",
                  ["client", "messages", "msg/s received", "MiB/s of text", "/ node-ws",
                   "/ python-websockets"], rows)
            r = paired(res, vid, "wsbridge", "node-ws", "msgs_per_s")
            targets.append(("6. compressed pipelined ≥ 2× Node ws", ok_(r, lambda m: m >= 2),
                            f"{mmm(r, 2)}× ({mmm(vals(res, vid, 'wsbridge', 'msgs_per_s'))} vs "
                            f"{mmm(vals(res, vid, 'node-ws', 'msgs_per_s'))} msg/s)"))
        elif scn == "bulk" and params["*"].get("compress"):
            size = params["*"]["size"]
            for c in runs:
                rows.append([c, mmm(vals(res, vid, c, "median_ms")),
                             mmm(vals(res, vid, c, "mib_per_s")),
                             mmm(paired(res, vid, c, "node-ws", "mib_per_s"), 2),
                             mmm(paired(res, vid, c, "python-websockets", "mib_per_s"), 2)])
            table(f"{title}, {size >> 20} MiB (permessage-deflate, deflate-server)",
                  ["client", "echo ms", "MiB/s (size / echo time)", "/ node-ws",
                   "/ python-websockets"], rows)
        elif scn == "scale" and params["*"].get("compress"):
            for c in runs:
                rows.append([c, mmm(vals(res, vid, c, "rss_per_socket_kib")),
                             mmm(vals(res, vid, c, "idle_cpu_ms"), 2),
                             mmm(vals(res, vid, c, "open_s"), 3)])
            idle = params["*"]["idle"]
            table(title, ["client", "RSS KiB / socket", f"CPU ms over {idle} s idle",
                          "time to open all, s"], rows)
        elif scn == "pipelined":
            for c in runs:
                n = params.get(c, params["*"])["n"]
                rows.append([c, str(n), mmm(vals(res, vid, c, "msgs_per_s")),
                             mmm(paired(res, vid, c, "node-ws", "msgs_per_s"), 2),
                             mmm(paired(res, vid, c, "tokio-tungstenite", "msgs_per_s"), 2)])
            table(title, ["client", "messages", "msg/s received", "/ node-ws",
                          "/ tokio-tungstenite"], rows)
            v = vals(res, vid, "wsbridge", "msgs_per_s")
            targets.append(("2a. pipelined ≥ 1 000 000 msg/s", ok_(v, lambda m: m >= 1e6),
                            f"{mmm(v)} msg/s"))
            r = paired(res, vid, "wsbridge", "node-ws", "msgs_per_s")
            targets.append(("2b. pipelined ≥ 3× Node ws", ok_(r, lambda m: m >= 3), f"{mmm(r, 2)}×"))
            r = paired(res, vid, "wsbridge", "tokio-tungstenite", "msgs_per_s")
            targets.append(("2c. pipelined ≥ tokio-tungstenite", ok_(r, lambda m: m >= 1),
                            f"{mmm(r, 2)}×"))
        elif scn == "bulk":
            size = params["*"]["size"]
            for c in runs:
                rows.append([c, mmm(vals(res, vid, c, "median_ms")),
                             mmm(vals(res, vid, c, "mib_per_s")),
                             mmm(paired(res, vid, c, "floor", "mib_per_s"), 2),
                             mmm(paired(res, vid, c, "tungstenite", "mib_per_s"), 2)])
            table(f"{title}, {size >> 20} MiB" if size >= 1 << 20 else f"{title}, {size} B",
                  ["client", "echo ms", "MiB/s (size / echo time)", "/ TCP floor",
                   "/ tungstenite"], rows)
            r = paired(res, vid, "wsbridge", "floor", "mib_per_s")
            targets.append(("3. bulk ≥ 50 % of raw loopback TCP", ok_(r, lambda m: m >= 0.5),
                            f"{mmm(r, 2)}× ({mmm(vals(res, vid, 'wsbridge', 'mib_per_s'))} vs "
                            f"{mmm(vals(res, vid, 'floor', 'mib_per_s'))} MiB/s)"))
        elif scn == "scale":
            for c in runs:
                rows.append([c, mmm(vals(res, vid, c, "rss_per_socket_kib")),
                             mmm(vals(res, vid, c, "idle_cpu_ms"), 2),
                             mmm(vals(res, vid, c, "open_s"), 3)])
            idle = params["*"]["idle"]
            table(title, ["client", "RSS KiB / socket", f"CPU ms over {idle} s idle",
                          "time to open all, s"], rows)
            v = vals(res, vid, "wsbridge", "rss_per_socket_kib")
            n = params["*"]["n"]
            targets.append((f"4. {n} sockets: RSS ≤ 64 KiB per socket", ok_(v, lambda m: m <= 64),
                            f"{mmm(v)} KiB"))
            v = vals(res, vid, "wsbridge", "idle_cpu_ms")
            targets.append((f"4. {n} sockets: ≈ 0 CPU idle (≤ 1 ms per s over {idle} s)",
                            ok_(v, lambda m: m <= idle), f"{mmm(v, 2)} ms CPU"))
        elif scn == "handshake":
            for c in runs:
                rows.append([c, mmm(vals(res, vid, c, "median_us")),
                             mmm(vals(res, vid, c, "p99_us")),
                             mmm(paired(res, vid, c, "tungstenite", "median_us"), 2)])
            table(f"{title} ({params['*']['n']} connects each, sequential)",
                  ["client", "median µs", "p99 µs", "median / tungstenite"], rows)
            r = paired(res, vid, "wsbridge", "tungstenite", "median_us")
            kind = "ws://" if params["url"] == "ws" else "wss://"
            targets.append((f"5. handshake {kind} ≤ 1.2× raw tungstenite", ok_(r, lambda m: m <= 1.2),
                            f"{mmm(r, 2)}× ({mmm(vals(res, vid, 'wsbridge', 'median_us'))} µs "
                            f"vs {mmm(vals(res, vid, 'tungstenite', 'median_us'))} µs)"))
    L.append("## Issue-6 targets (wsbridge)")
    L.append("")
    L.append("| target | result | measured |")
    L.append("| --- | --- | --- |")
    for name, ok, txt in targets:
        verdict = "no data" if ok is None else ("**met**" if ok else "**missed**")
        L.append(f"| {name} | {verdict} | {txt} |")
    L.append("")
    if errors:
        L.append("## Failed runs")
        L.append("")
        for (vid, c), e in sorted(errors.items()):
            L.append(f"- {vid} / {c}: {e}")
        L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--wsb-client", required=True)
    ap.add_argument("--node", action="store_true", help="node + ws are installed")
    ap.add_argument("--python", default="", help="python with websockets 17")
    ap.add_argument("--lws-client", default="", help="lws_client binary (libwebsockets)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--only", default="", help="comma-separated variant ids (e.g. pingpong,bulk)")
    ap.add_argument("--clients", default="", help="comma-separated client names")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--command", default="")
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--t0", type=float, default=None, help="start time (epoch s) of run.sh")
    args = ap.parse_args()
    reps = args.reps or (1 if args.smoke else 5)
    os.makedirs(args.work, exist_ok=True)

    clients = [c for c in CLIENT_ORDER if not args.clients or c in args.clients.split(",")]
    skipped = []
    for c in list(clients):
        if client_cmd(c, args) is None:
            clients.remove(c)
            skipped.append(c)
    big = big_scale_n()
    corpus = os.path.join(args.work, "json-1k.txt")
    vlist = variants(args.smoke, big, corpus)
    if args.only:
        vlist = [v for v in vlist if v[0] in args.only.split(",")]
    compressed = any(v[2]["*"].get("compress") for v in vlist)
    if compressed:
        json_corpus(corpus)

    srv, ws_url, wss_url, ca = start_server(args)
    zsrv, z_url = start_deflate_server(args) if compressed else (None, None)
    res = {}     # (vid, client) -> {rep: json}
    errors = {}  # (vid, client) -> message
    timeout = 120 if args.smoke else 600
    t_start = time.monotonic()
    try:
        for vid, scn, params, title in vlist:
            print(f"\n== {title}", flush=True)
            # Handshakes are cheap and the most exposed to the VM's bimodal
            # wake-up latency: twice the repetitions.
            vreps = reps * 2 if scn == "handshake" else reps
            z = params["*"].get("compress")
            vclients = [c for c in clients if not z or c in COMPRESSING]
            for rep in range(vreps):
                order = vclients[rep % len(vclients):] + vclients[:rep % len(vclients)]
                for c in order:
                    if scn not in SUPPORTS.get(c, ALL) or (vid, c) in errors:
                        continue
                    p = dict(params.get(c, params["*"]))
                    url = z_url if z else wss_url if params.get("url") == "wss" else ws_url
                    kv = [f"url={url}", f"ca={ca}"] + [f"{k}={v}" for k, v in p.items()]
                    cmd = client_cmd(c, args) + [scn] + kv
                    out, err, dt = run_one(cmd, timeout)
                    if err:
                        errors[(vid, c)] = err
                        print(f"  rep {rep + 1} {c:18} FAILED {err}", flush=True)
                        print(f"    command: {shlex.join(cmd)}", flush=True)
                        continue
                    res.setdefault((vid, c), {})[rep] = out
                    short = {k: (round(v, 2) if isinstance(v, float) else v)
                             for k, v in out.items()}
                    print(f"  rep {rep + 1} {c:18} {dt:6.1f} s  {json.dumps(short)}",
                          flush=True)
                    if scn == "scale":
                        time.sleep(1)  # let the server's threads for them end
    finally:
        for p in (srv, zsrv):
            if p:
                p.kill()
                p.wait()

    elapsed = time.monotonic() - t_start
    meta = {}
    for m in args.meta:
        k, _, v = m.partition("=")
        meta[k] = v
    meta["command"] = f"`{args.command}`" if args.command else "—"
    meta["repetitions"] = f"{reps} ({reps * 2} for the handshakes)"
    meta["scenario time"] = f"{elapsed:.0f} s"
    if skipped:
        meta["clients skipped (not installed)"] = ", ".join(skipped)
    report = build_report(res, errors, vlist, clients, meta, args.smoke)
    with open(args.out, "w") as f:
        f.write(report + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"meta": meta,
                   "results": [{"variant": v, "client": c, "rep": r, **d}
                               for (v, c), reps_ in sorted(res.items())
                               for r, d in sorted(reps_.items())],
                   "errors": [{"variant": v, "client": c, "error": e}
                              for (v, c), e in sorted(errors.items())]}, f, indent=1)
    print("\n" + report)
    print(f"report: {args.out}")
    if args.t0:
        print(f"bench: total {time.time() - args.t0:.0f} s (builds included)")
    passed = sum(1 for k in res if k not in errors)
    failed = len(errors)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
