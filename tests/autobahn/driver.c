/*
 * driver.c: Autobahn|Testsuite client driver, through the wsbridge C API only.
 *
 *   driver [BASE_URL [AGENT]]      (defaults: ws://127.0.0.1:9001 wsbridge)
 *
 * Asks the fuzzing server for the case count (/getCaseCount: its first text
 * message), runs every case (/runCase?case=N&agent=AGENT) echoing each text
 * and binary message as the same type until the CLOSE event, then asks the
 * server to write its reports (/updateReports?agent=AGENT). Every wait is
 * bounded. Prints one line per case. Exit status 0 if every connection
 * opened and ended with a CLOSE event within its time limit; the verdicts
 * themselves are in the server's reports (.ci/autobahn.sh gates on them).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsbridge.h"

/* Longest a case may take, start to CLOSE (9.* cases are the slow ones: a
 * few seconds each here). */
#define CASE_LIMIT_MS 60000u
/* One wsb_wait_event call. */
#define WAIT_SLICE_MS 1000u
/* How long an echo may keep retrying while the send queue is full. */
#define QUEUE_FULL_LIMIT_MS 30000u

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Sends ev's payload back as the same type. Retries (bounded) while the send
 * queue is full. NOT_OPEN (the connection is already closing) is returned as is. */
static wsb_result echo(wsb_socket ws, const wsb_event *ev) {
    double start = now_ms();
    for (;;) {
        wsb_result r = ev->kind == WSB_EVENT_TEXT ? wsb_send_text(ws, ev->data, ev->len)
                                                  : wsb_send_binary(ws, ev->data, ev->len);
        if (r != WSB_ERR_QUEUE_FULL) return r;
        if (now_ms() - start > QUEUE_FULL_LIMIT_MS) return r;
        sleep_ms(2);
    }
}

typedef struct {
    int opened;      /* wsb_wait_open returned OK */
    int closed;      /* got the CLOSE event */
    unsigned msgs;   /* text + binary messages echoed */
    unsigned long long bytes;
    uint16_t close_code;
    int clean;
    wsb_result error; /* the ERROR event's code, WSB_OK if none */
    char detail[160]; /* open failure or ERROR event detail */
    int send_failures;
    unsigned too_late; /* echoes refused with NOT_OPEN: the socket was already closing */
    double ms;
} session;

/* Connects to url and runs it until CLOSE: echo = 1 echoes messages;
 * first_text (if not NULL, size cap) receives the first text message. */
static void run_session(const char *url, int do_echo, char *first_text, size_t cap,
                        uint32_t limit_ms, session *s) {
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    double start = now_ms();

    memset(s, 0, sizeof *s);
    s->error = WSB_OK;
    r = wsb_connect(url, NULL, &ws);
    if (r != WSB_OK) {
        snprintf(s->detail, sizeof s->detail, "connect: %s: %s", wsb_result_name(r),
                 wsb_last_error());
        return;
    }
    r = wsb_wait_open(ws, 15000);
    if (r != WSB_OK) {
        snprintf(s->detail, sizeof s->detail, "open: %s: %s", wsb_result_name(r),
                 wsb_last_error());
        wsb_free(ws);
        s->ms = now_ms() - start;
        return;
    }
    s->opened = 1;
    while (now_ms() - start < (double)limit_ms) {
        r = wsb_wait_event(ws, &ev, WAIT_SLICE_MS);
        if (r == WSB_TIMEOUT) continue;
        if (r != WSB_OK) {
            snprintf(s->detail, sizeof s->detail, "wait_event: %s", wsb_result_name(r));
            break;
        }
        if (ev.kind == WSB_EVENT_TEXT || ev.kind == WSB_EVENT_BINARY) {
            if (first_text && ev.kind == WSB_EVENT_TEXT && !first_text[0]) {
                snprintf(first_text, cap, "%.*s", (int)(ev.len < cap ? ev.len : cap - 1), ev.data);
            }
            if (do_echo) {
                wsb_result er = echo(ws, &ev);
                if (er == WSB_ERR_NOT_OPEN) {
                    s->too_late++;
                } else if (er != WSB_OK) {
                    s->send_failures++;
                    if (!s->detail[0])
                        snprintf(s->detail, sizeof s->detail, "echo: %s: %s", wsb_result_name(er),
                                 wsb_last_error());
                }
            }
            s->msgs++;
            s->bytes += ev.len;
        } else if (ev.kind == WSB_EVENT_ERROR) {
            s->error = ev.error;
            snprintf(s->detail, sizeof s->detail, "%s", ev.data);
        } else if (ev.kind == WSB_EVENT_CLOSE) {
            s->closed = 1;
            s->close_code = ev.close_code;
            s->clean = ev.clean;
            break;
        }
    }
    if (!s->closed && !s->detail[0])
        snprintf(s->detail, sizeof s->detail, "no CLOSE within %u ms", (unsigned)limit_ms);
    wsb_free(ws);
    s->ms = now_ms() - start;
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "ws://127.0.0.1:9001";
    const char *agent = argc > 2 ? argv[2] : "wsbridge";
    char url[512];
    char count_text[32] = "";
    session s;
    int count, i, bad = 0;
    double start = now_ms();

    printf("wsbridge %s (ABI %u), agent %s, server %s\n", wsb_version(), wsb_abi_version(), agent,
           base);

    snprintf(url, sizeof url, "%s/getCaseCount", base);
    run_session(url, 0, count_text, sizeof count_text, 15000, &s);
    count = atoi(count_text);
    if (!s.opened || count <= 0) {
        fprintf(stderr, "getCaseCount failed (text \"%s\"): %s\n", count_text, s.detail);
        wsb_shutdown(2000);
        return 2;
    }
    printf("%d cases\n", count);

    for (i = 1; i <= count; i++) {
        snprintf(url, sizeof url, "%s/runCase?case=%d&agent=%s", base, i, agent);
        run_session(url, 1, NULL, 0, CASE_LIMIT_MS, &s);
        printf("case %3d: %5.0f ms, %u msgs (%llu bytes) received, ", i, s.ms, s.msgs, s.bytes);
        if (s.closed)
            printf("close %u%s", s.close_code, s.clean ? " clean" : " unclean");
        else
            printf("NO CLOSE");
        if (s.too_late) printf(", %u echoes too late (NOT_OPEN)", s.too_late);
        if (s.error != WSB_OK) printf(", error %s", wsb_result_name(s.error));
        if (s.detail[0]) printf(" (%s)", s.detail);
        printf("\n");
        fflush(stdout);
        if (!s.opened || !s.closed) bad++;
    }

    snprintf(url, sizeof url, "%s/updateReports?agent=%s", base, agent);
    run_session(url, 0, NULL, 0, 60000, &s);
    if (!s.opened || !s.closed) {
        fprintf(stderr, "updateReports failed: %s\n", s.detail);
        bad++;
    } else {
        printf("reports updated\n");
    }
    wsb_shutdown(5000);
    printf("driver: %d cases in %.1f s, %d connection problems\n", count,
           (now_ms() - start) / 1000.0, bad);
    return bad ? 1 : 0;
}
