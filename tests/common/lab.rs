//! Labs for the integration tests: one per test, on a subnet of its own, down when the test ends.

use std::os::unix::fs::PermissionsExt;
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

/// A lab of `nodes` nodes on 10.231.`subnet`.0/24, in a `mktemp -d` directory (mode 0700: the lab
/// must work where its users cannot look). Run without root or the lab's packages, this fails
/// saying so: a lab test never passes without having run. The first lab builds the node image
/// (under a lock: the others wait for it).
pub fn lab_up(subnet: u8, nodes: usize) -> LabGuard {
    let tmp = tempfile::Builder::new()
        .prefix("kt")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let spec = Spec {
        dir: tmp.path().join("lab"),
        nodes,
        subnet: Some(format!("10.231.{subnet}")),
    };
    let lab = lab::up(&spec, true)
        .expect("the lab (needs root and its packages; `bash .ci/run` has both)");
    LabGuard { lab, tmp }
}

/// After `down`: no process, network namespace, veth, bridge, cgroup or mount of the lab, and no
/// lab dir.
pub fn assert_gone(lab: &Lab) {
    assert!(
        lab.processes().is_empty(),
        "lab processes left: {:?}",
        lab.processes()
    );
    for n in &lab.nodes {
        assert!(
            !Path::new("/run/netns").join(&n.netns).exists(),
            "namespace {} left",
            n.netns
        );
        for cg in &n.cgroups {
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
    }
    let links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in &lab.nodes {
        assert!(!links.contains(&n.veth), "veth {} left", n.veth);
    }
    assert!(!links.contains(&lab.bridge), "bridge {} left", lab.bridge);
    let mounts = lab::mounts();
    assert!(
        !mounts.iter().any(|m| m.starts_with(&lab.dir)),
        "mounts left under {}",
        lab.dir.display()
    );
    // Nothing that runs names the lab's dir (nspawn names its node's root).
    let dir = lab.dir.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(&dir),
                "process {} names the lab: {}",
                e.file_name().display(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            );
        }
    }
    assert!(!lab.dir.exists());
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

/// STAND-IN DELIVERY, until the bundle's `deliver` step is merged (the lead replaces this): the
/// lab's stand-in manifests (`assets/lab/bundle/*.yaml`) put where the bundle puts them, the first
/// master's `/etc/kswizard/addons/`, through the node's root as seen from the taskbox.
pub fn place_addons_until_bundle_delivery(lab: &Lab) {
    use std::os::unix::fs::DirBuilderExt;
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/lab/bundle");
    let addons = lab.nodes[0].path("/etc/kswizard/addons");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&addons)
        .unwrap();
    for name in ["calico.yaml", "kubesphere-installer.yaml"] {
        let to = addons.join(name);
        std::fs::copy(bundle.join(name), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
