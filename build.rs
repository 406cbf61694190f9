//! Builds every file under `assets/` into the binary (`engine::paths::ASSETS`), so that a new
//! install step is a script and a plan entry, with no list in the code to keep in step with them.
// A build script says it failed by panicking: cargo shows the message and stops the build.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry of assets/").path())
        .collect();
    entries.sort();
    for path in entries {
        // Python's byte-code caches (a test that runs a stand-in here makes one) are not assets.
        if path.file_name().is_some_and(|n| n == "__pycache__") {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    // A directory here makes cargo look at every file under it: added files count too.
    println!("cargo:rerun-if-changed=assets");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut code = String::from("&[\n");
    for path in files {
        let name = path
            .strip_prefix(&root)
            .expect("under assets/")
            .components()
            .map(|c| c.as_os_str().to_str().expect("UTF-8 file names in assets/"))
            .collect::<Vec<_>>()
            .join("/");
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display()
        )
        .unwrap();
    }
    code.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
