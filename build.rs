//! Windows (x86_64-pc-windows-gnu): give wsbridge.dll a VERSIONINFO resource
//! (file and product version, product name, ABI version: what Windows shows
//! in the file's properties), compiled with mingw-w64's `windres` (override
//! with `WINDRES`). Without windres the DLL is built without it, with a
//! warning.
//!
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
/// WSB_ABI_VERSION (cbindgen.toml), the soname's number above.
const ABI_VERSION: u32 = 1;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        windows_version_resource();
        return;
    }
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

/// Compiles a VERSIONINFO resource and links it into the DLL (the cdylib only).
fn windows_version_resource() {
    println!("cargo:rerun-if-env-changed=WINDRES");
    let (Some(out), Ok(version)) = (
        std::env::var_os("OUT_DIR"),
        std::env::var("CARGO_PKG_VERSION"),
    ) else {
        return;
    };
    let numbers: Vec<u32> = version
        .split(['.', '-', '+'])
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let (major, minor, patch) = (
        numbers.first().copied().unwrap_or(0),
        numbers.get(1).copied().unwrap_or(0),
        numbers.get(2).copied().unwrap_or(0),
    );
    let rc = format!(
        r#"1 VERSIONINFO
FILEVERSION {major},{minor},{patch},0
PRODUCTVERSION {major},{minor},{patch},0
FILEFLAGSMASK 0x3f
FILEFLAGS 0
FILEOS 0x40004
FILETYPE 0x2
FILESUBTYPE 0
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904B0"
    BEGIN
      VALUE "CompanyName", "wsbridge"
      VALUE "FileDescription", "wsbridge: a WebSocket client with a C ABI (ABI version {ABI_VERSION})"
      VALUE "FileVersion", "{version}"
      VALUE "InternalName", "wsbridge"
      VALUE "LegalCopyright", "MIT OR Apache-2.0"
      VALUE "OriginalFilename", "wsbridge.dll"
      VALUE "ProductName", "wsbridge"
      VALUE "ProductVersion", "{version}"
      VALUE "ABIVersion", "{ABI_VERSION}"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"#
    );
    let out = Path::new(&out);
    let rc_path = out.join("wsbridge.rc");
    let obj = out.join("wsbridge-version.o");
    if std::fs::write(&rc_path, rc).is_err() {
        return;
    }
    let windres = std::env::var("WINDRES").unwrap_or_else(|_| "x86_64-w64-mingw32-windres".into());
    let ok = std::process::Command::new(&windres)
        .args(["-O", "coff", "-i"])
        .arg(&rc_path)
        .arg("-o")
        .arg(&obj)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        println!("cargo:rustc-cdylib-link-arg={}", obj.display());
    } else {
        println!("cargo:warning={windres} failed or is missing: wsbridge.dll gets no VERSIONINFO resource");
    }
}
