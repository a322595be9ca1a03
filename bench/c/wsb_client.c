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
 * wait=spin (pingpong, pipelined, bulk; diagnostic only): wait for events by
 * spinning on wsb_poll instead of wsb_wait_event.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
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
    return s;
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
        while ((r = wsb_send_text(sd->s, p, sd->size)) == WSB_ERR_QUEUE_FULL) {
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
    struct sender sd = {open_socket(url), n, arg_l("size", 64), 0};
    pthread_t th;
    double t0 = now_s();
    pthread_create(&th, NULL, send_loop, &sd);
    wsb_event ev;
    for (long got = 0; got < n; got++) next_data(sd.s, &ev);
    double secs = now_s() - t0;
    pthread_join(th, NULL);
    close_socket(sd.s);
    printf("{\"n\":%ld,\"secs\":%.3f,\"msgs_per_s\":%.0f,\"queue_full_retries\":%ld}\n", n, secs,
           n / secs, sd.full);
    return 0;
}

static int bulk(const char *url) {
    long size = arg_l("size", 16L << 20), reps = arg_l("reps", 3);
    char *p = malloc(size);
    memset(p, 7, size);
    double *t = malloc(sizeof(double) * (reps + 1));
    wsb_socket s = open_socket(url);
    wsb_event ev;
    for (long i = 0; i < reps + 1; i++) {
        double t0 = now_s();
        wsb_result r = wsb_send_binary(s, p, size);
        if (r != WSB_OK) die("send_binary", r);
        next_data(s, &ev);
        if ((long)ev.len != size) { fprintf(stderr, "bad echo length %zu\n", ev.len); return 1; }
        t[i] = now_s() - t0;
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
