//! The Luau VM, compiler and standard library, built from `luau0-src` as
//! static libraries (see `build.rs`). There is no Rust API: C code includes
//! the headers from `DEP_LUAU_INCLUDE` and links against these libraries.
//! A dependent must reference this crate (e.g. [`LUAU_VERSION`]) so that
//! rustc links it, and with it the Luau libraries.

/// The Luau release the libraries were built from, e.g. `"0.745"`.
pub const LUAU_VERSION: &str = env!("LUAU_VERSION");
