/*
 * main.c: a small C front end for the wsb-luau host (host.c).
 *
 *   wsb-luau [--timeout SECONDS] [--no-compression] [--binary-as-buffer] [--log LEVEL] SCRIPT [ARG...]
 *
 * The same command line as the Rust front end (src/main.rs) without
 * --echo-server (it has no server of its own: pass a server's URL as an ARG).
 * The Windows build (.ci/windows.sh) links it with host.c, ../websocket.c,
 * Luau and wsbridge.dll into wsb-luau.exe: plain C against the DLL's import
 * library, the way an executor links wsbridge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "wsbridge.h"

static const char usage[] =
    "usage: wsb-luau [--timeout SECONDS] [--no-compression] [--binary-as-buffer] [--log LEVEL] SCRIPT [ARG...]\n"
    "\n"
    "Runs SCRIPT (Luau source) as the main coroutine, with the ARGs as `...`.\n"
    "Globals: print, warn, task.spawn/defer/delay/wait/cancel, WebSocket,\n"
    "collectgarbage(\"collect\" | \"count\").\n"
    "\n"
    "  --timeout SECONDS  stop with exit code 3 after this long (default 60)\n"
    "  --no-compression   sockets do not offer permessage-deflate (by default\n"
    "                     they do)\n"
    "  --binary-as-buffer OnMessage gets binary messages as buffer values (by\n"
    "                     default as strings, as the sUNC API says)\n"
    "  --log LEVEL        wsbridge's log on stderr: error, warn, info or debug\n"
    "\n"
    "Exit codes: 0 all finished; 1 script error (message and stack trace on\n"
    "stderr); 2 an error in a spawned coroutine or handler; 3 host timeout;\n"
    "64 bad command line.\n";

int main(int argc, char **argv)
{
    double timeout = 60.0;
    int compression = 1;
    int binary_as_buffer = 0;
    int code;
    int i = 1;

    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("wsb-luau (C front end, wsbridge %s, ABI %u)\n", wsb_version(), (unsigned)wsb_abi_version());
            return 0;
        }
        if (strcmp(argv[i], "--no-compression") == 0) {
            compression = 0;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--binary-as-buffer") == 0) {
            binary_as_buffer = 1;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
            if (wsb_luau_log(argv[i + 1]) != 0) {
                fprintf(stderr, "wsb-luau: --log: not one of error, warn, info, debug: %s\n%s", argv[i + 1], usage);
                return 64;
            }
            i += 2;
            continue;
        }
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            char *end;
            timeout = strtod(argv[i + 1], &end);
            /* !(t > 0) also refuses NaN; t - t != 0 refuses infinities. */
            if (end == argv[i + 1] || *end != '\0' || !(timeout > 0) || timeout - timeout != 0) {
                fprintf(stderr, "wsb-luau: --timeout: not a positive number of seconds: %s\n%s", argv[i + 1], usage);
                return 64;
            }
            i += 2;
            continue;
        }
        fprintf(stderr, "wsb-luau: unknown option %s\n%s", argv[i], usage);
        return 64;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 64;
    }
    code = wsb_luau_run(argv[i], argc - i - 1, (const char *const *)(argv + i + 1), timeout, compression,
                        binary_as_buffer);
    wsb_luau_log(NULL);
    return code;
}
