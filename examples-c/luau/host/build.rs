//! Compiles the C side of wsb-luau: the scheduler host (`host.c`) and the
//! reference WebSocket binding (`../websocket.c`, `../signals.c`, `../ready_set.c`), against the Luau headers
//! from the `luau-vm` crate (`DEP_LUAU_*`) and `include/wsbridge.h`.

use std::{env, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let luau_include = env::var("DEP_LUAU_INCLUDE").expect("DEP_LUAU_INCLUDE (from luau-vm)");
    // Must match the VM build, or LUA_REGISTRYINDEX differs and Luau crashes.
    let max_cstack = env::var("DEP_LUAU_MAXCSTACK").expect("DEP_LUAU_MAXCSTACK (from luau-vm)");
    let luau_dir = manifest.join("..");
    let wsbridge_include = manifest.join("../../../include");

    let mut build = cc::Build::new();
    build
        .file(manifest.join("host.c"))
        .file(luau_dir.join("websocket.c"))
        .file(luau_dir.join("signals.c"))
        .file(luau_dir.join("ready_set.c"))
        .include(&luau_include)
        .include(&luau_dir)
        .include(&wsbridge_include)
        .define("WSLUAU_WEBSOCKET", None)
        .define("LUAI_MAXCSTACK", max_cstack.as_str())
        .define("LUA_USE_LONGJMP", "1")
        .warnings(true)
        .extra_warnings(true);
    build.compile("wsb_luau_host");

    for file in [
        "host.c",
        "host.h",
        "../websocket.c",
        "../websocket.h",
        "../signals.c",
        "../signals.h",
        "../ready_set.c",
        "../ready_set.h",
        "../../../include/wsbridge.h",
    ] {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
