//! The lab (DESIGN §8): N "hosts" on this machine for trying kswizard out and for tests. Each node
//! is a real sshd on 127.0.X.Y in a private mount namespace; a real haproxy on 127.0.X.250 is the
//! external LB; the Kubernetes binaries are stand-ins from `assets/lab/stand-ins/`. `up` leaves a
//! ready `conf/` and a `lab.json` describing everything in the lab dir; `down` removes it all.

pub mod haproxy;
pub mod node;
pub mod packages;

use std::collections::HashSet;
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
pub const DEFAULT_SUBNET: &str = "127.0.100";
/// The user the install uses: key login, passwordless sudo.
pub const KEY_USER: &str = "kswlab";
/// Prefix of the user with a password and a sudo password; the subnet's octet completes it so that
/// labs on different subnets do not overwrite each other's password.
pub const PASSWORD_USER_PREFIX: &str = "kswpw";
const LB_HOST: u8 = 250;
const MARKER: &str = ".kswizard-lab";

/// The stand-ins, built into the binary so `lab up` works from anywhere.
const STAND_INS: &[(&str, &[u8])] = &[
    (
        "standin.py",
        include_bytes!("../../assets/lab/stand-ins/standin.py"),
    ),
    (
        "kubeadm",
        include_bytes!("../../assets/lab/stand-ins/kubeadm"),
    ),
    (
        "kubelet",
        include_bytes!("../../assets/lab/stand-ins/kubelet"),
    ),
    (
        "kubectl",
        include_bytes!("../../assets/lab/stand-ins/kubectl"),
    ),
    (
        "crictl",
        include_bytes!("../../assets/lab/stand-ins/crictl"),
    ),
    (
        "containerd",
        include_bytes!("../../assets/lab/stand-ins/containerd"),
    ),
];

#[derive(Clone, Debug)]
pub struct Spec {
    pub dir: PathBuf,
    pub nodes: usize,
    /// `127.0.X`: nodes are .1 to .N, the LB is .250.
    pub subnet: String,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            dir: PathBuf::from(DEFAULT_DIR),
            nodes: 6,
            subnet: DEFAULT_SUBNET.to_string(),
        }
    }
}

/// What `lab.json` holds: everything tests and the engine need to find in a running lab.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lab {
    pub dir: PathBuf,
    pub subnet: String,
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
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }

    pub fn haproxy_pid_file(&self) -> PathBuf {
        self.dir.join("haproxy.pid")
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
        haproxy::backend_status(&self.haproxy_socket)
    }

    /// Every process of the lab: all processes in a node's mount namespace (sshd, sessions, etcd,
    /// stand-in apiservers, ...) and haproxy.
    pub fn processes(&self) -> Vec<u32> {
        let mut namespaces: HashSet<String> =
            self.nodes.iter().filter_map(|n| n.mnt_ns.clone()).collect();
        namespaces.extend(
            self.nodes
                .iter()
                .filter_map(|n| node::read_pid(&n.sshd_pid_file()))
                // A pid file outlives its sshd, and the pid may be reused by any process.
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == "sshd")
                })
                .filter_map(node::mnt_ns),
        );
        // Never the machine's own namespace: that would be every process on it.
        for own in ["self", "1"] {
            if let Ok(ns) = std::fs::read_link(format!("/proc/{own}/ns/mnt")) {
                namespaces.remove(&ns.to_string_lossy().into_owned());
            }
        }
        // A namespace id can be reused once its namespace is gone: one counts only while it still
        // holds a node's bind mounts. A process may exit while being checked, so only a namespace
        // found to be a node's is remembered.
        let mut verified: HashSet<String> = HashSet::new();
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| {
                node::mnt_ns(pid)
                    .filter(|ns| namespaces.contains(ns))
                    .is_some_and(|ns| {
                        verified.contains(&ns)
                            || (self.nodes.iter().any(|n| n.mounted_in(pid)) && verified.insert(ns))
                    })
            })
            .collect();
        if let Some(pid) = node::read_pid(&self.haproxy_pid_file())
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"haproxy"))
        {
            pids.push(pid);
        }
        pids
    }
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

/// The lab needs root (users, mount namespaces, listeners); the engine's own check says.
pub use crate::engine::transport::is_root;

fn require_root() -> Result<()> {
    if !is_root() {
        bail!(
            "the lab must run as root: it creates users, mount namespaces and listeners (try sudo)"
        );
    }
    Ok(())
}

fn check_subnet(subnet: &str) -> Result<()> {
    let octets: Vec<&str> = subnet.split('.').collect();
    let ok = octets.len() == 3
        && octets[0] == "127"
        && octets[1] == "0"
        && octets[2]
            .parse::<u8>()
            .is_ok_and(|x| (1..=254).contains(&x));
    if !ok {
        bail!(
            "--subnet must be 127.0.X with X from 1 to 254 (127.0.0 is the host's own localhost)"
        );
    }
    Ok(())
}

/// Bring a lab up in `spec.dir`. A lab already running there is refused; the remains of a stopped
/// one are cleared first.
pub fn up(spec: &Spec, yes: bool) -> Result<Lab> {
    require_root()?;
    check_subnet(&spec.subnet)?;
    if !(1..usize::from(LB_HOST)).contains(&spec.nodes) {
        bail!("--nodes must be from 1 to {}", LB_HOST - 1);
    }
    packages::ensure(yes)?;
    let dir = std::path::absolute(&spec.dir)?;
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
    let lab = plan(spec, &dir);
    subnet_free(&lab)?;
    // Unix sockets (the haproxy stats socket, the engine's ControlMaster sockets) need short paths.
    if lab.haproxy_socket.as_os_str().len() > 100 {
        bail!(
            "--dir {} is too long for unix socket paths; use a shorter one",
            dir.display()
        );
    }
    match build(lab) {
        Ok(lab) => Ok(lab),
        Err(e) => {
            // Leave nothing half-started behind.
            let _ = down(&dir);
            Err(e)
        }
    }
}

/// Another lab on the same subnet (from another dir, or another checkout's tests) would make the
/// nodes' sshd fail to bind, or worse, answer in their place: refuse clearly instead.
fn subnet_free(lab: &Lab) -> Result<()> {
    let addrs = lab
        .nodes
        .iter()
        .map(|n| format!("{}:22", n.ip))
        .chain([format!("{}:{}", lab.lb_address, lab.lb_port)]);
    for addr in addrs {
        let sock: std::net::SocketAddr = addr.parse()?;
        if std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_ok() {
            bail!(
                "{addr} already answers: another lab or service uses subnet {}; choose another --subnet",
                lab.subnet
            );
        }
    }
    Ok(())
}

/// The lab's names, addresses and paths, before anything exists.
fn plan(spec: &Spec, dir: &Path) -> Lab {
    let mut cluster = Cluster {
        hosts: (1..=spec.nodes)
            .map(|i| Host::new(format!("node{i}"), format!("{}.{i}", spec.subnet)))
            .collect(),
        ..Cluster::default()
    };
    cluster.apply_preset();
    let nodes = name_by_role(&cluster)
        .into_iter()
        .zip(&cluster.hosts)
        .map(|(name, h)| Node {
            dir: dir.join("n").join(&name),
            name,
            ip: h.node_ip().to_string(),
            mnt_ns: None,
        })
        .collect();
    Lab {
        dir: dir.to_path_buf(),
        subnet: spec.subnet.clone(),
        nodes,
        key_user: KEY_USER.to_string(),
        password_user: format!("{PASSWORD_USER_PREFIX}{}", node::subnet_tag(&spec.subnet)),
        password_file: dir.join("password"),
        key: dir.join("id_ed25519"),
        conf_dir: dir.join("conf"),
        lb_address: format!("{}.{LB_HOST}", spec.subnet),
        lb_port: DEFAULT_LB_PORT,
        lb_domain: crate::model::DEFAULT_LB_DOMAIN.to_string(),
        haproxy_socket: dir.join("haproxy.sock"),
    }
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

fn build(mut lab: Lab) -> Result<Lab> {
    std::fs::create_dir_all(&lab.dir)?;
    std::fs::set_permissions(&lab.dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(lab.dir.join(MARKER), "")?;
    // Written before anything starts, so that `down` finds whatever a failure leaves.
    lab.save()?;
    write_stand_ins(&lab.dir.join("bin"))?;
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kswizard-lab", "-f"])
        .arg(&lab.key))?;
    std::fs::copy(
        lab.key.with_extension("pub"),
        lab.dir.join("authorized_keys"),
    )?;
    create_users(&lab)?;
    write_conf(&lab)?;
    std::fs::create_dir_all("/run/sshd")?;

    let subnet = lab.subnet.clone();
    let lab_dir = lab.dir.clone();
    std::thread::scope(|s| {
        let started: Vec<_> = lab
            .nodes
            .iter_mut()
            .map(|n| {
                s.spawn(|| -> Result<()> {
                    n.prepare(&lab_dir, &subnet)?;
                    n.start()?;
                    n.wait_ready(Duration::from_secs(15))
                })
            })
            .collect();
        started
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| eyre!("a node thread panicked"))?)
    })?;
    lab.save()?;

    let masters: Vec<&str> = {
        let (cluster, _) = conf::load(&lab.conf_dir)?;
        let ips: HashSet<String> = cluster.masters().map(|h| h.node_ip().to_string()).collect();
        lab.nodes
            .iter()
            .filter(|n| ips.contains(&n.ip))
            .map(|n| n.ip.as_str())
            .collect()
    };
    let cfg = lab.dir.join("haproxy.cfg");
    std::fs::write(&cfg, haproxy::config(&lab, &masters))?;
    haproxy::start(&cfg)?;
    Ok(lab)
}

fn write_stand_ins(bin: &Path) -> Result<()> {
    std::fs::create_dir_all(bin)?;
    for (name, body) in STAND_INS {
        let path = bin.join(name);
        std::fs::write(&path, body)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The key user (passwordless sudo) and the password user (password login, sudo asks for it).
fn create_users(lab: &Lab) -> Result<()> {
    let _lock = UsersLock::take()?;
    for user in [&lab.key_user, &lab.password_user] {
        if !user_exists(user) {
            run(Command::new("useradd").args(["-m", "-s", "/bin/bash", user]))?;
        }
    }
    // Without PAM, sshd refuses keys for a locked ("!") account; "*" is unlocked but has no password.
    run(Command::new("usermod").args(["-p", "*", &lab.key_user]))?;
    let password = random_password()?;
    let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn()?;
    chpasswd
        .stdin
        .take()
        .ok_or_else(|| eyre!("chpasswd has no stdin"))?
        .write_all(format!("{}:{password}\n", lab.password_user).as_bytes())?;
    if !chpasswd.wait()?.success() {
        bail!("chpasswd failed for {}", lab.password_user);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lab.password_file)?;
    writeln!(file, "{password}")?;
    for (user, rule) in [
        (&lab.key_user, "ALL=(ALL) NOPASSWD: ALL"),
        (&lab.password_user, "ALL=(ALL) ALL"),
    ] {
        // Checked before it is moved in: a broken sudoers file would lock sudo out for everyone.
        // sudo skips names with a dot, so the temporary file is never read half-written.
        let path = format!("/etc/sudoers.d/kswizard-lab-{user}");
        let tmp = format!("{path}.new");
        std::fs::write(&tmp, format!("{user} {rule}\n"))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o440))?;
        run(Command::new("visudo").args(["-cqf", &tmp]))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// Labs coming up at once (parallel tests, each its own process) share the users and sudoers
/// files: one at a time, under flock(2), which the kernel releases when a holder dies.
struct UsersLock {
    _held: std::fs::File,
}

impl UsersLock {
    fn take() -> Result<UsersLock> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open("/run/kswizard-lab-users.lock")?;
        file.lock()?;
        Ok(UsersLock { _held: file })
    }
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
    let source = conf::Source {
        dir: lab.conf_dir.clone(),
        ..conf::Source::default()
    };
    conf::save(&cluster, &source, &lab.conf_dir)?;
    Ok(())
}

/// Stop every process of the lab in `dir` and remove the dir.
pub fn down(dir: &Path) -> Result<()> {
    require_root()?;
    let lab = Lab::load(dir);
    if let Ok(lab) = &lab {
        stop(lab)?;
    }
    if dir.exists() {
        if lab.is_err() && !dir.join(MARKER).exists() {
            bail!("{} is not a lab dir", dir.display());
        }
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn stop(lab: &Lab) -> Result<()> {
    // SIGTERM first so sshd and etcd can shut down cleanly, SIGKILL for whatever is still there
    // (etcd members whose peers are gone take seconds to give up leadership).
    let mut deadline = Instant::now() + Duration::from_secs(2);
    let mut signal = "-TERM";
    loop {
        let pids = lab.processes();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            if signal == "-KILL" {
                bail!("lab processes survived SIGKILL: {pids:?}");
            }
            signal = "-KILL";
            deadline = Instant::now() + Duration::from_secs(3);
        }
        // Processes may exit between listing and signalling; kill's complaint about those is noise.
        let _ = Command::new("kill")
            .arg(signal)
            .args(pids.iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: usize) -> Spec {
        Spec {
            dir: PathBuf::from("/tmp/l"),
            nodes,
            subnet: "127.0.9".into(),
        }
    }

    #[test]
    fn nodes_are_named_by_the_preset_roles() {
        let names = |n| -> Vec<String> {
            plan(&spec(n), Path::new("/tmp/l"))
                .nodes
                .into_iter()
                .map(|n| n.name)
                .collect()
        };
        assert_eq!(
            names(6),
            [
                "master1", "master2", "master3", "worker1", "worker2", "worker3"
            ]
        );
        assert_eq!(names(2), ["master1", "worker1"]);
        let lab = plan(&spec(4), Path::new("/tmp/l"));
        assert_eq!(lab.nodes[3].ip, "127.0.9.4");
        assert_eq!(lab.lb_address, "127.0.9.250");
        assert_eq!(lab.password_user, "kswpw9");
    }

    #[test]
    fn subnets_are_127_0_x_without_localhost() {
        assert!(check_subnet("127.0.77").is_ok());
        for bad in ["127.0.0", "127.0.255", "10.0.1", "127.0", "127.0.x"] {
            assert!(check_subnet(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn haproxy_balances_over_the_masters_with_readyz_checks() {
        let lab = plan(&spec(6), Path::new("/tmp/l"));
        let cfg = haproxy::config(&lab, &["127.0.9.1", "127.0.9.2"]);
        assert!(cfg.contains("bind 127.0.9.250:6443"));
        assert!(cfg.contains("balance roundrobin"));
        assert!(cfg.contains("option httpchk GET /readyz"));
        assert!(cfg.contains("server master2 127.0.9.2:6443"));
        assert!(cfg.contains("stats socket /tmp/l/haproxy.sock"));
    }
}
