//! The global handle table and the set of live I/O threads.
//!
//! Handles are `u64`s from a counter that never repeats, so a freed or
//! never-issued handle is simply absent from the table: no dangling pointer
//! can reach the core. `shutdown` closes everything and joins every thread.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Code, Error, Result};
use crate::options::Options;
use crate::socket::{self, deadline_after, Socket};
use crate::url::WsUrl;

/// Stack of each I/O thread: TLS handshakes and DNS fit well within it.
const IO_THREAD_STACK: usize = 256 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Hashes a handle with one multiply (Fibonacci hashing): handles are
/// sequential and not attacker-chosen, so SipHash's cost buys nothing on the
/// lookup every call makes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Table = HashMap<u64, Arc<Socket>, BuildHasherDefault<IdHasher>>;

struct Registry {
    table: RwLock<Table>,
    /// Every I/O thread not yet joined (freed sockets included).
    threads: Mutex<Vec<(Arc<Socket>, JoinHandle<()>)>>,
    /// Number of I/O threads still running, and its condvar.
    live: Mutex<usize>,
    live_cv: Condvar,
    /// Serialises whole shutdowns.
    shutdown_lock: Mutex<()>,
}

fn registry() -> &'static Registry {
    static R: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    R.get_or_init(|| Registry {
        table: RwLock::new(Table::default()),
        threads: Mutex::new(Vec::new()),
        live: Mutex::new(0),
        live_cv: Condvar::new(),
        shutdown_lock: Mutex::new(()),
    })
}

fn shutdown_error() -> Error {
    Error::new(
        Code::WSB_ERR_SHUTDOWN,
        "the library is shutting down (wsb_shutdown)",
    )
}

/// Decrements the live-thread count when an I/O thread ends, even by panic.
struct LiveGuard;

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let r = registry();
        let mut n = r.live.lock();
        *n -= 1;
        if *n == 0 {
            r.live_cv.notify_all();
        }
    }
}

/// Parse the URL, create the socket and start its I/O thread.
pub fn connect(url: &str, opts: &Options) -> Result<u64> {
    let url = WsUrl::parse(url)?;
    if SHUTTING_DOWN.load(Ordering::Acquire) {
        return Err(shutdown_error());
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let spawned = Socket::create(id, opts)?;
    let r = registry();
    let mut table = r.table.write();
    // Checked again under the table lock, which shutdown also takes.
    if SHUTTING_DOWN.load(Ordering::Acquire) {
        return Err(shutdown_error());
    }
    let socket = spawned.socket.clone();
    let poll = spawned.poll;
    let opts = opts.clone();
    *r.live.lock() += 1;
    let thread_socket = socket.clone();
    let handle = std::thread::Builder::new()
        .name(format!("wsb-io-{id}"))
        .stack_size(IO_THREAD_STACK)
        .spawn(move || {
            let _guard = LiveGuard;
            socket::run(thread_socket, poll, url, opts);
        });
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            drop(LiveGuard);
            return Err(Error::new(
                Code::WSB_ERR_IO,
                format!("cannot start I/O thread: {e}"),
            ));
        }
    };
    table.insert(id, socket.clone());
    drop(table);
    let mut threads = r.threads.lock();
    // Reap threads that have ended so the list stays short (joining a
    // finished thread returns at once and releases it properly).
    let mut i = 0;
    while i < threads.len() {
        if threads[i].1.is_finished() {
            let (_, h) = threads.swap_remove(i);
            let _ = h.join();
        } else {
            i += 1;
        }
    }
    threads.push((socket, handle));
    Ok(id)
}

pub fn get(id: u64) -> Result<Arc<Socket>> {
    if let Some(s) = registry().table.read().get(&id) {
        return Ok(s.clone());
    }
    if SHUTTING_DOWN.load(Ordering::Acquire) {
        return Err(shutdown_error());
    }
    Err(Error::invalid_handle())
}

/// Remove the handle (invalid at once) and close the socket in the background.
pub fn free(id: u64) -> Result<()> {
    let socket = registry().table.write().remove(&id);
    match socket {
        Some(s) => {
            s.release();
            Ok(())
        }
        None if SHUTTING_DOWN.load(Ordering::Acquire) => Err(shutdown_error()),
        None => Err(Error::invalid_handle()),
    }
}

/// Close every socket, wait up to `timeout` for the close handshakes, then
/// abort what is left and join every I/O thread.
pub fn shutdown(timeout: Duration) {
    let r = registry();
    // One shutdown at a time. Called from a notify callback while another
    // shutdown runs, it returns at once: that shutdown is waiting for this
    // very thread, so waiting here would deadlock.
    let _one = if crate::notify::on_io_thread() {
        match r.shutdown_lock.try_lock() {
            Some(g) => g,
            None => return,
        }
    } else {
        r.shutdown_lock.lock()
    };
    let sockets: Vec<Arc<Socket>> = {
        let mut table = r.table.write();
        SHUTTING_DOWN.store(true, Ordering::Release);
        // Take the map itself so its memory is released too.
        std::mem::take(&mut *table).into_values().collect()
    };
    for s in &sockets {
        s.release();
    }
    drop(sockets);
    let deadline = deadline_after(timeout);
    // An I/O thread calling shutdown from its callback cannot wait for itself.
    let own = crate::notify::current_io_socket();
    let me = usize::from(own.is_some());
    {
        let mut live = r.live.lock();
        while *live > me {
            if r.live_cv.wait_until(&mut live, deadline).timed_out() {
                break;
            }
        }
    }
    let threads: Vec<(Arc<Socket>, JoinHandle<()>)> = std::mem::take(&mut *r.threads.lock());
    for (s, _) in &threads {
        // The calling I/O thread (shutdown from a callback) is not aborted: it
        // finishes its own 1001 close after the callback returns.
        if Some(s.id) != own {
            s.abort();
        }
    }
    for (s, h) in threads {
        if Some(s.id) == own {
            // Still running (it is us): a later shutdown joins it.
            r.threads.lock().push((s, h));
        } else {
            drop(s);
            let _ = h.join();
        }
    }
    SHUTTING_DOWN.store(false, Ordering::Release);
}
