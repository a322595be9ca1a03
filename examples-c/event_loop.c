/*
 * event_loop.c: an event-driven host. The main thread sleeps on a condition
 * variable; wsb_set_notify's callback (which runs on the socket's I/O thread)
 * only signals it. The main thread then drains events with wsb_poll. No busy
 * polling: an idle host uses no CPU.
 *
 *   event_loop URL [COUNT]
 *
 * Sends COUNT (default 100) numbered messages, checks every echo arrives in
 * order, closes, and exits 0 on a clean close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsbridge.h"

#ifdef _WIN32
#include <windows.h>
static CRITICAL_SECTION mu;
static CONDITION_VARIABLE cv;
static void lock_init(void) { InitializeCriticalSection(&mu); InitializeConditionVariable(&cv); }
static void lock(void) { EnterCriticalSection(&mu); }
static void unlock(void) { LeaveCriticalSection(&mu); }
static void signal_one(void) { WakeConditionVariable(&cv); }
/* Returns nonzero on timeout. */
static int wait_ms(unsigned ms) { return !SleepConditionVariableCS(&cv, &mu, ms); }
#else
#include <errno.h>
#include <pthread.h>
#include <time.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void lock_init(void) {}
static void lock(void) { pthread_mutex_lock(&mu); }
static void unlock(void) { pthread_mutex_unlock(&mu); }
static void signal_one(void) { pthread_cond_signal(&cv); }
static int wait_ms(unsigned ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    return pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT;
}
#endif

static int pending = 1; /* start by draining: OPEN may predate the callback */
static unsigned long wakeups = 0;

/* Runs on the I/O thread: keep it tiny, just wake the host. */
static void on_event(void *user_data, wsb_socket s) {
    (void)user_data;
    (void)s;
    lock();
    pending = 1;
    signal_one();
    unlock();
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo";
    int count = argc > 2 ? atoi(argv[2]) : 100;
    int next_expected = 0, sent = 0, done = 0, ok = 0;
    wsb_socket ws = 0;
    wsb_result r;
    wsb_event ev;

    lock_init();
    if ((r = wsb_connect(url, NULL, &ws)) != WSB_OK) {
        fprintf(stderr, "connect: %s: %s\n", wsb_result_name(r), wsb_last_error());
        return 1;
    }
    wsb_set_notify(ws, on_event, NULL);

    while (!done) {
        lock();
        while (!pending) {
            if (wait_ms(10000)) { /* bounded: a stuck run fails instead of hanging */
                unlock();
                fprintf(stderr, "no event for 10 s\n");
                wsb_free(ws);
                return 1;
            }
        }
        pending = 0;
        wakeups++;
        unlock();
        while (!done && (r = wsb_poll(ws, &ev)) == WSB_OK) {
            switch (ev.kind) {
            case WSB_EVENT_OPEN:
                for (sent = 0; sent < count; sent++) {
                    char buf[32];
                    int n = snprintf(buf, sizeof buf, "msg %d", sent);
                    if (wsb_send_text(ws, buf, (size_t)n) != WSB_OK) {
                        fprintf(stderr, "send: %s\n", wsb_last_error());
                        break;
                    }
                }
                if (count == 0) wsb_close(ws, 1000, "nothing to send");
                break;
            case WSB_EVENT_TEXT: {
                char want[32];
                int n = snprintf(want, sizeof want, "msg %d", next_expected);
                if ((size_t)n != ev.len || memcmp(want, ev.data, ev.len) != 0) {
                    fprintf(stderr, "out of order: got \"%s\", want \"%s\"\n", ev.data, want);
                    wsb_close(ws, 1000, NULL);
                } else if (++next_expected == count) {
                    wsb_close(ws, 1000, "all echoed");
                }
                break;
            }
            case WSB_EVENT_ERROR:
                fprintf(stderr, "error: %s: %s\n", wsb_result_name(ev.error), ev.data);
                break;
            case WSB_EVENT_CLOSE:
                printf("close: code %u, clean %d\n", ev.close_code, ev.clean);
                ok = ev.clean && next_expected == count;
                done = 1;
                break;
            default:
                break;
            }
        }
    }
    printf("%d of %d echoes in order, %lu wake-ups\n", next_expected, count, wakeups);
    wsb_free(ws);
    wsb_shutdown(1000);
    return ok ? 0 : 1;
}
