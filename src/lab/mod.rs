//! The lab (DESIGN §8): N "hosts" on this machine for trying kswizard out and for tests. Each node
//! is a container booted by systemd-nspawn (real systemd, sshd, etcd, haproxy, keepalived) on an
//! overlay of one cached Debian image, with a network namespace of its own whose `eth0` is on the
//! lab's bridge, in a private /24 nothing else on the machine uses. A real haproxy on the taskbox
//! (`.250` on the bridge) is the external LB; the Kubernetes binaries are stand-ins from
//! `assets/lab/stand-ins/`, which reach the nodes through the install's own delivery of the lab's
//! bundle (`bundle.rs`), as a real bundle reaches real machines. `up` records everything it will create in `lab.json` before creating
//! it and leaves a ready `conf/`; `down` removes it all, also after a killed `up`.

pub mod bundle;
pub mod haproxy;
pub mod image;
pub mod net;
pub mod node;
pub mod packages;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use serde::{Deserialize, Serialize};

use crate::conf;
use crate::model::{Auth, Cluster, DEFAULT_LB_PORT, Host, LbMode};
pub use node::Node;

pub const DEFAULT_DIR: &str = "/tmp/ksw-lab";
/// The user the install uses: key login, passwordless sudo (made in the node image).
pub const KEY_USER: &str = "kswlab";
/// The user with an SSH password and a sudo password (the lab sets a new one per lab).
pub const PASSWORD_USER: &str = "kswpw";
const MARKER: &str = ".kswizard-lab";
/// The lab's bundle, beside its conf/ (which names it by its absolute path).
pub const BUNDLE_DIR: &str = "bundle";

#[derive(Clone, Debug)]
pub struct Spec {
    pub dir: PathBuf,
    pub nodes: usize,
    /// `A.B.C` of a private /24: nodes are .1 to .N, the LB .250, the taskbox .254. None: the first
    /// free 10.231.X.
    pub subnet: Option<String>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            dir: PathBuf::from(DEFAULT_DIR),
            nodes: 6,
            subnet: None,
        }
    }
}

/// What `lab.json` holds: everything tests and the engine need to find in a running lab, and
/// everything `down` must remove, written before it is created.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lab {
    pub dir: PathBuf,
    pub subnet: String,
    /// The bridge the nodes' veths are on; it holds `host_address` and `lb_address`.
    pub bridge: String,
    /// The taskbox's address on the bridge.
    pub host_address: String,
    /// The node image below every node's overlay.
    pub image: PathBuf,
    /// A directory of the taskbox bound at the same path into every node (read-write).
    pub shared: PathBuf,
    pub nodes: Vec<Node>,
    pub key_user: String,
    pub password_user: String,
    /// The password user's login and sudo password (mode 0600).
    pub password_file: PathBuf,
    /// The lab's private key, authorized for root and both users on every node.
    pub key: PathBuf,
    pub conf_dir: PathBuf,
    pub lb_address: String,
    pub lb_port: u16,
    pub lb_domain: String,
    pub haproxy_socket: PathBuf,
}

impl Lab {
    pub fn load(dir: &Path) -> Result<Lab> {
        let path = dir.join("lab.json");
        let text = std::fs::read_to_string(&path)
            .wrap_err_with(|| format!("no lab in {}", dir.display()))?;
        serde_json::from_str(&text).wrap_err_with(|| format!("{}", path.display()))
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join("lab.json");
        let tmp = self.dir.join("lab.json.new");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all((serde_json::to_string_pretty(self)? + "\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// Every node's container runs (its init is there): a lab that can be used as it is.
    pub fn is_up(&self) -> bool {
        self.nodes.iter().all(|n| n.leader().is_some())
    }

    pub fn haproxy_pid_file(&self) -> PathBuf {
        self.dir.join("haproxy.pid")
    }

    fn haproxy_config(&self) -> PathBuf {
        self.dir.join("haproxy.cfg")
    }

    pub fn password(&self) -> Result<crate::model::Secret> {
        let text = std::fs::read_to_string(&self.password_file)?;
        Ok(crate::model::Secret::new(text.trim_end()))
    }

    /// An ssh command with the lab's key and without host-key bookkeeping (lab nodes are
    /// throwaway): for tests and benchmarks that reach a node directly, not through the engine.
    pub fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i").arg(&self.key).args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
        ]);
        c
    }

    /// The LB's backends as haproxy sees them: (server, status).
    pub fn backends(&self) -> Result<Vec<(String, String)>> {
        haproxy::backend_status(&self.haproxy_socket, "masters")
    }

    /// The backends of the LB's console listener (every node's 30880): (server, status).
    pub fn console_backends(&self) -> Result<Vec<(String, String)>> {
        haproxy::backend_status(&self.haproxy_socket, "console")
    }

    /// Every process of the lab: each node's (found by its network namespace and cgroups) and
    /// haproxy (its pid file's process, if it runs this lab's config).
    pub fn processes(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = node::processes_of(&self.nodes).into_iter().collect();
        let cfg = self.haproxy_config().display().to_string();
        if let Some(pid) = read_pid(&self.haproxy_pid_file())
            && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"haproxy"))
                    && args.contains(&cfg.as_bytes())
            })
        {
            pids.push(pid);
        }
        pids
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Run a command to completion; its output goes to the error when it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .wrap_err_with(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The lab needs root (namespaces, mounts, cgroups, interfaces); the engine's own check says.
pub use crate::engine::transport::is_root;

fn require_root() -> Result<()> {
    if !is_root() {
        bail!(
            "the lab must run as root: it creates network namespaces, mounts and containers (try sudo)"
        );
    }
    Ok(())
}

/// Bring a lab up in `spec.dir`. A lab already running there is refused; the remains of a stopped
/// one are cleared first.
pub fn up(spec: &Spec, yes: bool) -> Result<Lab> {
    up_showing(spec, yes, &|_| {})
}

/// `up`, saying each stage as it ends through `say` (the demo shows it before the wizard opens):
/// the lab's files, each node as its sshd answers, the LB.
pub fn up_showing(spec: &Spec, yes: bool, say: &(dyn Fn(&str) + Sync)) -> Result<Lab> {
    require_root()?;
    if !(1..usize::from(net::LB_OCTET)).contains(&spec.nodes) {
        bail!("--nodes must be from 1 to {}", net::LB_OCTET - 1);
    }
    if let Some(s) = &spec.subnet {
        net::parse_subnet(s)?;
    }
    let dir = std::path::absolute(&spec.dir)?;
    // The overlay's mount options are comma- and colon-separated paths.
    if dir.to_string_lossy().contains([',', ':', ' ', '\t', '\n']) {
        bail!(
            "--dir {}: the lab dir may not contain commas, colons or spaces",
            dir.display()
        );
    }
    // Unix sockets (the haproxy stats socket, the engine's ControlMaster sockets) need short paths.
    if dir.join("haproxy.sock").as_os_str().len() > 100 {
        bail!(
            "--dir {} is too long for unix socket paths; use a shorter one",
            dir.display()
        );
    }
    packages::ensure(yes)?;
    let image = image::ensure(yes)?;
    raise_inotify_limit(spec.nodes)?;
    if let Ok(old) = Lab::load(&dir) {
        if !old.processes().is_empty() {
            bail!(
                "a lab is already up in {}; run `kswizard lab down --dir {0}` first",
                dir.display()
            );
        }
        down(&dir)?;
    } else if dir.exists()
        && std::fs::read_dir(&dir)?.next().is_some()
        && !dir.join(MARKER).exists()
    {
        bail!(
            "{} exists and is not a lab dir; choose another --dir",
            dir.display()
        );
    } else if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let lab = {
        // Two labs picking a subnet at once must not pick the same: the choice holds until the
        // bridge has its address, which is what the next choice sees.
        let _lock = NetLock::take()?;
        let subnet = net::choose(spec.subnet.as_deref())?;
        let lab = plan(spec.nodes, &dir, &subnet, image)?;
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        std::fs::write(dir.join(MARKER), "")?;
        // Written before anything is created, so that `down` finds whatever a failure leaves.
        lab.save()?;
        net::add_bridge(&lab.bridge, &lab.subnet).inspect_err(|_| {
            let _ = down(&dir);
        })?;
        lab
    };
    build(&lab, say).inspect_err(|_| {
        // Leave nothing half-started behind.
        let _ = down(&dir);
    })?;
    Ok(lab)
}

/// Every node's systemd takes a few inotify instances, all counted against root's limit (no user
/// namespaces), whose default of 128 stops a lab of about 30 nodes: "Failed to allocate manager
/// object: Too many open files". Raised, never lowered, and said so.
fn raise_inotify_limit(nodes: usize) -> Result<()> {
    const LIMIT: &str = "/proc/sys/fs/inotify/max_user_instances";
    let current: usize = std::fs::read_to_string(LIMIT)
        .wrap_err(LIMIT)?
        .trim()
        .parse()
        .wrap_err(LIMIT)?;
    let wanted = 1024 + 8 * nodes;
    if current < wanted {
        std::fs::write(LIMIT, wanted.to_string()).wrap_err_with(|| format!("raising {LIMIT}"))?;
        eprintln!(
            "lab: raised fs.inotify.max_user_instances from {current} to {wanted} (each node's systemd needs a few)"
        );
    }
    Ok(())
}

/// Labs coming up at once (parallel tests, each its own process) choose subnets one at a time,
/// under flock(2), which the kernel releases when a holder dies.
struct NetLock {
    _held: std::fs::File,
}

impl NetLock {
    fn take() -> Result<NetLock> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open("/run/kswizard-lab-net.lock")?;
        file.lock()?;
        Ok(NetLock { _held: file })
    }
}

/// The lab's names, addresses and paths, before anything exists.
fn plan(nodes: usize, dir: &Path, subnet: &str, image: PathBuf) -> Result<Lab> {
    let mut cluster = Cluster {
        hosts: (1..=nodes)
            .map(|i| Host::new(format!("node{i}"), format!("{subnet}.{i}")))
            .collect(),
        ..Cluster::default()
    };
    cluster.apply_preset();
    let nodes = name_by_role(&cluster)
        .into_iter()
        .zip(&cluster.hosts)
        .zip(1u8..)
        .map(|((name, h), octet)| {
            let netns = net::netns_name(subnet, &name);
            Ok(Node {
                dir: dir.join("n").join(&name),
                ip: h.node_ip().to_string(),
                veth: net::veth_name(subnet, octet),
                cgroups: node::cgroup_dirs(&netns)?,
                netns,
                name,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Lab {
        dir: dir.to_path_buf(),
        subnet: subnet.to_string(),
        bridge: net::bridge_name(subnet),
        host_address: format!("{subnet}.{}", net::HOST_OCTET),
        image,
        shared: dir.join("shared"),
        nodes,
        key_user: KEY_USER.to_string(),
        password_user: PASSWORD_USER.to_string(),
        password_file: dir.join("password"),
        key: dir.join("id_ed25519"),
        conf_dir: dir.join("conf"),
        lb_address: format!("{subnet}.{}", net::LB_OCTET),
        lb_port: DEFAULT_LB_PORT,
        lb_domain: crate::model::DEFAULT_LB_DOMAIN.to_string(),
        haproxy_socket: dir.join("haproxy.sock"),
    })
}

/// master1.. for control-plane hosts, worker1.. for the rest, as in the seeds' inventories.
fn name_by_role(cluster: &Cluster) -> Vec<String> {
    let (mut masters, mut workers) = (0, 0);
    cluster
        .hosts
        .iter()
        .map(|h| {
            if h.roles.master {
                masters += 1;
                format!("master{masters}")
            } else {
                workers += 1;
                format!("worker{workers}")
            }
        })
        .collect()
}

fn build(lab: &Lab, say: &(dyn Fn(&str) + Sync)) -> Result<()> {
    let started = Instant::now();
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kswizard-lab", "-f"])
        .arg(&lab.key))?;
    let password = random_password()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lab.password_file)?;
    writeln!(file, "{password}")?;
    let hash = password_hash(&password)?;
    bundle::write(&lab.dir.join(BUNDLE_DIR))?;
    write_conf(lab)?;
    std::fs::create_dir_all(&lab.shared)?;
    say(&format!(
        "key, password, bundle and conf/ written; booting {} nodes",
        lab.nodes.len()
    ));

    std::thread::scope(|s| {
        let started: Vec<_> = lab
            .nodes
            .iter()
            .map(|n| {
                s.spawn(|| -> Result<()> {
                    n.prepare(lab, &hash)?;
                    n.boot(&lab.bridge, &lab.shared)?;
                    n.wait_ready(Duration::from_secs(60))?;
                    say(&format!(
                        "{:<9} {:<15} up, sshd answers ({:.1}s)",
                        n.name,
                        n.ip,
                        started.elapsed().as_secs_f64()
                    ));
                    Ok(())
                })
            })
            .collect();
        started
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| eyre!("a node thread panicked"))?)
    })?;

    let (cluster, _) = conf::load(&lab.conf_dir)?;
    let masters: Vec<&str> = cluster.masters().map(Host::node_ip).collect();
    let nodes: Vec<&str> = cluster.hosts.iter().map(Host::node_ip).collect();
    std::fs::write(lab.haproxy_config(), haproxy::config(lab, &masters, &nodes))?;
    haproxy::start(&lab.haproxy_config())?;
    say(&format!(
        "LB        {}:{}  haproxy on the taskbox ({:.1}s)",
        lab.lb_address,
        lab.lb_port,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The password's SHA-512 crypt hash for /etc/shadow (the password goes on stdin, never in argv).
fn password_hash(password: &str) -> Result<String> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| eyre!("openssl has no stdin"))?
        .write_all(format!("{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !hash.starts_with("$6$") {
        bail!("openssl passwd -6 failed ({})", out.status);
    }
    Ok(hash)
}

/// conf/ for the lab, written by the product's own writer.
fn write_conf(lab: &Lab) -> Result<()> {
    let mut cluster = Cluster::default();
    for n in &lab.nodes {
        let mut h = Host::new(&n.name, &n.ip);
        h.port = Some(22);
        h.user = Some(lab.key_user.clone());
        h.auth = Auth::Key {
            file: Some(lab.key.display().to_string()),
        };
        cluster.hosts.push(h);
    }
    // Roles come from the same preset that named the nodes.
    cluster.apply_preset();
    cluster.lb.mode = LbMode::External;
    cluster.lb.address = Some(lab.lb_address.clone());
    cluster.lb.port = i64::from(lab.lb_port);
    cluster.lb.domain.clone_from(&lab.lb_domain);
    // Absolute: tests copy the lab's conf elsewhere and it still names the lab's bundle.
    cluster.settings.bundle = Some(lab.dir.join(BUNDLE_DIR).display().to_string());
    let source = conf::Source {
        dir: lab.conf_dir.clone(),
        ..conf::Source::default()
    };
    conf::save(&cluster, &source, &lab.conf_dir)?;
    Ok(())
}

/// Stop every process of the lab in `dir`, remove its mounts, namespaces, veths, cgroups and
/// bridge, then the dir. Works from `lab.json` alone, which `up` writes before creating anything.
pub fn down(dir: &Path) -> Result<()> {
    require_root()?;
    // Absolute, as the mount points it is compared with are.
    let dir = &std::path::absolute(dir)?;
    let lab = Lab::load(dir);
    if let Ok(lab) = &lab {
        stop(lab)?;
        // In parallel: deleting a network namespace waits for the kernel (tens of ms each).
        std::thread::scope(|s| {
            let removed: Vec<_> = lab
                .nodes
                .iter()
                .map(|n| s.spawn(|| remove_node(n)))
                .collect();
            removed
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| eyre!("a node thread panicked"))?)
        })?;
        net::remove_link(&lab.bridge)?;
    }
    if dir.exists() {
        if lab.is_err() && !dir.join(MARKER).exists() {
            bail!("{} is not a lab dir", dir.display());
        }
        // Never delete through a mount: that would reach into whatever is mounted there.
        if let Some(m) = mounts().into_iter().find(|m| m.starts_with(dir)) {
            bail!(
                "{} is still mounted; unmount it, then run `kswizard lab down` again",
                m.display()
            );
        }
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

/// What of a stopped node is left: its overlay mount, namespace, veth and cgroups.
fn remove_node(n: &Node) -> Result<()> {
    if is_mounted(&n.root()) {
        run(Command::new("umount").arg(n.root()))
            .wrap_err_with(|| format!("unmounting node {}'s overlay", n.name))?;
    }
    net::remove_node(&n.netns, &n.veth)?;
    n.cgroups.iter().try_for_each(|cg| node::remove_cgroup(cg))
}

/// Kill every process of the lab. The nodes are throwaway: SIGKILL to a container's init ends its
/// whole pid namespace at once, with nothing to wait for. Listed again until none is left twice in
/// a row, so that a container still starting when `up` was killed is caught too.
fn stop(lab: &Lab) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while quiet < 2 {
        let pids = lab.processes();
        if pids.is_empty() {
            quiet += 1;
        } else {
            quiet = 0;
            if Instant::now() > deadline {
                bail!("lab processes survived SIGKILL: {pids:?}");
            }
            // Processes may exit between listing and signalling; kill's complaint is noise.
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The machine's mount points (this process's view), octal escapes decoded.
pub fn mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| {
            PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .collect()
}

fn is_mounted(path: &Path) -> bool {
    mounts().iter().any(|m| m == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(n: usize) -> Lab {
        plan(n, Path::new("/tmp/l"), "10.231.9", PathBuf::from("/img")).unwrap()
    }

    #[test]
    fn nodes_are_named_by_the_preset_roles_and_addressed_in_the_subnet() {
        let names = |n| -> Vec<String> { lab(n).nodes.into_iter().map(|n| n.name).collect() };
        assert_eq!(
            names(6),
            [
                "master1", "master2", "master3", "worker1", "worker2", "worker3"
            ]
        );
        assert_eq!(names(2), ["master1", "worker1"]);
        let l = lab(4);
        assert_eq!(l.nodes[3].ip, "10.231.9.4");
        assert_eq!(l.nodes[3].netns, "ksw-10.231.9-worker1");
        assert_eq!(l.nodes[3].veth, "ksw0ae70904");
        assert_eq!(l.lb_address, "10.231.9.250");
        assert_eq!(l.host_address, "10.231.9.254");
        assert_eq!(l.bridge, "kswbr0ae709");
        assert!(
            l.nodes[0]
                .cgroups
                .iter()
                .all(|c| c.ends_with("ksw-10.231.9-master1"))
        );
    }

    #[test]
    fn haproxy_balances_over_the_masters_with_readyz_checks() {
        let l = lab(6);
        let cfg = haproxy::config(
            &l,
            &["10.231.9.1", "10.231.9.2"],
            &["10.231.9.1", "10.231.9.3"],
        );
        assert!(cfg.contains("bind 10.231.9.250:6443"));
        // The console's listener, every node behind it.
        assert!(cfg.contains("bind 10.231.9.250:30880"));
        assert!(cfg.contains("option httpchk GET /\n"));
        assert!(cfg.contains("server console-10-231-9-3 10.231.9.3:30880"));
        assert!(cfg.contains("balance roundrobin"));
        assert!(cfg.contains("option httpchk GET /readyz"));
        assert!(cfg.contains("server master2 10.231.9.2:6443"));
        assert!(cfg.contains("stats socket /tmp/l/haproxy.sock"));
    }
}
