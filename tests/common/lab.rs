//! Labs for the integration tests: one per test, on a subnet of its own, down when the test ends.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kswizard::conf;
use kswizard::lab::{self, Lab, Node, Spec};
use kswizard::model::{Cluster, LbMode};

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

    /// The lab's cluster with the built-in LB (the VIP `.200` of the lab's subnet, port
    /// `LB_PORT`) written as the conf dir `name`: the dir and the VIP.
    pub fn built_in(&self, name: &str) -> (PathBuf, String) {
        let mut c = self.cluster();
        let vip = self.with_built_in_lb(&mut c);
        (self.conf_dir(name, &c), vip)
    }

    /// `c` given the built-in LB of `built_in`: its VIP.
    pub fn with_built_in_lb(&self, c: &mut Cluster) -> String {
        let vip = format!("{}.200", self.lab.subnet);
        c.lb.mode = LbMode::BuiltIn;
        c.lb.address = Some(vip.clone());
        c.lb.port = LB_PORT;
        vip
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

/// The built-in LB's port in the tests.
pub const LB_PORT: i64 = 8443;

/// The masters that hold `vip` now, as each node's own `ip -o addr` says.
pub fn holders<'a>(masters: &'a [Node], vip: &str) -> Vec<&'a str> {
    masters
        .iter()
        .filter(|n| {
            n.exec("ip -o -4 addr show")
                .is_ok_and(|a| a.contains(&format!(" {vip}/")))
        })
        .map(|n| n.name.as_str())
        .collect()
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

/// HTTPS `/readyz` at `addr` (an apiserver or an LB), without certificate check, waiting at most
/// 1 s: its HTTP status, 0 when none.
pub fn readyz(addr: &str) -> u32 {
    readyz_within(addr, 1)
}

/// `readyz` waiting at most `secs` (a slow answer on a loaded machine is still an answer).
pub fn readyz_within(addr: &str, secs: u32) -> u32 {
    let out = Command::new("curl")
        .args([
            "-k",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
        ])
        .arg(secs.to_string())
        .arg(format!("https://{addr}/readyz"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The taskbox's etcdctl against `endpoints` with the certificates in `pki`: `ca.crt` and the
/// client's `<client>.crt` / `.key`. (ok, stdout+stderr).
pub fn etcdctl(
    pki: &std::path::Path,
    client: &str,
    endpoints: &str,
    args: &[&str],
) -> (bool, String) {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoints, "--dial-timeout", "3s"])
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join(format!("{client}.crt")))
        .arg("--key")
        .arg(pki.join(format!("{client}.key")))
        .args(args)
        .output()
        .expect("etcdctl on the taskbox (Debian's etcd-client)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
