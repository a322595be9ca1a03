//! Builds Luau (VM + standard library, compiler, AST, ...) with `luau0-src`
//! and tells dependents where the headers are and how the VM was configured.
//!
//! It lives in its own crate because `luau0-src` wipes and rebuilds its output
//! whenever the build script reruns: keeping it here means editing the host
//! never rebuilds Luau.
//!
//! Configuration (every C file that includes `lua.h` must agree with it, so
//! dependents read it from `DEP_LUAU_*`):
//! - `LUAI_MAXCSTACK=1000000` (`DEP_LUAU_MAXCSTACK`): `LUA_REGISTRYINDEX`
//!   depends on it; a host compiled with the header default (8000) crashes.
//! - `LUA_USE_LONGJMP=1` (`DEP_LUAU_LONGJMP`): Luau errors are `longjmp`s, not
//!   C++ exceptions, so a host written in plain C (no unwind tables) can raise
//!   errors and yield safely. No Luau error may ever cross a Rust frame: the
//!   host calls Luau only from C, and Rust only calls the host's entry point.
//!
//! `include/` holds the public headers (lua.h, luaconf.h, lualib.h, luacode.h)
//! copied verbatim from luau0-src 0.23.0+luau745 (MIT, Roblox): `luau0-src`
//! does not expose its source path, and the version is pinned with `=`.
//! Update them together with the pin.

use std::{env, path::PathBuf};

const MAX_CSTACK: usize = 1_000_000;

fn main() {
    let artifacts = luau0_src::Build::new()
        .set_max_cstack_size(MAX_CSTACK)
        .use_longjmp(true)
        .build();
    artifacts.print_cargo_metadata();

    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:include={}", manifest.join("include").display());
    println!("cargo:maxcstack={MAX_CSTACK}");
    println!("cargo:longjmp=1");
    println!("cargo:rerun-if-changed=build.rs");
}
