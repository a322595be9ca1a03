//! Shared by the Luau script tests and the `luau_server` example.

pub mod server;
