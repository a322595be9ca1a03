//! ARCHITECTURE.md, the codemap a newcomer reads first, cannot go stale:
//! every file under `src/`, every `tests/*.rs`, every `examples-c/luau/*.c`
//! and every file under `.ci/` must be named in it, and every file path it
//! names must exist.
//!
//! A file is named by a backticked token that is its path from the
//! repository's root (`tests/connect.rs`, `.ci/run`) or, under `src/`, from
//! `src/` (`connect/tls.rs`, `wire.rs`). A token that ends in a file
//! extension, or starts with a top-level folder, is a path and must exist
//! the same way.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files below `dir` (relative to the root), recursively or not.
fn files(dir: &str, recursive: bool, ext: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root().join(dir)];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if recursive {
                    todo.push(p);
                }
                continue;
            }
            if ext.is_some_and(|x| p.extension().and_then(|e| e.to_str()) != Some(x)) {
                continue;
            }
            let rel = p.strip_prefix(root()).unwrap().to_string_lossy();
            out.push(rel.replace('\\', "/"));
        }
    }
    out.sort();
    out
}

/// The backticked tokens of ARCHITECTURE.md.
fn tokens() -> BTreeSet<String> {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|t| t.trim().to_string())
        .collect()
}

const EXTENSIONS: [&str; 8] = [".rs", ".c", ".h", ".sh", ".luau", ".md", ".toml", ".py"];
const TOP: [&str; 8] = [
    "src/",
    "tests/",
    "examples-c/",
    "include/",
    "bench/",
    "fuzz/",
    ".ci/",
    "scripts/",
];

fn looks_like_a_path(t: &str) -> bool {
    !t.contains(' ')
        && (EXTENSIONS.iter().any(|e| t.ends_with(e)) || TOP.iter().any(|d| t.starts_with(d)))
}

fn exists(t: &str) -> bool {
    let t = t.trim_end_matches('*');
    [root().join(t), root().join("src").join(t)]
        .iter()
        .any(|p| Path::exists(p))
}

#[test]
fn every_file_is_on_the_map() {
    let tokens = tokens();
    let mut wanted = files("src", true, Some("rs"));
    wanted.extend(files("tests", false, Some("rs")));
    wanted.extend(files("examples-c/luau", false, Some("c")));
    wanted.extend(files(".ci", true, None));
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|f| {
            let from_src = f.strip_prefix("src/").unwrap_or(f);
            !tokens.contains(f.as_str()) && !tokens.contains(from_src)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these files (write each as `path` from the root, \
         or from src/): {missing:?}"
    );
}

#[test]
fn every_path_on_the_map_exists() {
    let gone: Vec<String> = tokens()
        .into_iter()
        .filter(|t| looks_like_a_path(t) && !exists(t))
        .collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (from the root or from src/): {gone:?}"
    );
}
