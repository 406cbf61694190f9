//! Labs for the integration tests: one per test, on a subnet of its own, down when the test ends.

use std::path::{Path, PathBuf};
use std::process::Command;

use kswizard::conf;
use kswizard::lab::{self, Lab, Spec};
use kswizard::model::Cluster;

/// A lab that goes down when the test ends, whatever happens in it, with a temp dir beside it.
pub struct LabGuard {
    pub lab: Lab,
    pub tmp: tempfile::TempDir,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab::down(&self.lab.dir);
    }
}

/// A lab of `nodes` nodes on 127.0.`subnet`. Run without root or the lab's packages, this fails
/// saying so: a lab test never passes without having run.
pub fn lab_up(subnet: u8, nodes: usize) -> LabGuard {
    let tmp = tempfile::Builder::new()
        .prefix("kt")
        .tempdir_in("/tmp")
        .unwrap();
    let spec = Spec {
        dir: tmp.path().join("lab"),
        nodes,
        subnet: format!("127.0.{subnet}"),
    };
    let lab = lab::up(&spec, true)
        .expect("the lab (needs root and its packages; `bash .ci/run` has both)");
    LabGuard { lab, tmp }
}

impl LabGuard {
    pub fn cluster(&self) -> Cluster {
        conf::load(&self.lab.conf_dir).unwrap().0
    }

    /// `cluster` written as a conf dir of its own, `<tmp>/<name>/conf` (its state dir is
    /// `<name>/.kswizard`).
    pub fn conf_dir(&self, name: &str, cluster: &Cluster) -> PathBuf {
        let (_, source) = conf::load(&self.lab.conf_dir).unwrap();
        let dir = self.tmp.path().join(name).join("conf");
        conf::save(cluster, &source, &dir).unwrap();
        dir
    }
}

/// A tmpfs of `size` (e.g. "64k") mounted on `dir` for a test, unmounted when it ends.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "kswtest",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
