/*
 * echo.c: the smallest complete wsbridge program, linked with -lwsbridge.
 *
 *   echo URL [CA.pem]
 *
 * Connects, sends one text and one binary message, prints the echoes,
 * closes with 1000 and prints the CLOSE event. CA.pem, if given, is trusted
 * in addition to the built-in roots (for a wss:// test server).
 * Exit status 0 only if both echoes came back intact and the close was clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsbridge.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo";
    const unsigned char bin[] = {0x00, 0x01, 0xfe, 0xff, 0x00};
    wsb_options *opts;
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    int got_text = 0, got_bin = 0, clean = 0;

    printf("wsbridge %s (ABI %u)\n", wsb_version(), wsb_abi_version());
    opts = wsb_options_new();
    if (!opts) return 1;
    if (argc > 2) {
        size_t len = 0;
        char *pem = read_file(argv[2], &len);
        if (!pem || wsb_options_add_root_certificates(opts, pem, len) != WSB_OK) {
            fprintf(stderr, "cannot use CA file %s: %s\n", argv[2], wsb_last_error());
            free(pem);
            wsb_options_free(opts);
            return 1;
        }
        free(pem);
    }
    r = wsb_connect(url, opts, &ws);
    wsb_options_free(opts); /* the socket took a copy */
    if (r != WSB_OK) {
        fprintf(stderr, "connect: %s: %s\n", wsb_result_name(r), wsb_last_error());
        return 1;
    }
    r = wsb_wait_open(ws, 10000);
    if (r != WSB_OK) {
        fprintf(stderr, "open: %s: %s\n", wsb_result_name(r), wsb_last_error());
        wsb_free(ws);
        return 1;
    }
    /* Sent right away: wsb_send_* copies the payload and never blocks. */
    wsb_send_text(ws, "hello, wsbridge", strlen("hello, wsbridge"));
    wsb_send_binary(ws, bin, sizeof bin);

    while ((r = wsb_wait_event(ws, &ev, 10000)) == WSB_OK) {
        if (ev.kind == WSB_EVENT_OPEN) {
            printf("open (subprotocol \"%s\")\n", ev.data);
        } else if (ev.kind == WSB_EVENT_TEXT) {
            printf("text: %s\n", ev.data);
            got_text = ev.len == strlen("hello, wsbridge") && memcmp(ev.data, "hello, wsbridge", ev.len) == 0;
        } else if (ev.kind == WSB_EVENT_BINARY) {
            printf("binary: %zu bytes\n", ev.len);
            got_bin = ev.len == sizeof bin && memcmp(ev.data, bin, sizeof bin) == 0;
        } else if (ev.kind == WSB_EVENT_ERROR) {
            printf("error: %s: %s\n", wsb_result_name(ev.error), ev.data);
        } else if (ev.kind == WSB_EVENT_CLOSE) {
            printf("close: code %u, clean %d, reason \"%s\"\n", ev.close_code, ev.clean, ev.data);
            clean = ev.clean && ev.close_code == 1000;
            break;
        }
        if (got_text && got_bin) wsb_close(ws, 1000, "done"); /* a second call is a no-op */
    }
    if (r != WSB_OK) fprintf(stderr, "wait: %s\n", wsb_result_name(r));
    wsb_free(ws);
    wsb_shutdown(1000);
    return got_text && got_bin && clean ? 0 : 1;
}
