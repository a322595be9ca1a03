//! Every write to a socket, made unable to raise SIGPIPE.
//!
//! A write to a connection the peer has reset raises SIGPIPE on Unix, and
//! SIGPIPE's default action ends the process. A Rust binary ignores SIGPIPE
//! at start-up, but this library runs inside a C host whose signal
//! disposition is the host's own: the library never changes it. Instead,
//! every byte the library writes to a socket goes through [`Wire`]:
//!
//! - Linux and the other Unixes with `MSG_NOSIGNAL`: `send(2)` and
//!   `sendmsg(2)` with `MSG_NOSIGNAL`, plain and vectored alike (std's
//!   `TcpStream::write` already does this, but its `write_vectored` is a
//!   plain `writev(2)`, which rustls's `write_tls` uses);
//! - macOS and the other Apple systems: `SO_NOSIGPIPE` on the socket, set by
//!   [`guard`] when the socket is made (mio sets it too; this does not rely
//!   on that);
//! - Windows has no SIGPIPE: the plain mio writes.
//!
//! A broken pipe is then an ordinary `EPIPE` error, which the I/O thread
//! reports as the contract says (ERROR, then CLOSE 1006).

use std::io::{self, IoSlice, Write};

use mio::net::TcpStream;

/// A socket seen as a writer that never raises SIGPIPE (see the module doc).
pub struct Wire<'a>(pub &'a TcpStream);

/// The `send(2)` flags of every write.
#[cfg(all(unix, not(target_vendor = "apple")))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const SEND_FLAGS: libc::c_int = 0;

/// Make a new socket safe to write to (Apple: `SO_NOSIGPIPE`; elsewhere
/// the flags of each write do it, and there is nothing to set).
pub fn guard(sock: &TcpStream) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    socket2::SockRef::from(sock).set_nosigpipe(true)?;
    let _ = sock;
    Ok(())
}

#[cfg(unix)]
impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket2::SockRef::from(self.0).send_with_flags(buf, SEND_FLAGS)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(self.0).send_vectored_with_flags(bufs, SEND_FLAGS)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Windows has no SIGPIPE: mio's own writes (which also keep its readiness
/// bookkeeping right on a would-block).
#[cfg(windows)]
impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
