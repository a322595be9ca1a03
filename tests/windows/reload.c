/*
 * reload.c: the DLL reload loop (issue 14), under Wine in .ci/windows.sh.
 *
 *   reload.exe URL ROUNDS [wsbridge.dll]
 *
 * Each round: LoadLibrary, connect, echo one message, close, wsb_free,
 * wsb_shutdown, count this process's threads, FreeLibrary. It fails (exit 1)
 * if a round fails, if the thread count after wsb_shutdown is not back to the
 * count before the first load (Toolhelp32 snapshot: the Windows API's view),
 * if the working set grew by more than 8 MiB between round 50 and the last
 * round, or if fewer TLS slots are free at the end than after round 1.
 *
 * Before the fix (the module pinned on first use, src/ffi/mod.rs) every load
 * of the Rust DLL leaked 7 TLS slots and the process died at round ~155 with
 * "fatal runtime error: out of TLS indexes".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <psapi.h>
#include <tlhelp32.h>

#include "wsbridge.h"

static struct {
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

static int load(HMODULE lib)
{
#define LOAD(field, name)                                  \
    do {                                                   \
        FARPROC p_ = GetProcAddress(lib, name);            \
        if (!p_) {                                         \
            fprintf(stderr, "missing symbol %s\n", name);  \
            return 0;                                      \
        }                                                  \
        memcpy(&api.field, &p_, sizeof p_);                \
    } while (0)
    LOAD(result_name, "wsb_result_name");
    LOAD(last_error, "wsb_last_error");
    LOAD(connect, "wsb_connect");
    LOAD(wait_open, "wsb_wait_open");
    LOAD(send_text, "wsb_send_text");
    LOAD(wait_event, "wsb_wait_event");
    LOAD(close, "wsb_close");
    LOAD(free, "wsb_free");
    LOAD(shutdown, "wsb_shutdown");
    return 1;
#undef LOAD
}

/* Threads of this process, as Windows counts them. */
static int count_threads(void)
{
    DWORD pid = GetCurrentProcessId();
    THREADENTRY32 te;
    int n = 0;
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return -1;
    te.dwSize = sizeof te;
    if (Thread32First(snap, &te)) {
        do {
            if (te.th32OwnerProcessID == pid)
                n++;
            te.dwSize = sizeof te;
        } while (Thread32Next(snap, &te));
    }
    CloseHandle(snap);
    return n;
}

static size_t working_set(void)
{
    PROCESS_MEMORY_COUNTERS pmc;
    memset(&pmc, 0, sizeof pmc);
    pmc.cb = sizeof pmc;
    return GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc) ? (size_t)pmc.WorkingSetSize : 0;
}

/* TLS slots still free: allocate them all, count, give them back. */
static int free_tls_slots(void)
{
    static DWORD slots[4096];
    int n = 0;
    while (n < 4096 && (slots[n] = TlsAlloc()) != TLS_OUT_OF_INDEXES)
        n++;
    for (int i = 0; i < n; i++)
        TlsFree(slots[i]);
    return n;
}

static int echo_once(const char *url, int round)
{
    char msg[64];
    wsb_socket ws = 0;
    wsb_event ev;
    wsb_result r;
    int echoed = 0, closed = 0;
    snprintf(msg, sizeof msg, "round %d", round);
    if ((r = api.connect(url, NULL, &ws)) != WSB_OK || (r = api.wait_open(ws, 10000)) != WSB_OK) {
        fprintf(stderr, "round %d: connect: %s: %s\n", round, api.result_name(r), api.last_error());
        if (ws)
            api.free(ws);
        return 0;
    }
    api.send_text(ws, msg, strlen(msg));
    while (api.wait_event(ws, &ev, 10000) == WSB_OK) {
        if (ev.kind == WSB_EVENT_TEXT) {
            echoed = ev.len == strlen(msg) && memcmp(ev.data, msg, ev.len) == 0;
            api.close(ws, 1000, NULL);
        } else if (ev.kind == WSB_EVENT_CLOSE) {
            closed = ev.clean;
            break;
        }
    }
    api.free(ws);
    if (!echoed || !closed)
        fprintf(stderr, "round %d: echoed %d, closed cleanly %d\n", round, echoed, closed);
    return echoed && closed;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo";
    int rounds = argc > 2 ? atoi(argv[2]) : 1000;
    const char *path = argc > 3 ? argv[3] : "wsbridge.dll";
    int base_threads = count_threads();
    int tls_after_first = -1, tls_end;
    size_t ws_warm = 0, ws_end;

    printf("threads before the first load: %d; free TLS slots: %d\n", base_threads, free_tls_slots());
    for (int round = 1; round <= rounds; round++) {
        HMODULE lib = LoadLibraryA(path);
        int threads;
        if (!lib) {
            fprintf(stderr, "round %d: LoadLibrary(%s) failed: error %lu\n", round, path, GetLastError());
            return 1;
        }
        if (!load(lib) || !echo_once(url, round))
            return 1;
        api.shutdown(2000);
        threads = count_threads();
        if (threads != base_threads) {
            fprintf(stderr, "round %d: %d threads after wsb_shutdown, %d before the first load\n", round,
                    threads, base_threads);
            return 1;
        }
        if (!FreeLibrary(lib)) {
            fprintf(stderr, "round %d: FreeLibrary failed: error %lu\n", round, GetLastError());
            return 1;
        }
        if (round == 1)
            tls_after_first = free_tls_slots();
        if (round == 50)
            ws_warm = working_set();
        if (round % 100 == 0 || round <= 3)
            printf("round %d: threads %d, working set %lu KiB, free TLS slots %d\n", round, threads,
                   (unsigned long)(working_set() / 1024), free_tls_slots());
        fflush(stdout);
    }
    ws_end = working_set();
    tls_end = free_tls_slots();
    printf("%d rounds: threads back to %d after every wsb_shutdown; working set %lu KiB at round 50, "
           "%lu KiB at the end; free TLS slots %d after round 1, %d at the end\n",
           rounds, base_threads, (unsigned long)(ws_warm / 1024), (unsigned long)(ws_end / 1024), tls_after_first,
           tls_end);
    if (rounds >= 50 && ws_end > ws_warm + 8u * 1024 * 1024) {
        fprintf(stderr, "the working set grew by more than 8 MiB\n");
        return 1;
    }
    if (tls_end < tls_after_first) {
        fprintf(stderr, "TLS slots leaked: %d fewer free\n", tls_after_first - tls_end);
        return 1;
    }
    return 0;
}
