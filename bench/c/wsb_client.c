/* wsbridge benchmark client: the C API, called the way a host calls it.
 * Prints one JSON object (one line) with the results.
 *
 *   wsb_client SCENARIO [key=value ...]
 *
 *   pingpong  url= n=[20000] warmup=[1000] size=[64]
 *   pipelined url= n=[1000000] size=[64]   (sender thread + receiver thread)
 *   bulk      url= size=[16777216] reps=[3]
 *   scale     url= n=[1000] idle=[5]
 *   handshake url= n=[200] ca=FILE        (ca for wss:// URLs)
 * compress=1: offer permessage-deflate (wsb_options_set_compression; exits
 * if the server does not take it); nct=1 with it: no context takeover either
 * way. corpus=FILE: the messages to send are FILE's lines (pipelined: line
 * i % lines for message i, size= ignored; bulk: the lines, newline-joined and
 * repeated to size=). text=1 (bulk): send it as text. warm=1 (scale): once
 * all are open, each socket sends one corpus line and waits for its echo
 * before RSS is read (so compression state is in place).
 * wait=spin (pingpong, pipelined, bulk; diagnostic only): wait for events by
 * spinning on wsb_poll instead of wsb_wait_event.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "wsbridge.h"

static void die(const char *what, wsb_result r) {
    fprintf(stderr, "wsb_client: %s: %s (%s)\n", what, wsb_result_name(r), wsb_last_error());
    exit(1);
}

static wsb_options *options(const char *url) {
    wsb_options *o = wsb_options_new();
    const char *ca = arg_s("ca", NULL);
    if (arg_l("compress", 0)) {
        wsb_result r = wsb_options_set_compression(o, true);
        if (r != WSB_OK) die("set_compression", r);
        if (arg_l("nct", 0) &&
            (r = wsb_options_set_compression_params(o, 0, 0, true, true)) != WSB_OK)
            die("set_compression_params", r);
    }
    if (strncmp(url, "wss://", 6) == 0 && ca) {
        FILE *f = fopen(ca, "rb");
        if (!f) { perror(ca); exit(1); }
        char pem[65536];
        size_t len = fread(pem, 1, sizeof pem, f);
        fclose(f);
        wsb_result r = wsb_options_add_root_certificates(o, pem, len);
        if (r != WSB_OK) die("add_root_certificates", r);
    }
    return o;
}

/* compress=1: the server must have taken permessage-deflate. */
static void check_compression(wsb_socket s) {
    bool on = false;
    wsb_result r = wsb_get_compression(s, &on);
    if (r != WSB_OK) die("get_compression", r);
    if (arg_l("compress", 0) && !on) {
        fprintf(stderr, "wsb_client: compress=1 but the server did not take permessage-deflate\n");
        exit(1);
    }
}

static wsb_socket open_socket(const char *url) {
    wsb_options *o = options(url);
    wsb_socket s;
    wsb_result r = wsb_connect(url, o, &s);
    wsb_options_free(o);
    if (r != WSB_OK) die("connect", r);
    if ((r = wsb_wait_open(s, 10000)) != WSB_OK) die("wait_open", r);
    wsb_event ev;
    if ((r = wsb_wait_event(s, &ev, 10000)) != WSB_OK || ev.kind != WSB_EVENT_OPEN)
        die("OPEN event", r);
    check_compression(s);
    return s;
}

/* corpus=FILE: its lines (without the newlines), loaded once. */
static char **g_lines;
static size_t *g_line_len;
static long g_nlines;
static char *g_corpus;
static size_t g_corpus_len;

static void load_corpus(void) {
    const char *path = arg_s("corpus", NULL);
    if (!path || g_corpus) return;
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    size_t cap = 1 << 20;
    g_corpus = malloc(cap);
    size_t n;
    while ((n = fread(g_corpus + g_corpus_len, 1, cap - g_corpus_len, f)) > 0) {
        g_corpus_len += n;
        if (g_corpus_len == cap) g_corpus = realloc(g_corpus, cap *= 2);
    }
    fclose(f);
    for (size_t i = 0; i < g_corpus_len; i++) g_nlines += g_corpus[i] == '\n';
    g_lines = malloc(sizeof(char *) * (g_nlines + 1));
    g_line_len = malloc(sizeof(size_t) * (g_nlines + 1));
    long k = 0;
    for (size_t i = 0, start = 0; i < g_corpus_len; i++) {
        if (g_corpus[i] != '\n') continue;
        g_lines[k] = g_corpus + start;
        g_line_len[k++] = i - start;
        start = i + 1;
    }
    if (g_nlines == 0) { fprintf(stderr, "wsb_client: no lines in %s\n", path); exit(1); }
}

/* wait=spin (diagnostic): busy-poll with wsb_poll instead of parking in
 * wsb_wait_event, to see what the host thread's wake-up costs. */
static int g_spin;

/* Wait for the next data event; exits on anything else. */
static void next_data(wsb_socket s, wsb_event *ev) {
    for (;;) {
        wsb_result r;
        if (g_spin) {
            while ((r = wsb_poll(s, ev)) == WSB_EMPTY) {}
        } else {
            r = wsb_wait_event(s, ev, 10000);
        }
        if (r != WSB_OK) die("wait_event", r);
        if (ev->kind == WSB_EVENT_TEXT || ev->kind == WSB_EVENT_BINARY) return;
        if (ev->kind == WSB_EVENT_ERROR || ev->kind == WSB_EVENT_CLOSE) {
            fprintf(stderr, "wsb_client: unexpected event %d: %.*s\n", ev->kind, (int)ev->len,
                    ev->data);
            exit(1);
        }
    }
}

static void close_socket(wsb_socket s) {
    wsb_event ev;
    wsb_close(s, 1000, NULL);
    while (wsb_wait_event(s, &ev, 5000) == WSB_OK && ev.kind != WSB_EVENT_CLOSE) {}
    wsb_free(s);
}

static int pingpong(const char *url) {
    long n = arg_l("n", 20000), w = arg_l("warmup", 1000), size = arg_l("size", 64);
    char *p = malloc(size);
    memset(p, 'x', size);
    double *lat = malloc(sizeof(double) * n);
    wsb_socket s = open_socket(url);
    wsb_event ev;
    for (long i = 0; i < n + w; i++) {
        double t = now_s();
        wsb_result r = wsb_send_text(s, p, size);
        if (r != WSB_OK) die("send_text", r);
        next_data(s, &ev);
        if (i >= w) lat[i - w] = (now_s() - t) * 1e6;
    }
    close_socket(s);
    print_lat(lat, n);
    return 0;
}

struct sender { wsb_socket s; long n; long size; long full; };
static void *send_loop(void *arg) {
    struct sender *sd = arg;
    char *p = malloc(sd->size);
    memset(p, 'x', sd->size);
    for (long i = 0; i < sd->n; i++) {
        wsb_result r;
        const char *m = g_lines ? g_lines[i % g_nlines] : p;
        size_t len = g_lines ? g_line_len[i % g_nlines] : (size_t)sd->size;
        while ((r = wsb_send_text(sd->s, m, len)) == WSB_ERR_QUEUE_FULL) {
            sd->full++;
            sched_yield();
        }
        if (r != WSB_OK) die("send_text", r);
    }
    free(p);
    return NULL;
}

static int pipelined(const char *url) {
    long n = arg_l("n", 1000000);
    load_corpus();
    struct sender sd = {open_socket(url), n, arg_l("size", 64), 0};
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, send_loop, &sd);
    wsb_event ev;
    for (long got = 0; got < n; got++) {
        next_data(sd.s, &ev);
        if (g_lines && ev.len != g_line_len[got % g_nlines]) {
            fprintf(stderr, "wsb_client: echo %ld has %zu bytes, not %zu\n", got, ev.len,
                    g_line_len[got % g_nlines]);
            exit(1);
        }
    }
    double secs = now_s() - t0;
    pthread_join(th, NULL);
    close_socket(sd.s);
    printf("{\"n\":%ld,\"secs\":%.3f,\"msgs_per_s\":%.0f,\"queue_full_retries\":%ld}\n", n, secs,
           n / secs, sd.full);
    return 0;
}

static int bulk(const char *url) {
    long size = arg_l("size", 16L << 20), reps = arg_l("reps", 3);
    int text = arg_l("text", 0) != 0;
    char *p = malloc(size);
    memset(p, 7, size);
    load_corpus();
    for (long i = 0; g_corpus && i < size; i++) p[i] = g_corpus[i % g_corpus_len];
    double *t = malloc(sizeof(double) * (reps + 1));
    wsb_socket s = open_socket(url);
    wsb_event ev;
    for (long i = 0; i < reps + 1; i++) {
        double t0 = now_s();
        wsb_result r = text ? wsb_send_text(s, p, size) : wsb_send_binary(s, p, size);
        if (r != WSB_OK) die("send", r);
        next_data(s, &ev);
        t[i] = now_s() - t0;
        if ((long)ev.len != size || memcmp(ev.data, p, size) != 0) {
            fprintf(stderr, "bad echo (%zu bytes)\n", ev.len);
            return 1;
        }
    }
    close_socket(s);
    qsort(t + 1, reps, sizeof *t, cmp_d); /* t[0]: warm-up */
    double med = pct(t + 1, reps, 0.5);
    printf("{\"size\":%ld,\"reps\":%ld,\"median_ms\":%.3f,\"mib_per_s\":%.1f}\n", size, reps,
           med * 1e3, size / 1048576.0 / med);
    return 0;
}

static int scale(const char *url) {
    long n = arg_l("n", 1000);
    double idle = arg_d("idle", 5);
    wsb_socket *s = malloc(sizeof(wsb_socket) * n);
    wsb_options *o = options(url);
    long r0 = rss_kib();
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        wsb_result r = wsb_connect(url, o, &s[i]);
        if (r != WSB_OK) die("connect", r);
    }
    for (long i = 0; i < n; i++) {
        wsb_result r = wsb_wait_open(s[i], 30000);
        if (r != WSB_OK) die("wait_open", r);
    }
    double open_s = now_s() - t0;
    wsb_options_free(o);
    if (arg_l("warm", 0)) {
        /* One message each way on every socket: compression state in place. */
        load_corpus();
        for (long i = 0; i < n; i++) {
            check_compression(s[i]);
            const char *m = g_lines ? g_lines[i % g_nlines] : "warm";
            wsb_result r = wsb_send_text(s[i], m, g_lines ? g_line_len[i % g_nlines] : 4);
            if (r != WSB_OK) die("send_text", r);
        }
        wsb_event ev;
        for (long i = 0; i < n; i++) next_data(s[i], &ev);
    }
    long r1 = rss_kib();
    double c0 = cpu_us();
    usleep((useconds_t)(idle * 1e6));
    double c1 = cpu_us();
    printf("{\"n\":%ld,\"open_s\":%.3f,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
           "\"rss_per_socket_kib\":%.1f,\"idle_s\":%g,\"idle_cpu_ms\":%.2f}\n",
           n, open_s, r0, r1, (double)(r1 - r0) / n, idle, (c1 - c0) / 1e3);
    fflush(stdout);
    for (long i = 0; i < n; i++) wsb_free(s[i]);
    wsb_shutdown(5000);
    return 0;
}

static int handshake(const char *url) {
    long n = arg_l("n", 200);
    double *lat = malloc(sizeof(double) * (n + 5));
    wsb_options *o = options(url);
    for (long i = 0; i < n + 5; i++) {
        wsb_socket s;
        double t0 = now_s();
        wsb_result r = wsb_connect(url, o, &s);
        if (r != WSB_OK) die("connect", r);
        if ((r = wsb_wait_open(s, 10000)) != WSB_OK) die("wait_open", r);
        lat[i] = (now_s() - t0) * 1e6;
        close_socket(s);
    }
    wsb_options_free(o);
    print_lat(lat + 5, n); /* the first 5: warm-up */
    return 0;
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: wsb_client pingpong|pipelined|bulk|scale|handshake key=value...\n");
        return 2;
    }
    const char *url = arg_s("url", NULL);
    g_spin = strcmp(arg_s("wait", "park"), "spin") == 0;
    if (!url) { fprintf(stderr, "url= is required\n"); return 2; }
    int rc;
    if (!strcmp(argv[1], "pingpong")) rc = pingpong(url);
    else if (!strcmp(argv[1], "pipelined")) rc = pipelined(url);
    else if (!strcmp(argv[1], "bulk")) rc = bulk(url);
    else if (!strcmp(argv[1], "scale")) rc = scale(url);
    else if (!strcmp(argv[1], "handshake")) rc = handshake(url);
    else { fprintf(stderr, "no scenario %s\n", argv[1]); return 2; }
    wsb_shutdown(2000);
    return rc;
}
