/*
 * wsb-luau: a small executor-like host for Luau scripts.
 *
 * It runs one script as the main coroutine and provides print, warn,
 * collectgarbage("collect" | "count"), the task library (spawn, defer, delay,
 * wait, cancel) and, when built with WSLUAU_WEBSOCKET, the WebSocket library
 * from ../websocket.c.
 *
 * Scheduler: one thread. Each step resumes deferred threads, due timers and
 * threads deferred meanwhile, then lets the WebSocket binding dispatch socket
 * events (wsluau_pump). When there is nothing to do it sleeps on a condition
 * variable until the next timer, the host timeout, or a wake-up from a
 * network thread (wsb_set_notify via the binding). No busy loop.
 *
 * Exit codes (returned by wsb_luau_run):
 *   0  the script and everything it scheduled finished, no socket is open
 *   1  the script failed to load, raised an error, or stayed suspended with
 *      nothing left that could resume it
 *   2  the script finished, but a spawned coroutine (e.g. a signal handler)
 *      raised an error; each such error was reported when it happened
 *   3  the host timeout expired
 *
 * Luau was built with LUA_USE_LONGJMP and LUAI_MAXCSTACK=1000000 (see the
 * luau-vm crate); this file must be compiled with the same LUAI_MAXCSTACK.
 * Luau errors never cross the Rust frames that call wsb_luau_run: every Luau
 * call below happens under lua_resume / luau_load, which catch them.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "lua.h"
#include "luacode.h"
#include "lualib.h"

#ifdef WSLUAU_WEBSOCKET
#include "websocket.h"
#include "wsbridge.h"
#endif

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

/* ------------------------------------------------------------------------ */
/* Monotonic clock and a wake-up primitive (condition variable).            */

static double mono_now(void)
{
#ifdef _WIN32
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart / (double)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
#endif
}

typedef struct waker {
#ifdef _WIN32
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cond;
#else
    pthread_mutex_t lock;
    pthread_cond_t cond;
#endif
    int pending;
} waker;

static void waker_init(waker *w)
{
    w->pending = 0;
#ifdef _WIN32
    InitializeCriticalSection(&w->lock);
    InitializeConditionVariable(&w->cond);
#else
    pthread_condattr_t attr;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
#endif
}

static void waker_destroy(waker *w)
{
#ifdef _WIN32
    DeleteCriticalSection(&w->lock);
#else
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
#endif
}

#ifdef WSLUAU_WEBSOCKET
/* Any thread: make the scheduler's next (or current) sleep return at once. */
static void waker_wake(void *ud)
{
    waker *w = (waker *)ud;
#ifdef _WIN32
    EnterCriticalSection(&w->lock);
    w->pending = 1;
    LeaveCriticalSection(&w->lock);
    WakeConditionVariable(&w->cond);
#else
    pthread_mutex_lock(&w->lock);
    w->pending = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
#endif
}
#endif

/* Sleep until `deadline` (mono_now() time) or a wake-up; clears the wake-up. */
static void waker_sleep_until(waker *w, double deadline)
{
#ifdef _WIN32
    EnterCriticalSection(&w->lock);
    while (!w->pending) {
        double left = deadline - mono_now();
        if (left <= 0)
            break;
        SleepConditionVariableCS(&w->cond, &w->lock, (DWORD)ceil(left * 1000.0));
    }
    w->pending = 0;
    LeaveCriticalSection(&w->lock);
#else
    struct timespec ts;
    double secs = floor(deadline);
    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((deadline - secs) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->pending) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
            break;
    }
    w->pending = 0;
    pthread_mutex_unlock(&w->lock);
#endif
}

/* ------------------------------------------------------------------------ */
/* Scheduler state.                                                          */

/* A thread waiting to be resumed: by a timer (task.wait / task.delay) or on
   the next step (task.defer). The thread is anchored by `ref`. nargs < 0
   means "resume with the seconds elapsed since `start`" (task.wait). */
typedef struct sched_entry {
    double due;
    double start;
    uint64_t seq;
    int ref;      /* the thread */
    int args_ref; /* table of the arguments, or LUA_NOREF */
    int nargs;
    lua_State *co;
} sched_entry;

typedef struct entry_list {
    sched_entry *items;
    size_t len, cap;
} entry_list;

typedef struct host {
    lua_State *L;     /* main state: never runs script code itself */
    lua_State *main;  /* the script's coroutine */
    int main_ref;
    int main_done;    /* finished without error */
    int main_failed;  /* raised an error (or failed to load) */
    int spawned_failed;
    double deadline;  /* host timeout, mono_now() time */
    double timeout_s;
    int timed_out;
    uint64_t seq;
    entry_list timers;
    entry_list deferred;
    waker wake;
    unsigned interrupt_tick;
} host;

static host *host_of(lua_State *L)
{
    return (host *)lua_getthreaddata(lua_mainthread(L));
}

static void list_push(entry_list *l, sched_entry e)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        sched_entry *items = (sched_entry *)realloc(l->items, cap * sizeof *items);
        if (!items) {
            fprintf(stderr, "wsb-luau: out of memory\n");
            abort();
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->len++] = e;
}

static void list_remove(entry_list *l, size_t i)
{
    memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof l->items[0]);
    l->len--;
}

/* ------------------------------------------------------------------------ */
/* Resuming coroutines and reporting their errors.                          */

static void report_error(lua_State *co, const char *what)
{
    const char *msg = lua_tostring(co, -1);
    char buf[128];
    if (!msg) {
        snprintf(buf, sizeof buf, "(error object is a %s value)", luaL_typename(co, -1));
        msg = buf;
    }
    fprintf(stderr, "wsb-luau: %s: %s\nstacktrace:\n%s", what, msg, lua_debugtrace(co));
    fflush(stderr);
}

/* Resume `co` with the `nargs` values on top of its stack (error != 0: raise
   the value on top of its stack in it instead), and deal with the outcome:
   a finished coroutine is done, a yielded one is owned by whatever it yielded
   to (task.wait, WebSocket.connect, signal:Wait, ...), an error is reported. */
static void resume_from(host *h, lua_State *from, lua_State *co, int nargs, int error)
{
    int status;
    if (h->main_failed || h->timed_out) {
        /* The host is stopping: run nothing more. */
        lua_settop(co, 0);
        return;
    }
    /* `from` (the running thread) carries the C call depth, so unbounded
       nesting (task.spawn inside task.spawn ...) is an error, not a crash. */
    status = error ? lua_resumeerror(co, from) : lua_resume(co, from, nargs);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (status == LUA_OK && co == h->main)
            h->main_done = 1;
        lua_settop(co, 0); /* results / yielded values: nobody reads them */
        return;
    }
    if (status == LUA_BREAK) {
        lua_settop(co, 0);
        return;
    }
    if (co == h->main) {
        report_error(co, "error");
        h->main_failed = 1;
    } else {
        report_error(co, "error in a spawned coroutine");
        h->spawned_failed = 1;
    }
    lua_settop(co, 0);
}

/* The same, from the scheduler itself (also the binding's resume hook). */
static void host_resume(void *ud, lua_State *co, int nargs, int error)
{
    host *h = (host *)ud;
    resume_from(h, h->L, co, nargs, error);
}

#ifdef WSLUAU_WEBSOCKET
/* Network threads: events are waiting, run a scheduler step. */
static void host_wake(void *ud)
{
    waker_wake(&((host *)ud)->wake);
}
#endif

/* ------------------------------------------------------------------------ */
/* Globals: print, warn.                                                     */

static void write_args(lua_State *L, FILE *out)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1)
            fputc('\t', out);
        fwrite(s, 1, len, out);
        lua_pop(L, 1);
    }
    fputc('\n', out);
    fflush(out);
}

static int l_print(lua_State *L)
{
    write_args(L, stdout);
    return 0;
}

static int l_warn(lua_State *L)
{
    fputs("warning: ", stderr);
    write_args(L, stderr);
    return 0;
}

/* collectgarbage("collect" | "count"): Luau's base library has none; scripts
   (and the tests) use it to drop unreachable objects now. */
static int l_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "collect") == 0) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        return 0;
    }
    if (strcmp(opt, "count") == 0) {
        lua_pushnumber(L, lua_gc(L, LUA_GCCOUNT, 0) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
        return 1;
    }
    luaL_argerror(L, 1, "expected \"collect\" or \"count\"");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The task library.                                                          */

/* Pushes on L the coroutine to run for the function or thread at `idx`: a
   new coroutine holding the function, or the thread itself (which must be
   suspended, or, when it is resumed later, may be the running one). */
static lua_State *prepare(lua_State *L, int idx, const char *fname, int later)
{
    lua_State *co;
    if (lua_isfunction(L, idx)) {
        co = lua_newthread(L);
        lua_pushvalue(L, idx);
        lua_xmove(L, co, 1);
    } else if (lua_isthread(L, idx)) {
        co = lua_tothread(L, idx);
        int st = lua_costatus(L, co);
        if (st != LUA_COSUS && !(later && st == LUA_CORUN))
            luaL_error(L, "%s: cannot resume a %s coroutine", fname,
                       st == LUA_CORUN ? "running" : st == LUA_CONOR ? "normal" : "dead");
        lua_pushvalue(L, idx);
    } else {
        luaL_typeerrorL(L, idx, "function or thread");
    }
    return co;
}

/* Copies `nargs` values of L starting at `first` onto co's stack. */
static void push_args(lua_State *L, int first, int nargs, lua_State *co)
{
    lua_checkstack(L, nargs + 1);
    lua_checkstack(co, nargs + LUA_MINSTACK);
    for (int i = 0; i < nargs; i++)
        lua_pushvalue(L, first + i);
    lua_xmove(L, co, nargs);
}

/* task.spawn(f | thread, ...) -> thread: resumes it right now. */
static int task_spawn(lua_State *L)
{
    int nargs = lua_gettop(L) - 1;
    lua_State *co = prepare(L, 1, "task.spawn", 0);
    push_args(L, 2, nargs, co);
    resume_from(host_of(L), L, co, nargs, 0);
    return 1;
}

/* Schedules the thread on top of L's stack (it stays there), to be resumed
   after `delay` seconds with the `nargs` values at L's index `first` (nargs
   < 0: with the seconds elapsed since now). */
static void schedule(lua_State *L, entry_list *list, double delay, int first, int nargs)
{
    host *h = host_of(L);
    sched_entry e;
    double now = mono_now();
    e.co = lua_tothread(L, -1);
    e.ref = lua_ref(L, -1);
    e.args_ref = LUA_NOREF;
    if (nargs > 0) {
        lua_createtable(L, nargs, 0);
        for (int i = 0; i < nargs; i++) {
            lua_pushvalue(L, first + i);
            lua_rawseti(L, -2, i + 1);
        }
        e.args_ref = lua_ref(L, -1);
        lua_pop(L, 1);
    }
    e.nargs = nargs;
    e.start = now;
    e.due = now + (delay > 0 ? delay : 0);
    e.seq = h->seq++;
    list_push(list, e);
}

/* task.defer(f | thread, ...) -> thread: resumes it on the next step. */
static int task_defer(lua_State *L)
{
    int nargs = lua_gettop(L) - 1;
    prepare(L, 1, "task.defer", 1);
    schedule(L, &host_of(L)->deferred, 0, 2, nargs);
    return 1;
}

static double check_seconds(lua_State *L, int idx)
{
    double t = luaL_optnumber(L, idx, 0);
    if (t != t || t < 0)
        t = 0;
    return t;
}

/* task.delay(seconds, f | thread, ...) -> thread */
static int task_delay(lua_State *L)
{
    double t = check_seconds(L, 1);
    int nargs = lua_gettop(L) - 2;
    if (nargs < 0)
        luaL_typeerrorL(L, 2, "function or thread");
    prepare(L, 2, "task.delay", 1);
    schedule(L, &host_of(L)->timers, t, 3, nargs);
    return 1;
}

/* task.wait(seconds?) -> elapsed seconds. Yields the calling coroutine. */
static int task_wait(lua_State *L)
{
    double t = check_seconds(L, 1);
    if (!lua_isyieldable(L))
        luaL_error(L, "task.wait: the current thread cannot yield");
    lua_pushthread(L);
    schedule(L, &host_of(L)->timers, t, 0, -1);
    lua_pop(L, 1);
    return lua_yield(L, 0);
}

static void entry_unref(lua_State *L, sched_entry *e)
{
    lua_unref(L, e->ref);
    lua_unref(L, e->args_ref);
}

static void cancel_in(lua_State *L, entry_list *list, lua_State *co)
{
    for (size_t i = 0; i < list->len;) {
        if (list->items[i].co == co) {
            entry_unref(L, &list->items[i]);
            list_remove(list, i);
        } else {
            i++;
        }
    }
}

/* task.cancel(thread): it will not be resumed by the scheduler. */
static int task_cancel(lua_State *L)
{
    host *h = host_of(L);
    luaL_checktype(L, 1, LUA_TTHREAD);
    lua_State *co = lua_tothread(L, 1);
    cancel_in(L, &h->timers, co);
    cancel_in(L, &h->deferred, co);
    return 0;
}

static const luaL_Reg task_lib[] = {
    {"spawn", task_spawn},
    {"defer", task_defer},
    {"delay", task_delay},
    {"wait", task_wait},
    {"cancel", task_cancel},
    {NULL, NULL},
};

/* Resumes one scheduled entry (already removed from its list). */
static void run_entry(host *h, sched_entry e, double now)
{
    lua_State *L = h->L;
    int nargs = e.nargs;
    /* Keep the thread reachable while it runs. */
    lua_getref(L, e.ref);
    if (e.args_ref != LUA_NOREF)
        lua_getref(L, e.args_ref);
    else
        lua_pushnil(L);
    entry_unref(L, &e);
    if (lua_costatus(L, e.co) != LUA_COSUS) {
        lua_pop(L, 2);
        return;
    }
    lua_checkstack(e.co, (nargs > 0 ? nargs : 1) + LUA_MINSTACK);
    if (nargs < 0) {
        lua_pushnumber(e.co, now - e.start);
        nargs = 1;
    } else {
        for (int i = 1; i <= nargs; i++) {
            lua_rawgeti(L, -1, i);
            lua_xmove(L, e.co, 1);
        }
    }
    lua_pop(L, 1); /* the arguments */
    host_resume(h, e.co, nargs, 0);
    lua_pop(L, 1);
}

/* Resumes every timer due at `now` that was scheduled before this step
   (a task.wait(0) made now runs on the next step), earliest first. */
static void run_timers(host *h, double now)
{
    uint64_t limit = h->seq;
    for (;;) {
        size_t best = (size_t)-1;
        for (size_t i = 0; i < h->timers.len; i++) {
            sched_entry *e = &h->timers.items[i];
            if (e->due > now || e->seq >= limit)
                continue;
            if (best == (size_t)-1 || e->due < h->timers.items[best].due ||
                (e->due == h->timers.items[best].due && e->seq < h->timers.items[best].seq))
                best = i;
        }
        if (best == (size_t)-1 || h->main_failed || h->timed_out)
            return;
        sched_entry e = h->timers.items[best];
        list_remove(&h->timers, best);
        run_entry(h, e, now);
    }
}

/* Resumes the threads deferred before this call, in order. */
static void run_deferred(host *h)
{
    uint64_t limit = h->seq;
    while (h->deferred.len > 0 && h->deferred.items[0].seq < limit && !h->main_failed && !h->timed_out) {
        sched_entry e = h->deferred.items[0];
        list_remove(&h->deferred, 0);
        run_entry(h, e, mono_now());
    }
}

/* ------------------------------------------------------------------------ */
/* Host timeout inside long-running Luau code.                               */

static void on_interrupt(lua_State *L, int gc)
{
    host *h;
    if (gc >= 0)
        return; /* may only raise outside the garbage collector */
    h = host_of(L);
    if (h == NULL || ++h->interrupt_tick % 4096 != 0)
        return;
    if (mono_now() >= h->deadline) {
        /* A script stuck in a loop: stop the whole process. pcall could catch
           an error raised here, so do not rely on one. */
        fprintf(stderr, "wsb-luau: timed out after %g s (host timeout) while running Luau code\nstacktrace:\n%s",
                h->timeout_s, lua_debugtrace(L));
        fflush(stdout);
        fflush(stderr);
        exit(3);
    }
}

/* ------------------------------------------------------------------------ */
/* Loading and running the script.                                           */

/* fopen and strerror, without what MSVC's /sdl turns into errors (C4996). */
static FILE *open_for_reading(const char *path)
{
#ifdef _MSC_VER
    FILE *f = NULL;
    return fopen_s(&f, path, "rb") == 0 ? f : NULL;
#else
    return fopen(path, "rb");
#endif
}

static const char *error_text(int err, char *buf, size_t size)
{
#ifdef _MSC_VER
    if (strerror_s(buf, size, err) != 0)
        snprintf(buf, size, "error %d", err);
    return buf;
#else
    (void)buf;
    (void)size;
    return strerror(err);
#endif
}

/* Reads the whole file; NULL with errno set on failure. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = open_for_reading(path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = (char *)realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int has_work(host *h)
{
    return h->timers.len > 0 || h->deferred.len > 0;
}

static int sockets_active(host *h)
{
#ifdef WSLUAU_WEBSOCKET
    return wsluau_active(h->L);
#else
    (void)h;
    return 0;
#endif
}

/* Runs the scheduler until everything finished, the script failed or the
   host timeout expired. */
static void run_loop(host *h)
{
    int collected = 0;
    for (;;) {
        double now = mono_now();
        if (h->main_failed)
            return;
        if (now >= h->deadline) {
            h->timed_out = 1;
            return;
        }
        run_deferred(h); /* what the last step deferred comes first */
        run_timers(h, now);
        run_deferred(h);
#ifdef WSLUAU_WEBSOCKET
        if (!h->main_failed && !h->timed_out && wsluau_pump(h->L) > 0)
            collected = 0;
        run_deferred(h);
#endif
        if (h->main_failed || h->timed_out)
            return;
        if (has_work(h) && h->deferred.len > 0)
            continue; /* deferred work made during this step runs now */
        if (!has_work(h)) {
            if (sockets_active(h) == 0)
                return;
            /* Only sockets are left. Sockets nobody can reach any more are
               closed by the garbage collector: collect once before waiting for
               the remaining ones. */
            if (!collected) {
                lua_gc(h->L, LUA_GCCOLLECT, 0);
                collected = 1;
                continue;
            }
        } else {
            collected = 0;
        }
        double until = h->deadline;
        for (size_t i = 0; i < h->timers.len; i++)
            if (h->timers.items[i].due < until)
                until = h->timers.items[i].due;
        waker_sleep_until(&h->wake, until);
    }
}

#ifdef WSLUAU_WEBSOCKET
/* The log hook of --log: one fprintf per line (stdio locks each call, so
   lines from several I/O threads do not interleave). It runs on wsbridge's
   threads and calls nothing of wsbridge's (only wsb_last_error,
   wsb_result_name and wsb_version would work there). */
static void host_log(void *user, wsb_log_level level, wsb_socket s, const char *line)
{
    static const char *const names[] = {"?", "ERROR", "WARN", "INFO", "DEBUG"};
    int i = (int)level;
    (void)user;
    if (i < 1 || i > 4)
        i = 0;
    fprintf(stderr, "wsb-luau: [%s] socket %llu: %s\n", names[i], (unsigned long long)s, line);
}
#endif

/* Declared and documented in host.h. */
int wsb_luau_log(const char *level)
{
#ifdef WSLUAU_WEBSOCKET
    static const char *const names[] = {"error", "warn", "info", "debug"};
    int i;
    if (!level)
        return wsb_set_log(NULL, NULL, WSB_LOG_ERROR) == WSB_OK ? 0 : -1;
    for (i = 0; i < 4; i++)
        if (strcmp(level, names[i]) == 0)
            return wsb_set_log(host_log, NULL, (wsb_log_level)(i + 1)) == WSB_OK ? 0 : -1;
#else
    (void)level;
#endif
    return -1;
}

/* Declared and documented in host.h. */
int wsb_luau_run(const char *script, int argc, const char *const *argv, double timeout_s, int compression,
                 int binary_as_buffer)
{
    host h;
    size_t src_len = 0, bc_len = 0, script_len;
    char *src, *bc, *chunk;
    char errbuf[128];
    int code;

    memset(&h, 0, sizeof h);
    h.timeout_s = timeout_s;
    h.deadline = mono_now() + timeout_s;
    waker_init(&h.wake);

    src = read_file(script, &src_len);
    if (!src) {
        fprintf(stderr, "wsb-luau: cannot read %s: %s\n", script, error_text(errno, errbuf, sizeof errbuf));
        waker_destroy(&h.wake);
        return 1;
    }

    h.L = luaL_newstate();
    if (!h.L) {
        fprintf(stderr, "wsb-luau: cannot create a Luau state\n");
        free(src);
        waker_destroy(&h.wake);
        return 1;
    }
    lua_setthreaddata(h.L, &h);
    lua_callbacks(h.L)->interrupt = on_interrupt;
    luaL_openlibs(h.L);

    lua_pushcfunction(h.L, l_print, "print");
    lua_setglobal(h.L, "print");
    lua_pushcfunction(h.L, l_warn, "warn");
    lua_setglobal(h.L, "warn");
    lua_pushcfunction(h.L, l_collectgarbage, "collectgarbage");
    lua_setglobal(h.L, "collectgarbage");
    luaL_register(h.L, "task", task_lib);
    lua_pop(h.L, 1);
#ifdef WSLUAU_WEBSOCKET
    {
        wsluau_host hooks;
        memset(&hooks, 0, sizeof hooks);
        hooks.resume = host_resume;
        hooks.wake = host_wake;
        hooks.ud = &h;
        hooks.disable_compression = !compression;
        hooks.binary_as_buffer = binary_as_buffer;
        wsluau_open(h.L, &hooks);
    }
#else
    (void)compression;
    (void)binary_as_buffer;
#endif
    luaL_sandbox(h.L);

    h.main = lua_newthread(h.L);
    h.main_ref = lua_ref(h.L, -1);
    lua_pop(h.L, 1);
    luaL_sandboxthread(h.main);

    bc = luau_compile(src, src_len, NULL, &bc_len);
    free(src);
    script_len = strlen(script);
    chunk = (char *)malloc(script_len + 2);
    if (!chunk)
        abort();
    chunk[0] = '@';
    memcpy(chunk + 1, script, script_len + 1);
    if (luau_load(h.main, chunk, bc, bc_len, 0) != 0) {
        fprintf(stderr, "wsb-luau: %s\n", lua_tostring(h.main, -1));
        h.main_failed = 1;
    }
    free(chunk);
    free(bc);

    if (!h.main_failed) {
        lua_checkstack(h.main, argc + LUA_MINSTACK);
        for (int i = 0; i < argc; i++)
            lua_pushstring(h.main, argv[i]);
        host_resume(&h, h.main, argc, 0);
        run_loop(&h);
    }

    if (h.timed_out)
        fprintf(stderr, "wsb-luau: timed out after %g s (host timeout; see --timeout)\n", timeout_s);
    else if (!h.main_failed && !h.main_done) {
        fprintf(stderr, "wsb-luau: error: the script is suspended and nothing is left that could resume it\n"
                        "stacktrace:\n%s", lua_debugtrace(h.main));
        h.main_failed = 1;
    }

#ifdef WSLUAU_WEBSOCKET
    /* Close every socket (OnClose fires) and shut the library down. Handlers
       still run during the close unless the host is failing. */
    {
        int stopping_main_failed = h.main_failed, stopping_timed_out = h.timed_out;
        h.main_failed = 0;
        h.timed_out = 0;
        wsluau_shutdown(h.L, 2000);
        h.main_failed = h.main_failed || stopping_main_failed;
        h.timed_out = stopping_timed_out;
    }
#endif

    for (size_t i = 0; i < h.timers.len; i++)
        entry_unref(h.L, &h.timers.items[i]);
    for (size_t i = 0; i < h.deferred.len; i++)
        entry_unref(h.L, &h.deferred.items[i]);
    free(h.timers.items);
    free(h.deferred.items);
    lua_close(h.L);
    waker_destroy(&h.wake);
    fflush(stdout);
    fflush(stderr);

    if (h.timed_out)
        code = 3;
    else if (h.main_failed)
        code = 1;
    else if (h.spawned_failed)
        code = 2;
    else
        code = 0;
    return code;
}
