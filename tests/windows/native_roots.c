/*
 * native_roots.c: wsb_options_set_native_roots finds a CA installed in the
 * Windows Root certificate store (issue 14, item 4), under Wine.
 *
 *   native_roots.exe WSS_URL
 *
 * .ci/windows.sh installs the test server's CA in the Linux host's trust
 * store (update-ca-certificates), which Wine's crypt32 serves as the Root
 * store, before Wine starts. Passes (exit 0) if:
 *   1. with native roots and no PEM, a wss:// connect + echo succeeds;
 *   2. without them, the same connect fails with WSB_ERR_TLS (so the trust
 *      came from the system store, not the built-in roots).
 */
#include <stdio.h>
#include <string.h>

#include "wsbridge.h"

static wsb_result try_echo(const char *url, int native)
{
    const char *msg = "hello through the Windows Root store";
    wsb_options *opts = wsb_options_new();
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    int echoed = 0;
    if (!opts)
        return WSB_ERR_INTERNAL;
    wsb_options_set_native_roots(opts, native);
    r = wsb_connect(url, opts, &ws);
    wsb_options_free(opts);
    if (r == WSB_OK)
        r = wsb_wait_open(ws, 10000);
    if (r != WSB_OK) {
        printf("native roots %s: %s: %s\n", native ? "on" : "off", wsb_result_name(r), wsb_last_error());
        if (ws)
            wsb_free(ws);
        return r;
    }
    wsb_send_text(ws, msg, strlen(msg));
    while (wsb_wait_event(ws, &ev, 10000) == WSB_OK) {
        if (ev.kind == WSB_EVENT_TEXT) {
            echoed = ev.len == strlen(msg) && memcmp(ev.data, msg, ev.len) == 0;
            break;
        }
    }
    wsb_close(ws, 1000, NULL);
    wsb_free(ws);
    printf("native roots %s: connected, echo %s\n", native ? "on" : "off", echoed ? "ok" : "missing");
    return echoed ? WSB_OK : WSB_ERR_INTERNAL;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "wss://localhost:9002/echo";
    wsb_result with = try_echo(url, 1);
    wsb_result without = try_echo(url, 0);
    wsb_shutdown(2000);
    if (with != WSB_OK) {
        fprintf(stderr, "FAIL: the CA in the Root store was not trusted\n");
        return 1;
    }
    if (without != WSB_ERR_TLS) {
        fprintf(stderr, "FAIL: without native roots the connect gave %s, not WSB_ERR_TLS\n", wsb_result_name(without));
        return 1;
    }
    return 0;
}
