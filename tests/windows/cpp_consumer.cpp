// cpp_consumer.cpp: a C++ program that includes wsbridge.h and links the DLL
// through the mingw import library (issue 14). Built with mingw g++ -std=c++17
// -Wall -Wextra -Werror -pedantic, run under Wine: version, ABI, one echo.
//
//   cpp_consumer.exe URL
#include "wsbridge.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

// Frees the socket on every path.
struct Socket {
    wsb_socket handle = 0;
    Socket() = default;
    Socket(const Socket &) = delete;
    Socket &operator=(const Socket &) = delete;
    ~Socket()
    {
        if (handle != 0)
            wsb_free(handle);
    }
};

int run(const char *url)
{
    std::printf("wsbridge %s, ABI %u\n", wsb_version(), static_cast<unsigned>(wsb_abi_version()));
    if (wsb_abi_version() != WSB_ABI_VERSION)
        return 1;
    const std::string msg = "hello from C++";
    Socket ws;
    wsb_result r = wsb_connect(url, nullptr, &ws.handle);
    if (r == WSB_OK)
        r = wsb_wait_open(ws.handle, 10000);
    if (r != WSB_OK) {
        std::fprintf(stderr, "connect: %s: %s\n", wsb_result_name(r), wsb_last_error());
        return 1;
    }
    wsb_send_text(ws.handle, msg.data(), msg.size());
    bool echoed = false, closed = false;
    wsb_event ev;
    while (wsb_wait_event(ws.handle, &ev, 10000) == WSB_OK) {
        if (ev.kind == WSB_EVENT_TEXT) {
            echoed = std::string(ev.data, ev.len) == msg;
            wsb_close(ws.handle, 1000, nullptr);
        } else if (ev.kind == WSB_EVENT_CLOSE) {
            closed = ev.clean;
            break;
        }
    }
    std::printf("echoed %d, closed cleanly %d\n", echoed, closed);
    return echoed && closed ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
    int code = run(argc > 1 ? argv[1] : "ws://127.0.0.1:9001/echo");
    wsb_shutdown(2000);
    return code;
}
