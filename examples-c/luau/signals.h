/*
 * signals.h — Roblox-style signals for Luau, in C (signals.c).
 *
 * A general library, independent of sockets: websocket.c uses it for
 * OnMessage and OnClose, and you can use it for any event your host fires.
 * Scripts see a signal object with
 *
 *     signal:Connect(fn) -> connection    -- fn runs on every firing
 *     signal:Once(fn) -> connection       -- disconnected before its first call
 *     signal:Wait() -> ...                -- yields until the next firing
 *     connection:Disconnect()             -- idempotent
 *     connection.Connected                -- false once disconnected
 *
 * Each handler runs in its own new coroutine (task.spawn semantics): it may
 * yield, and an error in one is reported (by the `resume` hook) without
 * stopping the others.
 *
 * Lifetime: a signal with listeners (connected handlers, or coroutines in
 * :Wait()) keeps itself, its handlers and its owner (see luasig_new) alive
 * until they are disconnected or luasig_close is called: what is listened to
 * stays reachable, as in Roblox. A signal without listeners is an ordinary
 * Luau value, collected when unreachable.
 *
 * All of it runs on the thread that runs Luau; nothing here locks.
 */
#ifndef LUASIG_SIGNALS_H
#define LUASIG_SIGNALS_H

#include "lua.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a signal calls back into its owner. Shared by all the signals of one
   kind: pass a pointer to a static struct. */
typedef struct luasig_hooks {
    /* Run the coroutine `co` with the `nargs` values on top of its stack,
       task.spawn-style (report an error, leave a yielded coroutine to
       whatever it yielded to). `L` is the running thread. NULL:
       luasig_resume. */
    void (*resume)(void *ud, lua_State *L, lua_State *co, int nargs);
    /* The number of listeners changed by `delta` (called after the change;
       may be NULL). Lets the owner keep itself alive while it is listened
       to. */
    void (*listeners_changed)(void *ud, int delta);
    /* The message signal:Wait() raises on a closed signal; NULL: "the signal
       is closed". */
    const char *closed_error;
} luasig_hooks;

/* Registers the metatables of signals and connections. Call once per
   lua_State, before luaL_sandbox. */
void luasig_open(lua_State *L);

/* Pushes a new signal. `owner_idx` (0: none) is a value the signal keeps
   alive as long as the signal itself is alive (e.g. the object whose event it
   is). `hooks` (static) and `ud` are passed back to the hooks. */
void luasig_new(lua_State *L, int owner_idx, const luasig_hooks *hooks, void *ud);

/* The resume fallback, for a host without a resume hook (here and in
   websocket.c): lua_resume(co, L, nargs), or with `error` non-zero
   lua_resumeerror(co, L) (raising the value on top of co's stack in it); an
   error is printed to stderr with a stack trace. Then clears co's stack. */
void luasig_resume(lua_State *L, lua_State *co, int nargs, int error);

/* Whether the value at `idx` is a signal made by luasig_new. */
int luasig_is(lua_State *L, int idx);

/* Pushes the owner given to luasig_new (nil if none) of the signal at `idx`. */
void luasig_push_owner(lua_State *L, int idx);

/* Number of connected handlers plus coroutines in :Wait() of the signal at
   `idx`. */
int luasig_listeners(lua_State *L, int idx);

/* Fires the signal at `idx` with the `nargs` values on top of the stack
   (popped): calls every connected handler, each in a new coroutine, and
   resumes every coroutine in :Wait(), in that order. Handlers connected
   while it runs are called from the next firing on. */
void luasig_fire(lua_State *L, int idx, int nargs);

/* Fires the signal at `idx` for the last time: like luasig_fire, but the
   signal is closed (see luasig_close) before the handlers run, so they see
   their connections already disconnected. */
void luasig_fire_last(lua_State *L, int idx, int nargs);

/* Closes the signal at `idx` for good: disconnects every handler and forgets
   the coroutines in :Wait() (they are never resumed). Afterwards :Connect
   and :Once return connections that are already disconnected, and :Wait
   raises hooks->closed_error. */
void luasig_close(lua_State *L, int idx);

#ifdef __cplusplus
}
#endif

#endif
