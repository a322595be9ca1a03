//! wsbridge: a WebSocket client with a C ABI, for native script hosts.
//!
//! The safe core, one concept per module:
//! - [`registry`]: the handle table (u64 handles, never reused) and the set of I/O threads;
//! - [`socket`]: one socket's shared state and the host side: send, close, poll, wait;
//! - [`conn`]: the socket's I/O thread: connect, the hand-off to open, the loop over the open connection;
//! - `lifecycle`: an open connection's lifecycle (RFC 6455 §7): its states and the one transition function;
//! - [`connect`]: before open, one file per step: the URL, DNS and Happy
//!   Eyeballs, the proxy tunnel, TLS, the HTTP upgrade; with timeouts;
//! - [`transport`]: the non-blocking byte stream (plain or rustls);
//! - [`wire`]: every write to a socket, unable to raise SIGPIPE;
//! - [`protocol`]: the frame layer: how a frame is validated (bytes in →
//!   messages) and how a frame is written;
//! - [`outbox`]: outgoing frames, framed by the sending host thread, written by it or the I/O thread;
//! - [`event`]: the per-socket event queue the host polls;
//! - [`notify`]: the host's wake-up callback;
//! - [`stats`]: per-socket counters and connect timings (`wsb_get_stats`);
//! - the configuration: [`options`];
//! - [`log`]: the log lines and where they go (the host's hook, or stderr);
//! - [`error`]: result codes and details, and the mapping of a stream's I/O errors;
//! - [`time`]: deadlines (`deadline_after`).
//!
//! [`ffi`] is the only place with `unsafe`: the `extern "C"` functions, each
//! behind one panic boundary, converting pointers and delegating to the core.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod conn;
pub mod connect;
pub mod error;
pub mod event;
// The one module allowed `unsafe` (and `#[no_mangle]`): the C boundary.
#[allow(unsafe_code)]
pub mod ffi;
mod lifecycle;
pub mod log;
pub mod notify;
pub mod options;
pub mod outbox;
pub mod protocol;
pub mod registry;
pub mod socket;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod time;
pub mod transport;
pub mod wire;

pub use error::{wsb_result, Error};
