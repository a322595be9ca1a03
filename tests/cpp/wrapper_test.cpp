// wrapper_test.cpp: include/wsbridge.hpp checked against a loopback test
// server: ownership (moves, double close, a stale handle through a moved-from
// object), event lifetimes, results and details. Built with -std=c++17 (and
// C++20) -fno-exceptions -Wall -Wextra -Werror, linked or, with
// -DWSBRIDGE_DYNAMIC, loaded with dlopen (tests/c_examples.rs runs each).
//
//   wrapper_test WS_BASE_URL [LIBRARY]     e.g. ws://127.0.0.1:PORT  (paths /echo, /refuse403, /close)
//
// Prints one line per check and ends with "N passed, N failed".
#ifdef WSBRIDGE_DYNAMIC
#include <dlfcn.h>
#endif
#include "wsbridge.hpp"

#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "wrapper_test is built with -fno-exceptions: wsbridge.hpp must not need them"
#endif

namespace {

int passed = 0, failed = 0;
std::string base;

void check(bool cond, const char *what, int line, const std::string &detail = std::string())
{
    if (cond) {
        ++passed;
        std::printf("ok   %s\n", what);
    } else {
        ++failed;
        std::printf("FAIL %s (line %d%s%s)\n", what, line, detail.empty() ? "" : ": ", detail.c_str());
    }
}
#define CHECK(cond, what) check((cond), (what), __LINE__)
#define CHECK_R(res, want, what)                                                                                      \
    do {                                                                                                              \
        const wsbridge::result &r_ = (res);                                                                           \
        check(r_.code == (want), (what), __LINE__, std::string(r_.name()) + " " + r_.detail);                         \
    } while (0)

std::string url(const char *path) { return base + path; }

using wsbridge::options;
using wsbridge::socket;

// The types are what the header promises.
static_assert(!std::is_copy_constructible_v<socket> && !std::is_copy_assignable_v<socket>, "socket: move-only");
static_assert(std::is_nothrow_move_constructible_v<socket> && std::is_nothrow_move_assignable_v<socket>, "socket");
static_assert(!std::is_copy_constructible_v<options> && !std::is_copy_assignable_v<options>, "options: move-only");
static_assert(std::is_nothrow_move_constructible_v<options> && std::is_nothrow_move_assignable_v<options>, "options");
static_assert(std::is_same_v<decltype(wsbridge::event::data), std::string_view>, "event payload: a string_view");

// Connect to path and wait for OPEN (consumed).
socket open(const char *path, const options &opts = options())
{
    auto s = socket::connect(url(path), opts);
    if (!s)
        return socket();
    if (!s->wait_open(10000))
        return socket();
    auto ev = s->wait_event(10000);
    if (!ev || ev->kind != WSB_EVENT_OPEN)
        return socket();
    return std::move(s.value);
}

void test_library()
{
    CHECK(wsbridge::abi_version() == WSB_ABI_VERSION, "abi version is the header's");
    CHECK(std::string(wsbridge::version()).size() > 0, "version string");
    CHECK(std::string(wsbridge::result_name(WSB_ERR_TLS)) == "WSB_ERR_TLS", "result_name");
    wsbridge::result ok;
    CHECK(ok.ok() && static_cast<bool>(ok) && !ok.failed() && ok.detail.empty(), "a default result is WSB_OK");
}

void test_options()
{
    options o;
    CHECK(static_cast<bool>(o) && o.get() != nullptr, "options own a wsb_options");
    auto r = o.set_connect_timeout(5000).add_header("X-Test", "1").set_keepalive(0).set_compression(false);
    CHECK_R(r, WSB_OK, "a chain of valid setters is WSB_OK");
    r = o.set_max_message_size(0).add_header("Connection", "close").set_connect_timeout(1);
    CHECK_R(r, WSB_ERR_INVALID_ARGUMENT, "a chain stops at its first failure");
    CHECK(!r.detail.empty(), "the failure carries wsb_last_error's detail");
    CHECK_R(o.add_header("X-Bad", std::string_view("a\0b", 3)), WSB_ERR_INVALID_ARGUMENT,
            "a NUL inside a header value is refused, not truncated");
    CHECK_R(o.set_proxy("socks5://127.0.0.1:1"), WSB_ERR_INVALID_URL, "set_proxy: the C code comes back");
    CHECK_R(o.add_root_certificates("not a pem"), WSB_ERR_INVALID_ARGUMENT, "add_root_certificates: bad PEM");

    options moved = std::move(o);
    CHECK(!o && o.get() == nullptr && static_cast<bool>(moved), "a moved-from options holds nothing");
    CHECK_R(o.set_connect_timeout(1), WSB_ERR_NULL_ARGUMENT, "a setter on a moved-from options fails cleanly");
    auto s = socket::connect(url("/echo"), o);
    CHECK_R(s.status, WSB_ERR_NULL_ARGUMENT, "connect with a moved-from options fails cleanly");
    CHECK(!s.value, "... and gives no socket");
    options other;
    other = std::move(moved); // frees other's own object (valgrind: no leak)
    CHECK(static_cast<bool>(other) && !moved, "move assignment");
    options &alias = other;
    other = std::move(alias); // self-move (through a reference: no -Wself-move): still owned
    CHECK(static_cast<bool>(other), "self move assignment keeps the object");
}

void test_connect_errors()
{
    auto s = socket::connect("http://127.0.0.1/");
    CHECK_R(s.status, WSB_ERR_INVALID_URL, "connect: a bad URL is the result");
    CHECK(!s.status.detail.empty(), "... with its detail");
    s = socket::connect(std::string_view("ws://127.0.0.1/\0x", 17));
    CHECK_R(s.status, WSB_ERR_INVALID_URL, "connect: a NUL inside the URL is refused");
    auto refused = socket::connect(url("/refuse403"));
    CHECK(static_cast<bool>(refused), "connect returns at once");
    if (!refused)
        return;
    auto r = refused->wait_open(10000);
    CHECK_R(r, WSB_ERR_HANDSHAKE, "wait_open: the handshake failure");
    CHECK(r.detail.find("403") != std::string::npos, "... detail names the HTTP status");
}

void test_echo_and_events()
{
    socket s = open("/echo");
    CHECK(static_cast<bool>(s), "open /echo");
    if (!s)
        return;
    auto st = s.state();
    CHECK(st && *st == WSB_STATE_OPEN, "state() is OPEN");
    CHECK_R(s.send_text("first"), WSB_OK, "send_text");
    const unsigned char bin[] = {0, 1, 0xfe, 0xff, 0};
    CHECK_R(s.send_binary(bin, sizeof bin), WSB_OK, "send_binary(pointer, size)");
#if defined(WSBRIDGE_HAS_SPAN)
    const std::byte bytes[] = {std::byte{7}, std::byte{0}, std::byte{7}};
    CHECK_R(s.send_binary(std::span<const std::byte>(bytes)), WSB_OK, "send_binary(std::span) (C++20)");
#endif
    CHECK_R(s.send_text("\xff"), WSB_ERR_INVALID_UTF8, "send_text: invalid UTF-8 is refused");
    CHECK_R(s.ping("p"), WSB_OK, "ping");

    auto ev = s.wait_event(10000);
    CHECK(ev && ev->kind == WSB_EVENT_TEXT && ev->data == "first", "TEXT event, payload a string_view");
    CHECK(ev && ev->data.data()[ev->data.size()] == '\0', "... NUL after the payload");
    std::string kept = ev->copy(); // to outlive the next poll

    // Moving the socket does not end the event's data.
    socket moved = std::move(s);
    CHECK(!s && s.handle() == 0 && static_cast<bool>(moved), "move construction empties the source");
    CHECK(ev->data == "first", "an event's data survives moving its socket");

    ev = moved.wait_event(10000);
    CHECK(ev && ev->kind == WSB_EVENT_BINARY && ev->data == std::string_view("\0\1\xfe\xff\0", 5),
          "BINARY event with NULs");
    CHECK(kept == "first", "a copy outlives the next poll");
#if defined(WSBRIDGE_HAS_SPAN)
    ev = moved.wait_event(10000);
    CHECK(ev && ev->kind == WSB_EVENT_BINARY && ev->data == std::string_view("\7\0\7", 3), "span payload echoed");
#endif
    auto none = moved.poll();
    CHECK_R(none.status, WSB_EMPTY, "poll: WSB_EMPTY when nothing waits");
    CHECK(!none && !none.status.failed(), "... which is neither ok nor a failure");
    auto t = moved.wait_event(50);
    CHECK_R(t.status, WSB_TIMEOUT, "wait_event: WSB_TIMEOUT, bounded");

    auto stats = moved.stats();
    CHECK(stats && stats->messages_out >= 2 && stats->messages_in >= 2, "stats() counts the messages");
    auto comp = moved.compression();
    CHECK(comp && !*comp, "compression() is false when not offered");
    auto buffered = moved.buffered_amount();
    CHECK(buffered.ok(), "buffered_amount()");

    // Calls through the moved-from object reach no socket.
    CHECK_R(s.send_text("x"), WSB_ERR_INVALID_HANDLE, "send_text through a moved-from socket");
    auto stale_ev = s.poll();
    CHECK_R(stale_ev.status, WSB_ERR_INVALID_HANDLE, "poll through a moved-from socket");
    CHECK(stale_ev->data.empty(), "... and its event is empty");
    CHECK_R(s.close(), WSB_ERR_INVALID_HANDLE, "close through a moved-from socket");
    CHECK_R(s.reset(), WSB_OK, "reset of an empty socket is a no-op");

    // Double close: the second is a no-op; exactly one CLOSE event.
    CHECK_R(moved.close(1000, "bye"), WSB_OK, "close(1000, reason)");
    CHECK_R(moved.close(4000, "again"), WSB_OK, "a second close is a no-op");
    int closes = 0;
    bool clean = false;
    while (auto e = moved.wait_event(10000)) {
        if (e->kind == WSB_EVENT_CLOSE) {
            ++closes;
            clean = e->clean && e->close_code == 1000;
        }
    }
    CHECK(closes == 1 && clean, "exactly one clean CLOSE 1000");
    auto closed = moved.state();
    CHECK(closed && *closed == WSB_STATE_CLOSED, "state() is CLOSED");
    CHECK_R(moved.send_text("late"), WSB_ERR_NOT_OPEN, "send after close: WSB_ERR_NOT_OPEN");
}

void test_close_args_and_peer_close()
{
    socket s = open("/echo");
    CHECK(static_cast<bool>(s), "open /echo");
    CHECK_R(s.close(999), WSB_ERR_INVALID_ARGUMENT, "close(999) is refused");
    CHECK_R(s.close(1000, std::string_view("a\0b", 3)), WSB_ERR_INVALID_ARGUMENT, "a NUL in the reason is refused");
    s.reset();

    socket p = open("/close?code=4001&reason=bye");
    CHECK(static_cast<bool>(p), "open /close");
    auto e = p.wait_event(10000);
    CHECK(e && e->kind == WSB_EVENT_CLOSE && e->close_code == 4001 && e->data == "bye",
          "the peer's CLOSE: code and reason");
}

void test_stale_handles()
{
    socket a = open("/echo");
    CHECK(static_cast<bool>(a), "open /echo");
    wsb_socket raw = a.handle();
    socket b;
    b = std::move(a); // b held nothing
    CHECK(b.handle() == raw && !a, "move assignment transfers the handle");
    socket c = open("/echo");
    wsb_socket c_raw = c.handle();
    c = std::move(b); // frees c's own socket first
    CHECK(c.handle() == raw, "move assignment into a live socket");
    socket c_stale(c_raw);
    CHECK_R(c_stale.send_text("x"), WSB_ERR_INVALID_HANDLE, "the overwritten socket was freed");
    CHECK_R(c_stale.reset(), WSB_ERR_INVALID_HANDLE, "reset of a stale handle reports it");
    CHECK(!c_stale, "... and drops it");

    CHECK_R(c.reset(), WSB_OK, "reset frees");
    CHECK_R(c.reset(), WSB_OK, "a second reset is a no-op");
    socket stale(raw); // a handle already freed: detected, never reused
    CHECK_R(stale.send_text("x"), WSB_ERR_INVALID_HANDLE, "a freed handle: send");
    CHECK_R(stale.state().status, WSB_ERR_INVALID_HANDLE, "a freed handle: state");
    CHECK_R(stale.wait_event(10).status, WSB_ERR_INVALID_HANDLE, "a freed handle: wait_event");
    // stale's destructor calls wsb_free on it: WSB_ERR_INVALID_HANDLE, harmless.

    socket released = open("/echo");
    wsb_socket r = released.release();
    CHECK(!released && r != 0, "release gives the handle up");
    socket again(r);
    CHECK_R(again.send_text("adopted"), WSB_OK, "adopting a released handle");
}

void test_shutdown()
{
    socket s = open("/echo");
    CHECK(static_cast<bool>(s), "open /echo before shutdown");
    auto ev = s.poll();
    wsbridge::shutdown(2000);
    auto after = s.send_text("x");
    CHECK(after.code == WSB_ERR_INVALID_HANDLE || after.code == WSB_ERR_SHUTDOWN,
          "after shutdown the socket's handle is invalid");
    CHECK_R(s.reset(), WSB_ERR_INVALID_HANDLE, "... and its reset reports it, harmlessly");
    socket fresh = open("/echo");
    CHECK(static_cast<bool>(fresh), "the library works again after shutdown");
}

} // namespace

int run(int argc, char **argv)
{
    base = argc > 1 ? argv[1] : "ws://127.0.0.1:9001";
    test_library();
    test_options();
    test_connect_errors();
    test_echo_and_events();
    test_close_args_and_peer_close();
    test_stale_handles();
    test_shutdown();
    wsbridge::shutdown(2000);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
#ifdef WSBRIDGE_DYNAMIC
    const char *path = argc > 2 ? argv[2] : "libwsbridge.so";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return 1;
    }
    if (const char *missing = wsbridge::load_api([&](const char *name) { return dlsym(lib, name); })) {
        std::fprintf(stderr, "missing symbol %s\n", missing);
        return 1;
    }
    int code = run(argc, argv);
    if (dlclose(lib) != 0) {
        std::fprintf(stderr, "dlclose failed\n");
        return 1;
    }
    std::printf("unloaded\n");
    return code;
#else
    return run(argc, argv);
#endif
}
