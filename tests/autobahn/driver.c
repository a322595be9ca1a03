/*
 * driver.c: Autobahn|Testsuite client driver, through the wsbridge C API only.
 *
 *   driver [BASE_URL [AGENT]]      (defaults: ws://127.0.0.1:9001 wsbridge)
 *
 * Asks the fuzzing server for the case count (/getCaseCount: its first text
 * message), then for each case N asks for its id (/getCaseInfo?case=N: a
 * JSON text message, {"id": "13.3.1", ...}) and runs it
 * (/runCase?case=N&agent=AGENT), echoing each text and binary message as the
 * same type until the CLOSE event; last it asks the server to write its
 * reports (/updateReports?agent=AGENT). Every wait is bounded. Prints one
 * line per case.
 *
 * Cases 12.* and 13.* (permessage-deflate) run with compression on, offered
 * as each case's server side expects (see offer_for below); every other case
 * runs without it. Exit status 0 if every connection opened, negotiated
 * compression exactly when offered, and ended with a CLOSE event within its
 * time limit; the verdicts themselves are in the server's reports
 * (.ci/autobahn.sh gates on them).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsbridge.h"

/* Longest a case may take, start to CLOSE: 1.* to 11.* (9.* are the slow
 * ones: a few seconds each here), and 12.* / 13.*, which Autobahn itself
 * times out after 60 to 480 s (MSG_SIZES in case12_x_x.py; 13 s here for the
 * slowest on a quiet machine, over 60 s on a loaded one): the server always
 * ends those first. */
#define CASE_LIMIT_MS 60000u
#define DEFLATE_CASE_LIMIT_MS 540000u
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

/* The permessage-deflate offer for a case, by its id. */
typedef struct {
    int compress;           /* offer permessage-deflate at all */
    int params;             /* call wsb_options_set_compression_params */
    uint8_t client_bits;    /* its arguments (when params) */
    uint8_t server_bits;
    bool client_no_context; /* never set below: our own context takeover is */
    bool server_no_context; /* exercised wherever the server allows it */
    const char *why;
} offer;

/*
 * Autobahn's fuzzing server accepts an offer per case class
 * (autobahntestsuite/case/case12_x_x.py; the offer is parsed by
 * autobahn/websocket/compress_deflate.py, PerMessageDeflateOffer.parse):
 *   12.*   accept_deflate: any offer, as offered.
 *   13.1.* accept1: any offer, as offered.
 *   13.2.* accept2: any offer (it always takes the client to accept no
 *          context takeover), answering client_no_context_takeover.
 *   13.3.* accept3: only an offer with client_max_window_bits (else it
 *          declines and the case is UNIMPLEMENTED); answers =9.
 *   13.4.* accept4: the same, answering client_max_window_bits=15.
 *   13.5.* accept5: as accept3, plus client_no_context_takeover.
 *   13.6.* accept6: as accept4, plus client_no_context_takeover.
 *   13.7.* accept7: accept5 if it can, else accept2, else accept1.
 * Whatever server_* parameters the client offered come back in the answer.
 * The 13.x descriptions name the client's offer as
 * (requestNoContextTakeover, requestMaxWindowBits), that is
 * (server_no_context_takeover, server_max_window_bits): 13.1 (False, 0),
 * 13.2 (True, 0), 13.3 (False, 9), 13.4 (False, 15), 13.5 (True, 9),
 * 13.6 (True, 15), 13.7 [(True, 9), (True, 0), (False, 0)], of which one
 * offer is sent here, the first. client_max_window_bits, which 13.3-13.7
 * require, goes as =15 ("any window up to 15"): with parameters set, the
 * API sends it with a value or not at all.
 */
static offer offer_for(const char *id) {
    offer o = {0, 0, 0, 0, false, false, "no compression"};
    int sub = 0;
    if (strncmp(id, "12.", 3) == 0) {
        o.compress = 1;
        o.why = "default offer";
        return o;
    }
    if (strncmp(id, "13.", 3) != 0) return o;
    sub = atoi(id + 3);
    o.compress = 1;
    switch (sub) {
    case 1: /* (False, 0): the default offer, client_max_window_bits without a value */
        o.why = "default offer";
        break;
    case 2: /* (True, 0) */
        o.params = 1;
        o.server_no_context = true;
        o.why = "server_no_context_takeover";
        break;
    case 3: /* (False, 9) */
    case 4: /* (False, 15) */
        o.params = 1;
        o.client_bits = 15;
        o.server_bits = sub == 3 ? 9 : 15;
        o.why = sub == 3 ? "client_max_window_bits=15; server_max_window_bits=9"
                         : "client_max_window_bits=15; server_max_window_bits=15";
        break;
    case 5: /* (True, 9) */
    case 6: /* (True, 15) */
    case 7: /* (True, 9), first of three */
        o.params = 1;
        o.client_bits = 15;
        o.server_bits = sub == 6 ? 15 : 9;
        o.server_no_context = true;
        o.why = sub == 6 ? "client_max_window_bits=15; server_max_window_bits=15; "
                           "server_no_context_takeover"
                         : "client_max_window_bits=15; server_max_window_bits=9; "
                           "server_no_context_takeover";
        break;
    default:
        o.why = "default offer (unknown 13.x)";
        break;
    }
    return o;
}

/* The options for an offer (NULL: none needed); exits on an API failure. */
static wsb_options *options_for(const offer *o) {
    wsb_options *opts;
    wsb_result r;
    if (!o->compress) return NULL;
    opts = wsb_options_new();
    if (!opts) {
        fprintf(stderr, "wsb_options_new failed\n");
        exit(2);
    }
    r = wsb_options_set_compression(opts, true);
    if (r == WSB_OK && o->params)
        r = wsb_options_set_compression_params(opts, o->client_bits, o->server_bits,
                                               o->client_no_context, o->server_no_context);
    if (r != WSB_OK) {
        fprintf(stderr, "compression options (%s): %s: %s\n", o->why, wsb_result_name(r),
                wsb_last_error());
        exit(2);
    }
    return opts;
}

typedef struct {
    int opened;      /* wsb_wait_open returned OK */
    bool compressed; /* wsb_get_compression at OPEN */
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
static void run_session(const char *url, const wsb_options *opts, int do_echo, char *first_text,
                        size_t cap, uint32_t limit_ms, session *s) {
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    double start = now_ms();

    memset(s, 0, sizeof *s);
    s->error = WSB_OK;
    r = wsb_connect(url, opts, &ws);
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
    r = wsb_get_compression(ws, &s->compressed);
    if (r != WSB_OK) {
        snprintf(s->detail, sizeof s->detail, "get_compression: %s", wsb_result_name(r));
        s->compressed = false;
    }
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
    char info[1024];
    char id[32];
    session s;
    int count, i, bad = 0;
    double start = now_ms();

    printf("wsbridge %s (ABI %u), agent %s, server %s\n", wsb_version(), wsb_abi_version(), agent,
           base);

    snprintf(url, sizeof url, "%s/getCaseCount", base);
    run_session(url, NULL, 0, count_text, sizeof count_text, 15000, &s);
    count = atoi(count_text);
    if (!s.opened || count <= 0) {
        fprintf(stderr, "getCaseCount failed (text \"%s\"): %s\n", count_text, s.detail);
        wsb_shutdown(2000);
        return 2;
    }
    printf("%d cases\n", count);

    for (i = 1; i <= count; i++) {
        offer o;
        wsb_options *opts;
        const char *p;
        size_t n = 0;

        info[0] = 0;
        snprintf(url, sizeof url, "%s/getCaseInfo?case=%d", base, i);
        run_session(url, NULL, 0, info, sizeof info, 15000, &s);
        /* {"id": "13.3.1", "description": ...} */
        p = strstr(info, "\"id\"");
        if (p) p = strchr(p + 4, '"');
        if (p) {
            p++;
            while (n + 1 < sizeof id && p[n] && p[n] != '"') {
                id[n] = p[n];
                n++;
            }
        }
        id[n] = 0;
        if (!s.opened || !id[0]) {
            printf("case %3d: getCaseInfo failed (text \"%.60s\"): %s\n", i, info, s.detail);
            bad++;
            continue;
        }
        o = offer_for(id);
        opts = options_for(&o);
        snprintf(url, sizeof url, "%s/runCase?case=%d&agent=%s", base, i, agent);
        run_session(url, opts, 1, NULL, 0, o.compress ? DEFLATE_CASE_LIMIT_MS : CASE_LIMIT_MS, &s);
        wsb_options_free(opts);
        printf("case %3d %-8s %5.0f ms, %u msgs (%llu bytes) received, ", i, id, s.ms, s.msgs,
               s.bytes);
        if (s.closed)
            printf("close %u%s", s.close_code, s.clean ? " clean" : " unclean");
        else
            printf("NO CLOSE");
        if (s.too_late) printf(", %u echoes too late (NOT_OPEN)", s.too_late);
        if (s.error != WSB_OK) printf(", error %s", wsb_result_name(s.error));
        if (s.detail[0]) printf(" (%s)", s.detail);
        if (o.compress) printf(", offer: %s", o.why);
        if (s.opened && s.compressed != (o.compress != 0))
            printf(", COMPRESSION %s", s.compressed ? "NEGOTIATED UNOFFERED" : "NOT NEGOTIATED");
        printf("\n");
        fflush(stdout);
        if (!s.opened || !s.closed || s.compressed != (o.compress != 0)) bad++;
    }

    snprintf(url, sizeof url, "%s/updateReports?agent=%s", base, agent);
    run_session(url, NULL, 0, NULL, 0, 60000, &s);
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
