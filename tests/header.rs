//! The checked-in header equals what cbindgen generates from the sources, and
//! it compiles warning-free as C99 and C++ (-Wall -Wextra -Werror -pedantic).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let config = cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root())
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn header_matches_cbindgen_output() {
    let path = root().join("include/wsbridge.h");
    let generated = generate();
    if std::env::var_os("WSB_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/wsbridge.h is stale: run `WSB_BLESS=1 cargo test --test header` and commit it"
    );
}

fn compile(compiler: &str, std: &str, src: &Path) {
    let out =
        std::env::temp_dir().join(format!("wsb-header-{}-{}.o", compiler, std::process::id()));
    let status = Command::new(compiler)
        .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    let _ = std::fs::remove_file(&out);
    assert!(status.success(), "{compiler} {std} failed on the header");
}

#[test]
fn header_compiles_as_c99_and_cxx() {
    let dir = std::env::temp_dir().join(format!("wsb-header-src-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = "#include \"wsbridge.h\"\nint main(void) { wsb_event ev; (void)ev; return (int)wsb_abi_version() - WSB_ABI_VERSION; }\n";
    let c = dir.join("t.c");
    let cpp = dir.join("t.cpp");
    std::fs::write(&c, body).unwrap();
    std::fs::write(&cpp, body.replace("int main(void)", "int main()")).unwrap();
    compile("cc", "-std=c99", &c);
    compile("c++", "-std=c++11", &cpp);
    let _ = std::fs::remove_dir_all(&dir);
}
