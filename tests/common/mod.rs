//! Helpers shared by the integration tests: the reference samples and conf/ directories built from
//! them in a temporary directory.

#![allow(dead_code)] // each test crate uses its own subset

pub mod lab;

use std::path::{Path, PathBuf};

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples")
}

pub fn sample(name: &str) -> String {
    let path = samples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub const KS_HOSTS: &str = "ks-installer-v2.1.1-hosts.ini";
pub const KS_COMMON: &str = "ks-installer-v2.1.1-common.yaml";
pub const KS_VARS: &str = "ks-installer-v2.1-prerelease-vars.yml";
pub const KUBESPRAY_OLD: &str = "kubespray-v2.11.0-inventory-sample-inventory.ini";
pub const KUBESPRAY_NEW: &str = "kubespray-master-46dbdd39-inventory-sample-inventory.ini";

/// A temporary conf/ directory holding `files` as (name in conf/, content).
pub fn conf_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write conf file");
    }
    dir
}

/// The `KubeSphere` 2.1.1 installer's conf/ as shipped.
pub fn kubesphere_conf() -> tempfile::TempDir {
    conf_dir(&[
        ("hosts.ini", &sample(KS_HOSTS)),
        ("common.yaml", &sample(KS_COMMON)),
    ])
}

/// Every file of a directory with its bytes, sorted by name.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}
