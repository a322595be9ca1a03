/*
 * websocket.c — the WebSocket library for Luau scripts, on top of wsbridge.
 *
 * This file maps Luau objects to wsbridge events, and nothing else: a
 * WebSocket object is a userdata holding a ws_rec (its socket); the OPEN or
 * ERROR event resumes the coroutine waiting in WebSocket.connect; TEXT and
 * BINARY fire OnMessage; CLOSE fires OnClose. The signals are signals.c's.
 * Which sockets have events waiting is ready_set.c's: the only part another
 * thread touches (on_notify, below, runs on a socket's I/O thread and only
 * marks that socket there); everything else here runs on the scheduler's
 * thread.
 *
 * The reference binding: copy this file, websocket.h, signals.c, signals.h,
 * ready_set.c and ready_set.h into your Luau host (executor). They use only
 * Luau's C API (lua.h, lualib.h), wsbridge.h and, in ready_set.c, a mutex
 * (pthreads, or a Windows critical section). Scripts get the standard
 * (sUNC) API:
 *
 *     local ws = WebSocket.connect("wss://example.org/socket")  -- yields until open
 *     ws.OnMessage:Connect(function(message, isBinary) print(message) end)
 *     ws.OnClose:Connect(function(code, reason) print("closed", code) end)
 *     ws:Send("hello")            -- text; ws:Send(bytes, true) sends binary
 *     ws:Send(buffer.create(8))   -- a buffer always goes as binary
 *     ws:Close()
 *
 * WebSocket.connect(url [, {headers = {...}, protocols = {...}, timeout = s}])
 * yields the calling coroutine until the socket is open and raises
 * "WebSocket.connect: <cause>" on failure. Like a browser, it offers
 * permessage-deflate compression (RFC 7692); the host can switch that off
 * (wsluau_host.disable_compression). OnMessage delivers every message as a
 * string unless the host sets wsluau_host.binary_as_buffer (binary messages
 * then arrive as buffers). OnMessage and OnClose are signals (signals.c):
 * Connect / Once / Wait; connections have Disconnect / Connected; each
 * handler runs in its own new coroutine. A socket object nobody can reach is
 * closed and freed by the garbage collector, but one that is connecting, or
 * open with handlers connected (or coroutines in :Wait()), stays alive by
 * itself.
 *
 * HOW A HOST USES IT (two entry points, plus shutdown; see websocket.h):
 *
 *   1. wsluau_open(L, &host) — install the global `WebSocket` into the main
 *      lua_State, before luaL_sandbox. `host` (zeroed, then filled in) gives
 *      the binding two hooks into your scheduler: `resume` (run a coroutine
 *      task.spawn-style and handle its errors/yields) and `wake` (called on
 *      a network thread when events are waiting: wake your scheduler, e.g.
 *      signal a condition variable); and settings: `disable_compression`,
 *      `binary_as_buffer`.
 *
 *   2. wsluau_pump(L) — call it on the scheduler thread on every scheduler
 *      step (or whenever `wake` fired). It never blocks: it drains the
 *      events of the sockets that reported some and, right there, resumes
 *      coroutines waiting in WebSocket.connect and fires OnMessage /
 *      OnClose. Handlers therefore run on your scheduler thread only, never
 *      on a network thread.
 *
 *   wsluau_active(L) says whether sockets are still connecting/open/closing
 *   (keep the scheduler running while it is non-zero), and
 *   wsluau_shutdown(L, timeout_ms) closes every socket (OnClose fires) and
 *   calls wsb_shutdown; call it before lua_close.
 *
 * Scripts must run in coroutines (lua_newthread + lua_resume) so that
 * WebSocket.connect and signal:Wait can yield. Compile with the same
 * LUAI_MAXCSTACK as your Luau VM.
 *
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "ready_set.h"
#include "signals.h"
#include "websocket.h"
#include "wsbridge.h"

#define STATE_KEY "wsluau.state"
#define WS_MT "WebSocket"

#define DEFAULT_CONNECT_TIMEOUT_S 30.0
#define MAX_ERROR 512

enum { SIG_MESSAGE = 0, SIG_CLOSE = 1 };
enum { WS_CONNECTING, WS_OPEN, WS_CLOSING, WS_CLOSED };

typedef struct ws_state ws_state;

/* The C side of one WebSocket object; it lives inside the object's userdata. */
typedef struct ws_rec {
    ws_state *st; /* NULL once the binding has shut down */
    struct ws_rec *prev, *next; /* every object, for wsluau_shutdown */
    wsb_socket handle;          /* 0 once released */
    int state;                  /* WS_* as far as dispatched events tell */
    /* While connecting: registry refs of the object (which keeps a
       connecting socket alive) and of the coroutine waiting in
       WebSocket.connect. LUA_NOREF otherwise. */
    int anchor_ref;
    int connect_ref;
    /* Listeners of OnMessage and OnClose together (signals.c counts them for
       us). A signal with listeners keeps itself and this object alive. */
    int listeners;
    /* The socket's place in st->ready, and on_notify's user_data: it lives
       as long as the handle (removed after wsb_free). */
    ready_node ready;
} ws_rec;

struct ws_state {
    wsluau_host host;
    ws_rec *head, *tail;
    int active; /* sockets not closed */
    int shutting_down;
    int pumping;
    ready_set ready; /* the sockets that have events waiting */
};

/* Runs on a socket's I/O thread when it queued an event: marks the socket
   (and wakes the host if that is news). `user_data` is the socket's node. */
static void on_notify(void *user_data, wsb_socket socket)
{
    (void)socket;
    ready_mark((ready_node *)user_data);
}

/* ------------------------------------------------------------------------ */
/* State, helpers.                                                           */

static ws_state *state_of(lua_State *L)
{
    ws_state *st;
    lua_rawgetfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    st = (ws_state *)lua_tolightuserdata(L, -1);
    lua_pop(L, 1);
    return st;
}

static ws_state *check_state(lua_State *L)
{
    ws_state *st = state_of(L);
    if (!st)
        luaL_error(L, "WebSocket: the library has been shut down");
    return st;
}

static ws_rec *check_ws(lua_State *L, int idx)
{
    return (ws_rec *)luaL_checkudata(L, idx, WS_MT);
}

/* wsb_last_error(), or the result's name when the detail is empty. */
static void last_error(wsb_result r, char *buf, size_t size)
{
    const char *detail = wsb_last_error();
    snprintf(buf, size, "%s", detail && *detail ? detail : wsb_result_name(r));
}

static void unlink_rec(ws_rec *rec)
{
    ws_state *st = rec->st;
    if (rec->prev)
        rec->prev->next = rec->next;
    else
        st->head = rec->next;
    if (rec->next)
        rec->next->prev = rec->prev;
    else
        st->tail = rec->prev;
    rec->prev = rec->next = NULL;
}

/* Forgets the library socket: no more events or notifications. */
static void release_handle(ws_rec *rec)
{
    if (rec->handle) {
        wsb_set_notify(rec->handle, NULL, NULL);
        /* wsb_free waits for an on_notify in progress, and none starts after
           it: only then may the node leave the ready set. */
        wsb_free(rec->handle);
        ready_remove(&rec->ready);
        rec->handle = 0;
    }
}

static void mark_closed(ws_rec *rec)
{
    if (rec->state != WS_CLOSED) {
        rec->state = WS_CLOSED;
        if (rec->st)
            rec->st->active--;
    }
}

/* Userdata destructor: the object became unreachable (or the state closes).
   Runs inside the garbage collector: no Luau calls here. An object that is
   connecting or listened to is reachable, so it only gets here without
   either. */
static void ws_dtor(lua_State *L, void *p)
{
    ws_rec *rec = (ws_rec *)p;
    (void)L;
    release_handle(rec); /* an open socket is closed with 1001 in the background */
    if (rec->st) {
        mark_closed(rec);
        unlink_rec(rec);
    }
}

/* Runs `co` through the host's resume hook, or signals.c's fallback. */
static void resume(ws_state *st, lua_State *L, lua_State *co, int nargs, int error)
{
    if (st && st->host.resume)
        st->host.resume(st->host.ud, co, nargs, error);
    else
        luasig_resume(L, co, nargs, error);
}

/* Drops what kept a connecting socket alive (the connect has an outcome). */
static void release_connect(lua_State *L, ws_rec *rec)
{
    lua_unref(L, rec->anchor_ref);
    lua_unref(L, rec->connect_ref);
    rec->anchor_ref = LUA_NOREF;
    rec->connect_ref = LUA_NOREF;
}

/* ------------------------------------------------------------------------ */
/* OnMessage and OnClose: signals from signals.c, made on first use and      */
/* cached, one weak-valued registry table per kind, under the ws_rec's       */
/* address. A signal refers to its object, and one with listeners keeps      */
/* itself alive: so an open socket with handlers stays alive, and one        */
/* without can be collected.                                                 */

/* The registry keys of the two caches, indexed by SIG_MESSAGE, SIG_CLOSE. */
static const char *const signal_cache[] = {"wsluau.OnMessage", "wsluau.OnClose"};

static void signal_resume(void *ud, lua_State *L, lua_State *co, int nargs)
{
    resume(((ws_rec *)ud)->st, L, co, nargs, 0);
}

static void signal_listeners_changed(void *ud, int delta)
{
    ((ws_rec *)ud)->listeners += delta;
}

static const luasig_hooks signal_hooks = {signal_resume, signal_listeners_changed, "WebSocket is closed"};

/* Pushes the signal `which` of `rec` (object at obj_idx), creating it if
   `obj_idx` is non-zero; pushes nil if it does not exist and obj_idx is 0. */
static void push_signal(lua_State *L, ws_rec *rec, int which, int obj_idx)
{
    if (obj_idx != 0)
        obj_idx = lua_absindex(L, obj_idx);
    lua_rawgetfield(L, LUA_REGISTRYINDEX, signal_cache[which]);
    lua_pushlightuserdata(L, rec);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1) && obj_idx != 0) {
        lua_pop(L, 1);
        luasig_new(L, obj_idx, &signal_hooks, rec);
        if (rec->state == WS_CLOSED)
            luasig_close(L, -1); /* a closed socket never fires again */
        lua_pushlightuserdata(L, rec);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
}

/* Fires signal `which` of `rec` with the `nargs` values on top (popped);
   with `last`, closes it before its handlers run. */
static void fire(lua_State *L, ws_rec *rec, int which, int nargs, int last)
{
    push_signal(L, rec, which, 0);
    if (lua_isnil(L, -1)) {
        lua_pop(L, nargs + 1);
        return;
    }
    lua_insert(L, -(nargs + 1));
    if (last)
        luasig_fire_last(L, -(nargs + 1), nargs);
    else
        luasig_fire(L, -(nargs + 1), nargs);
    lua_pop(L, 1);
}

/* Closes signal `which` of `rec`, if it exists. Runs no Luau code. */
static void close_signal(lua_State *L, ws_rec *rec, int which)
{
    lua_checkstack(L, 3);
    push_signal(L, rec, which, 0);
    if (!lua_isnil(L, -1))
        luasig_close(L, -1);
    lua_pop(L, 1);
}

/* Pushes the object of a socket that something keeps alive (connecting, or
   listened to) and returns its index; returns 0 (pushing nothing) for one
   that nothing keeps alive. */
static int pin_object(lua_State *L, ws_rec *rec)
{
    if (rec->anchor_ref != LUA_NOREF) {
        lua_checkstack(L, 3);
        lua_getref(L, rec->anchor_ref);
        return lua_gettop(L);
    }
    for (int which = SIG_MESSAGE; rec->listeners > 0 && which <= SIG_CLOSE; which++) {
        lua_checkstack(L, 3);
        push_signal(L, rec, which, 0);
        if (!lua_isnil(L, -1) && luasig_listeners(L, -1) > 0) {
            luasig_push_owner(L, -1);
            lua_remove(L, -2);
            return lua_gettop(L);
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The WebSocket object.                                                     */

/* ws:Send(message [, binary]): a string goes as text, or as binary when
   `binary` is true; a buffer always goes as binary. */
static int ws_send(lua_State *L)
{
    ws_rec *rec = check_ws(L, 1);
    size_t len;
    const void *msg;
    int binary;
    wsb_result r;
    char err[MAX_ERROR];
    if (lua_isbuffer(L, 2)) {
        msg = lua_tobuffer(L, 2, &len);
        if (lua_isboolean(L, 3) && !lua_toboolean(L, 3))
            luaL_error(L, "WebSocket:Send: a buffer is always sent as binary; pass true or nothing as the "
                          "second argument");
        binary = 1;
    } else if (lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER) {
        msg = lua_tolstring(L, 2, &len);
        binary = lua_toboolean(L, 3);
    } else {
        luaL_typeerrorL(L, 2, "string or buffer");
    }
    if (!rec->handle || rec->state != WS_OPEN)
        luaL_error(L, "WebSocket is closed");
    r = binary ? wsb_send_binary(rec->handle, msg, len) : wsb_send_text(rec->handle, (const char *)msg, len);
    switch (r) {
    case WSB_OK:
        return 0;
    case WSB_ERR_INVALID_UTF8:
        luaL_error(L, "WebSocket:Send: the message is not valid UTF-8 text; pass true as the second "
                      "argument to send it as a binary message");
    case WSB_ERR_NOT_OPEN:
    case WSB_ERR_INVALID_HANDLE:
        luaL_error(L, "WebSocket is closed");
    default:
        last_error(r, err, sizeof err);
        luaL_error(L, "WebSocket:Send: %s", err);
    }
    return 0;
}

/* ws:Close(): starts the closing handshake (1000); OnClose fires later. */
static int ws_close(lua_State *L)
{
    ws_rec *rec = check_ws(L, 1);
    if (rec->handle && rec->state == WS_OPEN) {
        rec->state = WS_CLOSING;
        wsb_close(rec->handle, 1000, NULL);
    }
    return 0;
}

/* ws.Send, ws.Close, ws.OnMessage, ws.OnClose. Upvalues: Send, Close. */
static int ws_index(lua_State *L)
{
    ws_rec *rec = check_ws(L, 1);
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    if (strcmp(key, "Send") == 0) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
    }
    if (strcmp(key, "Close") == 0) {
        lua_pushvalue(L, lua_upvalueindex(2));
        return 1;
    }
    if (strcmp(key, "OnMessage") == 0) {
        push_signal(L, rec, SIG_MESSAGE, 1);
        return 1;
    }
    if (strcmp(key, "OnClose") == 0) {
        push_signal(L, rec, SIG_CLOSE, 1);
        return 1;
    }
    return 0;
}

static int ws_newindex(lua_State *L)
{
    luaL_error(L, "WebSocket: cannot assign to member '%s'", luaL_tolstring(L, 2, NULL));
    return 0;
}

static int ws_tostring(lua_State *L)
{
    check_ws(L, 1);
    lua_pushstring(L, "WebSocket");
    return 1;
}

/* ------------------------------------------------------------------------ */
/* WebSocket.connect                                                         */

/* The wsb_options being built, in a userdata whose destructor frees them:
   a Luau error raised half-way through the options table (a bad type, a
   header wsbridge refuses) leaks nothing, so the table is read once. */
typedef struct options_box {
    wsb_options *opts;
} options_box;

static void options_dtor(lua_State *L, void *p)
{
    options_box *box = (options_box *)p;
    (void)L;
    if (box->opts)
        wsb_options_free(box->opts);
    box->opts = NULL;
}

/* Raises "WebSocket.connect: <detail>" unless r is WSB_OK. */
static void check_result(lua_State *L, wsb_result r)
{
    char err[MAX_ERROR];
    if (r != WSB_OK) {
        last_error(r, err, sizeof err);
        luaL_error(L, "WebSocket.connect: %s", err);
    }
}

static uint32_t timeout_ms(double seconds)
{
    double ms = seconds * 1000.0;
    return ms >= 4294967295.0 ? 4294967295u : ms < 1 ? 1 : (uint32_t)ms;
}

/* Pushes an options box holding the host's settings and the options table
   at `idx` (nil or none: no options). Raises on a bad option. */
static wsb_options *push_options(lua_State *L, const ws_state *st, int idx)
{
    options_box *box = (options_box *)lua_newuserdatadtor(L, sizeof *box, options_dtor);
    wsb_options *opts;
    box->opts = opts = wsb_options_new();
    if (!opts)
        luaL_error(L, "WebSocket.connect: out of memory");
    check_result(L, wsb_options_set_connect_timeout(opts, timeout_ms(DEFAULT_CONNECT_TIMEOUT_S)));
    /* Offer permessage-deflate unless the host switched it off. */
    check_result(L, wsb_options_set_compression(opts, !st->host.disable_compression));
    if (lua_isnoneornil(L, idx))
        return opts;
    luaL_checktype(L, idx, LUA_TTABLE);

    lua_getfield(L, idx, "headers");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_error(L, "WebSocket.connect: options.headers must be a table of name = value strings");
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "WebSocket.connect: options.headers must be a table of name = value strings");
            check_result(L, wsb_options_add_header(opts, lua_tostring(L, -2), lua_tostring(L, -1)));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "protocols");
    if (!lua_isnil(L, -1)) {
        int n;
        if (!lua_istable(L, -1))
            luaL_error(L, "WebSocket.connect: options.protocols must be an array of strings");
        n = lua_objlen(L, -1);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "WebSocket.connect: options.protocols must be an array of strings");
            check_result(L, wsb_options_add_subprotocol(opts, lua_tostring(L, -1)));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "timeout");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
            luaL_error(L, "WebSocket.connect: options.timeout must be a positive number of seconds");
        check_result(L, wsb_options_set_connect_timeout(opts, timeout_ms(lua_tonumber(L, -1))));
    }
    lua_pop(L, 1);
    return opts;
}

/* WebSocket.connect(url [, options]) -> WebSocket. Yields until open. */
static int ws_connect(lua_State *L)
{
    ws_state *st = check_state(L);
    const char *url = luaL_checkstring(L, 1);
    wsb_options *opts;
    wsb_socket handle = 0;
    wsb_result r;
    ws_rec *rec;

    lua_settop(L, 2);
    opts = push_options(L, st, 2); /* the box is at index 3 */

    if (st->shutting_down)
        luaL_error(L, "WebSocket.connect: the host is shutting down");
    if (!lua_isyieldable(L))
        luaL_error(L, "WebSocket.connect: the current thread cannot yield (call it from a coroutine, "
                      "e.g. the main script or a task.spawn function)");

    r = wsb_connect(url, opts, &handle);
    /* The options are copied: free them now rather than at the next GC. */
    wsb_options_free(opts);
    ((options_box *)lua_touserdata(L, 3))->opts = NULL;
    lua_pop(L, 1);
    check_result(L, r);

    rec = (ws_rec *)lua_newuserdatadtor(L, sizeof(ws_rec), ws_dtor);
    memset(rec, 0, sizeof *rec);
    rec->handle = handle;
    rec->state = WS_CONNECTING;
    rec->st = st;
    /* Into the ready set at once (release_handle takes it out), marked:
       events queued before wsb_set_notify below would never notify, so the
       next pump polls this socket anyway. */
    ready_add(&st->ready, &rec->ready, rec);
    rec->prev = st->tail;
    if (st->tail)
        st->tail->next = rec;
    else
        st->head = rec;
    st->tail = rec;
    st->active++;
    luaL_getmetatable(L, WS_MT);
    lua_setmetatable(L, -2);

    /* Keep the object and this coroutine alive until the outcome arrives
       (wsluau_pump resumes us with the object, or with an error). */
    rec->anchor_ref = lua_ref(L, -1);
    lua_pushthread(L);
    rec->connect_ref = lua_ref(L, -1);
    lua_pop(L, 2);

    wsb_set_notify(handle, on_notify, &rec->ready);
    return lua_yield(L, 0);
}

/* ------------------------------------------------------------------------ */
/* Event dispatch.                                                           */

/* Resumes the coroutine waiting in WebSocket.connect with an error. */
static void fail_connect(lua_State *L, ws_rec *rec, const char *detail)
{
    lua_State *co;
    lua_getref(L, rec->connect_ref);
    co = lua_tothread(L, -1);
    release_connect(L, rec);
    lua_checkstack(co, LUA_MINSTACK);
    lua_pushfstring(co, "WebSocket.connect: %s", detail);
    resume(rec->st, L, co, 0, 1);
    lua_pop(L, 1);
}

/* Handles one event of `rec`, whose object is at `obj` (0 when nothing keeps
   the socket alive: then nothing can observe the event and no Luau code
   runs). */
static void handle_event(lua_State *L, ws_rec *rec, const wsb_event *ev, int obj)
{
    char detail[MAX_ERROR];
    switch (ev->kind) {
    case WSB_EVENT_OPEN:
        if (rec->state == WS_CONNECTING)
            rec->state = WS_OPEN;
        if (rec->connect_ref != LUA_NOREF && obj) {
            lua_State *co;
            lua_getref(L, rec->connect_ref);
            co = lua_tothread(L, -1);
            release_connect(L, rec);
            lua_checkstack(co, LUA_MINSTACK);
            lua_pushvalue(L, obj);
            lua_xmove(L, co, 1);
            resume(rec->st, L, co, 1, 0);
            lua_pop(L, 1);
        }
        break;
    case WSB_EVENT_TEXT:
    case WSB_EVENT_BINARY:
        if (obj && rec->listeners > 0) {
            lua_checkstack(L, 4);
            if (ev->kind == WSB_EVENT_BINARY && rec->st && rec->st->host.binary_as_buffer) {
                void *b = lua_newbuffer(L, ev->len);
                if (ev->len)
                    memcpy(b, ev->data, ev->len);
            } else {
                lua_pushlstring(L, ev->data, ev->len);
            }
            lua_pushboolean(L, ev->kind == WSB_EVENT_BINARY);
            fire(L, rec, SIG_MESSAGE, 2, 0);
        }
        break;
    case WSB_EVENT_ERROR:
        if (rec->connect_ref != LUA_NOREF && obj) {
            snprintf(detail, sizeof detail, "%s", ev->len ? ev->data : wsb_result_name(ev->error));
            fail_connect(L, rec, detail);
        }
        break;
    case WSB_EVENT_CLOSE:
        mark_closed(rec);
        if (obj) {
            lua_checkstack(L, 4);
            lua_pushinteger(L, ev->close_code);
            lua_pushlstring(L, ev->data, ev->len);
        }
        release_handle(rec); /* ev->data is gone from here on */
        if (obj && rec->connect_ref != LUA_NOREF)
            fail_connect(L, rec, "the connection closed before it opened");
        /* Closed: both signals drop their handlers and waiters, OnClose
           right after taking those it fires now. (A signal that exists
           without listeners is closed too: its :Wait() raises from now on.) */
        close_signal(L, rec, SIG_MESSAGE);
        if (obj)
            fire(L, rec, SIG_CLOSE, 2, 1);
        else
            close_signal(L, rec, SIG_CLOSE);
        break;
    }
}

/* Handles the waiting events of one socket. With wait_ms > 0, waits
   (blocking) for events until the socket closed or that much time passed. */
static int drain(lua_State *L, ws_rec *rec, uint32_t wait_ms)
{
    int top = lua_gettop(L);
    int obj = pin_object(L, rec);
    int n = 0;
    double deadline = lua_clock() + wait_ms / 1000.0;
    while (rec->handle) {
        wsb_event ev;
        wsb_result r;
        if (wait_ms > 0) {
            double left = deadline - lua_clock();
            if (left <= 0)
                break;
            r = wsb_wait_event(rec->handle, &ev, (uint32_t)(left * 1000.0) + 1);
        } else {
            r = wsb_poll(rec->handle, &ev);
        }
        if (r != WSB_OK)
            break;
        n++;
        handle_event(L, rec, &ev, obj);
        if (!obj)
            obj = pin_object(L, rec);
    }
    lua_settop(L, top);
    return n;
}

int wsluau_pump(lua_State *L)
{
    ws_state *st = state_of(L);
    ws_rec *rec;
    int n = 0;
    if (!st || st->pumping)
        return 0;
    st->pumping = 1;
    /* The sockets marked so far. Handlers may open sockets (marked for the
       next pump) and free some (they leave the pass): ready_next copes. */
    ready_take(&st->ready);
    while ((rec = (ws_rec *)ready_next(&st->ready)) != NULL)
        n += drain(L, rec, 0);
    st->pumping = 0;
    return n;
}

int wsluau_active(lua_State *L)
{
    ws_state *st = state_of(L);
    return st ? st->active : 0;
}

/* The handles of every socket that still has one (malloc'ed; NULL if none):
   handlers run while they are dispatched, so shutdown walks a copy. */
static wsb_socket *live_handles(ws_state *st, size_t *count)
{
    size_t n = 0;
    wsb_socket *ids;
    *count = 0;
    for (ws_rec *rec = st->head; rec; rec = rec->next)
        n += rec->handle != 0;
    if (n == 0)
        return NULL;
    ids = (wsb_socket *)malloc(n * sizeof *ids);
    if (!ids)
        return NULL;
    n = 0;
    for (ws_rec *rec = st->head; rec; rec = rec->next)
        if (rec->handle)
            ids[n++] = rec->handle;
    *count = n;
    return ids;
}

/* The socket with handle `h`, or NULL if it was freed meanwhile (handles are
   never reused). A walk of the list: only wsluau_shutdown looks sockets up,
   once each. */
static ws_rec *lookup(ws_state *st, wsb_socket h)
{
    for (ws_rec *rec = st->head; rec; rec = rec->next)
        if (rec->handle == h)
            return rec;
    return NULL;
}

void wsluau_shutdown(lua_State *L, uint32_t timeout_ms)
{
    ws_state *st = state_of(L);
    size_t count;
    wsb_socket *ids;
    double deadline = lua_clock() + timeout_ms / 1000.0;
    if (!st)
        return;
    st->shutting_down = 1;

    /* Start closing everything (a connecting socket is abandoned). */
    for (ws_rec *rec = st->head; rec; rec = rec->next) {
        if (rec->handle && rec->state != WS_CLOSED) {
            wsb_close(rec->handle, 1001, "host shutting down");
            if (rec->state == WS_OPEN)
                rec->state = WS_CLOSING;
        }
    }
    /* Dispatch until each has closed (OnClose fires), within the deadline. */
    ids = live_handles(st, &count);
    for (size_t i = 0; i < count; i++) {
        ws_rec *rec = lookup(st, ids[i]);
        double left = deadline - lua_clock();
        if (rec)
            drain(L, rec, left > 0 ? (uint32_t)(left * 1000.0) + 1 : 0);
    }
    free(ids);
    /* Whatever did not close in time is closed here, as an abnormal closure. */
    ids = live_handles(st, &count);
    for (size_t i = 0; i < count; i++) {
        ws_rec *rec = lookup(st, ids[i]);
        if (rec) {
            wsb_event ev;
            int top = lua_gettop(L);
            int obj = pin_object(L, rec);
            memset(&ev, 0, sizeof ev);
            ev.kind = WSB_EVENT_CLOSE;
            ev.close_code = 1006;
            ev.data = "host shutdown";
            ev.len = strlen(ev.data);
            handle_event(L, rec, &ev, obj);
            lua_settop(L, top);
        }
    }
    free(ids);

    {
        double left = deadline - lua_clock();
        wsb_shutdown(left > 0 ? (uint32_t)(left * 1000.0) + 1 : 0);
    }
    /* No notification comes any more. Detach the remaining objects: their
       destructors run at lua_close. */
    while (st->head) {
        ws_rec *rec = st->head;
        unlink_rec(rec);
        if (rec->handle)
            ready_remove(&rec->ready);
        rec->st = NULL;
        rec->handle = 0;
    }
    lua_pushnil(L);
    lua_rawsetfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    ready_set_destroy(&st->ready);
    free(st);
}

/* ------------------------------------------------------------------------ */
/* Installation.                                                             */

void wsluau_open(lua_State *L, const wsluau_host *host)
{
    ws_state *st = (ws_state *)calloc(1, sizeof *st);
    if (!st)
        luaL_error(L, "WebSocket: out of memory");
    if (host)
        st->host = *host;
    ready_set_init(&st->ready, st->host.wake, st->host.ud);
    lua_pushlightuserdata(L, st);
    lua_rawsetfield(L, LUA_REGISTRYINDEX, STATE_KEY);

    luasig_open(L);
    /* The signal caches, weak values. */
    for (int which = SIG_MESSAGE; which <= SIG_CLOSE; which++) {
        lua_newtable(L);
        lua_newtable(L);
        lua_pushstring(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_rawsetfield(L, LUA_REGISTRYINDEX, signal_cache[which]);
    }

    /* WebSocket objects */
    luaL_newmetatable(L, WS_MT);
    lua_pushcfunction(L, ws_send, "Send");
    lua_pushcfunction(L, ws_close, "Close");
    lua_pushcclosure(L, ws_index, "__index", 2);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ws_newindex, "__newindex");
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ws_tostring, "__tostring");
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, "WebSocket");
    lua_setfield(L, -2, "__type");
    lua_pushstring(L, "The metatable is locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    /* The library */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ws_connect, "connect");
    lua_setfield(L, -2, "connect");
    lua_setglobal(L, "WebSocket");
}
