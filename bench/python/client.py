"""Python `websockets` 17.x benchmark client (asyncio API). Prints one JSON line.

    python client.py SCENARIO key=value...   (same scenarios and keys as rs-client)

In "pipelined" the sender and the receiver are two asyncio tasks on one
thread (the GIL would serialise two threads anyway).

compress=1: permessage-deflate on (websockets' default offer; nct=1: no
context takeover either way); exits if the server does not take it.
corpus=FILE, text=1, warm=1: as in bench/c/wsb_client.c.
"""
import asyncio
import json
import resource
import ssl
import sys
import time

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

scn = sys.argv[1] if len(sys.argv) > 1 else ""
a = dict(kv.split("=", 1) for kv in sys.argv[2:] if "=" in kv)
url = a.get("url", "")


def num(k, d):
    return type(d)(a[k]) if k in a else d


def now_us():
    return time.perf_counter_ns() / 1e3


def ssl_ctx():
    if url.startswith("wss://"):
        return ssl.create_default_context(cafile=a.get("ca"))
    return None


compress = a.get("compress") == "1"


def extensions():
    if compress and a.get("nct") == "1":
        # As compression="deflate" offers, plus no context takeover.
        return [ClientPerMessageDeflateFactory(
            client_no_context_takeover=True, server_no_context_takeover=True,
            client_max_window_bits=True, compress_settings={"memLevel": 5})]
    return None


def open_ws():
    return connect(url, ssl=ssl_ctx(), max_size=None, open_timeout=30,
                   compression="deflate" if compress and not extensions() else None,
                   extensions=extensions())


async def open_checked():
    ws = await open_ws()
    if compress and not ws.protocol.extensions:
        sys.exit("compress=1 but the server did not take permessage-deflate")
    return ws


lines = None
corpus = None


def load_corpus():
    global lines, corpus
    if "corpus" in a and corpus is None:
        with open(a["corpus"], "rb") as f:
            corpus = f.read()
        lines = corpus.decode("ascii").split("\n")[:-1]


def lat_json(v):
    v.sort()
    p = lambda q: v[round((len(v) - 1) * q)]
    return {"n": len(v), "median_us": p(0.5), "p99_us": p(0.99), "min_us": v[0]}


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_us():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1e6


async def pingpong():
    n, w, p = num("n", 20000), num("warmup", 1000), "x" * num("size", 64)
    lat = []
    async with open_ws() as ws:
        for i in range(n + w):
            t = now_us()
            await ws.send(p)
            await ws.recv()
            if i >= w:
                lat.append(now_us() - t)
    return lat_json(lat)


async def pipelined():
    n, p = num("n", 1000000), "x" * num("size", 64)
    load_corpus()
    async with await open_checked() as ws:
        t0 = time.perf_counter()

        async def sender():
            for i in range(n):
                await ws.send(lines[i % len(lines)] if lines else p)

        async def receiver():
            for i in range(n):
                m = await ws.recv()
                if lines and len(m) != len(lines[i % len(lines)]):
                    sys.exit(f"echo {i} has {len(m)} bytes")

        await asyncio.gather(sender(), receiver())
        secs = time.perf_counter() - t0
    return {"n": n, "secs": secs, "msgs_per_s": n / secs}


async def bulk():
    size, reps = num("size", 16 << 20), num("reps", 3)
    load_corpus()
    data = (corpus * (size // len(corpus) + 1))[:size] if corpus else bytes([7]) * size
    # Text goes as a str (what a JSON application sends); binary as bytes.
    payload = data.decode("ascii") if a.get("text") == "1" else data
    t = []
    async with await open_checked() as ws:
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            await ws.send(payload)
            m = await ws.recv()
            t.append(time.perf_counter() - t0)
            assert m == payload, f"bad echo ({len(m)} bytes)"
    r = sorted(t[1:])
    med = r[round((len(r) - 1) / 2)]
    return {"size": size, "reps": reps, "median_ms": med * 1e3, "mib_per_s": size / 1048576 / med}


async def scale():
    n, idle = num("n", 1000), num("idle", 5.0)
    r0 = rss_kib()
    t0 = time.perf_counter()
    socks = await asyncio.gather(*(open_checked() for _ in range(n)))
    open_s = time.perf_counter() - t0
    if a.get("warm") == "1":
        # One message each way on every socket: compression state in place.
        load_corpus()

        async def warm(i, s):
            await s.send(lines[i % len(lines)] if lines else "warm")
            await s.recv()
        await asyncio.gather(*(warm(i, s) for i, s in enumerate(socks)))
    r1 = rss_kib()
    c0 = cpu_us()
    await asyncio.sleep(idle)
    c1 = cpu_us()
    for s in socks:
        s.transport.abort()
    return {"n": n, "open_s": open_s, "rss_before_kib": r0, "rss_after_kib": r1,
            "rss_per_socket_kib": (r1 - r0) / n, "idle_s": idle, "idle_cpu_ms": (c1 - c0) / 1e3}


async def handshake():
    n = num("n", 200)
    lat = []
    for _ in range(n + 5):
        t0 = now_us()
        ws = await open_ws()
        lat.append(now_us() - t0)
        await ws.close()
    return lat_json(lat[5:])


fns = {"pingpong": pingpong, "pipelined": pipelined, "bulk": bulk, "scale": scale,
       "handshake": handshake}
if scn not in fns or not url:
    print("usage: client.py pingpong|pipelined|bulk|scale|handshake url=... key=value...",
          file=sys.stderr)
    sys.exit(2)
print(json.dumps(asyncio.run(fns[scn]())))
