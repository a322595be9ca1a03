/*
 * contract.c: the C API contract checked from C (the same program runs on
 * Linux and, cross-built, on Windows). Needs a loopback test server:
 *
 *   contract WS_BASE_URL      e.g. ws://127.0.0.1:PORT   (paths /echo, /refuse403, /close)
 *
 * Prints one line per check and ends with "N passed, N failed".
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsbridge.h"

static int passed = 0, failed = 0;

#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
            printf("ok   %s\n", what);                                      \
        } else {                                                            \
            failed++;                                                       \
            printf("FAIL %s (line %d; last error: %s)\n", what, __LINE__, wsb_last_error()); \
        }                                                                   \
    } while (0)

static char base[512];

static const char *url(const char *path) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s%s", base, path);
    return buf;
}

/* Next event within 10 s; returns the wsb_wait_event result. */
static wsb_result next(wsb_socket s, wsb_event *ev) { return wsb_wait_event(s, ev, 10000); }

static void test_library(void) {
    CHECK(wsb_abi_version() == 1 && wsb_abi_version() == WSB_ABI_VERSION, "abi version is 1");
    CHECK(wsb_version() != NULL && strlen(wsb_version()) > 0, "version string");
    CHECK(strcmp(wsb_result_name(WSB_ERR_TLS), "WSB_ERR_TLS") == 0, "result name");
    CHECK(strcmp(wsb_result_name((wsb_result)42), "WSB_UNKNOWN") == 0, "unknown result name");
    CHECK(wsb_last_error() != NULL, "last error never NULL");
}

static void test_null_arguments(void) {
    wsb_socket s = 0;
    wsb_event ev;
    wsb_options *o = wsb_options_new();
    CHECK(o != NULL, "options_new");
    CHECK(wsb_connect(NULL, NULL, &s) == WSB_ERR_NULL_ARGUMENT, "connect NULL url");
    CHECK(wsb_connect("ws://127.0.0.1:1/", NULL, NULL) == WSB_ERR_NULL_ARGUMENT, "connect NULL out");
    CHECK(wsb_options_add_header(NULL, "a", "b") == WSB_ERR_NULL_ARGUMENT, "add_header NULL opts");
    CHECK(wsb_options_add_header(o, NULL, "b") == WSB_ERR_NULL_ARGUMENT, "add_header NULL name");
    CHECK(wsb_options_add_subprotocol(o, NULL) == WSB_ERR_NULL_ARGUMENT, "add_subprotocol NULL");
    CHECK(wsb_options_add_root_certificates(o, NULL, 10) == WSB_ERR_NULL_ARGUMENT, "add_roots NULL");
    CHECK(wsb_poll(1, NULL) == WSB_ERR_NULL_ARGUMENT || wsb_poll(1, NULL) == WSB_ERR_INVALID_HANDLE,
          "poll NULL event");
    CHECK(wsb_poll(0, &ev) == WSB_ERR_INVALID_HANDLE, "poll handle 0");
    CHECK(wsb_options_add_header(o, "X-Bad", "a\r\nb: c") == WSB_ERR_INVALID_ARGUMENT, "CR/LF in header");
    CHECK(wsb_options_add_root_certificates(o, "junk", 4) == WSB_ERR_INVALID_ARGUMENT, "bad PEM");
    wsb_options_free(o);
    wsb_options_free(o); /* detected, ignored */
    wsb_options_free(NULL);
    CHECK(1, "options double free and NULL free survive");
}

static void test_urls(void) {
    wsb_socket s = 0;
    CHECK(wsb_connect("http://127.0.0.1/", NULL, &s) == WSB_ERR_INVALID_URL, "http:// refused");
    CHECK(wsb_connect("not a url", NULL, &s) == WSB_ERR_INVALID_URL, "garbage URL refused");
    CHECK(strlen(wsb_last_error()) > 0, "URL error has a detail");
}

static void test_echo(void) {
    wsb_socket s = 0;
    wsb_event ev;
    wsb_state st;
    size_t buffered = 1;
    const char bin[4] = {0, 1, 0, 2};
    int text_ok = 0, bin_ok = 0;

    CHECK(wsb_connect(url("/echo"), NULL, &s) == WSB_OK && s != 0, "connect echo");
    CHECK(wsb_send_text(s, "early", 5) == WSB_OK, "send while connecting is queued");
    CHECK(wsb_wait_open(s, 10000) == WSB_OK, "wait_open");
    CHECK(next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_OPEN && ev.len == 0 && ev.data[0] == 0,
          "OPEN first, empty subprotocol");
    CHECK(wsb_get_state(s, &st) == WSB_OK && st == WSB_STATE_OPEN, "state OPEN");
    CHECK(wsb_send_text(s, "\xff", 1) == WSB_ERR_INVALID_UTF8, "invalid UTF-8 text refused");
    CHECK(wsb_send_binary(s, bin, sizeof bin) == WSB_OK, "send binary");
    CHECK(next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_TEXT && ev.len == 5 &&
              memcmp(ev.data, "early", 5) == 0 && ev.data[5] == 0,
          "early text echoed first, NUL-terminated");
    if (next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_BINARY && ev.len == 4) bin_ok = !memcmp(ev.data, bin, 4);
    CHECK(bin_ok, "binary with NULs echoed intact");
    text_ok = wsb_buffered_amount(s, &buffered) == WSB_OK;
    CHECK(text_ok, "buffered_amount");
    CHECK(wsb_close(s, 999, NULL) == WSB_ERR_INVALID_ARGUMENT, "close code 999 refused");
    CHECK(wsb_close(s, 4000, "done") == WSB_OK, "close 4000");
    CHECK(wsb_close(s, 4000, "again") == WSB_OK, "second close is a no-op");
    CHECK(wsb_send_text(s, "late", 4) == WSB_ERR_NOT_OPEN, "send after close");
    CHECK(next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_CLOSE && ev.close_code == 4000 && ev.clean,
          "CLOSE with the echoed code, clean");
    CHECK(wsb_poll(s, &ev) == WSB_EMPTY, "EMPTY after CLOSE");
    CHECK(wsb_free(s) == WSB_OK, "free");
    CHECK(wsb_free(s) == WSB_ERR_INVALID_HANDLE, "double free detected");
    CHECK(wsb_send_text(s, "x", 1) == WSB_ERR_INVALID_HANDLE, "stale handle detected");
}

/* wsb_get_stats: exact counts, the size rule (an older, shorter struct in a
 * buffer with a canary after it), after CLOSE, after wsb_free, bad arguments. */
static void test_stats(void) {
    wsb_socket s = 0;
    wsb_event ev;
    wsb_stats st;
    union {
        wsb_stats aligned;
        unsigned char bytes[sizeof(wsb_stats) + 32];
    } buf;
    /* A program built against a header whose struct ended at messages_out. */
    const size_t old_size = offsetof(wsb_stats, messages_out) + sizeof(uint64_t);
    size_t i;
    int ok;

    memset(&ev, 0, sizeof ev);
    CHECK(wsb_connect(url("/echo"), NULL, &s) == WSB_OK, "stats: connect echo");
    CHECK(wsb_send_text(s, "early", 5) == WSB_OK, "stats: send while connecting");
    CHECK(wsb_wait_open(s, 10000) == WSB_OK, "stats: wait_open");
    CHECK(wsb_send_binary(s, "\0\1\2", 3) == WSB_OK, "stats: send binary");
    ok = next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_OPEN;
    ok = ok && next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_TEXT;
    ok = ok && next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_BINARY;
    CHECK(ok, "stats: both echoed");

    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK(wsb_get_stats(s, &st) == WSB_OK && st.size == sizeof st, "get_stats, size left as set");
    CHECK(st.messages_out == 2 && st.messages_in == 2 && st.payload_bytes_out == 8 &&
              st.payload_bytes_in == 8,
          "stats: exact message and payload counts");
    CHECK(st.wire_bytes_out > st.payload_bytes_out && st.wire_bytes_in > st.payload_bytes_in,
          "stats: wire bytes include framing and the upgrade");
    CHECK(st.queued_bytes == 0 && st.tcp_us > 0 && st.upgrade_us > 0 && st.tls_us == 0 && st.dns_us == 0,
          "stats: queued 0, tcp and upgrade timed, no TLS, no DNS for 127.0.0.1");

    memset(buf.bytes, 0xA5, sizeof buf.bytes);
    buf.aligned.size = (uint32_t)old_size;
    CHECK(wsb_get_stats(s, &buf.aligned) == WSB_OK, "get_stats with an older size");
    ok = buf.aligned.size == old_size && buf.aligned.messages_out == 2 && buf.aligned.payload_bytes_in == 8;
    for (i = old_size; i < sizeof buf.bytes; i++) ok = ok && buf.bytes[i] == 0xA5;
    CHECK(ok, "older size: its fields filled, nothing written past it");

    memset(buf.bytes, 0xA5, sizeof buf.bytes);
    buf.aligned.size = 0;
    CHECK(wsb_get_stats(s, &buf.aligned) == WSB_ERR_INVALID_ARGUMENT, "size 0 refused");
    for (ok = 1, i = sizeof(uint32_t); i < sizeof buf.bytes; i++) ok = ok && buf.bytes[i] == 0xA5;
    CHECK(ok, "size 0: nothing written");
    CHECK(wsb_get_stats(s, NULL) == WSB_ERR_NULL_ARGUMENT, "get_stats NULL out");

    CHECK(wsb_close(s, 1000, NULL) == WSB_OK, "stats: close");
    while (next(s, &ev) == WSB_OK && ev.kind != WSB_EVENT_CLOSE) {
    }
    CHECK(ev.kind == WSB_EVENT_CLOSE, "stats: CLOSE");
    st.size = sizeof st;
    CHECK(wsb_get_stats(s, &st) == WSB_OK && st.messages_out == 2 && st.messages_in == 2,
          "get_stats after CLOSE: the final counts");
    wsb_free(s);
    CHECK(wsb_get_stats(s, &st) == WSB_ERR_INVALID_HANDLE, "get_stats after free");
}

static void test_failures(void) {
    wsb_socket s = 0;
    wsb_event ev;
    int ok;

    CHECK(wsb_connect(url("/refuse403"), NULL, &s) == WSB_OK, "connect to a refusing path");
    CHECK(wsb_wait_open(s, 10000) == WSB_ERR_HANDSHAKE, "403 is a handshake error");
    CHECK(strcmp(wsb_last_error(), "HTTP 403 from server") == 0, "detail names the status");
    ok = next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_ERROR && ev.error == WSB_ERR_HANDSHAKE;
    ok = ok && next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_CLOSE && ev.close_code == 1006 && !ev.clean;
    CHECK(ok, "ERROR then CLOSE 1006");
    wsb_free(s);

    CHECK(wsb_connect("ws://127.0.0.1:1/", NULL, &s) == WSB_OK, "connect to a closed port");
    CHECK(wsb_wait_open(s, 10000) == WSB_ERR_CONNECT, "refused is a connect error");
    CHECK(strstr(wsb_last_error(), "connect to 127.0.0.1:1") != NULL, "detail names the address");
    wsb_free(s);

    CHECK(wsb_connect(url("/close?code=4001&reason=bye"), NULL, &s) == WSB_OK, "connect /close");
    ok = next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_OPEN;
    ok = ok && next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_CLOSE && ev.close_code == 4001 && ev.clean &&
         strcmp(ev.data, "bye") == 0;
    CHECK(ok, "server close 4001 'bye'");
    wsb_free(s);
}

/* The log hook. Counters are read only after wsb_set_log(NULL) returned,
 * which waits for every call in progress. */
static struct {
    int lines, info, debug, other, open_seen, close_seen;
    wsb_result inside;
    char last[256];
} logged;

static void on_log(void *user, wsb_log_level level, wsb_socket s, const char *message) {
    (void)user;
    logged.lines++;
    if (level == WSB_LOG_INFO) logged.info++;
    else if (level == WSB_LOG_DEBUG) logged.debug++;
    else logged.other++;
    if (strcmp(message, "OPEN") == 0) logged.open_seen = 1;
    if (strncmp(message, "CLOSE 1000 clean", 16) == 0) logged.close_seen = 1;
    if (logged.lines == 1) logged.inside = wsb_send_text(s, "x", 1); /* refused in the hook */
    snprintf(logged.last, sizeof logged.last, "%s", message);
}

static void test_log(void) {
    wsb_socket s = 0;
    wsb_event ev;
    int ok;
    CHECK(wsb_set_log(on_log, NULL, (wsb_log_level)0) == WSB_ERR_INVALID_ARGUMENT, "log level 0 refused");
    CHECK(wsb_set_log(on_log, NULL, (wsb_log_level)5) == WSB_ERR_INVALID_ARGUMENT, "log level 5 refused");
    CHECK(wsb_set_log(on_log, NULL, WSB_LOG_INFO) == WSB_OK, "set_log INFO");
    CHECK(wsb_connect(url("/echo"), NULL, &s) == WSB_OK && wsb_wait_open(s, 10000) == WSB_OK, "open with a log hook");
    ok = next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_OPEN;
    ok = ok && wsb_send_text(s, "logged?", 7) == WSB_OK && next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_TEXT;
    ok = ok && wsb_close(s, 1000, NULL) == WSB_OK && next(s, &ev) == WSB_OK && ev.kind == WSB_EVENT_CLOSE;
    CHECK(ok, "echo and close with a log hook");
    CHECK(wsb_set_log(NULL, NULL, (wsb_log_level)0) == WSB_OK, "set_log NULL");
    CHECK(logged.open_seen && logged.close_seen && logged.info >= 4, "INFO lines: OPEN ... CLOSE");
    CHECK(logged.debug == 0 && logged.other == 0, "nothing above the level set");
    CHECK(logged.inside == WSB_ERR_IN_LOG_HOOK, "a call from inside the hook is refused");
    CHECK(strcmp(wsb_result_name(WSB_ERR_IN_LOG_HOOK), "WSB_ERR_IN_LOG_HOOK") == 0, "IN_LOG_HOOK's name");
    wsb_free(s);
}

static void test_shutdown(void) {
    wsb_socket a = 0, b = 0;
    wsb_state st;
    CHECK(wsb_connect(url("/echo"), NULL, &a) == WSB_OK && wsb_wait_open(a, 10000) == WSB_OK, "open a");
    CHECK(wsb_connect(url("/echo"), NULL, &b) == WSB_OK && wsb_wait_open(b, 10000) == WSB_OK, "open b");
    wsb_shutdown(2000);
    CHECK(wsb_get_state(a, &st) == WSB_ERR_INVALID_HANDLE, "handles invalid after shutdown");
    CHECK(wsb_connect(url("/echo"), NULL, &a) == WSB_OK && wsb_wait_open(a, 10000) == WSB_OK,
          "usable again after shutdown");
    wsb_free(a);
    wsb_shutdown(2000);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: contract ws://127.0.0.1:PORT\n");
        return 2;
    }
    snprintf(base, sizeof base, "%s", argv[1]);
    test_library();
    test_null_arguments();
    test_urls();
    test_echo();
    test_stats();
    test_failures();
    test_log();
    test_shutdown();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
