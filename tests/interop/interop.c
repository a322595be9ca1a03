/*
 * interop.c: wsbridge against third-party WebSocket servers, through the C API only.
 *
 *   interop CA.pem [--deflate] NAME WS_BASE WSS_BASE [[--deflate] NAME WS_BASE WSS_BASE ...]
 *
 * e.g. interop ca.pem websockets ws://127.0.0.1:5001 wss://127.0.0.1:5002 \
 *          --deflate websockets-deflate ws://127.0.0.1:5003 wss://127.0.0.1:5004
 *
 * Each server implements the paths of tests/interop/server_websockets.py
 * (/echo, /close, /refuse403, /subprotocol, /headers, /fragmented, /big,
 * /ping, /watch). CA.pem is trusted with wsb_options_add_root_certificates
 * for the wss:// runs. Every check runs against every server, on ws:// and on
 * wss://, and prints one line (PASS/FAIL, server, scheme, check, detail).
 * Ends with "N passed, N failed"; exit status 0 only if none failed.
 * Every wait is bounded.
 *
 * A server without --deflate declines permessage-deflate: the checks run
 * without compression, plus one that offers it and sees it declined. A
 * server after --deflate accepts it: every check runs with compression
 * offered (wsb_options_set_compression) and first asserts that it was
 * negotiated (wsb_get_compression), and the permessage-deflate checks
 * (run_deflate) follow: text and binary messages of 0 bytes to 4 MiB echoed
 * both ways, a pipelined run of JSON messages (context takeover across
 * messages), 4 MiB from the server, an offer with parameters.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsbridge.h"

#define WAIT_MS 10000u     /* one event, small messages */
#define BIG_WAIT_MS 60000u /* one event, 16 MiB messages */
#define BIG_SIZE (16u * 1024u * 1024u)
#define DEFLATE_MAX (4u * 1024u * 1024u) /* largest permessage-deflate message */

static const char *g_server; /* current server name */
static const char *g_scheme; /* "ws" / "wss" */
static const char *g_base;   /* current base URL */
static char *g_ca;           /* CA PEM */
static size_t g_ca_len;
static int g_passed, g_failed;
static unsigned g_ids;
static int g_compress; /* offer permessage-deflate and require it (a --deflate server) */

/* ------------------------------------------------------------------ helpers */

static char g_why[512]; /* why the current check failed */

/* Records why the current check failed (the first reason is kept); returns 0. */
static int fail(const char *fmt, ...) {
    va_list ap;
    if (g_why[0]) return 0;
    va_start(ap, fmt);
    vsnprintf(g_why, sizeof g_why, fmt, ap);
    va_end(ap);
    return 0;
}

static void report(const char *check, int ok) {
    if (ok) {
        g_passed++;
        printf("PASS %-22s %-4s %s\n", g_server, g_scheme, check);
    } else {
        g_failed++;
        printf("FAIL %-22s %-4s %s: %s\n", g_server, g_scheme, check, g_why);
    }
    fflush(stdout);
    g_why[0] = 0;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = 0;
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static const char *kind_name(wsb_event_kind k) {
    switch (k) {
    case WSB_EVENT_OPEN: return "OPEN";
    case WSB_EVENT_TEXT: return "TEXT";
    case WSB_EVENT_BINARY: return "BINARY";
    case WSB_EVENT_ERROR: return "ERROR";
    case WSB_EVENT_CLOSE: return "CLOSE";
    }
    return "?";
}

/* Options with the CA and the given subprotocols (NULL-terminated) / headers
 * (name, value, ..., NULL). */
static wsb_options *make_options(const char *const *protocols, const char *const *headers) {
    wsb_options *o = wsb_options_new();
    if (!o) return NULL;
    if (wsb_options_add_root_certificates(o, g_ca, g_ca_len) != WSB_OK ||
        wsb_options_set_connect_timeout(o, 10000) != WSB_OK) {
        fprintf(stderr, "options: %s\n", wsb_last_error());
        wsb_options_free(o);
        return NULL;
    }
    if (g_compress && wsb_options_set_compression(o, true) != WSB_OK) {
        fprintf(stderr, "compression: %s\n", wsb_last_error());
        wsb_options_free(o);
        return NULL;
    }
    for (; protocols && *protocols; protocols++) {
        if (wsb_options_add_subprotocol(o, *protocols) != WSB_OK) {
            fprintf(stderr, "subprotocol %s: %s\n", *protocols, wsb_last_error());
            wsb_options_free(o);
            return NULL;
        }
    }
    for (; headers && headers[0] && headers[1]; headers += 2) {
        if (wsb_options_add_header(o, headers[0], headers[1]) != WSB_OK) {
            fprintf(stderr, "header %s: %s\n", headers[0], wsb_last_error());
            wsb_options_free(o);
            return NULL;
        }
    }
    return o;
}

/* Whether permessage-deflate was negotiated on ws must be `want`. */
static int expect_compression(wsb_socket ws, int want) {
    bool on = !want;
    wsb_result r = wsb_get_compression(ws, &on);
    if (r != WSB_OK) return fail("wsb_get_compression: %s", wsb_result_name(r));
    if (on != (want != 0))
        return fail("compression %s, expected %s", on ? "negotiated" : "not negotiated",
                    want ? "negotiated" : "not negotiated");
    return 1;
}

/* Connects to g_base + path with options o (freed here), waits for open and
 * takes the OPEN event; with g_compress, compression must have been
 * negotiated. Returns the socket (0 on failure, g_why set). protocol_out (if
 * not NULL, 64 bytes) receives the OPEN event's data. */
static wsb_socket open_with(const char *path, wsb_options *o, char *protocol_out) {
    char url[512];
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;

    if (!o) {
        fail("cannot build options");
        return 0;
    }
    snprintf(url, sizeof url, "%s%s", g_base, path);
    r = wsb_connect(url, o, &ws);
    wsb_options_free(o);
    if (r != WSB_OK) {
        fail("wsb_connect(%s): %s: %s", url, wsb_result_name(r), wsb_last_error());
        return 0;
    }
    r = wsb_wait_open(ws, 15000);
    if (r != WSB_OK) {
        fail("wsb_wait_open(%s): %s: %s", url, wsb_result_name(r), wsb_last_error());
        wsb_free(ws);
        return 0;
    }
    r = wsb_wait_event(ws, &ev, WAIT_MS);
    if (r != WSB_OK || ev.kind != WSB_EVENT_OPEN) {
        fail("first event: %s / %s", wsb_result_name(r), r == WSB_OK ? kind_name(ev.kind) : "-");
        wsb_free(ws);
        return 0;
    }
    if (g_compress && !expect_compression(ws, 1)) {
        wsb_free(ws);
        return 0;
    }
    if (protocol_out) snprintf(protocol_out, 64, "%s", ev.data);
    return ws;
}

/* open_with, with the options for the run (CA, compression per g_compress)
 * plus the given subprotocols and headers. */
static wsb_socket open_path(const char *path, const char *const *protocols,
                            const char *const *headers, char *protocol_out) {
    return open_with(path, make_options(protocols, headers), protocol_out);
}

/* Waits for the next event; it must be of kind `kind`. */
static int expect_event(wsb_socket ws, wsb_event *ev, wsb_event_kind kind, uint32_t timeout_ms) {
    wsb_result r = wsb_wait_event(ws, ev, timeout_ms);
    if (r != WSB_OK) return fail("waiting for %s: %s", kind_name(kind), wsb_result_name(r));
    if (ev->kind != kind) {
        if (ev->kind == WSB_EVENT_ERROR)
            return fail("expected %s, got ERROR %s: %s", kind_name(kind), wsb_result_name(ev->error),
                        ev->data);
        if (ev->kind == WSB_EVENT_CLOSE)
            return fail("expected %s, got CLOSE %u \"%s\"", kind_name(kind), ev->close_code, ev->data);
        return fail("expected %s, got %s (%zu bytes)", kind_name(kind), kind_name(ev->kind), ev->len);
    }
    return 1;
}

static int expect_text(wsb_socket ws, const char *want) {
    wsb_event ev;
    if (!expect_event(ws, &ev, WSB_EVENT_TEXT, WAIT_MS)) return 0;
    if (ev.len != strlen(want) || memcmp(ev.data, want, ev.len) != 0)
        return fail("text \"%.80s\" (%zu bytes), expected \"%.80s\"", ev.data, ev.len, want);
    return 1;
}

/* Closes with 1000 and waits (bounded) for the CLOSE event; frees the socket.
 * Returns 1 if the close was clean. */
static int close_and_free(wsb_socket ws) {
    wsb_event ev;
    int ok = 0, n = 0;
    if (!ws) return 0;
    wsb_close(ws, 1000, "done");
    while (n++ < 100 && wsb_wait_event(ws, &ev, WAIT_MS) == WSB_OK) {
        if (ev.kind == WSB_EVENT_CLOSE) {
            ok = ev.clean && ev.close_code == 1000;
            if (!ok) fail("close: code %u clean %d", ev.close_code, ev.clean);
            break;
        }
    }
    if (!ok && !g_why[0]) fail("no CLOSE event after wsb_close");
    wsb_free(ws);
    return ok;
}

/* Fills buf with byte i = i % 251. */
static void fill_pattern(unsigned char *buf, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) buf[i] = (unsigned char)(i % 251);
}

/* ------------------------------------------------------------------ checks */

static int check_text_echo(void) {
    static const char msg[] = "h\xc3\xa9llo \xe2\x9c\x93 interop";
    wsb_socket ws = open_path("/echo", NULL, NULL, NULL);
    int ok;
    if (!ws) return 0;
    ok = wsb_send_text(ws, msg, strlen(msg)) == WSB_OK || fail("send: %s", wsb_last_error());
    ok = ok && expect_text(ws, msg);
    ok = ok && wsb_send_text(ws, "", 0) == WSB_OK && expect_text(ws, "");
    return close_and_free(ws) && ok;
}

static int check_binary_echo(void) {
    static const unsigned char msg[] = {0x00, 0x01, 0x80, 0xfe, 0xff, 0x00, 'x'};
    wsb_socket ws = open_path("/echo", NULL, NULL, NULL);
    wsb_event ev;
    int ok;
    if (!ws) return 0;
    ok = wsb_send_binary(ws, msg, sizeof msg) == WSB_OK || fail("send: %s", wsb_last_error());
    ok = ok && expect_event(ws, &ev, WSB_EVENT_BINARY, WAIT_MS);
    ok = ok && ((ev.len == sizeof msg && memcmp(ev.data, msg, sizeof msg) == 0) ||
                fail("binary echo differs (%zu bytes)", ev.len));
    return close_and_free(ws) && ok;
}

/* 16 MiB client -> server -> client, as binary and as text. */
static int check_big_echo(int text) {
    unsigned char *buf = malloc(BIG_SIZE);
    wsb_socket ws;
    wsb_event ev;
    wsb_result r;
    int ok;
    if (!buf) return fail("out of memory");
    if (text) {
        size_t i;
        for (i = 0; i < BIG_SIZE; i++) buf[i] = (unsigned char)('a' + i % 26);
    } else {
        fill_pattern(buf, BIG_SIZE);
    }
    ws = open_path("/echo", NULL, NULL, NULL);
    if (!ws) {
        free(buf);
        return 0;
    }
    r = text ? wsb_send_text(ws, (const char *)buf, BIG_SIZE) : wsb_send_binary(ws, buf, BIG_SIZE);
    ok = r == WSB_OK || fail("send: %s: %s", wsb_result_name(r), wsb_last_error());
    ok = ok && expect_event(ws, &ev, text ? WSB_EVENT_TEXT : WSB_EVENT_BINARY, BIG_WAIT_MS);
    ok = ok && ((ev.len == BIG_SIZE && memcmp(ev.data, buf, BIG_SIZE) == 0) ||
                fail("echo differs (%zu bytes back)", ev.len));
    free(buf);
    return close_and_free(ws) && ok;
}

/* 16 MiB server -> client. */
static int check_big_from_server(void) {
    char path[64];
    unsigned char *want = malloc(BIG_SIZE);
    wsb_socket ws;
    wsb_event ev;
    int ok;
    if (!want) return fail("out of memory");
    fill_pattern(want, BIG_SIZE);
    snprintf(path, sizeof path, "/big?size=%u", BIG_SIZE);
    ws = open_path(path, NULL, NULL, NULL);
    if (!ws) {
        free(want);
        return 0;
    }
    ok = expect_event(ws, &ev, WSB_EVENT_BINARY, BIG_WAIT_MS);
    ok = ok && ((ev.len == BIG_SIZE && memcmp(ev.data, want, BIG_SIZE) == 0) ||
                fail("message differs (%zu bytes)", ev.len));
    free(want);
    return close_and_free(ws) && ok;
}

static int check_fragmented(int binary) {
    const char *want = "fragment-0|fragment-1|fragment-2|fragment-3|fragment-4|";
    wsb_socket ws = open_path(binary ? "/fragmented?parts=5&binary=1" : "/fragmented?parts=5", NULL,
                              NULL, NULL);
    wsb_event ev;
    int ok;
    if (!ws) return 0;
    ok = expect_event(ws, &ev, binary ? WSB_EVENT_BINARY : WSB_EVENT_TEXT, WAIT_MS);
    ok = ok && ((ev.len == strlen(want) && memcmp(ev.data, want, ev.len) == 0) ||
                fail("got \"%.80s\" (%zu bytes), expected \"%s\"", ev.data, ev.len, want));
    /* the connection still works afterwards */
    ok = ok && wsb_send_text(ws, "after", 5) == WSB_OK && expect_text(ws, "after");
    return close_and_free(ws) && ok;
}

/* The server pings; the library answers (the server then sends pong:P) and
 * the ping surfaces as no event: the next event after OPEN is that text. */
static int check_server_ping(void) {
    wsb_socket ws = open_path("/ping?payload=wsb-ping-42", NULL, NULL, NULL);
    int ok;
    if (!ws) return 0;
    ok = expect_text(ws, "pong:wsb-ping-42");
    ok = ok && wsb_send_text(ws, "still open", 10) == WSB_OK && expect_text(ws, "still open");
    return close_and_free(ws) && ok;
}

static int check_subprotocol(void) {
    static const char *const offered[] = {"bogus.proto", "wsb.v2", NULL};
    char chosen[64] = "";
    wsb_socket ws = open_path("/subprotocol", offered, NULL, chosen);
    int ok;
    if (!ws) return 0;
    ok = strcmp(chosen, "wsb.v2") == 0 || fail("OPEN data \"%s\", expected \"wsb.v2\"", chosen);
    ok = ok && expect_text(ws, "subprotocol:wsb.v2");
    return close_and_free(ws) && ok;
}

static int check_no_subprotocol(void) {
    char chosen[64] = "?";
    wsb_socket ws = open_path("/echo", NULL, NULL, chosen);
    int ok;
    if (!ws) return 0;
    ok = chosen[0] == 0 || fail("OPEN data \"%s\", expected \"\"", chosen);
    return close_and_free(ws) && ok;
}

static int check_headers(void) {
    static const char *const headers[] = {"X-Wsb-Test", "hello-123", "X-Wsb-Other",
                                          "a b, c=d", NULL};
    wsb_socket ws = open_path("/headers", NULL, headers, NULL);
    wsb_event ev;
    int ok;
    if (!ws) return 0;
    ok = expect_event(ws, &ev, WSB_EVENT_TEXT, WAIT_MS);
    ok = ok && (strstr(ev.data, "x-wsb-test: hello-123\n") != NULL ||
                fail("x-wsb-test not seen by the server: \"%.200s\"", ev.data));
    ok = ok && (strstr(ev.data, "x-wsb-other: a b, c=d\n") != NULL ||
                fail("x-wsb-other not seen by the server: \"%.200s\"", ev.data));
    return close_and_free(ws) && ok;
}

/* We close with code + reason. A watcher connection, opened first, reports
 * what the server saw of it: "frame CODE REASON" when our close frame
 * arrived, then "tcp-closed" once our TCP connection ended. Nothing is
 * connected after the close, so no other activity can end the connection for
 * us. Two checks: the close frame as seen by the server, and the TCP close
 * that must follow the closing handshake (RFC 6455 7.1.1: the client closes
 * its side once the server has closed the TCP connection). */
static void check_client_close(void) {
    static const char reason[] = "client bye \xe2\x9c\x93";
    char path[96], want[96];
    unsigned id = ++g_ids;
    wsb_socket mon, ws;
    wsb_event ev;
    int ok = 0, closed = 0, n = 0;

    snprintf(path, sizeof path, "/watch?id=%ld-%s-%u", (long)getpid(), g_scheme, id);
    mon = open_path(path, NULL, NULL, NULL);
    if (!mon) {
        report("client close 4002 + reason seen by server", 0);
        return;
    }
    snprintf(path, sizeof path, "/echo?id=%ld-%s-%u", (long)getpid(), g_scheme, id);
    ws = open_path(path, NULL, NULL, NULL);
    if (ws && wsb_close(ws, 4002, reason) != WSB_OK) fail("wsb_close: %s", wsb_last_error());
    while (ws && !g_why[0] && n++ < 100 && wsb_wait_event(ws, &ev, WAIT_MS) == WSB_OK) {
        if (ev.kind == WSB_EVENT_CLOSE) {
            closed = 1;
            ok = (ev.close_code == 4002 && ev.clean) ||
                 fail("CLOSE code %u clean %d, expected 4002 clean", ev.close_code, ev.clean);
            break;
        }
        if (ev.kind == WSB_EVENT_ERROR) {
            fail("ERROR %s: %s", wsb_result_name(ev.error), ev.data);
            break;
        }
    }
    if (ws && !closed) fail("no CLOSE event");
    if (ws) wsb_free(ws);
    snprintf(want, sizeof want, "frame 4002 %s", reason);
    ok = ok && expect_text(mon, want);
    report("client close 4002 + reason seen by server", ok);
    if (ok) {
        ok = expect_text(mon, "tcp-closed");
        if (!ok) {
            g_why[0] = 0;
            fail("the server saw no TCP close from us within 5 s of the closing handshake "
                 "(wsb_free already called)");
        }
        report("client closes TCP after the close handshake", ok);
    }
    close_and_free(mon);
    g_why[0] = 0;
}

/* The server closes with code + reason (or an empty close frame -> 1005).
 * With watch = 1, a watcher connection opened first reports what the server
 * saw: our reply close frame, then the end of our TCP connection (a second
 * check). */
static void check_server_close(const char *name, const char *path, unsigned code,
                               const char *reason, int watch) {
    char full[256], mpath[96], tname[128];
    unsigned id = ++g_ids;
    wsb_socket mon = 0, ws;
    wsb_event ev;
    wsb_state st = WSB_STATE_OPEN;
    int ok;

    if (watch) {
        snprintf(mpath, sizeof mpath, "/watch?id=%ld-%s-%u", (long)getpid(), g_scheme, id);
        mon = open_path(mpath, NULL, NULL, NULL);
        if (!mon) {
            report(name, 0);
            return;
        }
        snprintf(full, sizeof full, "%s&id=%ld-%s-%u", path, (long)getpid(), g_scheme, id);
    } else {
        snprintf(full, sizeof full, "%s", path);
    }
    ws = open_path(full, NULL, NULL, NULL);
    ok = ws != 0;
    ok = ok && expect_event(ws, &ev, WSB_EVENT_CLOSE, WAIT_MS);
    ok = ok && ((ev.close_code == code && ev.clean && strcmp(ev.data, reason) == 0) ||
                fail("CLOSE %u clean %d reason \"%s\", expected %u clean \"%s\"", ev.close_code,
                     ev.clean, ev.data, code, reason));
    ok = ok && ((wsb_get_state(ws, &st) == WSB_OK && st == WSB_STATE_CLOSED) ||
                fail("state %d after CLOSE", (int)st));
    ok = ok && (wsb_poll(ws, &ev) == WSB_EMPTY || fail("an event after CLOSE"));
    if (ws) wsb_free(ws);
    report(name, ok);
    if (!mon) return;
    snprintf(tname, sizeof tname, "client closes TCP after server-initiated close");
    if (ok) {
        ok = expect_event(mon, &ev, WSB_EVENT_TEXT, WAIT_MS);
        ok = ok && (strncmp(ev.data, "frame ", 6) == 0 ||
                    fail("the server saw no close frame from us: \"%s\"", ev.data));
        if (ok) {
            ok = expect_text(mon, "tcp-closed");
            if (!ok) {
                g_why[0] = 0;
                fail("the server saw no TCP close from us within 5 s of the closing handshake "
                     "(wsb_free already called)");
            }
        }
        report(tname, ok);
    }
    close_and_free(mon);
    g_why[0] = 0;
}

static int check_refused(void) {
    char url[512];
    wsb_options *o = make_options(NULL, NULL);
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    int ok;
    if (!o) return fail("cannot build options");
    snprintf(url, sizeof url, "%s/refuse403", g_base);
    r = wsb_connect(url, o, &ws);
    wsb_options_free(o);
    if (r != WSB_OK) return fail("wsb_connect: %s", wsb_result_name(r));
    r = wsb_wait_open(ws, 15000);
    ok = (r == WSB_ERR_HANDSHAKE && strstr(wsb_last_error(), "HTTP 403 from server") != NULL) ||
         fail("wsb_wait_open: %s \"%s\", expected WSB_ERR_HANDSHAKE \"HTTP 403 from server\"",
              wsb_result_name(r), wsb_last_error());
    ok = ok && expect_event(ws, &ev, WSB_EVENT_ERROR, WAIT_MS);
    ok = ok && ((ev.error == WSB_ERR_HANDSHAKE && strstr(ev.data, "HTTP 403 from server")) ||
                fail("ERROR event %s \"%s\"", wsb_result_name(ev.error), ev.data));
    ok = ok && expect_event(ws, &ev, WSB_EVENT_CLOSE, WAIT_MS);
    ok = ok && ((ev.close_code == 1006 && !ev.clean) ||
                fail("CLOSE %u clean %d, expected 1006 unclean", ev.close_code, ev.clean));
    wsb_free(ws);
    return ok;
}

/* ------------------------------------------------------------------ permessage-deflate */

/* Sizes for the echo checks: around the compression threshold (64), the
 * frame-length encodings (125/126, 65535/65536), Node's compression
 * threshold (1024), and up to 4 MiB. */
static const size_t DEFLATE_SIZES[] = {0,     1,     63,     64,      65,          125,
                                       126,   127,   1000,   1023,    1024,        1025,
                                       4096,  65535, 65536,  65537,   256 * 1024,  1024 * 1024,
                                       DEFLATE_MAX - 1,      DEFLATE_MAX};
#define N_DEFLATE_SIZES (sizeof DEFLATE_SIZES / sizeof DEFLATE_SIZES[0])

static uint32_t g_rng = 0x2545f491u;
static uint32_t rnd(void) { /* xorshift32 */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

/* n bytes of valid UTF-8, JSON-like (compressible, not trivially: numbers
 * vary) with 2-, 3- and 4-byte characters; a token goes in only if it fits
 * whole, the rest is ASCII padding. */
static void fill_text(char *buf, size_t n) {
    static const char *const words[] = {
        "\"id\":", "\"name\":\"caf\xc3\xa9\",", "\"ok\":\"\xe2\x9c\x93\",",
        "\"face\":\"\xf0\x9f\x98\x80\",", "\"values\":[", "],", "{", "}\n", "\"type\":\"update\","};
    const size_t n_words = sizeof words / sizeof words[0];
    size_t i = 0;
    while (i < n) {
        char tok[32];
        size_t len;
        uint32_t r = rnd();
        if (r % 3 == 0)
            len = (size_t)snprintf(tok, sizeof tok, "%u,", (unsigned)(r >> 8) % 100000u);
        else
            len = (size_t)snprintf(tok, sizeof tok, "%s", words[(r >> 4) % n_words]);
        if (i + len > n) {
            memset(buf + i, ' ', n - i);
            break;
        }
        memcpy(buf + i, tok, len);
        i += len;
    }
}

/* n binary bytes: random (incompressible) or a compressible pattern. */
static void fill_binary(unsigned char *buf, size_t n, int random) {
    size_t i;
    if (!random) {
        fill_pattern(buf, n);
        return;
    }
    for (i = 0; i < n; i++) buf[i] = (unsigned char)(rnd() >> 24);
}

/* Sends buf as text/binary on ws and waits for the identical echo. */
static int echo_one(wsb_socket ws, const void *buf, size_t n, int text) {
    wsb_event ev;
    wsb_result r = text ? wsb_send_text(ws, (const char *)buf, n) : wsb_send_binary(ws, buf, n);
    if (r != WSB_OK) return fail("send %zu bytes: %s: %s", n, wsb_result_name(r), wsb_last_error());
    if (!expect_event(ws, &ev, text ? WSB_EVENT_TEXT : WSB_EVENT_BINARY, BIG_WAIT_MS)) return 0;
    if (ev.len != n || (n && memcmp(ev.data, buf, n) != 0))
        return fail("%s of %zu bytes came back as %zu bytes%s", text ? "text" : "binary", n, ev.len,
                    ev.len == n ? ", different" : "");
    return 1;
}

/* Every size in DEFLATE_SIZES, echoed on one connection opened with o
 * (freed here): as text, or (binary) as random then as compressible binary. */
static int deflate_echo_sizes(wsb_options *o, int binary) {
    void *buf = malloc(DEFLATE_MAX);
    wsb_socket ws;
    size_t i;
    int ok = 1;
    if (!buf) {
        wsb_options_free(o);
        return fail("out of memory");
    }
    ws = open_with("/echo", o, NULL);
    if (!ws) {
        free(buf);
        return 0;
    }
    for (i = 0; ok && i < N_DEFLATE_SIZES; i++) {
        size_t n = DEFLATE_SIZES[i];
        if (binary) {
            fill_binary(buf, n, 1);
            ok = echo_one(ws, buf, n, 0);
            fill_binary(buf, n, 0);
            ok = ok && echo_one(ws, buf, n, 0);
        } else {
            fill_text(buf, n);
            ok = echo_one(ws, buf, n, 1);
        }
    }
    free(buf);
    return close_and_free(ws) && ok;
}

static int check_deflate_negotiated(void) {
    wsb_socket ws;
    int ok;
    wsb_options *o;
    /* offered: on (open_path checks) */
    ws = open_path("/echo", NULL, NULL, NULL);
    if (!ws) return 0;
    ok = echo_one(ws, "negotiated", 10, 1);
    if (!close_and_free(ws) || !ok) return 0;
    /* not offered: off, and plain messages work */
    g_compress = 0;
    o = make_options(NULL, NULL);
    ws = open_with("/echo", o, NULL);
    g_compress = 1;
    if (!ws) return 0;
    ok = expect_compression(ws, 0);
    ok = ok && echo_one(ws, "not offered: uncompressed, 64 bytes or more of it....................",
                        70, 1);
    return close_and_free(ws) && ok;
}

/* JSON-like text messages, all sent before any echo is read: the server
 * sees them back to back (context takeover across messages, both ways). */
#define PIPELINED 300
static int check_deflate_pipelined(void) {
    static char msgs[PIPELINED][2048];
    static size_t lens[PIPELINED];
    wsb_socket ws = open_path("/echo", NULL, NULL, NULL);
    wsb_event ev;
    int i, ok = 1;
    if (!ws) return 0;
    for (i = 0; ok && i < PIPELINED; i++) {
        lens[i] = i % 10 == 0 ? (size_t)(i % 50) : 100 + rnd() % (sizeof msgs[i] - 100);
        fill_text(msgs[i], lens[i]);
        ok = wsb_send_text(ws, msgs[i], lens[i]) == WSB_OK ||
             fail("send #%d: %s", i, wsb_last_error());
    }
    for (i = 0; ok && i < PIPELINED; i++) {
        ok = expect_event(ws, &ev, WSB_EVENT_TEXT, WAIT_MS);
        ok = ok && ((ev.len == lens[i] && memcmp(ev.data, msgs[i], lens[i]) == 0) ||
                    fail("echo #%d differs (%zu bytes, sent %zu)", i, ev.len, lens[i]));
    }
    return close_and_free(ws) && ok;
}

/* 4 MiB compressible binary, server -> client. */
static int check_deflate_from_server(void) {
    char path[64];
    unsigned char *want = malloc(DEFLATE_MAX);
    wsb_socket ws;
    wsb_event ev;
    int ok;
    if (!want) return fail("out of memory");
    fill_pattern(want, DEFLATE_MAX);
    snprintf(path, sizeof path, "/big?size=%u", DEFLATE_MAX);
    ws = open_path(path, NULL, NULL, NULL);
    if (!ws) {
        free(want);
        return 0;
    }
    ok = expect_event(ws, &ev, WSB_EVENT_BINARY, BIG_WAIT_MS);
    ok = ok && ((ev.len == DEFLATE_MAX && memcmp(ev.data, want, DEFLATE_MAX) == 0) ||
                fail("message differs (%zu bytes)", ev.len));
    free(want);
    return close_and_free(ws) && ok;
}

/* An offer with every parameter: windows of 10 both ways, no context
 * takeover both ways (wsb_options_set_compression_params). */
static int check_deflate_params(int binary) {
    wsb_options *o = make_options(NULL, NULL);
    wsb_result r;
    if (!o) return fail("cannot build options");
    r = wsb_options_set_compression_params(o, 10, 10, true, true);
    if (r != WSB_OK) {
        wsb_options_free(o);
        return fail("wsb_options_set_compression_params: %s", wsb_last_error());
    }
    return deflate_echo_sizes(o, binary);
}

static void run_deflate(void) {
    report("deflate negotiated; not when not offered", check_deflate_negotiated());
    report("deflate text echo 0 B-4 MiB", deflate_echo_sizes(make_options(NULL, NULL), 0));
    report("deflate binary echo 0 B-4 MiB (random, pattern)",
           deflate_echo_sizes(make_options(NULL, NULL), 1));
    report("deflate 300 JSON messages pipelined", check_deflate_pipelined());
    report("deflate 4 MiB binary from server", check_deflate_from_server());
    report("deflate offer 10/10 bits, no context takeover: text 0 B-4 MiB",
           check_deflate_params(0));
    report("deflate offer 10/10 bits, no context takeover: binary 0 B-4 MiB",
           check_deflate_params(1));
}

/* A server without permessage-deflate: the offer is declined, the
 * connection opens without it and works. */
static int check_deflate_declined(void) {
    wsb_options *o = make_options(NULL, NULL);
    wsb_socket ws;
    int ok;
    if (!o || wsb_options_set_compression(o, true) != WSB_OK) {
        wsb_options_free(o);
        return fail("cannot build options");
    }
    ws = open_with("/echo", o, NULL);
    if (!ws) return 0;
    ok = expect_compression(ws, 0);
    ok = ok && echo_one(ws, "declined: uncompressed, 64 bytes or more of it.......................",
                        70, 1);
    return close_and_free(ws) && ok;
}

static void run_all(void) {
    report("text echo (UTF-8, empty)", check_text_echo());
    report("binary echo (with NULs)", check_binary_echo());
    report("16 MiB binary echo (both ways)", check_big_echo(0));
    report("16 MiB text echo (both ways)", check_big_echo(1));
    report("16 MiB binary from server", check_big_from_server());
    report("fragmented text from server", check_fragmented(0));
    report("fragmented binary from server", check_fragmented(1));
    report("server ping answered, no event", check_server_ping());
    report("subprotocol negotiated (wsb.v2)", check_subprotocol());
    report("no subprotocol offered -> \"\"", check_no_subprotocol());
    report("custom headers seen by server", check_headers());
    check_client_close();
    check_server_close("server close 4001 + reason", "/close?code=4001&reason=server%20bye%20%E2%9C%93",
                       4001, "server bye \xe2\x9c\x93", 1);
    check_server_close("server close without code -> 1005", "/close", 1005, "", 0);
    report("upgrade refused: HTTP 403 -> WSB_ERR_HANDSHAKE", check_refused());
    if (g_compress)
        run_deflate();
    else
        report("deflate offered, server declines: off, echo works", check_deflate_declined());
}

int main(int argc, char **argv) {
    int i, servers = 0, deflate;
    for (i = 2; i < argc; i += 3) {
        if (strcmp(argv[i], "--deflate") == 0) i++;
        if (i + 2 >= argc) {
            servers = 0;
            break;
        }
        servers++;
    }
    if (servers == 0) {
        fprintf(stderr,
                "usage: %s CA.pem [--deflate] NAME WS_BASE WSS_BASE "
                "[[--deflate] NAME WS_BASE WSS_BASE ...]\n",
                argv[0]);
        return 2;
    }
    g_ca = read_file(argv[1], &g_ca_len);
    if (!g_ca) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    printf("wsbridge %s (ABI %u)\n", wsb_version(), wsb_abi_version());
    for (i = 2; i + 2 < argc; i += 3) {
        deflate = strcmp(argv[i], "--deflate") == 0;
        if (deflate) i++;
        g_compress = deflate;
        g_server = argv[i];
        g_scheme = "ws";
        g_base = argv[i + 1];
        run_all();
        g_scheme = "wss";
        g_base = argv[i + 2];
        run_all();
    }
    wsb_shutdown(5000);
    free(g_ca);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
