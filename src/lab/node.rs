//! One lab node: an sshd on its own loopback address, inside a private mount (and UTS) namespace
//! whose Kubernetes, etcd and kswizard directories are bind mounts of the node's own directories.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail};
use serde::{Deserialize, Serialize};

use super::{PASSWORD_USER_PREFIX, run};

/// The paths a node has of its own: (path on the system, directory name under the node dir).
/// Everything a step writes belongs here, or two nodes would share it through the host's files.
pub const PRIVATE_DIRS: &[(&str, &str)] = &[
    ("/etc/kubernetes", "etc-kubernetes"),
    ("/etc/etcd", "etc-etcd"),
    ("/etc/containerd", "etc-containerd"),
    ("/etc/sysctl.d", "etc-sysctl.d"),
    ("/etc/modules-load.d", "etc-modules-load.d"),
    ("/var/lib/etcd", "var-lib-etcd"),
    ("/var/lib/kubelet", "var-lib-kubelet"),
    ("/var/lib/kswizard", "var-lib-kswizard"),
];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: String,
    pub dir: PathBuf,
    /// The node's mount namespace (`mnt:[…]`), which tells its processes apart from the host's.
    pub mnt_ns: Option<String>,
}

impl Node {
    pub fn sshd_pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }

    /// Whether the mount namespace of `pid` has this node's bind mounts: its /var/lib/kswizard is
    /// the very directory (device and inode) of the node's. Namespace ids and pids are reused, this
    /// is not.
    pub fn mounted_in(&self, pid: u32) -> bool {
        let inside = std::fs::metadata(format!("/proc/{pid}/root/var/lib/kswizard"));
        let ours = std::fs::metadata(self.dir.join("var-lib-kswizard"));
        matches!((inside, ours), (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino())
    }

    fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    /// Create the node's directories, host key, /etc/hosts copy, sshd config and start script.
    pub fn prepare(&self, lab_dir: &Path, subnet: &str) -> Result<()> {
        for (_, sub) in PRIVATE_DIRS {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &self.name, "-f"])
            .arg(self.host_key()))?;
        // The node's name resolves on the node, as on a real host (sudo looks it up).
        let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        hosts.push_str(&format!("{} {}\n", self.ip, self.name));
        std::fs::write(self.dir.join("hosts"), hosts)?;
        std::fs::write(
            self.dir.join("sshd_config"),
            self.sshd_config(lab_dir, subnet),
        )?;
        std::fs::write(self.dir.join("start.sh"), self.start_script(lab_dir))?;
        Ok(())
    }

    fn sshd_config(&self, lab_dir: &Path, subnet: &str) -> String {
        let password_user = format!("{PASSWORD_USER_PREFIX}{}", subnet_tag(subnet));
        format!(
            "# kswizard lab node {name}\n\
             ListenAddress {ip}:22\n\
             HostKey {key}\n\
             PidFile {pid}\n\
             # One key file for root and the lab users, kept in the lab dir; /tmp is world-writable,\n\
             # which StrictModes would refuse.\n\
             AuthorizedKeysFile {keys}\n\
             StrictModes no\n\
             # PAM's session modules (loginuid, systemd) fail in containers; shadow is enough here.\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             KbdInteractiveAuthentication no\n\
             PasswordAuthentication no\n\
             # The engine opens many sessions per host at once.\n\
             MaxSessions 20\n\
             MaxStartups 100\n\
             Subsystem sftp internal-sftp\n\
             Match User {password_user}\n\
             \x20   PasswordAuthentication yes\n",
            name = self.name,
            ip = self.ip,
            key = self.host_key().display(),
            pid = self.sshd_pid_file().display(),
            keys = lab_dir.join("authorized_keys").display(),
        )
    }

    fn start_script(&self, lab_dir: &Path) -> String {
        let mut s = format!("set -e\nhostname {}\n", self.name);
        let mut bind = |from: &Path, to: &str| {
            s.push_str(&format!(
                "mount --bind {} {to}\n",
                sh_quote(&from.display().to_string())
            ));
        };
        for (path, sub) in PRIVATE_DIRS {
            bind(&self.dir.join(sub), path);
        }
        bind(&self.dir.join("hosts"), "/etc/hosts");
        // /usr/local/bin is on sudo's secure_path, so the stand-ins are found by steps run as root.
        bind(&lab_dir.join("bin"), "/usr/local/bin");
        s.push_str(&format!(
            "exec /usr/sbin/sshd -f {}\n",
            sh_quote(&self.dir.join("sshd_config").display().to_string())
        ));
        s
    }

    /// Start sshd in a fresh mount and UTS namespace. sshd daemonizes, so `unshare` returns once the
    /// daemon is running and nothing is left for this process to reap.
    pub fn start(&mut self) -> Result<()> {
        for (path, _) in PRIVATE_DIRS {
            // Bind mounts need a mount point; on the host these stay empty directories.
            std::fs::create_dir_all(path)?;
        }
        // A pid file left by an sshd that was killed would name a process that is gone.
        let _ = std::fs::remove_file(self.sshd_pid_file());
        run(Command::new("unshare")
            .args(["--mount", "--uts", "--propagation", "private", "sh"])
            .arg(self.dir.join("start.sh")))
        .wrap_err_with(|| format!("starting node {}", self.name))?;
        Ok(())
    }

    /// Wait until sshd answers on the node's address, then record its mount namespace.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let addr: SocketAddr = format!("{}:22", self.ip).parse()?;
        let deadline = Instant::now() + timeout;
        loop {
            // The pid must be a live process: a restarted node's old pid file may still be there.
            let ns = read_pid(&self.sshd_pid_file()).and_then(mnt_ns);
            if let Some(ns) = ns
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                self.mnt_ns = Some(ns);
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "node {}: sshd did not answer on {addr} within {timeout:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The third octet of a `127.0.X` subnet, which names the lab's password user.
pub fn subnet_tag(subnet: &str) -> &str {
    subnet.rsplit('.').next().unwrap_or(subnet)
}

pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn mnt_ns(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|p| p.display().to_string())
}

pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
