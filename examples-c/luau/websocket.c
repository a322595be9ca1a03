/*
 * websocket.c — the WebSocket library for Luau scripts, on top of wsbridge.
 *
 * The reference binding: copy this file and websocket.h into your Luau host
 * (executor). It uses only Luau's C API (lua.h, lualib.h) and wsbridge.h.
 * Scripts get the standard (sUNC) API:
 *
 *     local ws = WebSocket.connect("wss://example.org/socket")  -- yields until open
 *     ws.OnMessage:Connect(function(message, isBinary) print(message) end)
 *     ws.OnClose:Connect(function(code, reason) print("closed", code) end)
 *     ws:Send("hello")            -- text; ws:Send(bytes, true) sends binary
 *     ws:Close()
 *
 * WebSocket.connect(url [, {headers = {...}, protocols = {...}, timeout = s}])
 * yields the calling coroutine until the socket is open and raises
 * "WebSocket.connect: <cause>" on failure. Like a browser, it offers
 * permessage-deflate compression (RFC 7692); the host can switch that off
 * (wsluau_host.disable_compression). Signals (OnMessage, OnClose) have
 * Connect / Once / Wait; connections have Disconnect / Connected. Each handler
 * runs in its own new coroutine. A socket object nobody can reach is closed
 * and freed by the garbage collector, but one that is connecting, or open with
 * handlers connected (or coroutines in :Wait()), stays alive by itself.
 *
 * HOW A HOST USES IT (two entry points, plus shutdown; see websocket.h):
 *
 *   1. wsluau_open(L, &host) — install the global `WebSocket` into the main
 *      lua_State, before luaL_sandbox. `host` (zeroed, then filled in) gives
 *      the binding two hooks into your scheduler: `resume` (run a coroutine
 *      task.spawn-style and handle its errors/yields) and `wake` (called on
 *      a network thread when events are waiting: wake your scheduler, e.g.
 *      signal a condition variable); and settings: `disable_compression`
 *      (non-zero: sockets do not offer permessage-deflate).
 *
 *   2. wsluau_pump(L) — call it on the scheduler thread on every scheduler
 *      step (or whenever `wake` fired). It never blocks: it drains every live
 *      socket's events and, right there, resumes coroutines waiting in
 *      WebSocket.connect and fires OnMessage / OnClose. Handlers therefore run
 *      on your scheduler thread only, never on a network thread.
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
 * Threading: all of this runs on one thread (the scheduler's). The only code
 * that runs elsewhere is on_notify, which calls host.wake and nothing else.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "websocket.h"
#include "wsbridge.h"

#define STATE_KEY "wsluau.state"
#define WS_MT "WebSocket"
#define SIGNAL_MT "wsluau.signal"
#define CONN_MT "wsluau.connection"

#define DEFAULT_CONNECT_TIMEOUT_S 30.0
#define MAX_ERROR 512

enum { SIG_MESSAGE = 0, SIG_CLOSE = 1 };
enum { WS_CONNECTING, WS_OPEN, WS_CLOSING, WS_CLOSED };

/* Slots of a socket's anchor table (see ws_rec.anchor_ref). */
enum { A_OBJECT = 1, A_HANDLERS = 2, A_WAITERS = 4 }; /* + SIG_* */
/* Slots of a handler entry {id, fn, once}. */
enum { H_ID = 1, H_FN = 2, H_ONCE = 3 };

typedef struct ws_state ws_state;

/* The C side of one WebSocket object; it lives inside the object's userdata. */
typedef struct ws_rec {
    ws_state *st; /* NULL once the binding has shut down */
    struct ws_rec *prev, *next;
    wsb_socket handle; /* 0 once freed */
    wsb_socket id;     /* the handle it was created with (never reused) */
    int state;         /* WS_* as far as dispatched events tell */
    /* Registry ref of the anchor table {object, handlers[2], waiters[2]}, or
       LUA_NOREF. It exists while the socket is connecting, or not closed and
       has listeners: that is what keeps such a socket alive. */
    int anchor_ref;
    int connect_ref; /* the coroutine waiting in WebSocket.connect, or LUA_NOREF */
    int listeners;   /* connected handlers + coroutines in signal:Wait() */
} ws_rec;

struct ws_state {
    wsluau_host host;
    ws_rec *head, *tail;
    int active; /* sockets not closed */
    int shutting_down;
    double next_conn_id;
};

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

static ws_rec *find_rec(ws_state *st, wsb_socket id)
{
    for (ws_rec *rec = st->head; rec; rec = rec->next)
        if (rec->id == id)
            return rec;
    return NULL;
}

/* Forgets the library socket: no more events or notifications. */
static void release_handle(ws_rec *rec)
{
    if (rec->handle) {
        wsb_set_notify(rec->handle, NULL, NULL);
        wsb_free(rec->handle);
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
   Runs inside the garbage collector: no Luau calls here. An object with an
   anchor is reachable, so it only gets here without one. */
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

/* Runs on a network thread: only wake the scheduler. */
static void on_notify(void *user_data, wsb_socket socket)
{
    ws_state *st = (ws_state *)user_data;
    (void)socket;
    if (st->host.wake)
        st->host.wake(st->host.ud);
}

static void resume(ws_state *st, lua_State *L, lua_State *co, int nargs, int error)
{
    int status;
    if (st->host.resume) {
        st->host.resume(st->host.ud, co, nargs, error);
        return;
    }
    status = error ? lua_resumeerror(co, L) : lua_resume(co, L, nargs);
    if (status != LUA_OK && status != LUA_YIELD && status != LUA_BREAK) {
        const char *msg = lua_tostring(co, -1);
        fprintf(stderr, "WebSocket handler error: %s\n%s", msg ? msg : "(error object is not a string)",
                lua_debugtrace(co));
    }
    lua_settop(co, 0);
}

/* Pushes the anchor table of `rec`, creating it (with the object at
   `obj_idx`) if needed. */
static void push_anchor(lua_State *L, ws_rec *rec, int obj_idx)
{
    if (rec->anchor_ref != LUA_NOREF) {
        lua_getref(L, rec->anchor_ref);
        return;
    }
    obj_idx = lua_absindex(L, obj_idx);
    lua_createtable(L, 5, 0);
    lua_pushvalue(L, obj_idx);
    lua_rawseti(L, -2, A_OBJECT);
    for (int i = A_HANDLERS; i <= A_WAITERS + 1; i++) {
        lua_newtable(L);
        lua_rawseti(L, -2, i);
    }
    rec->anchor_ref = lua_ref(L, -1);
}

/* Drops the anchor when nothing needs the socket alive any more. */
static void update_anchor(lua_State *L, ws_rec *rec)
{
    int needed = rec->state != WS_CLOSED && (rec->connect_ref != LUA_NOREF || rec->listeners > 0);
    if (!needed && rec->anchor_ref != LUA_NOREF) {
        lua_unref(L, rec->anchor_ref);
        rec->anchor_ref = LUA_NOREF;
        rec->listeners = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Signals and connections.                                                  */
/*                                                                           */
/* A signal is a read-only table {object, which}; a connection is a          */
/* read-only table {object, which, id}. Handlers live in the socket's anchor */
/* table, so a handler that refers to the socket makes no cycle the garbage  */
/* collector cannot break once the socket is closed.                         */

static ws_rec *check_signal(lua_State *L, int idx, int *which)
{
    ws_rec *rec;
    luaL_checktype(L, idx, LUA_TTABLE);
    if (!lua_getmetatable(L, idx))
        luaL_typeerrorL(L, idx, "WebSocket signal");
    luaL_getmetatable(L, SIGNAL_MT);
    if (!lua_rawequal(L, -1, -2))
        luaL_typeerrorL(L, idx, "WebSocket signal");
    lua_pop(L, 2);
    lua_rawgeti(L, idx, 1);
    rec = (ws_rec *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_rawgeti(L, idx, 2);
    *which = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return rec;
}

/* Pushes a new connection object for (object at obj_idx, which, id). */
static void push_connection(lua_State *L, int obj_idx, int which, double id)
{
    obj_idx = lua_absindex(L, obj_idx);
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, obj_idx);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, which);
    lua_rawseti(L, -2, 2);
    lua_pushnumber(L, id);
    lua_rawseti(L, -2, 3);
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    lua_setreadonly(L, -1, 1);
}

static int connect_handler(lua_State *L, int once)
{
    int which;
    ws_rec *rec = check_signal(L, 1, &which);
    ws_state *st = rec->st;
    double id = 0;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_rawgeti(L, 1, 1); /* the object: index 3 */
    if (st && rec->state != WS_CLOSED) {
        /* A closed socket never fires again: its connection starts out
           disconnected. */
        int n;
        id = ++st->next_conn_id;
        push_anchor(L, rec, 3);
        lua_rawgeti(L, -1, A_HANDLERS + which);
        n = lua_objlen(L, -1);
        lua_createtable(L, 3, 0);
        lua_pushnumber(L, id);
        lua_rawseti(L, -2, H_ID);
        lua_pushvalue(L, 2);
        lua_rawseti(L, -2, H_FN);
        lua_pushboolean(L, once);
        lua_rawseti(L, -2, H_ONCE);
        lua_rawseti(L, -2, n + 1);
        lua_pop(L, 2);
        rec->listeners++;
    }
    push_connection(L, 3, which, id);
    return 1;
}

/* signal:Connect(fn) -> connection */
static int signal_connect(lua_State *L)
{
    return connect_handler(L, 0);
}

/* signal:Once(fn) -> connection: disconnects itself before its first call. */
static int signal_once(lua_State *L)
{
    return connect_handler(L, 1);
}

/* signal:Wait() -> the arguments of the next firing. Yields. */
static int signal_wait(lua_State *L)
{
    int which, n;
    ws_rec *rec = check_signal(L, 1, &which);
    if (!rec->st || rec->state == WS_CLOSED)
        luaL_error(L, "WebSocket is closed");
    if (!lua_isyieldable(L))
        luaL_error(L, "signal:Wait: the current thread cannot yield");
    lua_rawgeti(L, 1, 1);
    push_anchor(L, rec, -1);
    lua_rawgeti(L, -1, A_WAITERS + which);
    n = lua_objlen(L, -1);
    lua_pushthread(L);
    lua_rawseti(L, -2, n + 1);
    lua_pop(L, 3);
    rec->listeners++;
    return lua_yield(L, 0);
}

/* Finds the handler with connection `id`; pushes the handlers list and
   returns the entry's position in it (0 if absent, list pushed anyway). */
static int find_handler(lua_State *L, ws_rec *rec, int which, double id)
{
    int n;
    if (rec->anchor_ref == LUA_NOREF || id == 0) {
        lua_pushnil(L);
        return 0;
    }
    lua_getref(L, rec->anchor_ref);
    lua_rawgeti(L, -1, A_HANDLERS + which);
    lua_remove(L, -2);
    n = lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -1, H_ID);
        double hid = lua_tonumber(L, -1);
        lua_pop(L, 2);
        if (hid == id)
            return i;
    }
    return 0;
}

static ws_rec *check_connection(lua_State *L, int idx, int *which, double *id)
{
    ws_rec *rec;
    luaL_checktype(L, idx, LUA_TTABLE);
    if (!lua_getmetatable(L, idx))
        luaL_typeerrorL(L, idx, "WebSocket connection");
    luaL_getmetatable(L, CONN_MT);
    if (!lua_rawequal(L, -1, -2))
        luaL_typeerrorL(L, idx, "WebSocket connection");
    lua_pop(L, 2);
    lua_rawgeti(L, idx, 1);
    rec = (ws_rec *)lua_touserdata(L, -1);
    lua_rawgeti(L, idx, 2);
    *which = (int)lua_tointeger(L, -1);
    lua_rawgeti(L, idx, 3);
    *id = lua_tonumber(L, -1);
    lua_pop(L, 3);
    return rec;
}

/* connection:Disconnect(): the handler is not called again. Idempotent. */
static int connection_disconnect(lua_State *L)
{
    int which;
    double id;
    ws_rec *rec = check_connection(L, 1, &which, &id);
    int pos = find_handler(L, rec, which, id);
    if (pos > 0) {
        int n = lua_objlen(L, -1);
        for (int i = pos; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            lua_rawseti(L, -2, i);
        }
        lua_pushnil(L);
        lua_rawseti(L, -2, n);
        rec->listeners--;
        update_anchor(L, rec);
    }
    lua_pop(L, 1);
    return 0;
}

/* connection.Connected, connection.Disconnect */
static int connection_index(lua_State *L)
{
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "Connected") == 0) {
        int which;
        double id;
        ws_rec *rec = check_connection(L, 1, &which, &id);
        lua_pushboolean(L, find_handler(L, rec, which, id) > 0);
        return 1;
    }
    if (strcmp(key, "Disconnect") == 0) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
    }
    return 0;
}

/* Calls every handler of `which` (each in a new coroutine) and resumes every
   coroutine waiting on it, with the `nargs` values on top of L's stack (which
   are popped). The object must be kept reachable by the caller. */
static void fire(lua_State *L, ws_rec *rec, int which, int nargs)
{
    int args = lua_gettop(L) - nargs + 1;
    int nh, nw, snap, waiters;
    if (rec->anchor_ref == LUA_NOREF) {
        lua_settop(L, args - 1);
        return;
    }
    lua_checkstack(L, nargs + 8);
    lua_getref(L, rec->anchor_ref); /* A */
    int anchor = lua_gettop(L);

    /* Snapshot the handlers; Once handlers leave the list before running. */
    lua_rawgeti(L, anchor, A_HANDLERS + which);
    int list = lua_gettop(L);
    nh = lua_objlen(L, list);
    lua_createtable(L, nh, 0); /* snapshot of functions */
    snap = lua_gettop(L);
    lua_createtable(L, nh, 0); /* the handlers that stay */
    int kept = 0, removed = 0;
    for (int i = 1; i <= nh; i++) {
        lua_rawgeti(L, list, i);
        lua_rawgeti(L, -1, H_FN);
        lua_rawseti(L, snap, i);
        lua_rawgeti(L, -1, H_ONCE);
        int once = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (once) {
            lua_pop(L, 1);
            removed++;
        } else {
            lua_rawseti(L, -2, ++kept);
        }
    }
    if (removed > 0) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, anchor, A_HANDLERS + which);
    }
    lua_pop(L, 1);

    /* Take the waiting coroutines. */
    lua_rawgeti(L, anchor, A_WAITERS + which);
    waiters = lua_gettop(L);
    nw = lua_objlen(L, waiters);
    if (nw > 0) {
        lua_newtable(L);
        lua_rawseti(L, anchor, A_WAITERS + which);
    }
    rec->listeners -= removed + nw;
    update_anchor(L, rec);

    for (int i = 1; i <= nh; i++) {
        lua_State *co = lua_newthread(L);
        lua_checkstack(co, nargs + LUA_MINSTACK);
        lua_rawgeti(L, snap, i);
        for (int a = 0; a < nargs; a++)
            lua_pushvalue(L, args + a);
        lua_xmove(L, co, nargs + 1);
        resume(rec->st, L, co, nargs, 0);
        lua_pop(L, 1);
    }
    for (int i = 1; i <= nw; i++) {
        lua_rawgeti(L, waiters, i);
        lua_State *co = lua_tothread(L, -1);
        if (co && lua_costatus(L, co) == LUA_COSUS) {
            lua_checkstack(co, nargs + LUA_MINSTACK);
            for (int a = 0; a < nargs; a++)
                lua_pushvalue(L, args + a);
            lua_xmove(L, co, nargs);
            resume(rec->st, L, co, nargs, 0);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, args - 1);
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

/* ws.Send, ws.Close, ws.OnMessage, ws.OnClose. Upvalues: Send, Close, and a
   weak-valued cache of signal objects (so ws.OnMessage == ws.OnMessage). */
static int ws_index(lua_State *L)
{
    ws_rec *rec = check_ws(L, 1);
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    int which;
    if (strcmp(key, "Send") == 0) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
    }
    if (strcmp(key, "Close") == 0) {
        lua_pushvalue(L, lua_upvalueindex(2));
        return 1;
    }
    if (strcmp(key, "OnMessage") == 0)
        which = SIG_MESSAGE;
    else if (strcmp(key, "OnClose") == 0)
        which = SIG_CLOSE;
    else
        return 0;
    /* A signal refers to its object; the cache's weak values let both go. */
    lua_pushlightuserdata(L, (char *)rec + which);
    lua_rawget(L, lua_upvalueindex(3));
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, which);
    lua_rawseti(L, -2, 2);
    luaL_getmetatable(L, SIGNAL_MT);
    lua_setmetatable(L, -2);
    lua_setreadonly(L, -1, 1);
    lua_pushlightuserdata(L, (char *)rec + which);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(3));
    return 1;
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

/* Checks the options table at `idx` (raising on bad types), before anything
   is allocated that an error would leak. */
static double check_options(lua_State *L, int idx)
{
    double timeout = DEFAULT_CONNECT_TIMEOUT_S;
    if (lua_isnoneornil(L, idx))
        return timeout;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "headers");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_error(L, "WebSocket.connect: options.headers must be a table of name = value strings");
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "WebSocket.connect: options.headers must be a table of name = value strings");
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
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "timeout");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
            luaL_error(L, "WebSocket.connect: options.timeout must be a positive number of seconds");
        timeout = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return timeout;
}

/* Applies the host's settings and the (checked) options table at `idx`;
   raises nothing. Returns WSB_OK or the failing call's result with its
   detail in `err`. */
static wsb_result apply_options(lua_State *L, const ws_state *st, int idx, double timeout, wsb_options *opts,
                                char *err, size_t size)
{
    wsb_result r;
    double ms = timeout * 1000.0;
    r = wsb_options_set_connect_timeout(opts, ms >= 4294967295.0 ? 4294967295u : ms < 1 ? 1 : (uint32_t)ms);
    if (r != WSB_OK)
        goto fail;
    /* Offer permessage-deflate unless the host switched it off. */
    r = wsb_options_set_compression(opts, !st->host.disable_compression);
    if (r != WSB_OK)
        goto fail;
    if (lua_isnoneornil(L, idx))
        return WSB_OK;
    lua_getfield(L, idx, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            r = wsb_options_add_header(opts, lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
            if (r != WSB_OK) {
                lua_pop(L, 2);
                goto fail;
            }
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "protocols");
    if (lua_istable(L, -1)) {
        int n = lua_objlen(L, -1);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            r = wsb_options_add_subprotocol(opts, lua_tostring(L, -1));
            lua_pop(L, 1);
            if (r != WSB_OK) {
                lua_pop(L, 1);
                goto fail;
            }
        }
    }
    lua_pop(L, 1);
    return WSB_OK;
fail:
    last_error(r, err, size);
    return r;
}

/* WebSocket.connect(url [, options]) -> WebSocket. Yields until open. */
static int ws_connect(lua_State *L)
{
    ws_state *st = check_state(L);
    const char *url = luaL_checkstring(L, 1);
    double timeout = check_options(L, 2);
    wsb_options *opts;
    wsb_socket handle = 0;
    wsb_result r;
    ws_rec *rec;
    char err[MAX_ERROR];

    if (st->shutting_down)
        luaL_error(L, "WebSocket.connect: the host is shutting down");
    if (!lua_isyieldable(L))
        luaL_error(L, "WebSocket.connect: the current thread cannot yield (call it from a coroutine, "
                      "e.g. the main script or a task.spawn function)");

    opts = wsb_options_new();
    if (!opts)
        luaL_error(L, "WebSocket.connect: out of memory");
    r = apply_options(L, st, 2, timeout, opts, err, sizeof err);
    if (r == WSB_OK) {
        r = wsb_connect(url, opts, &handle);
        if (r != WSB_OK)
            last_error(r, err, sizeof err);
    }
    wsb_options_free(opts);
    if (r != WSB_OK)
        luaL_error(L, "WebSocket.connect: %s", err);

    rec = (ws_rec *)lua_newuserdatadtor(L, sizeof(ws_rec), ws_dtor);
    memset(rec, 0, sizeof *rec);
    rec->handle = handle;
    rec->id = handle;
    rec->state = WS_CONNECTING;
    rec->anchor_ref = LUA_NOREF;
    rec->connect_ref = LUA_NOREF;
    rec->st = st;
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
    lua_pushthread(L);
    rec->connect_ref = lua_ref(L, -1);
    lua_pop(L, 1);
    push_anchor(L, rec, -1);
    lua_pop(L, 2);
    /* Events queued before this point are picked up by the next pump. */
    wsb_set_notify(handle, on_notify, st);
    return lua_yield(L, 0);
}

/* ------------------------------------------------------------------------ */
/* Event dispatch.                                                           */

/* Resumes the coroutine waiting in WebSocket.connect with an error. */
static void fail_connect(lua_State *L, ws_rec *rec, const char *detail)
{
    lua_getref(L, rec->connect_ref);
    lua_State *co = lua_tothread(L, -1);
    lua_unref(L, rec->connect_ref);
    rec->connect_ref = LUA_NOREF;
    update_anchor(L, rec);
    lua_checkstack(co, LUA_MINSTACK);
    lua_pushfstring(co, "WebSocket.connect: %s", detail);
    resume(rec->st, L, co, 0, 1);
    lua_pop(L, 1);
}

/* Handles one event of `rec`, whose object is at `obj` (0 when the socket has
   no anchor: then nothing can observe the event and no Luau code runs). */
static void handle_event(lua_State *L, ws_rec *rec, const wsb_event *ev, int obj)
{
    char detail[MAX_ERROR];
    switch (ev->kind) {
    case WSB_EVENT_OPEN:
        if (rec->state == WS_CONNECTING)
            rec->state = WS_OPEN;
        if (rec->connect_ref != LUA_NOREF && obj) {
            lua_getref(L, rec->connect_ref);
            lua_State *co = lua_tothread(L, -1);
            lua_unref(L, rec->connect_ref);
            rec->connect_ref = LUA_NOREF;
            update_anchor(L, rec);
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
            if (ev->kind == WSB_EVENT_BINARY && rec->st->host.binary_as_buffer) {
                void *b = lua_newbuffer(L, ev->len);
                if (ev->len)
                    memcpy(b, ev->data, ev->len);
            } else {
                lua_pushlstring(L, ev->data, ev->len);
            }
            lua_pushboolean(L, ev->kind == WSB_EVENT_BINARY);
            fire(L, rec, SIG_MESSAGE, 2);
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
        if (obj) {
            if (rec->connect_ref != LUA_NOREF)
                fail_connect(L, rec, "the connection closed before it opened");
            fire(L, rec, SIG_CLOSE, 2);
        }
        update_anchor(L, rec); /* closed: handlers and waiters are dropped */
        break;
    }
}

/* Pushes the object of an anchored socket (or nothing); returns its index or 0. */
static int pin_object(lua_State *L, ws_rec *rec)
{
    if (rec->anchor_ref == LUA_NOREF)
        return 0;
    lua_checkstack(L, 2);
    lua_getref(L, rec->anchor_ref);
    lua_rawgeti(L, -1, A_OBJECT);
    lua_remove(L, -2);
    return lua_gettop(L);
}

/* Handles the waiting events of one socket. With wait_until_ms > 0, waits
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

/* Snapshot of the live sockets' ids: handlers may create and the garbage
   collector may free sockets while events are dispatched. */
static wsb_socket *snapshot(ws_state *st, size_t *count)
{
    size_t n = 0, i = 0;
    wsb_socket *ids;
    for (ws_rec *rec = st->head; rec; rec = rec->next)
        n++;
    *count = n;
    if (n == 0)
        return NULL;
    ids = (wsb_socket *)malloc(n * sizeof *ids);
    if (!ids) {
        *count = 0;
        return NULL;
    }
    for (ws_rec *rec = st->head; rec; rec = rec->next)
        ids[i++] = rec->id;
    return ids;
}

int wsluau_pump(lua_State *L)
{
    ws_state *st = state_of(L);
    size_t count;
    wsb_socket *ids;
    int n = 0;
    if (!st)
        return 0;
    ids = snapshot(st, &count);
    for (size_t i = 0; i < count; i++) {
        ws_rec *rec = find_rec(st, ids[i]);
        if (rec && rec->handle)
            n += drain(L, rec, 0);
    }
    free(ids);
    return n;
}

int wsluau_active(lua_State *L)
{
    ws_state *st = state_of(L);
    return st ? st->active : 0;
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
    ids = snapshot(st, &count);
    for (size_t i = 0; i < count; i++) {
        ws_rec *rec = find_rec(st, ids[i]);
        double left = deadline - lua_clock();
        if (rec && rec->handle)
            drain(L, rec, left > 0 ? (uint32_t)(left * 1000.0) + 1 : 0);
    }
    free(ids);
    /* Whatever did not close in time is closed here, as an abnormal closure. */
    ids = snapshot(st, &count);
    for (size_t i = 0; i < count; i++) {
        ws_rec *rec = find_rec(st, ids[i]);
        if (rec && rec->handle) {
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
    /* Detach the remaining objects: their destructors run at lua_close. */
    while (st->head) {
        ws_rec *rec = st->head;
        unlink_rec(rec);
        rec->st = NULL;
        rec->handle = 0;
    }
    lua_pushnil(L);
    lua_rawsetfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    free(st);
}

/* ------------------------------------------------------------------------ */
/* Installation.                                                             */

static void lock_metatable(lua_State *L)
{
    lua_pushstring(L, "The metatable is locked");
    lua_setfield(L, -2, "__metatable");
}

void wsluau_open(lua_State *L, const wsluau_host *host)
{
    ws_state *st = (ws_state *)calloc(1, sizeof *st);
    if (!st)
        luaL_error(L, "WebSocket: out of memory");
    if (host)
        st->host = *host;
    lua_pushlightuserdata(L, st);
    lua_rawsetfield(L, LUA_REGISTRYINDEX, STATE_KEY);

    /* WebSocket objects */
    luaL_newmetatable(L, WS_MT);
    lua_pushcfunction(L, ws_send, "Send");
    lua_pushcfunction(L, ws_close, "Close");
    lua_newtable(L); /* signal cache, weak values */
    lua_newtable(L);
    lua_pushstring(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, ws_index, "__index", 3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ws_newindex, "__newindex");
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ws_tostring, "__tostring");
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, "WebSocket");
    lua_setfield(L, -2, "__type");
    lock_metatable(L);
    lua_pop(L, 1);

    /* Signals */
    luaL_newmetatable(L, SIGNAL_MT);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, signal_connect, "Connect");
    lua_setfield(L, -2, "Connect");
    lua_pushcfunction(L, signal_once, "Once");
    lua_setfield(L, -2, "Once");
    lua_pushcfunction(L, signal_wait, "Wait");
    lua_setfield(L, -2, "Wait");
    lua_setreadonly(L, -1, 1);
    lua_setfield(L, -2, "__index");
    lock_metatable(L);
    lua_pop(L, 1);

    /* Connections */
    luaL_newmetatable(L, CONN_MT);
    lua_pushcfunction(L, connection_disconnect, "Disconnect");
    lua_pushcclosure(L, connection_index, "__index", 1);
    lua_setfield(L, -2, "__index");
    lock_metatable(L);
    lua_pop(L, 1);

    /* The library */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ws_connect, "connect");
    lua_setfield(L, -2, "connect");
    lua_setglobal(L, "WebSocket");
}
