//! The host's wake-up callback (`wsb_set_notify`). It is always called with no
//! library lock held, and clearing it (wsb_free / wsb_shutdown from a host
//! thread) waits for a call in progress, so the host may free `user_data` as
//! soon as wsb_free returns.

use std::cell::Cell;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// The host's callback, called with the socket an event was queued on. The
/// C layer (`wsb_set_notify`) wraps the host's function and `user_data` in
/// it: the core never calls into C itself.
pub type Callback = Arc<dyn Fn(u64) + Send + Sync>;

thread_local! {
    /// On the library's own I/O threads (where callbacks run): the id of the
    /// socket the thread serves; 0 elsewhere.
    static IO_THREAD_OF: Cell<u64> = const { Cell::new(0) };
}

pub fn mark_io_thread(socket: u64) {
    IO_THREAD_OF.with(|c| c.set(socket));
}

/// The socket whose I/O thread this is, if any.
pub fn current_io_socket() -> Option<u64> {
    match IO_THREAD_OF.with(|c| c.get()) {
        0 => None,
        id => Some(id),
    }
}

pub fn on_io_thread() -> bool {
    current_io_socket().is_some()
}

#[derive(Default)]
struct Slot {
    f: Option<Callback>,
    calls: usize,
}

#[derive(Default)]
pub struct Notify {
    slot: Mutex<Slot>,
    idle: Condvar,
}

impl Notify {
    pub fn set(&self, f: Option<Callback>) {
        self.slot.lock().f = f;
    }

    /// Call the callback, if any, outside the lock.
    pub fn fire(&self, socket: u64) {
        let f = {
            let mut g = self.slot.lock();
            let Some(f) = g.f.clone() else { return };
            g.calls += 1;
            f
        };
        f(socket);
        drop(f);
        let mut g = self.slot.lock();
        g.calls -= 1;
        if g.calls == 0 {
            self.idle.notify_all();
        }
    }

    /// Remove the callback. From a host thread, also wait until no call is in
    /// progress; from an I/O thread (i.e. from inside some callback) it does
    /// not wait, which is what keeps callbacks that free each other's sockets
    /// from deadlocking.
    pub fn clear(&self) {
        let mut g = self.slot.lock();
        g.f = None;
        if !on_io_thread() {
            while g.calls > 0 {
                self.idle.wait(&mut g);
            }
        }
    }
}
