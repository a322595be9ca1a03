//! Test-only hooks, hidden from the docs: not part of the C API and never
//! used by the library itself. The integration tests (which link the crate
//! as an rlib) use them to make a host name resolve to chosen loopback
//! addresses, instead of editing /etc/hosts or reaching outside addresses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use parking_lot::Mutex;

type Overrides = Mutex<HashMap<String, Vec<SocketAddr>>>;

/// Empty until a test sets an override: then a lookup costs nothing more
/// than checking this.
static OVERRIDES: OnceLock<Overrides> = OnceLock::new();

/// Test-only: from now on, in this whole process, the host name `host`
/// (compared case-insensitively) resolves to exactly `addrs`, in this order
/// and with these ports (the URL's port is not used), without asking the
/// system resolver. An empty list fails like a name with no addresses. IP
/// literals in URLs are never looked up, so they are not affected.
pub fn set_resolver_override(host: &str, addrs: Vec<SocketAddr>) {
    OVERRIDES
        .get_or_init(Overrides::default)
        .lock()
        .insert(host.to_ascii_lowercase(), addrs);
}

/// Test-only: `host` goes back to the system resolver.
pub fn clear_resolver_override(host: &str) {
    if let Some(o) = OVERRIDES.get() {
        o.lock().remove(&host.to_ascii_lowercase());
    }
}

/// What `host` (already lower-case) resolves to under an override, if set.
pub(crate) fn resolver_override(host: &str) -> Option<Vec<SocketAddr>> {
    OVERRIDES.get()?.lock().get(host).cloned()
}
