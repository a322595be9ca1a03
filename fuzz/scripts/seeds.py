#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the frames and oracle targets (their
input formats are described at the top of fuzz_targets/frames.rs and
fuzz_targets/oracle.rs). Run from fuzz/: python3 scripts/seeds.py"""
import os
import struct
import zlib


def frame(op, payload, fin=True, rsv1=False):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    n = len(payload)
    if n < 126:
        head = bytes([b0, n])
    elif n < 65536:
        head = bytes([b0, 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 127]) + struct.pack(">Q", n)
    return head + payload


def deflated(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# (name, server bytes, limit index, deflate)
STREAMS = [
    ("text", frame(1, b"hello"), 1, False),
    ("badutf8", frame(1, b"\xc3\x28"), 1, False),
    ("big", b"\x82\x7f" + struct.pack(">Q", 1 << 28) + b"abc", 0, False),
    ("topbit", b"\x82\x7f\x80" + bytes(7) + frame(8, b"\x03\xe8"), 0, False),
    ("binary_frag", frame(2, b"abc", fin=False) + frame(0, b"de"), 1, False),
    ("close_badcode", frame(8, b"\x03\xed"), 1, False),
    ("close_1014", frame(8, b"\x03\xf6x"), 1, False),
    ("ping_close", frame(9, b"hi") + frame(8, b"\x03\xe8bye"), 1, False),
    ("rsv", frame(1, b"a", rsv1=True), 1, False),
    ("utf8", frame(1, b"\xe2", fin=False) + frame(9, b"") + frame(0, b"\x82\xac"), 1, False),
    ("utf8_bad_frag", frame(1, b"a\xff", fin=False) + frame(9, b"p") + frame(0, b"b"), 1, False),
    ("oversize", frame(2, bytes(32)) + frame(1, b"ok"), 3, False),
    ("oversize_frag", frame(2, bytes(10), fin=False) + frame(0, bytes(10)), 3, False),
    ("control_long", frame(10, bytes(126)), 1, False),
    ("masked", b"\x81\x82abcd\x00\x00", 1, False),
    ("mixed", frame(1, b"x" * 300) + frame(10, b"pong") + frame(2, b"\x00" * 300)
        + frame(8, b""), 7, False),
    ("deflate", frame(1, deflated(b"hello hello hello hello"), rsv1=True), 1, True),
    ("deflate_frag", (lambda d: frame(2, d[:5], fin=False, rsv1=True) + frame(9, b"")
        + frame(0, d[5:]))(deflated(b"abcdefgh" * 200)), 6, True),
    ("deflate_bomb", frame(2, deflated(bytes(1 << 20)), rsv1=True), 1, True),
]


def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)


for name, data, limit, deflate in STREAMS:
    # frames: [config][n][chunk sizes][data]; one chunk byte, 5 -> 7 bytes.
    config = limit | (8 if deflate else 0)
    write("frames", name, bytes([config, 0, 5]) + data)
    if not deflate:
        # oracle: the same format; its limit index 0 is 64 KiB too.
        write("oracle", name, bytes([limit, 0, 5]) + data)

# handshake: [config][n][chunk sizes][response]; see fuzz_targets/handshake.rs.
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # for RFC 6455's example key


def response(*extra):
    lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket",
             b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + ACCEPT, *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


HANDSHAKES = [
    ("101", 0, 5, response() + b"\x81\x02hi"),
    ("101_bytewise", 0, 0, response()),
    ("101_deflate", 1, 5, response(b"Sec-WebSocket-Extensions: permessage-deflate; "
                                    b"client_max_window_bits=10; server_no_context_takeover")),
    ("101_deflate_params", 1 | 4, 5, response(b"Sec-WebSocket-Extensions: permessage-deflate; "
                                              b"client_max_window_bits=9; server_max_window_bits=12; "
                                              b"server_no_context_takeover; client_no_context_takeover")),
    ("101_protocol", 8, 5, response(b"Sec-WebSocket-Protocol: chat")),
    ("101_padded", 0, 255, response(), 29 << 3),
    ("101_at_limit", 0, 255, response(), 30 << 3),
    ("101_over_limit", 0, 255, response(), 31 << 3),
    ("403", 0, 5, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n"),
    ("garbage", 0, 1, b"garbage\r\n\r\n"),
]
for name, config, chunk, data, *n in HANDSHAKES:
    write("handshake", name, bytes([config, n[0] if n else 0, chunk]) + data)
