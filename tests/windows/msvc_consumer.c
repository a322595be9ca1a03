/*
 * msvc_consumer.c: proves the MSVC path of the Windows package (issue 14):
 * compiled for the MSVC ABI (clang --target=x86_64-pc-windows-msvc), linked
 * by lld-link against lib/wsbridge.lib (the import library made from the .def
 * with llvm-dlltool), run under Wine.
 *
 * There are no MSVC headers or CRT on the build machine, so it is
 * freestanding: its own entry point, kernel32 only (GetCommandLineA,
 * GetStdHandle, WriteFile, ExitProcess), and wsbridge.h with clang's own
 * freestanding <stdint.h>/<stddef.h>/<stdbool.h>.
 *
 *   msvc_consumer.exe URL    (exit 0: version, ABI 1, result names, and one
 *                             connect/echo/close through wsbridge.dll)
 */
#include "wsbridge.h"

#define WINAPI __stdcall
__declspec(dllimport) char *WINAPI GetCommandLineA(void);
__declspec(dllimport) void *WINAPI GetStdHandle(unsigned long which);
__declspec(dllimport) int WINAPI WriteFile(void *h, const void *buf, unsigned long len, unsigned long *written,
                                           void *overlapped);
__declspec(dllimport) __declspec(noreturn) void WINAPI ExitProcess(unsigned int code);
#define STD_OUTPUT_HANDLE ((unsigned long)-11)

/* The compiler may emit calls to these even without a CRT. */
void *memset(void *dst, int c, size_t n);
void *memset(void *dst, int c, size_t n)
{
    volatile unsigned char *d = (volatile unsigned char *)dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}
void *memcpy(void *dst, const void *src, size_t n);
void *memcpy(void *dst, const void *src, size_t n)
{
    volatile unsigned char *d = (volatile unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--)
        *d++ = *s++;
    return dst;
}

static size_t len_of(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static void out(const char *s)
{
    unsigned long written;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, (unsigned long)len_of(s), &written, 0);
}

static void fail(const char *what)
{
    out("FAIL: ");
    out(what);
    out(": ");
    out(wsb_last_error());
    out("\n");
    wsb_shutdown(1000);
    ExitProcess(1);
}

/* The last space-separated word of the command line (no quotes expected). */
static const char *last_arg(void)
{
    const char *cmd = GetCommandLineA(), *last = cmd;
    for (const char *p = cmd; *p; p++)
        if (*p == ' ' && p[1] && p[1] != ' ')
            last = p + 1;
    return last;
}

void __stdcall mainCRTStartup(void);
void __stdcall mainCRTStartup(void)
{
    static const char msg[] = "hello from the MSVC ABI";
    const char *url = last_arg();
    wsb_socket ws = 0;
    wsb_event ev;
    int echoed = 0, closed = 0;

    out("wsbridge ");
    out(wsb_version());
    out("\n");
    if (wsb_abi_version() != WSB_ABI_VERSION)
        fail("wsb_abi_version");
    if (!same(wsb_result_name(WSB_OK), "WSB_OK") || !same(wsb_result_name((wsb_result)12345), "WSB_UNKNOWN"))
        fail("wsb_result_name");
    if (wsb_connect(url, 0, &ws) != WSB_OK || wsb_wait_open(ws, 10000) != WSB_OK)
        fail("connect");
    if (wsb_send_text(ws, msg, sizeof msg - 1) != WSB_OK)
        fail("send");
    while (wsb_wait_event(ws, &ev, 10000) == WSB_OK) {
        if (ev.kind == WSB_EVENT_TEXT) {
            echoed = ev.len == sizeof msg - 1 && same(ev.data, msg);
            wsb_close(ws, 1000, 0);
        } else if (ev.kind == WSB_EVENT_CLOSE) {
            closed = ev.clean;
            break;
        }
    }
    wsb_free(ws);
    wsb_shutdown(2000);
    out(echoed && closed ? "echo ok, closed cleanly\n" : "FAIL: no echo or no clean close\n");
    ExitProcess(echoed && closed ? 0 : 1);
}
