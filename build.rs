//! Linux only: give libwsbridge.so the soname `libwsbridge.so.1` (the ABI
//! version; see "ABI and versioning" in the README), so programs linked with
//! -lwsbridge record `NEEDED libwsbridge.so.1`.
//!
//! Such programs then look for `libwsbridge.so.1` at run time, so the same
//! name is also made here as a symlink next to the cargo outputs
//! (target/<profile>/ and its deps/): `-L target/release -lwsbridge
//! -Wl,-rpath,...` keeps working in the source tree. scripts/install.sh lays
//! out the real versioned file and links for an install prefix.

use std::path::Path;

const SONAME: &str = "libwsbridge.so.1";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    // OUT_DIR is <target>/[<triple>/]<profile>/build/wsbridge-<hash>/out.
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let Some(profile) = Path::new(&out).ancestors().nth(3) else {
        return;
    };
    for dir in [profile.to_path_buf(), profile.join("deps")] {
        let link = dir.join(SONAME);
        if dir.is_dir() && std::fs::symlink_metadata(&link).is_err() {
            #[cfg(unix)]
            let _ = std::os::unix::fs::symlink("libwsbridge.so", &link);
        }
    }
}
