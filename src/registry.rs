//! The global handle table and the set of live I/O threads.
//!
//! Handles are `u64`s from a counter that never repeats, so a freed or
//! never-issued handle is simply absent from the table: no dangling pointer
//! can reach the core. `shutdown` closes everything and joins every thread.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::conn;
use crate::connect::url::WsUrl;
use crate::error::{wsb_result, Error, Result};
use crate::options::Options;
use crate::socket::Socket;
use crate::time::deadline_after;

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

/// Copies of the handle table. Each thread reads its own (picked once per
/// thread): host threads calling into one socket from several threads (a
/// sender and a poller, say) would otherwise bounce one lock word between
/// cores on every call. Writers (connect, free, shutdown) change every copy
/// under `write_lock`. Aligned apart so the copies share no cache line.
const REPLICAS: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Replica(RwLock<Table>);

fn my_replica() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % REPLICAS;
    }
    MINE.with(|i| *i)
}

struct Registry {
    replicas: [Replica; REPLICAS],
    /// Serialises table changes (taken before any replica's write lock).
    write_lock: Mutex<()>,
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
        replicas: Default::default(),
        write_lock: Mutex::new(()),
        threads: Mutex::new(Vec::new()),
        live: Mutex::new(0),
        live_cv: Condvar::new(),
        shutdown_lock: Mutex::new(()),
    })
}

fn shutdown_error() -> Error {
    Error::new(
        wsb_result::WSB_ERR_SHUTDOWN,
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
    let table = r.write_lock.lock();
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
            conn::run(thread_socket, poll, url, opts);
        });
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            drop(LiveGuard);
            return Err(Error::new(
                wsb_result::WSB_ERR_IO,
                format!("cannot start I/O thread: {e}"),
            ));
        }
    };
    for rep in &r.replicas {
        rep.0.write().insert(id, socket.clone());
    }
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

fn missing() -> Error {
    if SHUTTING_DOWN.load(Ordering::Acquire) {
        shutdown_error()
    } else {
        Error::invalid_handle()
    }
}

/// The socket behind a handle, for calls that may block (wait_open, wait).
pub fn get(id: u64) -> Result<Arc<Socket>> {
    let table = registry().replicas[my_replica()].0.read();
    table.get(&id).cloned().ok_or_else(missing)
}

/// Run `f` on the socket behind a handle, for calls that never block: no
/// reference count is taken (the table's read lock keeps the socket alive).
pub fn with<R>(id: u64, f: impl FnOnce(&Socket) -> Result<R>) -> Result<R> {
    let table = registry().replicas[my_replica()].0.read();
    match table.get(&id) {
        Some(s) => f(s),
        None => Err(missing()),
    }
}

/// Remove the handle (invalid at once) and close the socket in the background.
pub fn free(id: u64) -> Result<()> {
    let r = registry();
    let socket = {
        let _w = r.write_lock.lock();
        let mut found = None;
        for rep in &r.replicas {
            found = rep.0.write().remove(&id);
        }
        found
    };
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
        let _w = r.write_lock.lock();
        SHUTTING_DOWN.store(true, Ordering::Release);
        // Take the maps themselves so their memory is released too.
        let mut sockets = Vec::new();
        for rep in &r.replicas {
            sockets = std::mem::take(&mut *rep.0.write()).into_values().collect();
        }
        sockets
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
