/* libwebsockets benchmark client (the C peer): same scenarios, arguments and
 * JSON output as wsb_client.c. Prints one JSON object (one line).
 *
 *   lws_client SCENARIO [key=value ...]
 *
 *   pingpong  url= n=[20000] warmup=[1000] size=[64]
 *   pipelined url= n=[1000000] size=[64]   (one event loop, 1 MiB in-flight window)
 *   bulk      url= size=[16777216] reps=[3]
 *   scale     url= n=[1000] idle=[5]
 *   handshake url= n=[200] ca=FILE        (ca for wss:// URLs)
 *
 * libwebsockets is a single-threaded callback state machine: the main thread
 * runs lws_service() until the state the scenario waits for is reached, and
 * everything else happens in callback() below. Its rules, followed here:
 * lws_write() only from LWS_CALLBACK_CLIENT_WRITEABLE, at most one per
 * callback (lws_callback_on_writable() asks for the next one), LWS_PRE bytes of
 * headroom before the payload, and received messages arrive in pieces that
 * have to be reassembled. No extensions are offered (no permessage-deflate:
 * the context gets no .extensions). lws sets TCP_NODELAY on its client sockets
 * itself (strace: setsockopt(SOL_TCP, TCP_NODELAY) before connect). Every wait
 * is bounded: a 1 s watchdog fails the run after 10 s without any callback.
 */
#define _GNU_SOURCE
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

enum {
    FRAG = 64 * 1024,  /* rx buffer, socket read size and send fragment size */
    WINDOW = 1 << 20,  /* pipelined: most bytes sent but not yet echoed */
    STALL_S = 10,      /* watchdog: seconds without a callback before failing */
};

static void die(const char *what) {
    fprintf(stderr, "lws_client: %s\n", what);
    exit(1);
}

/* ------------------------------------------------------------------ state */

enum scn { PINGPONG, PIPELINED, BULK, SCALE, HANDSHAKE };

static struct {
    enum scn scn;
    struct lws_context *ctx;
    struct lws *wsi;       /* the connection (all scenarios but scale) */
    char err[256];         /* set by a callback: the run failed */
    long opened, closed;   /* connections established / closed so far */
    int closing;           /* 1: close asked for, 2: close frame queued; CLIENT_CLOSED is expected */
    int shutting_down;     /* lws_context_destroy() closes whatever is left */
    int wr_pending;        /* lws_callback_on_writable() asked, not yet called */
    unsigned long progress; /* callbacks handled below; the watchdog checks it moves */
    /* sending: messages [0, allowed) may be sent; the current one is at off */
    const unsigned char *msg;
    size_t size, off;
    int binary;
    long sent, allowed;
    unsigned char *tx;     /* LWS_PRE + FRAG: lws frames and masks in place here */
    /* receiving: pieces of the current message, appended until it is whole */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    long got;              /* whole messages received */
    long total;            /* pingpong, bulk: messages to exchange, one at a time */
    /* timing */
    double t0, t_open;
    double *lat;           /* pingpong: per round; bulk: per echo */
    long warmup;
    int idle_done;
    lws_sorted_usec_list_t watchdog, idle_timer;
    unsigned long wd_seen;
    int wd_stalled;
} g;

/* Record the first failure; service_until() then exits with it. */
__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...) {
    va_list ap;
    if (g.err[0]) return;
    va_start(ap, fmt);
    vsnprintf(g.err, sizeof g.err, fmt, ap);
    va_end(ap);
}

static void want_write(struct lws *wsi) {
    if (!g.wr_pending) {
        g.wr_pending = 1;
        lws_callback_on_writable(wsi);
    }
}

/* Another message may go out: below the number allowed and, for pipelined,
 * with less than WINDOW bytes not yet echoed. */
static int can_send(void) {
    return g.off > 0 ||
           (g.sent < g.allowed && (size_t)(g.sent - g.got) * g.size < (size_t)WINDOW);
}

/* Let one more message go (pingpong, bulk): timed from here to its echo. */
static void send_next(struct lws *wsi) {
    g.allowed++;
    g.t0 = now_s();
    want_write(wsi);
}

/* A whole message arrived (len bytes). */
static void on_message(struct lws *wsi, size_t len) {
    long i = g.got++;
    switch (g.scn) {
    case PINGPONG:
        if (i >= g.warmup) g.lat[i - g.warmup] = (now_s() - g.t0) * 1e6;
        if (g.got < g.total) send_next(wsi);
        break;
    case BULK:
        if (len != g.size) {
            fail("bad echo length %zu", len);
            return;
        }
        g.lat[i] = now_s() - g.t0;
        if (g.got < g.total) send_next(wsi);
        break;
    case PIPELINED:
        if (can_send()) want_write(wsi);
        break;
    default:
        break;
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fail("connection error: %s", in ? (const char *)in : "(no detail)");
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        g.t_open = now_s();
        g.opened++;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        g.closed++;
        if (!g.closing && !g.shutting_down) fail("connection closed by the peer");
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        /* A message can come in several callbacks (rx buffer full, or several
         * frames): append, and only count it once the last frame's last byte
         * is in. */
        if (g.rx_len + len > g.rx_cap) {
            size_t cap = g.rx_cap ? g.rx_cap : 4096;
            while (cap < g.rx_len + len) cap *= 2;
            unsigned char *p = realloc(g.rx, cap);
            if (!p) { fail("out of memory"); return -1; }
            g.rx = p;
            g.rx_cap = cap;
        }
        memcpy(g.rx + g.rx_len, in, len);
        g.rx_len += len;
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            size_t whole = g.rx_len;
            g.rx_len = 0;
            on_message(wsi, whole);
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        g.wr_pending = 0;
        if (g.closing == 1) {
            /* Returning nonzero closes; lws sends this close frame first and
             * waits for the server's, then CLIENT_CLOSED. */
            g.closing = 2;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        if (g.closing) break; /* WRITEABLE can come again while lws awaits the ack:
                               * returning -1 then would drop the connection */
        if (!can_send()) break;
        /* One lws_write per WRITEABLE callback: one fragment (whole message
         * when it fits in FRAG). lws masks the payload in place, so it is
         * copied in again every time. */
        size_t chunk = g.size - g.off < FRAG ? g.size - g.off : FRAG;
        int first = g.off == 0, last = g.off + chunk == g.size;
        memcpy(g.tx + LWS_PRE, g.msg + g.off, chunk);
        int flags = lws_write_ws_flags(g.binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT, first, last);
        /* A short send is buffered by lws (it then holds WRITEABLE back until
         * that is flushed); less than chunk means an error. */
        if (lws_write(wsi, g.tx + LWS_PRE, chunk, flags) < (int)chunk) {
            fail("lws_write failed");
            return -1;
        }
        g.off = last ? 0 : g.off + chunk;
        if (last) g.sent++;
        if (can_send()) want_write(wsi);
        break;
    }
    default:
        return 0; /* lws's internal callbacks are not progress */
    }
    g.progress++;
    return 0;
}

static const struct lws_protocols protocols[] = {
    /* name, callback, per-session data, rx buffer size (also caps one send()
     * when tx_packet_size is 0), id, user, tx packet size */
    {"bench", callback, 0, FRAG, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* --------------------------------------------------------------- the loop */

static void on_watchdog(lws_sorted_usec_list_t *sul) {
    if (g.progress != g.wd_seen) {
        g.wd_seen = g.progress;
        g.wd_stalled = 0;
    } else if (++g.wd_stalled >= STALL_S) {
        fail("timeout: no callback for %d s", STALL_S);
        lws_cancel_service(g.ctx); /* see on_idle_end() */
    }
    lws_sul_schedule(g.ctx, 0, sul, on_watchdog, LWS_US_PER_SEC);
}

/* Run the event loop until *v >= target; exits on a failure or a stall. */
static void service_until(const long *v, long target) {
    while (*v < target && !g.err[0])
        if (lws_service(g.ctx, 0) < 0) fail("lws_service failed");
    if (g.err[0]) die(g.err);
}

static char g_host[256], g_path[512];

static struct lws *connect_to(const char *url) {
    char u[768];
    const char *prot, *ads, *path;
    int port;
    snprintf(u, sizeof u, "%s", url);
    if (lws_parse_uri(u, &prot, &ads, &port, &path)) die("bad url");
    snprintf(g_host, sizeof g_host, "%s", ads);
    /* lws_parse_uri drops the leading '/' (and gives "/" for no path) */
    snprintf(g_path, sizeof g_path, "%s%s", path[0] == '/' ? "" : "/", path);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = g.ctx;
    ci.address = g_host;
    ci.port = port;
    ci.path = g_path;
    ci.host = g_host;
    ci.origin = g_host;
    ci.ssl_connection = strcmp(prot, "wss") == 0 ? LCCSCF_USE_SSL : 0; /* CA-verified */
    ci.local_protocol_name = "bench"; /* no Sec-WebSocket-Protocol is asked for */
    struct lws *wsi = NULL;
    ci.pwsi = &wsi;
    if (!lws_client_connect_via_info(&ci)) {
        fail("connect to %s failed", url);
        die(g.err);
    }
    return wsi;
}

static void create_context(const char *url) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols; /* .extensions stays NULL: permessage-deflate is not offered */
    info.gid = -1;
    info.uid = -1;
    info.pt_serv_buf_size = FRAG;
    if (strncmp(url, "wss://", 6) == 0) {
        /* The client SSL_CTX is made once here, trusting only the given CA. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = arg_s("ca", NULL);
        if (!info.client_ssl_ca_filepath) die("ca= is required for wss://");
    }
    g.ctx = lws_create_context(&info);
    if (!g.ctx) die("lws_create_context failed");
    lws_sul_schedule(g.ctx, 0, &g.watchdog, on_watchdog, LWS_US_PER_SEC);
}

/* Clean close: CLOSE frame out, the server's back, socket closed. */
static void close_conn(void) {
    long c = g.closed;
    g.closing = 1;
    lws_callback_on_writable(g.wsi);
    service_until(&g.closed, c + 1);
    g.closing = 0;
    g.wsi = NULL;
}

static void open_conn(const char *url) {
    long o = g.opened;
    g.wr_pending = 0;
    g.wsi = connect_to(url);
    service_until(&g.opened, o + 1);
}

/* ---------------------------------------------------------------- scenarios */

static unsigned char *payload(size_t size, int byte) {
    unsigned char *p = malloc(size ? size : 1);
    if (!p) die("out of memory");
    memset(p, byte, size);
    return p;
}

static int pingpong(const char *url) {
    long n = arg_l("n", 20000);
    g.warmup = arg_l("warmup", 1000);
    g.size = arg_l("size", 64);
    unsigned char *p = payload(g.size, 'x');
    g.msg = p;
    g.lat = malloc(sizeof(double) * n);
    g.total = n + g.warmup;
    open_conn(url);
    send_next(g.wsi);
    service_until(&g.got, g.total);
    close_conn();
    print_lat(g.lat, n);
    free(p);
    return 0;
}

static int pipelined(const char *url) {
    long n = arg_l("n", 1000000);
    g.size = arg_l("size", 64);
    unsigned char *p = payload(g.size, 'x');
    g.msg = p;
    open_conn(url);
    double t0 = now_s();
    g.allowed = n;
    want_write(g.wsi);
    service_until(&g.got, n);
    double secs = now_s() - t0;
    close_conn();
    printf("{\"n\":%ld,\"secs\":%.3f,\"msgs_per_s\":%.0f}\n", n, secs, n / secs);
    free(p);
    return 0;
}

static int bulk(const char *url) {
    long reps = arg_l("reps", 3);
    g.size = arg_l("size", 16L << 20);
    g.binary = 1;
    unsigned char *p = payload(g.size, 7);
    g.msg = p;
    g.lat = malloc(sizeof(double) * (reps + 1));
    g.total = reps + 1;
    open_conn(url);
    send_next(g.wsi);
    service_until(&g.got, g.total);
    close_conn();
    qsort(g.lat + 1, reps, sizeof(double), cmp_d); /* lat[0]: warm-up */
    double med = pct(g.lat + 1, reps, 0.5);
    printf("{\"size\":%zu,\"reps\":%ld,\"median_ms\":%.3f,\"mib_per_s\":%.1f}\n", g.size, reps,
           med * 1e3, g.size / 1048576.0 / med);
    free(p);
    return 0;
}

static void on_idle_end(lws_sorted_usec_list_t *sul) {
    (void)sul;
    g.idle_done = 1;
    /* Timers run inside lws_service() just before its poll(), which would
     * then sleep until lws's next own timer (~30 s): wake it so that
     * lws_service() returns. */
    lws_cancel_service(g.ctx);
}

static int scale(const char *url) {
    long n = arg_l("n", 1000);
    double idle = arg_d("idle", 5);
    long r0 = rss_kib();
    double t0 = now_s();
    for (long i = 0; i < n; i++) connect_to(url); /* all connects start before any completes */
    service_until(&g.opened, n);
    double open_s = now_s() - t0;
    long r1 = rss_kib();
    /* Idle: keep servicing (as an application would), with no watchdog; one
     * timer ends it. */
    lws_sul_cancel(&g.watchdog);
    lws_sul_schedule(g.ctx, 0, &g.idle_timer, on_idle_end, (lws_usec_t)(idle * LWS_US_PER_SEC));
    double c0 = cpu_us();
    while (!g.idle_done && !g.err[0]) lws_service(g.ctx, 0);
    double c1 = cpu_us();
    if (g.err[0]) die(g.err);
    printf("{\"n\":%ld,\"open_s\":%.3f,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
           "\"rss_per_socket_kib\":%.1f,\"idle_s\":%g,\"idle_cpu_ms\":%.2f}\n",
           n, open_s, r0, r1, (double)(r1 - r0) / n, idle, (c1 - c0) / 1e3);
    return 0;
}

static int handshake(const char *url) {
    long n = arg_l("n", 200);
    double *lat = malloc(sizeof(double) * (n + 5));
    for (long i = 0; i < n + 5; i++) {
        double t0 = now_s();
        open_conn(url); /* lws_client_connect_via_info() to CLIENT_ESTABLISHED */
        lat[i] = (g.t_open - t0) * 1e6;
        close_conn();
    }
    print_lat(lat + 5, n); /* the first 5: warm-up */
    free(lat);
    return 0;
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: lws_client pingpong|pipelined|bulk|scale|handshake key=value...\n");
        return 2;
    }
    const char *url = arg_s("url", NULL);
    if (!url) { fprintf(stderr, "url= is required\n"); return 2; }
    static const char *names[] = {"pingpong", "pipelined", "bulk", "scale", "handshake"};
    static int (*const fns[])(const char *) = {pingpong, pipelined, bulk, scale, handshake};
    int k = 0;
    while (k < 5 && strcmp(argv[1], names[k])) k++;
    if (k == 5) { fprintf(stderr, "no scenario %s\n", argv[1]); return 2; }
    g.scn = (enum scn)k;
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    g.tx = malloc(LWS_PRE + FRAG);
    if (!g.tx) die("out of memory");
    create_context(url);
    int rc = fns[k](url);
    fflush(stdout);
    g.shutting_down = 1;
    lws_sul_cancel(&g.watchdog);
    lws_context_destroy(g.ctx);
    free(g.tx);
    free(g.rx);
    free(g.lat);
    return rc;
}
