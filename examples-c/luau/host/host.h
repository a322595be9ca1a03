/*
 * host.h: the entry point of the wsb-luau host (host.c).
 *
 * The Rust front end (src/main.rs) and the small C front end (main.c, what
 * the Windows build uses) both call it; so can your own program.
 */
#ifndef WSB_LUAU_HOST_H
#define WSB_LUAU_HOST_H

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the Luau script in the file `script` as the main coroutine, with the
   `argc` strings of `argv` as `...`, until it and everything it scheduled
   finished, it failed, or `timeout_s` seconds passed. `compression` zero:
   sockets do not offer permessage-deflate (wsluau_host's
   disable_compression). `binary_as_buffer` non-zero: OnMessage delivers
   binary messages as `buffer` values (wsluau_host's binary_as_buffer). Returns the process exit code: 0 all finished and no
   socket is open; 1 the script failed to load, raised an error or stayed
   suspended; 2 a spawned coroutine or handler raised an error; 3 the host
   timeout expired. Errors go to stderr. */
int wsb_luau_run(const char *script, int argc, const char *const *argv, double timeout_s, int compression,
                 int binary_as_buffer);

/* wsb-luau --log LEVEL: installs a wsbridge log hook (wsb_set_log) that
   writes each line to stderr as `wsb-luau: [INFO] socket 1: OPEN`. LEVEL is
   "error", "warn", "info" or "debug"; NULL removes the hook. Returns 0, or
   -1 for an unknown LEVEL (nothing installed). */
int wsb_luau_log(const char *level);

#ifdef __cplusplus
}
#endif

#endif
