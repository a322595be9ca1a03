/*
 * wsbridge.hpp: a header-only C++17 wrapper over wsbridge.h (the C API,
 * ABI version 1). It adds ownership and types, nothing else: every call is
 * the C call of the same name, and the C header's documentation of that call
 * applies unchanged.
 *
 * Rules, the C API's, stated once:
 *   - Threading: every call may be made from any thread, except that one
 *     thread at a time consumes a socket's events (socket::poll /
 *     socket::wait_event, which are therefore non-const). The const calls of
 *     a socket (send_*, close, state, ...) may run on several threads at
 *     once on the same object, as long as nobody moves, resets or destroys
 *     it meanwhile.
 *   - Blocking: only socket::wait_open, socket::wait_event and
 *     wsbridge::shutdown block, never beyond their timeout. connect, send_*
 *     and close return at once; payloads and strings are copied.
 *   - Errors: no exceptions, ever (it builds with -fno-exceptions). A call
 *     that can fail returns a `result` (the wsb_result code and, for a
 *     failure, wsb_last_error()'s detail, copied at once) or an
 *     `outcome<T>` (a value and a result). Running out of memory ends the
 *     program, as std::string does without exceptions.
 *   - Ownership: `options` owns a wsb_options*, `socket` owns a wsb_socket.
 *     Both are move-only; a moved-from object holds nothing (every call on
 *     it fails with WSB_ERR_NULL_ARGUMENT or WSB_ERR_INVALID_HANDLE, never
 *     undefined behaviour), and destroying it does nothing.
 *   - Closing is the caller's choice: ~socket() calls wsb_free, which closes
 *     an open connection with 1001 in the background. Call close(1000, ...)
 *     and wait for the CLOSE event first for a clean, chosen close.
 *   - Event lifetime: an `event`'s `data` is a std::string_view into the
 *     library's buffer, valid until the next poll/wait_event on the same
 *     socket, the socket's destruction or reset, or the return of
 *     wsbridge::shutdown. Moving the socket does not end it. Copy it
 *     (event::copy()) to keep it longer.
 *
 *   wsbridge::options opts;
 *   if (auto r = opts.set_connect_timeout(5000).add_header("Origin", "https://example.com"); !r)
 *       std::fprintf(stderr, "%s: %s\n", r.name(), r.detail.c_str());
 *   auto ws = wsbridge::socket::connect("wss://example.com/", opts);
 *   if (!ws) return 1;                       // ws.status: the code and detail
 *   ws->send_text("hello");
 *   while (auto ev = ws->wait_event(1000)) { ... ev->data ... }
 */
#ifndef WSBRIDGE_HPP
#define WSBRIDGE_HPP

#include "wsbridge.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <cstring>

#if defined(_MSVC_LANG)
#define WSBRIDGE_CPLUSPLUS _MSVC_LANG
#else
#define WSBRIDGE_CPLUSPLUS __cplusplus
#endif
#if WSBRIDGE_CPLUSPLUS >= 202002L && defined(__has_include)
#if __has_include(<span>)
#include <span>
#endif
#endif
#if defined(__cpp_lib_span)
#define WSBRIDGE_HAS_SPAN 1
#endif

/*
 * Loaded at run time (dlopen / LoadLibrary), no link step: define
 * WSBRIDGE_DYNAMIC before including this header. Every call then goes
 * through wsbridge::dynamic_api(), a table of function pointers (one per
 * name in WSBRIDGE_FUNCTIONS) that wsbridge::load_api fills in once, before
 * any other call, from your symbol lookup (dlsym / GetProcAddress). Call
 * wsbridge::shutdown before unloading. examples-c/cpp/echo.cpp built with
 * -DECHO_DLOPEN does this. WSBRIDGE_FN(name) is how the header names a C
 * function: ::name when linked.
 */
#define WSBRIDGE_FUNCTIONS(X) \
    X(wsb_version) \
    X(wsb_abi_version) \
    X(wsb_result_name) \
    X(wsb_last_error) \
    X(wsb_shutdown) \
    X(wsb_options_new) \
    X(wsb_options_free) \
    X(wsb_options_add_header) \
    X(wsb_options_add_subprotocol) \
    X(wsb_options_set_connect_timeout) \
    X(wsb_options_add_root_certificates) \
    X(wsb_options_set_verify_tls) \
    X(wsb_options_set_max_message_size) \
    X(wsb_options_set_send_queue_limit) \
    X(wsb_options_set_keepalive) \
    X(wsb_options_set_close_timeout) \
    X(wsb_options_set_native_roots) \
    X(wsb_options_set_proxy) \
    X(wsb_options_set_compression) \
    X(wsb_options_set_compression_params) \
    X(wsb_connect) \
    X(wsb_wait_open) \
    X(wsb_send_text) \
    X(wsb_send_binary) \
    X(wsb_ping) \
    X(wsb_close) \
    X(wsb_poll) \
    X(wsb_wait_event) \
    X(wsb_set_notify) \
    X(wsb_get_state) \
    X(wsb_get_compression) \
    X(wsb_buffered_amount) \
    X(wsb_free) \
    X(wsb_get_stats)

#ifdef WSBRIDGE_DYNAMIC
namespace wsbridge {
/// One pointer per C function this header calls, typed from wsbridge.h.
struct api_table {
#define WSBRIDGE_API_FIELD(name) decltype(&::name) name = nullptr;
    WSBRIDGE_FUNCTIONS(WSBRIDGE_API_FIELD)
#undef WSBRIDGE_API_FIELD
};
/// The process's table (one per program: an inline function's static).
inline api_table &dynamic_api() noexcept
{
    static api_table table;
    return table;
}
/// Fills dynamic_api() from `lookup(const char *name) -> void *`. Returns
/// the first name not found (the table is then unusable), or nullptr.
template <class Lookup> const char *load_api(Lookup &&lookup)
{
    api_table &t = dynamic_api();
#define WSBRIDGE_API_LOAD(name)                                                                                    \
    {                                                                                                              \
        void *p = lookup(#name);                                                                                   \
        if (p == nullptr)                                                                                          \
            return #name;                                                                                          \
        static_assert(sizeof p == sizeof t.name, "function and object pointers differ in size");                  \
        std::memcpy(&t.name, &p, sizeof p);                                                                        \
    }
    WSBRIDGE_FUNCTIONS(WSBRIDGE_API_LOAD)
#undef WSBRIDGE_API_LOAD
    return nullptr;
}
} // namespace wsbridge
#define WSBRIDGE_FN(name) (::wsbridge::dynamic_api().name)
#else
#define WSBRIDGE_FN(name) ::name
#endif

namespace wsbridge {

/// A wsb_result and, for a failure (a negative code), the detail
/// wsb_last_error() gave right after the call. WSB_EMPTY and WSB_TIMEOUT
/// are not failures, but are not ok() either.
struct result {
    wsb_result code = WSB_OK;
    std::string detail;

    result() = default;
    result(wsb_result c, std::string d) : code(c), detail(std::move(d)) {}

    /// The code of a C call just made on this thread, with its detail.
    static result of(wsb_result c)
    {
        return c < 0 ? result(c, WSBRIDGE_FN(wsb_last_error)()) : result(c, std::string());
    }

    /// WSB_OK.
    bool ok() const noexcept { return code == WSB_OK; }
    explicit operator bool() const noexcept { return ok(); }
    /// A negative code.
    bool failed() const noexcept { return code < 0; }
    /// The enumerator's name, e.g. "WSB_ERR_TLS": a static string.
    const char *name() const noexcept { return WSBRIDGE_FN(wsb_result_name)(code); }
};

/// A value, meaningful when `status` is ok(), and the call's result.
template <class T> struct outcome {
    T value{};
    result status;

    bool ok() const noexcept { return status.ok(); }
    explicit operator bool() const noexcept { return status.ok(); }
    T &operator*() noexcept { return value; }
    const T &operator*() const noexcept { return value; }
    T *operator->() noexcept { return &value; }
    const T *operator->() const noexcept { return &value; }
};

/// The library's version string, e.g. "0.1.0".
inline const char *version() noexcept { return WSBRIDGE_FN(wsb_version)(); }
/// The loaded library's ABI version (compare with WSB_ABI_VERSION).
inline std::uint32_t abi_version() noexcept { return WSBRIDGE_FN(wsb_abi_version)(); }
/// The enumerator's name for a code, e.g. "WSB_ERR_TLS".
inline const char *result_name(wsb_result code) noexcept { return WSBRIDGE_FN(wsb_result_name)(code); }
/// wsb_shutdown: closes every socket, joins every I/O thread (blocks up to
/// about `timeout_ms`). Every socket's handle is invalid afterwards: their
/// destructors then do nothing harmful.
inline void shutdown(std::uint32_t timeout_ms) noexcept { WSBRIDGE_FN(wsb_shutdown)(timeout_ms); }

namespace detail {

inline bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

inline result nul_in(const char *what)
{
    return result(WSB_ERR_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte");
}

/// The option setters, shared by `options` and the `setting` a setter
/// returns (so calls chain). Self::apply(what, f) runs f(wsb_options*).
template <class Self> class option_setters {
    Self &self() noexcept { return static_cast<Self &>(*this); }

public:
    /// wsb_options_add_header (name: an HTTP token; value: no CR, LF, NUL).
    auto add_header(std::string_view name, std::string_view value)
    {
        if (has_nul(name) || has_nul(value))
            return self().fail(nul_in("header"));
        std::string n(name), v(value);
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_add_header)(o, n.c_str(), v.c_str()); });
    }
    /// wsb_options_add_subprotocol.
    auto add_subprotocol(std::string_view protocol)
    {
        if (has_nul(protocol))
            return self().fail(nul_in("subprotocol"));
        std::string p(protocol);
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_add_subprotocol)(o, p.c_str()); });
    }
    /// wsb_options_set_connect_timeout (0 = the default, 10000 ms).
    auto set_connect_timeout(std::uint32_t ms)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_connect_timeout)(o, ms); });
    }
    /// wsb_options_add_root_certificates: PEM text, copied.
    auto add_root_certificates(std::string_view pem)
    {
        return self().apply(
            [&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_add_root_certificates)(o, pem.data(), pem.size()); });
    }
    /// wsb_options_set_verify_tls (false: for testing only).
    auto set_verify_tls(bool verify)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_verify_tls)(o, verify); });
    }
    /// wsb_options_set_max_message_size.
    auto set_max_message_size(std::size_t bytes)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_max_message_size)(o, bytes); });
    }
    /// wsb_options_set_send_queue_limit.
    auto set_send_queue_limit(std::size_t bytes)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_send_queue_limit)(o, bytes); });
    }
    /// wsb_options_set_keepalive.
    auto set_keepalive(std::uint32_t ping_interval_ms, std::uint32_t pong_timeout_ms = 0)
    {
        return self().apply(
            [&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_keepalive)(o, ping_interval_ms, pong_timeout_ms); });
    }
    /// wsb_options_set_close_timeout.
    auto set_close_timeout(std::uint32_t ms)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_close_timeout)(o, ms); });
    }
    /// wsb_options_set_native_roots.
    auto set_native_roots(bool enable)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_native_roots)(o, enable); });
    }
    /// wsb_options_set_proxy ("" removes it).
    auto set_proxy(std::string_view url)
    {
        if (has_nul(url))
            return self().fail(nul_in("proxy URL"));
        std::string u(url);
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_proxy)(o, u.c_str()); });
    }
    /// wsb_options_set_compression.
    auto set_compression(bool enable)
    {
        return self().apply([&](wsb_options *o) { return WSBRIDGE_FN(wsb_options_set_compression)(o, enable); });
    }
    /// wsb_options_set_compression_params.
    auto set_compression_params(std::uint8_t client_max_window_bits, std::uint8_t server_max_window_bits,
                                bool client_no_context_takeover, bool server_no_context_takeover)
    {
        return self().apply([&](wsb_options *o) {
            return WSBRIDGE_FN(wsb_options_set_compression_params)(o, client_max_window_bits, server_max_window_bits,
                                                      client_no_context_takeover, server_no_context_takeover);
        });
    }
};

} // namespace detail

class options;

/// What an option setter returns: its result (check it, or chain more
/// setters on it). Once one setter in a chain fails, the later ones are not
/// applied and the chain's result is the first failure.
class setting : public result, public detail::option_setters<setting> {
    friend class options;
    friend class detail::option_setters<setting>;
    options *opts_;

    setting(options *o, result r) : result(std::move(r)), opts_(o) {}
    template <class F> setting apply(F &&f);
    setting fail(result r) { return failed() ? std::move(*this) : setting(opts_, std::move(r)); }
};

/// Owns a wsb_options (wsb_options_new / wsb_options_free). Move-only. A
/// socket copies what it needs at connect: the options may be changed or
/// destroyed afterwards.
class options : public detail::option_setters<options> {
    friend class detail::option_setters<options>;
    friend class setting;
    wsb_options *p_;

    template <class F> setting apply(F &&f) { return setting(this, result::of(f(p_))); }
    setting fail(result r) { return setting(this, std::move(r)); }

public:
    /// Every option at its default. get() is NULL only if memory ran out
    /// (then every setter fails with WSB_ERR_NULL_ARGUMENT).
    options() noexcept : p_(WSBRIDGE_FN(wsb_options_new)()) {}
    ~options() { WSBRIDGE_FN(wsb_options_free)(p_); }
    options(options &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    options &operator=(options &&o) noexcept
    {
        if (this != &o) {
            WSBRIDGE_FN(wsb_options_free)(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    options(const options &) = delete;
    options &operator=(const options &) = delete;

    /// The C object, still owned by this (for calls the wrapper lacks).
    wsb_options *get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
};

template <class F> setting setting::apply(F &&f)
{
    if (failed())
        return std::move(*this);
    return opts_->apply(std::forward<F>(f));
}

/// One event, a value. `data` (wsb_event's data and len) is a view into the
/// library's buffer: valid until the next poll/wait_event on the same
/// socket, the socket's destruction or reset, or wsbridge::shutdown's
/// return. copy() it to keep it.
struct event {
    wsb_event_kind kind = WSB_EVENT_CLOSE;
    /// WSB_EVENT_ERROR: the error's code; WSB_OK otherwise.
    wsb_result error = WSB_OK;
    /// WSB_EVENT_CLOSE: the peer's code (1005: none; 1006: no close frame).
    std::uint16_t close_code = 0;
    /// WSB_EVENT_CLOSE: the closing handshake completed.
    bool clean = false;
    /// OPEN: the subprotocol; TEXT/BINARY: the message (may hold NULs);
    /// ERROR: the detail; CLOSE: the reason. data.data()[data.size()] is a
    /// NUL while the view is valid.
    std::string_view data;

    event() = default;
    explicit event(const wsb_event &e) noexcept
        : kind(e.kind), error(e.error), close_code(e.close_code), clean(e.clean), data(e.data, e.len)
    {
    }
    /// The payload as an owned string, valid for as long as you keep it.
    std::string copy() const { return std::string(data); }
};

/// Owns a wsb_socket. Move-only; the destructor calls wsb_free.
class socket {
    wsb_socket h_ = 0;

    outcome<event> take(wsb_result r, const wsb_event &e) const
    {
        outcome<event> o;
        o.status = result::of(r);
        if (r == WSB_OK)
            o.value = event(e);
        return o;
    }

public:
    /// Holds nothing.
    socket() noexcept = default;
    /// Takes ownership of a handle from wsb_connect.
    explicit socket(wsb_socket adopt) noexcept : h_(adopt) {}
    ~socket() { reset(); }
    socket(socket &&o) noexcept : h_(std::exchange(o.h_, 0)) {}
    socket &operator=(socket &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, 0);
        }
        return *this;
    }
    socket(const socket &) = delete;
    socket &operator=(const socket &) = delete;

    /// wsb_connect: returns at once with the socket (CONNECTING), or the
    /// code and detail of a bad URL. The outcome of the connect itself
    /// arrives as events (OPEN, or ERROR then CLOSE): see wait_open.
    static outcome<socket> connect(std::string_view url, const options &opts)
    {
        return connect_with(url, opts.get(), true);
    }
    /// wsb_connect with every option at its default.
    static outcome<socket> connect(std::string_view url) { return connect_with(url, nullptr, false); }

    /// The handle, still owned by this; 0 if it holds nothing.
    wsb_socket handle() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != 0; }
    /// Gives the handle up without freeing it.
    wsb_socket release() noexcept { return std::exchange(h_, 0); }
    /// wsb_free, now (a no-op when holding nothing). Ends the last event's
    /// data. Returns WSB_ERR_INVALID_HANDLE for a handle already invalid
    /// (e.g. after wsbridge::shutdown); it is dropped all the same.
    result reset() noexcept
    {
        if (h_ == 0)
            return result();
        wsb_result r = WSBRIDGE_FN(wsb_free)(std::exchange(h_, 0));
        return r == WSB_OK ? result() : result(r, std::string());
    }

    /// wsb_wait_open: WSB_OK, the connect's failure, WSB_TIMEOUT or
    /// WSB_ERR_NOT_OPEN (abandoned by close). Blocks up to timeout_ms.
    result wait_open(std::uint32_t timeout_ms) const { return result::of(WSBRIDGE_FN(wsb_wait_open)(h_, timeout_ms)); }
    /// wsb_send_text: must be UTF-8; copied; never blocks.
    result send_text(std::string_view text) const
    {
        return result::of(WSBRIDGE_FN(wsb_send_text)(h_, text.data(), text.size()));
    }
    /// wsb_send_binary: copied; never blocks.
    result send_binary(const void *data, std::size_t len) const
    {
        return result::of(WSBRIDGE_FN(wsb_send_binary)(h_, data, len));
    }
#if defined(WSBRIDGE_HAS_SPAN)
    /// wsb_send_binary of a byte span (C++20).
    result send_binary(std::span<const std::byte> bytes) const { return send_binary(bytes.data(), bytes.size()); }
#endif
    /// wsb_ping (at most 125 bytes).
    result ping(std::string_view payload = {}) const
    {
        return result::of(WSBRIDGE_FN(wsb_ping)(h_, payload.data(), payload.size()));
    }
    /// wsb_close: start the closing handshake (code 0 means 1000; reason at
    /// most 123 bytes of UTF-8). A second call is a no-op returning WSB_OK.
    /// The CLOSE event follows.
    result close(std::uint16_t code = 1000, std::string_view reason = {}) const
    {
        if (detail::has_nul(reason))
            return detail::nul_in("close reason");
        std::string r(reason);
        return result::of(WSBRIDGE_FN(wsb_close)(h_, code, r.c_str()));
    }
    /// wsb_poll: the next event (ok()), or status WSB_EMPTY. Never blocks.
    /// Ends the previous event's data.
    outcome<event> poll()
    {
        wsb_event e{};
        wsb_result r = WSBRIDGE_FN(wsb_poll)(h_, &e);
        return take(r, e);
    }
    /// wsb_wait_event: like poll, blocking up to timeout_ms (status
    /// WSB_TIMEOUT if none came).
    outcome<event> wait_event(std::uint32_t timeout_ms)
    {
        wsb_event e{};
        wsb_result r = WSBRIDGE_FN(wsb_wait_event)(h_, &e, timeout_ms);
        return take(r, e);
    }
    /// wsb_get_state.
    outcome<wsb_state> state() const
    {
        outcome<wsb_state> o;
        o.value = WSB_STATE_CLOSED;
        o.status = result::of(WSBRIDGE_FN(wsb_get_state)(h_, &o.value));
        return o;
    }
    /// wsb_get_stats (with size = sizeof(wsb_stats)).
    outcome<wsb_stats> stats() const
    {
        outcome<wsb_stats> o;
        o.value.size = sizeof(wsb_stats);
        o.status = result::of(WSBRIDGE_FN(wsb_get_stats)(h_, &o.value));
        return o;
    }
    /// wsb_get_compression: whether permessage-deflate was negotiated.
    outcome<bool> compression() const
    {
        outcome<bool> o;
        o.status = result::of(WSBRIDGE_FN(wsb_get_compression)(h_, &o.value));
        return o;
    }
    /// wsb_buffered_amount.
    outcome<std::size_t> buffered_amount() const
    {
        outcome<std::size_t> o;
        o.status = result::of(WSBRIDGE_FN(wsb_buffered_amount)(h_, &o.value));
        return o;
    }
    /// wsb_set_notify (see its rules: fn runs on the I/O thread).
    result set_notify(wsb_notify_fn fn, void *user_data) const
    {
        return result::of(WSBRIDGE_FN(wsb_set_notify)(h_, fn, user_data));
    }

private:
    static outcome<socket> connect_with(std::string_view url, const wsb_options *opts, bool need_opts)
    {
        outcome<socket> o;
        if (need_opts && opts == nullptr) {
            o.status = result(WSB_ERR_NULL_ARGUMENT, "options: moved from, or out of memory");
            return o;
        }
        if (detail::has_nul(url)) {
            o.status = result(WSB_ERR_INVALID_URL, "URL contains a NUL byte");
            return o;
        }
        std::string u(url);
        wsb_socket h = 0;
        o.status = result::of(WSBRIDGE_FN(wsb_connect)(u.c_str(), opts, &h));
        if (o.status.ok())
            o.value = socket(h);
        return o;
    }
};

} // namespace wsbridge

#endif /* WSBRIDGE_HPP */
