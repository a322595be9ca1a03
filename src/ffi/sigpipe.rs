//! A write to a pipe that cannot raise SIGPIPE: the log's lines on stderr
//! (`WSBRIDGE_LOG`), when the host's stderr is a pipe whose reader has gone.
//!
//! Sockets need none of this: [`crate::wire`] writes them with
//! `MSG_NOSIGNAL` (or `SO_NOSIGPIPE`). A pipe has no such flag, so SIGPIPE
//! is blocked in the calling thread for the write, and a SIGPIPE the write
//! raised (directed at this thread, pending while blocked) is taken back
//! before the thread's mask is restored. The process's disposition of
//! SIGPIPE, which is the host's, is never changed. Windows has no SIGPIPE.

/// Run `write` (one write to stderr) so that it cannot raise SIGPIPE.
#[cfg(unix)]
pub(crate) fn guarded<R>(write: impl FnOnce() -> R) -> R {
    use std::mem::MaybeUninit;
    use std::ptr;

    let mut pipe = MaybeUninit::<libc::sigset_t>::uninit();
    let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset/sigaddset initialise the local set; sigpending
    // fills the local `pending`; pthread_sigmask changes only this thread's
    // mask and stores the previous one in the local `old`.
    let (pipe, was_pending, old) = unsafe {
        libc::sigemptyset(pipe.as_mut_ptr());
        libc::sigaddset(pipe.as_mut_ptr(), libc::SIGPIPE);
        let was_pending = libc::sigpending(pending.as_mut_ptr()) == 0
            && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1;
        if libc::pthread_sigmask(libc::SIG_BLOCK, pipe.as_ptr(), old.as_mut_ptr()) != 0 {
            // The mask is unchanged: write as the host would.
            return write();
        }
        (pipe.assume_init(), was_pending, old.assume_init())
    };
    let r = write();
    // SAFETY: as above (local sets, this thread's mask). A SIGPIPE pending
    // now that was not before is the one this write raised: it is taken
    // (it is pending, so the wait returns at once) before the old mask,
    // which may let SIGPIPE through, is restored.
    unsafe {
        if !was_pending
            && libc::sigpending(pending.as_mut_ptr()) == 0
            && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
        {
            take_pending(&pipe);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
    }
    r
}

/// Take a pending SIGPIPE (blocked in this thread) without waiting.
#[cfg(all(unix, not(target_vendor = "apple")))]
fn take_pending(pipe: &libc::sigset_t) {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `pipe` is an initialised set holding SIGPIPE, blocked in this
    // thread; a zero timeout never waits.
    unsafe {
        libc::sigtimedwait(pipe, std::ptr::null_mut(), &zero);
    }
}

/// Apple systems have no sigtimedwait: sigwait returns at once for a
/// signal already pending, which the caller checked.
#[cfg(target_vendor = "apple")]
fn take_pending(pipe: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: `pipe` is an initialised set holding SIGPIPE, blocked in this
    // thread and pending; `sig` is a local.
    unsafe {
        libc::sigwait(pipe, &mut sig);
    }
}

/// Windows has no SIGPIPE.
#[cfg(windows)]
pub(crate) fn guarded<R>(write: impl FnOnce() -> R) -> R {
    write()
}
