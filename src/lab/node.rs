//! One lab node: a container booted by `systemd-nspawn` (real systemd, sshd as `ssh.service`) on an
//! overlay of the shared node image, in a network namespace of its own whose `eth0` is on the lab's
//! bridge, and in cgroups of its own. Its processes are found by that namespace and those cgroups,
//! never by pids remembered from earlier.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use serde::{Deserialize, Serialize};

use super::{Lab, net, run};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: String,
    /// `<lab>/n/<name>`: the overlay's `upper` and `work` dirs and its mount point `root`.
    pub dir: PathBuf,
    /// The network namespace (`ip netns`), `/run/netns/<netns>`.
    pub netns: String,
    /// The taskbox's end of the node's veth, on the lab's bridge.
    pub veth: String,
    /// The node's cgroup in each of the machine's cgroup hierarchies.
    pub cgroups: Vec<PathBuf>,
}

impl Node {
    /// The node's filesystem as the taskbox sees it (the overlay's mount point).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A path on the node, seen from the taskbox: `path("/etc/kubernetes/admin.conf")`.
    pub fn path(&self, on_node: &str) -> PathBuf {
        self.root().join(on_node.trim_start_matches('/'))
    }

    /// Mount the node's overlay (the lab's image read-only below, the node's changes above) and write
    /// what is the node's own: hostname, /etc/hosts, host key, the lab's key and password, the
    /// stand-ins. Written through the overlay, so directories keep the image's owners and modes.
    pub fn prepare(&self, lab: &Lab, password_hash: &str) -> Result<()> {
        for sub in ["upper", "work", "root"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lab.image.display(),
            self.dir.join("upper").display(),
            self.dir.join("work").display()
        );
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(self.root()))
        .wrap_err_with(|| format!("mounting node {}'s overlay", self.name))?;

        std::fs::write(self.path("/etc/hostname"), format!("{}\n", self.name))?;
        // The node's name resolves on the node, as on a real host (sudo looks it up).
        std::fs::write(
            self.path("/etc/hosts"),
            format!(
                "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n{} {}\n",
                self.ip, self.name
            ),
        )?;
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &self.name, "-f"])
            .arg(self.path("/etc/ssh/ssh_host_ed25519_key")))?;
        std::fs::copy(
            lab.key.with_extension("pub"),
            self.path("/etc/ssh/kswizard-lab/authorized_keys"),
        )?;
        let shadow = self.path("/etc/shadow");
        let text = std::fs::read_to_string(&shadow)?;
        let prefix = format!("{}:", lab.password_user);
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix(&prefix) {
                Some(rest) => {
                    let after = rest.split_once(':').map_or("", |(_, a)| a);
                    format!("{prefix}{password_hash}:{after}\n")
                }
                None => format!("{l}\n"),
            })
            .collect();
        // Rewritten in place: the file keeps the image's owner and mode (root:shadow 0640).
        std::fs::write(&shadow, text)?;
        // /usr/local/{bin,sbin} are on sudo's secure_path, so steps run as root find the stand-ins.
        for (target, body) in super::STAND_INS {
            let path = self.path(target);
            std::fs::write(&path, body)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    }

    /// Boot the node: its network namespace and veth, its cgroups, then systemd-nspawn, detached
    /// (it outlives `lab up`). `shared` is bound at the same path inside.
    pub fn boot(&self, bridge: &str, shared: &Path) -> Result<()> {
        net::add_node(&self.netns, &self.veth, bridge, &self.ip)
            .wrap_err_with(|| format!("node {}'s network", self.name))?;
        for cg in &self.cgroups {
            make_cgroup(cg)?;
        }
        let log = std::fs::File::create(self.dir.join("console.log"))?;
        // The shell moves itself into the node's cgroups, then becomes nspawn: everything of the
        // container is in them from its first instruction. `setsid -f`: nobody here waits for it.
        let status = Command::new("setsid")
            .args([
                "-f",
                "sh",
                "-c",
                "while [ \"$1\" != -- ]; do echo $$ >\"$1/cgroup.procs\" || exit 1; shift; done; shift; exec \"$@\"",
                "sh",
            ])
            .args(&self.cgroups)
            .arg("--")
            .arg("systemd-nspawn")
            .arg("--quiet")
            .arg(format!("--directory={}", self.root().display()))
            .args([
                "--boot",
                // The taskbox does not run systemd: no machined to register with, no unit to make.
                "--register=no",
                "--keep-unit",
                "--console=passive",
                "--resolv-conf=off",
                "--timezone=off",
                "--link-journal=no",
                // The namespace is the node's own: it may change its addresses (a keepalived VIP)
                // and routes, which nspawn allows by itself only with a network it made.
                "--capability=CAP_NET_ADMIN",
            ])
            .arg(format!("--machine={}", self.name))
            .arg(format!("--network-namespace-path=/run/netns/{}", self.netns))
            .arg(format!("--bind={}", shared.display()))
            // /proc/sys/net is the node's own too: writable, as on a host (os-prep's ip_forward).
            .env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "network")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .status()
            .wrap_err("setsid (util-linux)")?;
        if !status.success() {
            bail!(
                "node {}: could not start systemd-nspawn ({status})",
                self.name
            );
        }
        Ok(())
    }

    /// Wait until the node's sshd answers on its address.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let addr: SocketAddr = format!("{}:22", self.ip).parse()?;
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
                bail!(
                    "node {}: sshd did not answer on {addr} within {timeout:?}{}",
                    self.name,
                    if log.is_empty() {
                        String::new()
                    } else {
                        format!("; nspawn said: {log}")
                    }
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every process of the node: those in its network namespace (the container's, and commands
    /// entered into it) and those in its cgroups (nspawn itself, which stays outside the namespace).
    pub fn processes(&self) -> BTreeSet<u32> {
        processes_of(std::slice::from_ref(self))
    }

    /// The container's init (systemd), as the taskbox numbers it.
    pub fn leader(&self) -> Option<u32> {
        self.processes().into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .is_some_and(|ids| {
                        // Pid 1 of a namespace below the taskbox's: "NSpid: <ours> 1".
                        let ids: Vec<&str> = ids.split_whitespace().collect();
                        ids.len() > 1 && ids.last() == Some(&"1")
                    })
            })
        })
    }

    /// A command run inside the node (its namespaces, as root), like `machinectl shell` would.
    pub fn command(&self, program: &str) -> Result<Command> {
        let leader = self
            .leader()
            .ok_or_else(|| eyre!("node {} is not running", self.name))?;
        let mut c = Command::new("nsenter");
        c.args(["--target", &leader.to_string()])
            .args(["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup"])
            .arg("--")
            .arg(program);
        Ok(c)
    }

    /// Run shell `script` in the node; its output, or an error with it.
    pub fn exec(&self, script: &str) -> Result<String> {
        let out = self
            .command("sh")?
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "node {}: `{script}` failed ({}): {text}{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(text)
    }

    /// sshd goes away as on a crashed host: ssh.service stopped (systemd would restart a killed
    /// sshd) and the sessions' sshd processes, which its stop leaves (KillMode=process), killed.
    /// What the sessions started keeps running.
    pub fn stop_ssh(&self) -> Result<()> {
        self.exec("systemctl stop ssh.service")?;
        for pid in self.processes() {
            if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sshd")
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        Ok(())
    }

    /// ssh.service started again, and answering.
    pub fn start_ssh(&self) -> Result<()> {
        self.exec("systemctl start ssh.service")?;
        self.wait_ready(Duration::from_secs(15))
    }

    /// Cut the node's cable: its veth on the bridge goes down (the node's `eth0` loses carrier).
    pub fn link_down(&self) -> Result<()> {
        run(Command::new("ip").args(["link", "set", &self.veth, "down"]))
    }

    pub fn link_up(&self) -> Result<()> {
        run(Command::new("ip").args(["link", "set", &self.veth, "up"]))
    }
}

/// The processes of `nodes`, with one pass over /proc for them all.
pub fn processes_of(nodes: &[Node]) -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    for cg in nodes.iter().flat_map(|n| &n.cgroups) {
        collect_cgroup(cg, &mut pids);
    }
    let namespaces: BTreeSet<(u64, u64)> = nodes
        .iter()
        .filter_map(|n| std::fs::metadata(Path::new("/run/netns").join(&n.netns)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if !namespaces.is_empty() {
        pids.extend(all_pids().filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| namespaces.contains(&(m.dev(), m.ino())))
        }));
    }
    pids
}

fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
}

/// The pids in cgroup `dir` and every cgroup below it (systemd in the node makes its own).
fn collect_cgroup(dir: &Path, pids: &mut BTreeSet<u32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            collect_cgroup(&sub.path(), pids);
        }
    }
}

fn make_cgroup(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating cgroup {}", dir.display()))?;
    // cgroup v1's cpuset starts with no CPUs and no memory nodes: no process could join it.
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let file = dir.join(f);
        if std::fs::read_to_string(&file).is_ok_and(|v| v.trim().is_empty())
            && let Some(parent) = dir.parent()
        {
            std::fs::write(&file, std::fs::read_to_string(parent.join(f))?)?;
        }
    }
    Ok(())
}

/// Remove cgroup `dir` and the ones systemd made below it, deepest first (they must be empty).
pub fn remove_cgroup(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for sub in std::fs::read_dir(dir)?.flatten() {
        if sub.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&sub.path())?;
        }
    }
    std::fs::remove_dir(dir).wrap_err_with(|| format!("removing cgroup {}", dir.display()))
}

/// Where a node's cgroups go: below this process's own cgroup in each hierarchy the machine has
/// mounted, named after the node's network namespace.
pub fn cgroup_dirs(netns: &str) -> Result<Vec<PathBuf>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    let mut dirs = Vec::new();
    for line in mountinfo.lines() {
        // "id parent maj:min root mountpoint options [optional...] - fstype source superoptions"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype), Some(sup)) =
            (left.get(3), left.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let options: Vec<&str> = sup.split(',').collect();
        let path = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let ours = match *fstype {
                "cgroup2" => ctrls.is_empty(),
                "cgroup" => !ctrls.is_empty() && ctrls.split(',').all(|c| options.contains(&c)),
                _ => false,
            };
            ours.then_some(path)
        });
        if let Some(path) = path {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(path)
                .trim_start_matches('/');
            dirs.push(Path::new(point).join(rel).join(netns));
        }
    }
    if dirs.is_empty() {
        bail!(
            "no cgroup hierarchy is mounted (see /proc/self/mountinfo): systemd-nspawn needs one"
        );
    }
    Ok(dirs)
}
