/*
 * websocket.h — the host-facing interface of websocket.c, the reference
 * WebSocket library for Luau scripts on top of wsbridge. See the top of
 * websocket.c for how a host uses it.
 */
#ifndef WSLUAU_WEBSOCKET_H
#define WSLUAU_WEBSOCKET_H

#include <stdint.h>

#include "lua.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the binding needs from the host: hooks into its scheduler, and
   settings. Zero the whole struct first (`wsluau_host host = {0};` or
   memset), then set what you use: every field's zero is its default, so a
   field added in a later version keeps its default in your host. */
typedef struct wsluau_host {
    /* Resume the suspended coroutine `co` (or a new coroutine holding a
       function, task.spawn-style) with the `nargs` values on top of its stack.
       If `error` is non-zero, resume it by raising the value on top of its
       stack instead (lua_resumeerror). Handle the outcome like task.spawn:
       report an error, leave a yielded coroutine to whatever it yielded to.
       NULL: the binding calls lua_resume itself and prints errors to stderr. */
    void (*resume)(void *ud, lua_State *co, int nargs, int error);
    /* Called on a network thread (any thread) when socket events are waiting:
       make the scheduler call wsluau_pump soon, e.g. signal a condition
       variable. Must be thread-safe and stay callable until wsluau_shutdown
       returns. NULL: the host calls wsluau_pump on every step anyway. */
    void (*wake)(void *ud);
    void *ud;
    /* 0 (the default): every socket offers permessage-deflate compression
       (RFC 7692, `permessage-deflate; client_max_window_bits`), as browsers
       do; messages of 64 bytes or more then go compressed whenever the
       server accepts. A socket that has sent and received compressed
       messages holds about 340 KiB of compressor and decompressor state
       (371 KiB RSS per socket in all, measured; see the wsbridge README).
       Non-zero: never offer it (no compression, no deflate state). */
    int disable_compression;
    /* 0 (the default, what the sUNC contract says): OnMessage delivers every
       message as a string, binary ones included. Non-zero: binary messages
       arrive as `buffer` values (text messages stay strings). */
    int binary_as_buffer;
} wsluau_host;

/* Installs the global `WebSocket` (call before luaL_sandbox). `host` is
   copied; it may be NULL (no hooks, every setting at its default). */
void wsluau_open(lua_State *L, const wsluau_host *host);

/* Dispatches every waiting socket event on the scheduler thread: resumes
   coroutines waiting in WebSocket.connect and fires OnMessage / OnClose.
   Never blocks. Returns the number of events handled. */
int wsluau_pump(lua_State *L);

/* Number of sockets that are connecting, open or closing: while it is not
   zero, events can still arrive. */
int wsluau_active(lua_State *L);

/* Closes every socket (code 1001; OnClose fires for each, waiting up to
   `timeout_ms` for the closing handshakes), then calls wsb_shutdown. Call it
   before lua_close. WebSocket.connect raises afterwards. */
void wsluau_shutdown(lua_State *L, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
