"""Interop test server on Python `websockets` (17.x), for tests/interop/interop.c.

    python server_websockets.py CERT.pem KEY.pem [MODE]

Listens on 127.0.0.1 only: a ws:// and a wss:// port (both chosen by the OS),
prints `ws://127.0.0.1:P` and `wss://127.0.0.1:Q` (one line each), then serves
until killed or MAX_LIFE seconds pass. MODE is the permessage-deflate setting:

| MODE | server |
|------|--------|
| `plain` (default) | `compression=None`: declines any offer |
| `deflate` | `compression="deflate"`, websockets' default (which answers an offer of `client_max_window_bits` with `=12`, and compresses with a 12-bit window) |
| `deflate-w10` | `compression=None, extensions=[ServerPerMessageDeflateFactory(server_max_window_bits=10)]` |

Same paths on both ports (query after `?`):

| path | behaviour |
|------|-----------|
| `/echo[?id=X]` | echo text/binary as the same type; its close frame and TCP close are recorded under X |
| `/watch?id=X` | text `frame CODE REASON` once the close frame of connection X has arrived, then text `tcp-closed` once its TCP connection has ended; `timeout` instead if one does not happen within 5 s; then close 1000 |
| `/close?code=N&reason=R[&id=X]` | server closes with N and R (no code: empty close frame); the client's reply and TCP close are recorded under X |
| `/refuse403` | HTTP 403 instead of the upgrade |
| `/subprotocol` | picks the first offered subprotocol among `wsb.v1`, `wsb.v2`; text `subprotocol:P`; then echo |
| `/headers` | one text message, a `name: value` line per request header (names lowercase); then echo |
| `/fragmented?parts=5[&binary=1]` | one message `fragment-0\|fragment-1\|...` in `parts` frames; then echo |
| `/big?size=N` | one binary message of N bytes, byte i = i % 251; then echo |
| `/ping?payload=P` | ping P; once the pong arrives, text `pong:P`; then echo |
"""

import asyncio
import http
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode

MAX_LIFE = 1800  # seconds
MAX_SIZE = 64 * 1024 * 1024
SUBPROTOCOLS = ["wsb.v1", "wsb.v2"]

WATCH_WAIT = 5  # seconds
# id -> {"frame": (code, reason), "tcp": True}: what /echo?id=X saw of its close.
records = {}
changed = None  # asyncio.Event, set (and replaced) whenever `records` changes


def parse(path):
    parts = urlsplit(path)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def process_request(connection, request):
    path, _ = parse(request.path)
    if path == "/refuse403":
        return connection.respond(http.HTTPStatus.FORBIDDEN, "Forbidden\n")
    return None


def select_subprotocol(connection, offered):
    path, _ = parse(connection.request.path)
    if path != "/subprotocol":
        return None
    for p in offered:
        if p in SUBPROTOCOLS:
            return p
    return None


def record(cid, key, value):
    global changed
    records.setdefault(cid, {})[key] = value
    changed.set()
    changed = asyncio.Event()


async def wait_record(cid, key, deadline):
    loop = asyncio.get_running_loop()
    while key not in records.get(cid, {}):
        left = deadline - loop.time()
        if left <= 0:
            return None
        try:
            await asyncio.wait_for(changed.wait(), left)
        except asyncio.TimeoutError:
            pass
    return records[cid][key]


class RecordingConnection(ServerConnection):
    """Records, for /echo?id=X, the client's close frame when it arrives
    and the end of the TCP connection (not only once both are over)."""

    def record_id(self):
        if self.request is None:
            return None
        path, q = parse(self.request.path)
        return q.get("id") if path in ("/echo", "/close") else None

    def process_event(self, event):
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
            cid = self.record_id()
            if cid is not None:
                close = Close.parse(bytes(event.data))
                record(cid, "frame", (int(close.code), close.reason))

    def connection_lost(self, exc):
        super().connection_lost(exc)
        cid = self.record_id()
        if cid is not None:
            record(cid, "tcp", True)


async def echo(ws):
    try:
        while True:
            msg = await ws.recv()
            await ws.send(msg)
    except ConnectionClosed:
        pass


async def handler(ws):
    path, q = parse(ws.request.path)
    if path == "/echo":
        await echo(ws)
    elif path == "/watch":
        cid = q.get("id", "")
        loop = asyncio.get_running_loop()
        frame = await wait_record(cid, "frame", loop.time() + WATCH_WAIT)
        if frame is None:
            await ws.send("timeout")
        else:
            await ws.send("frame %d %s" % frame)
            tcp = await wait_record(cid, "tcp", loop.time() + WATCH_WAIT)
            await ws.send("tcp-closed" if tcp else "timeout")
        await ws.close(1000)
    elif path == "/close":
        if "code" in q:
            await ws.close(int(q["code"]), q.get("reason", ""))
        else:
            await ws.close(None)  # empty close frame: the client sees 1005
    elif path == "/subprotocol":
        await ws.send("subprotocol:%s" % (ws.subprotocol or ""))
        await echo(ws)
    elif path == "/headers":
        await ws.send("".join("%s: %s\n" % (k.lower(), v) for k, v in ws.request.headers.raw_items()))
        await echo(ws)
    elif path == "/fragmented":
        parts = int(q.get("parts", "5"))
        frags = ["fragment-%d|" % i for i in range(parts)]
        if q.get("binary") == "1":
            await ws.send([f.encode() for f in frags])
        else:
            await ws.send(frags)
        await echo(ws)
    elif path == "/big":
        size = int(q.get("size", str(1 << 20)))
        await ws.send((bytes(range(251)) * (size // 251 + 1))[:size])
        await echo(ws)
    elif path == "/ping":
        payload = q.get("payload", "abc")
        pong = await ws.ping(payload.encode())
        await asyncio.wait_for(pong, 10)
        await ws.send("pong:" + payload)
        await echo(ws)
    else:
        await ws.close(4404, "no such path")


async def main():
    global changed
    changed = asyncio.Event()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "plain"
    if mode == "plain":
        deflate = dict(compression=None)
    elif mode == "deflate":
        deflate = dict(compression="deflate")
    elif mode == "deflate-w10":
        deflate = dict(
            compression=None,
            extensions=[ServerPerMessageDeflateFactory(server_max_window_bits=10)],
        )
    else:
        sys.exit("unknown mode %r (plain, deflate, deflate-w10)" % mode)
    common = dict(
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        max_size=MAX_SIZE,
        ping_interval=None,
        create_connection=RecordingConnection,
        **deflate,
    )
    async with serve(handler, "127.0.0.1", 0, **common) as plain, \
            serve(handler, "127.0.0.1", 0, ssl=ctx, **common) as tls:
        print("ws://127.0.0.1:%d" % plain.sockets[0].getsockname()[1], flush=True)
        print("wss://127.0.0.1:%d" % tls.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(MAX_LIFE)


if __name__ == "__main__":
    asyncio.run(main())
