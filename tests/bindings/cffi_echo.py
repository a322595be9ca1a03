"""wsbridge from Python through cffi in ABI mode: no compiler, only the
header (preprocessed with `gcc -E -P`, see .ci/ecosystem.sh) and the library.

  python cffi_echo.py --lib libwsbridge.so.1 --cdef wsbridge.cdef --url ws://127.0.0.1:PORT/echo
      [--ca CA.pem] [--proxy http://...] [--native-roots]
      [--expect-error WSB_ERR_CONNECT --expect-detail 'HTTP 403']

Without --expect-error: connect, echo a text and a binary message, close
with 4000 "cffi bye" and check the CLOSE event (code echoed, clean); a
wsb_set_notify callback (a cffi callback) must have been called from the
socket's I/O thread, never this one.
With it: check wsb_wait_open fails with that code and a detail containing
the given text, then the ERROR and CLOSE 1006 events. Exit status 0 on success.
"""
import argparse
import sys
import threading

import cffi

WAIT_MS = 10000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--cdef", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--proxy")
    ap.add_argument("--native-roots", action="store_true")
    ap.add_argument("--expect-error")
    ap.add_argument("--expect-detail", default="")
    a = ap.parse_args()

    ffi = cffi.FFI()
    with open(a.cdef) as f:
        ffi.cdef(f.read())
    lib = ffi.dlopen(a.lib)

    def name(r):
        return ffi.string(lib.wsb_result_name(r)).decode()

    def last_error():
        return ffi.string(lib.wsb_last_error()).decode()

    def check(r, what):
        if r != lib.WSB_OK:
            sys.exit(f"{what}: {name(r)}: {last_error()}")

    print(f"wsbridge {ffi.string(lib.wsb_version()).decode()} (ABI {lib.wsb_abi_version()}) via cffi")
    opts = lib.wsb_options_new()
    if a.ca:
        with open(a.ca, "rb") as f:
            pem = f.read()
        check(lib.wsb_options_add_root_certificates(opts, pem, len(pem)), "add_root_certificates")
    if a.proxy:
        check(lib.wsb_options_set_proxy(opts, a.proxy.encode()), "set_proxy")
    if a.native_roots:
        check(lib.wsb_options_set_native_roots(opts, True), "set_native_roots")
    handle = ffi.new("wsb_socket *")
    r = lib.wsb_connect(a.url.encode(), opts, handle)
    lib.wsb_options_free(opts)
    check(r, "connect")
    ws = handle[0]

    # A notify callback: cffi lets C call it from the socket's I/O thread
    # (taking the GIL). It only records the wake-up; events are taken below,
    # on this thread. Kept referenced until wsb_free returns.
    main_thread = threading.get_ident()
    wakeups = []

    @ffi.callback("void(void *, wsb_socket)")
    def on_notify(_user_data, sock):
        wakeups.append((threading.get_ident(), sock))

    check(lib.wsb_set_notify(ws, on_notify, ffi.NULL), "set_notify")
    ev = ffi.new("wsb_event *")

    def next_event():
        r = lib.wsb_wait_event(ws, ev, WAIT_MS)
        check(r, "wait_event")
        return ev.kind, ffi.buffer(ev.data, ev.len)[:]

    r = lib.wsb_wait_open(ws, WAIT_MS)
    if a.expect_error:
        detail = last_error()
        print(f"open: {name(r)}: {detail}")
        if name(r) != a.expect_error or a.expect_detail not in detail:
            sys.exit(f"expected {a.expect_error} with {a.expect_detail!r}")
        kind, data = next_event()
        if kind != lib.WSB_EVENT_ERROR or name(ev.error) != a.expect_error:
            sys.exit(f"expected an ERROR event, got kind {kind}")
        kind, _ = next_event()
        if kind != lib.WSB_EVENT_CLOSE or ev.close_code != 1006 or ev.clean:
            sys.exit("expected CLOSE 1006 after the ERROR event")
        check(lib.wsb_free(ws), "free")
        lib.wsb_shutdown(1000)
        print("ok: failed as expected")
        return
    check(r, "wait_open")
    kind, _ = next_event()
    assert kind == lib.WSB_EVENT_OPEN, kind

    text = "hello from cffi".encode()
    binary = bytes([0, 1, 0xFE, 0xFF, 0])
    check(lib.wsb_send_text(ws, text, len(text)), "send_text")
    check(lib.wsb_send_binary(ws, binary, len(binary)), "send_binary")
    kind, data = next_event()
    if kind != lib.WSB_EVENT_TEXT or data != text:
        sys.exit(f"bad text echo: kind {kind} {data!r}")
    print(f"text: {data.decode()}")
    kind, data = next_event()
    if kind != lib.WSB_EVENT_BINARY or data != binary:
        sys.exit(f"bad binary echo: kind {kind} {data!r}")
    print(f"binary: {len(data)} bytes")
    check(lib.wsb_close(ws, 4000, b"cffi bye"), "close")
    kind, data = next_event()
    if kind != lib.WSB_EVENT_CLOSE:
        sys.exit(f"expected CLOSE, got kind {kind}")
    print(f"close: code {ev.close_code}, clean {bool(ev.clean)}, reason {data.decode()!r}")
    if ev.close_code != 4000 or not ev.clean or data != b"cffi bye":
        sys.exit("the close was not echoed cleanly")
    # After CLOSE: EMPTY forever.
    if lib.wsb_poll(ws, ev) != lib.WSB_EMPTY:
        sys.exit("wsb_poll after CLOSE is not WSB_EMPTY")
    check(lib.wsb_free(ws), "free")
    if lib.wsb_free(ws) != lib.WSB_ERR_INVALID_HANDLE:
        sys.exit("a freed handle is not WSB_ERR_INVALID_HANDLE")
    lib.wsb_shutdown(1000)
    threads = {t for t, _ in wakeups}
    print(f"notify: {len(wakeups)} wake-ups, from {'another thread' if main_thread not in threads else 'this thread'}")
    if not wakeups or main_thread in threads or any(s != ws for _, s in wakeups):
        sys.exit("expected wake-ups for this socket, all from its I/O thread")
    print("ok: echo and close")


if __name__ == "__main__":
    main()
