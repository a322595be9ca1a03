// echo.cpp: echo.c in C++ through include/wsbridge.hpp, linked with
// -lwsbridge; or, built with -DECHO_DLOPEN, loaded at run time like
// dlopen_echo.c (dlopen / LoadLibrary, then wsbridge::shutdown and unload).
//
//   echo URL [CA.pem]                   linked
//   echo_dlopen URL [LIBRARY [CA.pem]]  loaded (LIBRARY: libwsbridge.so / wsbridge.dll)
//
// Connects, sends one text and one binary message, prints the echoes,
// closes with 1000 and prints the CLOSE event. CA.pem, if given, is trusted
// in addition to the built-in roots (for a wss:// test server). Exit status
// 0 only if both echoes came back intact and the close was clean. Builds
// with -std=c++17 -fno-exceptions.
#include <cstdio>
#include <string>

#ifdef ECHO_DLOPEN
#define WSBRIDGE_DYNAMIC // every call through wsbridge::dynamic_api(), filled in by main
#ifdef _WIN32
#include <windows.h>
#define DEFAULT_LIB "wsbridge.dll"
#else
#include <dlfcn.h>
#define DEFAULT_LIB "libwsbridge.so"
#endif
#endif

#include "wsbridge.hpp"

namespace {

bool read_file(const char *path, std::string &out)
{
    std::FILE *f = std::fopen(path, "rb");
    if (!f)
        return false;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    bool ok = std::ferror(f) == 0;
    std::fclose(f);
    return ok;
}

int run(const char *url, const char *ca_file)
{
    const std::string text = "hello, wsbridge";
    const unsigned char bin[] = {0x00, 0x01, 0xfe, 0xff, 0x00};

    std::printf("wsbridge %s (ABI %u)\n", wsbridge::version(), static_cast<unsigned>(wsbridge::abi_version()));
    wsbridge::options opts;
    if (ca_file) {
        std::string pem;
        if (!read_file(ca_file, pem)) {
            std::fprintf(stderr, "cannot read CA file %s\n", ca_file);
            return 1;
        }
        if (auto r = opts.add_root_certificates(pem).set_connect_timeout(10000); !r) {
            std::fprintf(stderr, "cannot use CA file %s: %s: %s\n", ca_file, r.name(), r.detail.c_str());
            return 1;
        }
    }
    auto ws = wsbridge::socket::connect(url, opts); // the socket took a copy of opts
    if (!ws) {
        std::fprintf(stderr, "connect: %s: %s\n", ws.status.name(), ws.status.detail.c_str());
        return 1;
    }
    if (auto r = ws->wait_open(10000); !r) {
        std::fprintf(stderr, "open: %s: %s\n", r.name(), r.detail.c_str());
        return 1; // ~socket frees it
    }
    // Sent right away: send_* copies the payload and never blocks.
    ws->send_text(text);
    ws->send_binary(bin, sizeof bin);

    bool got_text = false, got_bin = false, clean = false;
    wsbridge::outcome<wsbridge::event> ev;
    while ((ev = ws->wait_event(10000))) {
        // ev->data is valid until the next wait_event on ws: used here only.
        switch (ev->kind) {
        case WSB_EVENT_OPEN:
            std::printf("open (subprotocol \"%.*s\")\n", static_cast<int>(ev->data.size()), ev->data.data());
            break;
        case WSB_EVENT_TEXT:
            std::printf("text: %.*s\n", static_cast<int>(ev->data.size()), ev->data.data());
            got_text = ev->data == text;
            break;
        case WSB_EVENT_BINARY:
            std::printf("binary: %zu bytes\n", ev->data.size());
            got_bin = ev->data == std::string_view(reinterpret_cast<const char *>(bin), sizeof bin);
            break;
        case WSB_EVENT_ERROR:
            std::printf("error: %s: %.*s\n", wsbridge::result_name(ev->error), static_cast<int>(ev->data.size()),
                        ev->data.data());
            break;
        case WSB_EVENT_CLOSE:
            std::printf("close: code %u, clean %d, reason \"%.*s\"\n", static_cast<unsigned>(ev->close_code),
                        ev->clean ? 1 : 0, static_cast<int>(ev->data.size()), ev->data.data());
            clean = ev->clean && ev->close_code == 1000;
            break;
        }
        if (ev->kind == WSB_EVENT_CLOSE)
            break;
        if (got_text && got_bin)
            ws->close(1000, "done"); // a second call is a no-op
    }
    if (!ev)
        std::fprintf(stderr, "wait: %s\n", ev.status.name());
    return got_text && got_bin && clean ? 0 : 1;
} // ws is freed here (wsb_free)

} // namespace

#ifdef ECHO_DLOPEN
int main(int argc, char **argv)
{
    const char *path = argc > 2 ? argv[2] : DEFAULT_LIB;
#ifdef _WIN32
    HMODULE lib = LoadLibraryA(path);
    auto sym = [&](const char *name) { return reinterpret_cast<void *>(reinterpret_cast<std::uintptr_t>(GetProcAddress(lib, name))); };
#else
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    auto sym = [&](const char *name) { return dlsym(lib, name); };
#endif
    if (!lib) {
        std::fprintf(stderr, "cannot load %s\n", path);
        return 1;
    }
    if (const char *missing = wsbridge::load_api(sym)) {
        std::fprintf(stderr, "missing symbol %s in %s\n", missing, path);
        return 1;
    }
    std::printf("loaded from %s\n", path);
    int code = run(argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo", argc > 3 ? argv[3] : nullptr);
    wsbridge::shutdown(2000); // joins every I/O thread: safe to unload now
#ifdef _WIN32
    bool unloaded = FreeLibrary(lib) != 0;
#else
    bool unloaded = dlclose(lib) == 0;
#endif
    if (!unloaded) {
        std::fprintf(stderr, "unload failed\n");
        return 1;
    }
    std::printf("unloaded\n");
    return code;
}
#else
int main(int argc, char **argv)
{
    int code = run(argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo", argc > 2 ? argv[2] : nullptr);
    wsbridge::shutdown(1000);
    return code;
}
#endif
