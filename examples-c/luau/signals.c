/*
 * signals.c — Roblox-style signals for Luau (see signals.h for the API).
 *
 * Representation (none of it reachable by scripts except through the
 * methods):
 *
 *   signal      read-only table {core, owner} with a locked metatable;
 *               `core` is a userdata holding a luasig_core.
 *   state       table {signal, handlers, waiters}, referenced from the
 *               registry (core->state_ref) only while the signal has
 *               listeners: that reference is what keeps a listened-to signal
 *               (and through it its owner) alive. handlers is an array of
 *               {id, fn, once}; waiters an array of suspended coroutines.
 *   connection  read-only table {signal, id} with a locked metatable; id 0
 *               is a connection that never connected (closed signal).
 *
 * Uses only lua.h and lualib.h.
 */

#include <stdio.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "signals.h"

#define SIGNAL_MT "luasig.signal"
#define CONN_MT "luasig.connection"

/* Slots of the signal table, the state table and a handler entry. */
enum { SIG_CORE = 1, SIG_OWNER = 2 };
enum { ST_SIGNAL = 1, ST_HANDLERS = 2, ST_WAITERS = 3 };
enum { H_ID = 1, H_FN = 2, H_ONCE = 3 };

typedef struct luasig_core {
    const luasig_hooks *hooks;
    void *ud;
    int state_ref; /* LUA_NOREF while there are no listeners */
    int listeners; /* handlers + waiters */
    int closed;
    double next_id; /* connection ids: 1, 2, ... (a double never wraps in practice) */
} luasig_core;

/* ------------------------------------------------------------------------ */
/* Internals.                                                                */

static int has_metatable(lua_State *L, int idx, const char *name)
{
    int same;
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, name);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

static luasig_core *core_of(lua_State *L, int sig_idx)
{
    luasig_core *core;
    lua_rawgeti(L, sig_idx, SIG_CORE);
    core = (luasig_core *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return core;
}

static luasig_core *check_signal(lua_State *L, int idx)
{
    if (!has_metatable(L, idx, SIGNAL_MT))
        luaL_typeerrorL(L, idx, "signal");
    return core_of(L, idx);
}

/* Pushes the state table of the signal at `sig_idx`, creating it if needed;
   with create == 0 pushes nil when there is none. */
static void push_state(lua_State *L, luasig_core *core, int sig_idx, int create)
{
    if (core->state_ref != LUA_NOREF) {
        lua_getref(L, core->state_ref);
        return;
    }
    if (!create) {
        lua_pushnil(L);
        return;
    }
    sig_idx = lua_absindex(L, sig_idx);
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, sig_idx);
    lua_rawseti(L, -2, ST_SIGNAL);
    lua_newtable(L);
    lua_rawseti(L, -2, ST_HANDLERS);
    lua_newtable(L);
    lua_rawseti(L, -2, ST_WAITERS);
    core->state_ref = lua_ref(L, -1);
}

/* Counts `delta` more listeners; with none left the state is released (the
   signal stops keeping itself alive). Then tells the owner. */
static void add_listeners(lua_State *L, luasig_core *core, int delta)
{
    if (delta == 0)
        return;
    core->listeners += delta;
    if (core->listeners <= 0 && core->state_ref != LUA_NOREF) {
        lua_unref(L, core->state_ref);
        core->state_ref = LUA_NOREF;
        core->listeners = 0;
    }
    if (core->hooks && core->hooks->listeners_changed)
        core->hooks->listeners_changed(core->ud, delta);
}

static void resume(luasig_core *core, lua_State *L, lua_State *co, int nargs)
{
    if (core->hooks && core->hooks->resume)
        core->hooks->resume(core->ud, L, co, nargs);
    else
        luasig_resume(L, co, nargs, 0);
}

/* Finds the handler with connection `id`: pushes the handlers list (or nil)
   and returns the entry's position in it, 0 if absent. */
static int find_handler(lua_State *L, luasig_core *core, double id)
{
    int n;
    if (core->state_ref == LUA_NOREF || id == 0) {
        lua_pushnil(L);
        return 0;
    }
    lua_getref(L, core->state_ref);
    lua_rawgeti(L, -1, ST_HANDLERS);
    lua_remove(L, -2);
    n = lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        double hid;
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -1, H_ID);
        hid = lua_tonumber(L, -1);
        lua_pop(L, 2);
        if (hid == id)
            return i;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections.                                                              */

/* Pushes a connection {signal at sig_idx, id}. */
static void push_connection(lua_State *L, int sig_idx, double id)
{
    sig_idx = lua_absindex(L, sig_idx);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, sig_idx);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, id);
    lua_rawseti(L, -2, 2);
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    lua_setreadonly(L, -1, 1);
}

/* Checks the connection at `idx`; pushes its signal and returns its core. */
static luasig_core *check_connection(lua_State *L, int idx, double *id)
{
    if (!has_metatable(L, idx, CONN_MT))
        luaL_typeerrorL(L, idx, "connection");
    lua_rawgeti(L, idx, 2);
    *id = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_rawgeti(L, idx, 1);
    return core_of(L, lua_gettop(L));
}

/* connection:Disconnect(): the handler is not called again. Idempotent. */
static int connection_disconnect(lua_State *L)
{
    double id;
    luasig_core *core = check_connection(L, 1, &id);
    int pos = find_handler(L, core, id);
    if (pos > 0) {
        int n = lua_objlen(L, -1);
        for (int i = pos; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            lua_rawseti(L, -2, i);
        }
        lua_pushnil(L);
        lua_rawseti(L, -2, n);
        add_listeners(L, core, -1);
    }
    return 0;
}

/* connection.Connected, connection.Disconnect */
static int connection_index(lua_State *L)
{
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "Connected") == 0) {
        double id;
        luasig_core *core = check_connection(L, 1, &id);
        lua_pushboolean(L, find_handler(L, core, id) > 0);
        return 1;
    }
    if (strcmp(key, "Disconnect") == 0) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Signal methods.                                                           */

static int connect_handler(lua_State *L, int once)
{
    luasig_core *core = check_signal(L, 1);
    double id = 0;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (!core->closed) {
        int n;
        id = ++core->next_id;
        push_state(L, core, 1, 1);
        lua_rawgeti(L, -1, ST_HANDLERS);
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
        add_listeners(L, core, 1);
    }
    push_connection(L, 1, id);
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
    luasig_core *core = check_signal(L, 1);
    int n;
    if (core->closed)
        luaL_error(L, "%s", core->hooks && core->hooks->closed_error ? core->hooks->closed_error
                                                                       : "the signal is closed");
    if (!lua_isyieldable(L))
        luaL_error(L, "signal:Wait: the current thread cannot yield");
    push_state(L, core, 1, 1);
    lua_rawgeti(L, -1, ST_WAITERS);
    n = lua_objlen(L, -1);
    lua_pushthread(L);
    lua_rawseti(L, -2, n + 1);
    lua_pop(L, 2);
    add_listeners(L, core, 1);
    return lua_yield(L, 0);
}

/* ------------------------------------------------------------------------ */
/* The C API.                                                                */

void luasig_resume(lua_State *L, lua_State *co, int nargs, int error)
{
    int status = error ? lua_resumeerror(co, L) : lua_resume(co, L, nargs);
    if (status != LUA_OK && status != LUA_YIELD && status != LUA_BREAK) {
        const char *msg = lua_tostring(co, -1);
        fprintf(stderr, "handler error: %s\n%s", msg ? msg : "(error object is not a string)", lua_debugtrace(co));
    }
    lua_settop(co, 0);
}

void luasig_open(lua_State *L)
{
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
    lua_pushstring(L, "The metatable is locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    luaL_newmetatable(L, CONN_MT);
    lua_pushcfunction(L, connection_disconnect, "Disconnect");
    lua_pushcclosure(L, connection_index, "__index", 1);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, "The metatable is locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

void luasig_new(lua_State *L, int owner_idx, const luasig_hooks *hooks, void *ud)
{
    luasig_core *core;
    if (owner_idx != 0)
        owner_idx = lua_absindex(L, owner_idx);
    lua_createtable(L, 2, 0);
    core = (luasig_core *)lua_newuserdata(L, sizeof *core);
    memset(core, 0, sizeof *core);
    core->hooks = hooks;
    core->ud = ud;
    core->state_ref = LUA_NOREF;
    lua_rawseti(L, -2, SIG_CORE);
    if (owner_idx != 0) {
        lua_pushvalue(L, owner_idx);
        lua_rawseti(L, -2, SIG_OWNER);
    }
    luaL_getmetatable(L, SIGNAL_MT);
    lua_setmetatable(L, -2);
    lua_setreadonly(L, -1, 1);
}

int luasig_is(lua_State *L, int idx)
{
    return has_metatable(L, idx, SIGNAL_MT);
}

void luasig_push_owner(lua_State *L, int idx)
{
    lua_rawgeti(L, idx, SIG_OWNER);
}

int luasig_listeners(lua_State *L, int idx)
{
    return core_of(L, lua_absindex(L, idx))->listeners;
}

static void fire(lua_State *L, int idx, int nargs, int last)
{
    int args, state, list, snap, waiters, nh, nw, kept = 0, removed = 0;
    luasig_core *core;
    idx = lua_absindex(L, idx);
    args = lua_gettop(L) - nargs + 1;
    core = core_of(L, idx);
    if (core->state_ref == LUA_NOREF) {
        core->closed = core->closed || last;
        lua_settop(L, args - 1);
        return;
    }
    lua_checkstack(L, nargs + 8);
    /* Held on the stack: the state may be released below. */
    push_state(L, core, idx, 0);
    state = lua_gettop(L);

    /* Snapshot the handlers; Once handlers leave the list before running. */
    lua_rawgeti(L, state, ST_HANDLERS);
    list = lua_gettop(L);
    nh = lua_objlen(L, list);
    lua_createtable(L, nh, 0); /* the functions to call */
    snap = lua_gettop(L);
    lua_createtable(L, nh, 0); /* the handlers that stay */
    for (int i = 1; i <= nh; i++) {
        int once;
        lua_rawgeti(L, list, i);
        lua_rawgeti(L, -1, H_FN);
        lua_rawseti(L, snap, i);
        lua_rawgeti(L, -1, H_ONCE);
        once = lua_toboolean(L, -1);
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
        lua_rawseti(L, state, ST_HANDLERS);
    }
    lua_pop(L, 1);

    /* Take the waiting coroutines. */
    lua_rawgeti(L, state, ST_WAITERS);
    waiters = lua_gettop(L);
    nw = lua_objlen(L, waiters);
    if (nw > 0) {
        lua_newtable(L);
        lua_rawseti(L, state, ST_WAITERS);
    }
    add_listeners(L, core, -(removed + nw));
    if (last) {
        core->closed = 1;
        add_listeners(L, core, -core->listeners);
    }

    for (int i = 1; i <= nh; i++) {
        lua_State *co = lua_newthread(L);
        lua_checkstack(co, nargs + LUA_MINSTACK);
        lua_rawgeti(L, snap, i);
        for (int a = 0; a < nargs; a++)
            lua_pushvalue(L, args + a);
        lua_xmove(L, co, nargs + 1);
        resume(core, L, co, nargs);
        lua_pop(L, 1);
    }
    for (int i = 1; i <= nw; i++) {
        lua_State *co;
        lua_rawgeti(L, waiters, i);
        co = lua_tothread(L, -1);
        if (co && lua_costatus(L, co) == LUA_COSUS) {
            lua_checkstack(co, nargs + LUA_MINSTACK);
            for (int a = 0; a < nargs; a++)
                lua_pushvalue(L, args + a);
            lua_xmove(L, co, nargs);
            resume(core, L, co, nargs);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, args - 1);
}

void luasig_fire(lua_State *L, int idx, int nargs)
{
    fire(L, idx, nargs, 0);
}

void luasig_fire_last(lua_State *L, int idx, int nargs)
{
    fire(L, idx, nargs, 1);
}

void luasig_close(lua_State *L, int idx)
{
    luasig_core *core = core_of(L, lua_absindex(L, idx));
    core->closed = 1;
    add_listeners(L, core, -core->listeners);
}
