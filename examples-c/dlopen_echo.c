/*
 * dlopen_echo.c: use wsbridge without linking it, the way plugin hosts do:
 * load it at run time (dlopen / LoadLibrary), look up each function by name,
 * echo one message, then wsb_shutdown() and unload it.
 *
 *   dlopen_echo URL [LIBRARY]
 *
 * LIBRARY defaults to libwsbridge.so (wsbridge.dll on Windows). wsb_shutdown
 * joins every I/O thread first, so no library code runs after the unload.
 */
#include <stdio.h>
#include <string.h>

#include "wsbridge.h"

#ifdef _WIN32
#include <windows.h>
typedef HMODULE lib_t;
static lib_t lib_open(const char *p) { return LoadLibraryA(p); }
static void *lib_sym(lib_t l, const char *n) { return (void *)(uintptr_t)GetProcAddress(l, n); }
static int lib_close(lib_t l) { return FreeLibrary(l) ? 0 : 1; }
static const char *lib_error(void) { return "LoadLibrary/GetProcAddress failed"; }
#define DEFAULT_LIB "wsbridge.dll"
#else
#include <dlfcn.h>
typedef void *lib_t;
static lib_t lib_open(const char *p) { return dlopen(p, RTLD_NOW | RTLD_LOCAL); }
static void *lib_sym(lib_t l, const char *n) { return dlsym(l, n); }
static int lib_close(lib_t l) { return dlclose(l); }
static const char *lib_error(void) { return dlerror(); }
#define DEFAULT_LIB "libwsbridge.so"
#endif

/* One pointer per function, typed from the header's declarations. */
static struct {
    const char *(*version)(void);
    const char *(*result_name)(wsb_result);
    const char *(*last_error)(void);
    wsb_result (*connect)(const char *, const wsb_options *, wsb_socket *);
    wsb_result (*wait_open)(wsb_socket, uint32_t);
    wsb_result (*send_text)(wsb_socket, const char *, size_t);
    wsb_result (*wait_event)(wsb_socket, wsb_event *, uint32_t);
    wsb_result (*close)(wsb_socket, uint16_t, const char *);
    wsb_result (*free)(wsb_socket);
    void (*shutdown)(uint32_t);
} api;

#define LOAD(field, name)                                               \
    do {                                                                \
        void *p_ = lib_sym(lib, name);                                  \
        if (!p_) {                                                      \
            fprintf(stderr, "missing symbol %s: %s\n", name, lib_error()); \
            return 1;                                                   \
        }                                                               \
        memcpy(&api.field, &p_, sizeof p_);                             \
    } while (0)

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo";
    const char *path = argc > 2 ? argv[2] : DEFAULT_LIB;
    const char *msg = "hello through dlopen";
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    int echoed = 0, closed = 0;
    lib_t lib = lib_open(path);

    if (!lib) {
        fprintf(stderr, "cannot load %s: %s\n", path, lib_error());
        return 1;
    }
    LOAD(version, "wsb_version");
    LOAD(result_name, "wsb_result_name");
    LOAD(last_error, "wsb_last_error");
    LOAD(connect, "wsb_connect");
    LOAD(wait_open, "wsb_wait_open");
    LOAD(send_text, "wsb_send_text");
    LOAD(wait_event, "wsb_wait_event");
    LOAD(close, "wsb_close");
    LOAD(free, "wsb_free");
    LOAD(shutdown, "wsb_shutdown");
    printf("loaded wsbridge %s from %s\n", api.version(), path);

    if ((r = api.connect(url, NULL, &ws)) != WSB_OK || (r = api.wait_open(ws, 10000)) != WSB_OK) {
        fprintf(stderr, "connect: %s: %s\n", api.result_name(r), api.last_error());
        api.shutdown(1000);
        lib_close(lib);
        return 1;
    }
    api.send_text(ws, msg, strlen(msg));
    while (api.wait_event(ws, &ev, 10000) == WSB_OK) {
        if (ev.kind == WSB_EVENT_TEXT) {
            printf("text: %s\n", ev.data);
            echoed = ev.len == strlen(msg) && memcmp(ev.data, msg, ev.len) == 0;
            api.close(ws, 1000, NULL);
        } else if (ev.kind == WSB_EVENT_CLOSE) {
            printf("close: code %u, clean %d\n", ev.close_code, ev.clean);
            closed = ev.clean;
            break;
        }
    }
    api.free(ws);
    api.shutdown(2000); /* joins every I/O thread: safe to unload now */
    if (lib_close(lib) != 0) {
        fprintf(stderr, "unload failed: %s\n", lib_error());
        return 1;
    }
    printf("unloaded\n");
    return echoed && closed ? 0 : 1;
}
