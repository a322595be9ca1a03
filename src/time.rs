//! Deadlines.

use std::time::{Duration, Instant};

/// `now + timeout`, saturating far in the future.
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365))
}
