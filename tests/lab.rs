//! The lab and the install content, end to end on this machine: systemd nodes with their own
//! network, real sshd, etcd and haproxy, stand-in Kubernetes binaries. Needs root and the lab's packages: ignored by a plain
//! `cargo nextest run`, run by `.ci/run` (`--run-ignored all`), and failing when run without them.
//!
//! The plan's steps are run by a small driver here (step by step, in parallel over the nodes a step
//! targets, outputs passed on as environment): it proves the scripts, not the product's engine.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kswizard::lab::{self, Lab, Spec};
use kswizard::model::Cluster;
use serde::Deserialize;

mod common;
use common::lab::{assert_gone, lab_up};

fn ssh(lab: &Lab, user: &str, ip: &str, command: &str, stdin: &[u8]) -> Output {
    let mut child = lab
        .ssh()
        .arg(format!("{user}@{ip}"))
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("ssh output")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Wait (health checks run every second; 60 s is room for a loaded machine, not a measure) until
/// haproxy sees all three masters in `state`.
fn assert_backends(lab: &Lab, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let backends = loop {
        let b = lab.backends().unwrap();
        if b.len() == 3 && b.iter().all(|(_, s)| s == state) || Instant::now() > deadline {
            break b;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        backends.len() == 3 && backends.iter().all(|(_, s)| s == state),
        "{backends:?}"
    );
}

#[test]
#[ignore = "needs root and the lab"]
fn lab_nodes_are_separate_hosts() {
    let up = lab_up(77, 3);
    let lab = up.lab.clone();
    // The lab dir is in a `mktemp -d` directory, which the lab's users cannot traverse: what sshd
    // reads for them is in each node's own tree, so they log in all the same.
    let parent = lab.dir.parent().unwrap();
    assert_eq!(
        std::fs::metadata(parent).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for n in &lab.nodes {
        let out = ssh(&lab, "kswlab", &n.ip, "sudo -n true && hostname", b"");
        assert!(out.status.success(), "{}: {}", n.name, text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), n.name);
        let root = ssh(&lab, "root", &n.ip, "id -u", b"");
        assert_eq!(
            String::from_utf8_lossy(&root.stdout).trim(),
            "0",
            "{}",
            text(&root)
        );
    }

    // Separate hosts on a network of their own: systemd is up, the only links are lo and eth0 (with
    // the node's address), there is no default route, and the nodes reach each other.
    for n in &lab.nodes {
        let state = n.exec("systemctl is-system-running --wait").unwrap();
        assert_eq!(state.trim(), "running", "{}", n.name);
        let links = n.exec("ip -o link show").unwrap();
        let names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1)?.split('@').next())
            .collect();
        assert_eq!(names, ["lo", "eth0"], "{}: {links}", n.name);
        let addr = n.exec("ip -o -4 addr show dev eth0").unwrap();
        assert!(addr.contains(&format!(" {}/24 ", n.ip)), "{addr}");
        let routes = n.exec("ip route show table all").unwrap();
        assert!(!routes.contains("default"), "{}: {routes}", n.name);
    }
    let ping = ssh(
        &lab,
        "kswlab",
        &lab.nodes[0].ip,
        &format!("ping -c1 -W2 {}", lab.nodes[1].ip),
        b"",
    );
    assert!(ping.status.success(), "{}", text(&ping));

    // A node's cable cut and put back: unreachable, then reachable again.
    lab.nodes[1].link_down().unwrap();
    let cut = ssh(
        &lab,
        "kswlab",
        &lab.nodes[0].ip,
        &format!("ping -c1 -W1 {}", lab.nodes[1].ip),
        b"",
    );
    assert!(!cut.status.success(), "{}", text(&cut));
    lab.nodes[1].link_up().unwrap();
    lab.nodes[1].wait_ready(Duration::from_secs(60)).unwrap();

    // The subnet is taken now: another lab on it is refused, naming what uses it.
    let other = tempfile::Builder::new()
        .prefix("kt")
        .tempdir_in("/tmp")
        .unwrap();
    let clash = lab::up(
        &Spec {
            dir: other.path().join("lab"),
            nodes: 1,
            subnet: Some(lab.subnet.clone()),
        },
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(
        clash.contains(&format!(
            "subnet {}.0/24 is already used on this machine (address {}/24 on {})",
            lab.subnet, lab.host_address, lab.bridge
        )),
        "{clash}"
    );
    assert!(
        !other.path().join("lab").exists(),
        "a refused lab leaves nothing"
    );

    // What `down` would stop: the nodes' processes and haproxy, never this test's own.
    let procs = lab.processes();
    assert!(
        procs.len() > 3 && !procs.contains(&std::process::id()),
        "{procs:?}"
    );

    // Each node has its own /var/lib/kswizard.
    let (one, two) = (&lab.nodes[0].ip, &lab.nodes[1].ip);
    let w = ssh(
        &lab,
        "kswlab",
        one,
        "sudo -n mkdir -p /var/lib/kswizard && echo node1 | sudo -n tee /var/lib/kswizard/mark",
        b"",
    );
    assert!(w.status.success(), "{}", text(&w));
    let r = ssh(&lab, "kswlab", two, "ls /var/lib/kswizard/mark", b"");
    assert!(!r.status.success(), "node2 sees node1's file");
    assert!(
        !Path::new("/var/lib/kswizard/mark").exists(),
        "the host sees node1's file"
    );

    // The password user: SSH password login (through SSH_ASKPASS, never argv) and sudo -S.
    let askpass = lab.dir.join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncat {}\n", lab.password_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let password = lab.password().unwrap();
    let mut child = Command::new("setsid")
        .args([
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
        ])
        .arg(format!("{}@{one}", lab.password_user))
        .arg("sudo -S -p '' id -u")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", password.expose()).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        text(&out)
    );

    // No apiserver runs yet, so the LB's health checks take every master out.
    assert_backends(&lab, "DOWN");

    // Preflight catches a port taken on the node (bound on all its addresses, as on a real host;
    // the listener ends with the lab).
    let node = &lab.nodes[0];
    node.command("setsid")
        .unwrap()
        .args([
            "-f",
            "python3",
            "-c",
            "import socket,time; s=socket.socket(); s.bind(('0.0.0.0',6443)); s.listen(); time.sleep(600)",
        ])
        .status()
        .unwrap();
    // A python3 starting in a node: seconds on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !node.exec("ss -Hltn").unwrap().contains("0.0.0.0:6443") {
        assert!(
            Instant::now() < deadline,
            "the listener on {}:6443",
            node.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let preflight = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/steps/preflight.sh"),
    )
    .unwrap();
    let (cluster, _) = kswizard::conf::load(&lab.conf_dir).unwrap();
    let mut env = cluster_env(&cluster);
    env.extend([
        ("KSW_NODE".to_string(), lab.nodes[0].name.clone()),
        ("KSW_IP".to_string(), one.clone()),
        ("KSW_ROLES".to_string(), "master,etcd".to_string()),
        (
            "KSW_OUTPUT".to_string(),
            "/var/lib/kswizard/test-install/preflight.out".to_string(),
        ),
    ]);
    let (ok, log, _) = run_step(&lab, one, &env, &preflight);
    // The script only reports (kswizard judges): it ends ok, with the port named as taken.
    assert!(ok, "{log}");
    let ports = log
        .lines()
        .find(|l| l.starts_with("CHECK ports "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        ports.starts_with("CHECK ports fail in use: 6443 (python3) ;; "),
        "{log}"
    );
    assert!(!ports.contains("2379"), "{log}");
    assert!(log.trim_end().ends_with("END"), "{log}");

    // A second `up` in the same dir is refused while the lab runs.
    let again = lab::up(
        &Spec {
            dir: lab.dir.clone(),
            nodes: 3,
            subnet: Some(lab.subnet.clone()),
        },
        true,
    );
    assert!(again.unwrap_err().to_string().contains("already up"));

    drop(up);
    assert_gone(&lab);
}

#[derive(Deserialize)]
struct Plan {
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    id: String,
    roles: Vec<String>,
    /// The LB modes the step runs in (every mode when empty).
    #[serde(default)]
    lb: Vec<String>,
    /// The etcd topologies the step runs in (both when empty).
    #[serde(default)]
    etcd: Vec<String>,
    /// `deliver: bundle`: the product's own delivery, which this driver calls (below).
    deliver: Option<String>,
    script: Option<String>,
    run: Option<String>,
}

/// The product's own `KSW_*` environment (as the first host sees it: the steps override the
/// per-node values), and where the driver keeps step state.
fn cluster_env(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> =
        kswizard::engine::executor::base_env(cluster, &cluster.hosts[0], "test-install")
            .into_iter()
            .collect();
    env.insert("KSW_STATE".into(), "/var/lib/kswizard/test-install".into());
    env
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

const OUTPUT_MARK: &str = "@@ksw-output@@";

/// Run one step's script on a node as the engine would: as root, with `env`, under umask 077.
/// Returns (success, log, published KEY=VALUE lines).
fn run_step(
    lab: &Lab,
    ip: &str,
    env: &BTreeMap<String, String>,
    script: &str,
) -> (bool, String, String) {
    let assignments: Vec<String> = env
        .iter()
        .map(|(k, v)| sh_quote(&format!("{k}={v}")))
        .collect();
    let inner = format!(
        "umask 077 && mkdir -p \"$KSW_STATE\" && : >\"$KSW_OUTPUT\" && bash -s; rc=$?; \
         echo {OUTPUT_MARK}; cat \"$KSW_OUTPUT\"; exit $rc"
    );
    let command = format!(
        "sudo -n env {} bash -c {}",
        assignments.join(" "),
        sh_quote(&inner)
    );
    let out = ssh(lab, "kswlab", ip, &command, script.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (log, published) = stdout.split_once(OUTPUT_MARK).unwrap_or((&stdout, ""));
    let log = format!("{log}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), log, published.to_string())
}

/// The plan's `deliver` step is kswizard's own code, not a script: the engine runs it, alone.
fn deliver_bundle(lab: &Lab, cluster: &Cluster) {
    let plan = kswizard::engine::plan::parse(
        "steps:\n- {id: deliver, roles: [all], deliver: bundle}\n",
        Path::new("deliver.yaml"),
        |_| unreachable!(),
    )
    .unwrap();
    let state = lab.dir.join("deliver-state");
    let opts = kswizard::engine::executor::Options {
        bundle: kswizard::engine::paths::bundle_dir(&lab.conf_dir, cluster),
        ..kswizard::engine::executor::Options::new(state)
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let summary = rt
        .block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let r = kswizard::engine::executor::install(cluster, &plan, &opts, tx).await;
            drain.await.unwrap();
            r
        })
        .unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    eprintln!(
        "step deliver            ok on {} nodes",
        cluster.hosts.len()
    );
}

/// Run every step of the plan on the nodes it targets; return the published values.
fn run_plan(lab: &Lab, plan_path: &Path) -> BTreeMap<String, String> {
    let plan: Plan = serde_yaml::from_str(&std::fs::read_to_string(plan_path).unwrap()).unwrap();
    let (cluster, _) = kswizard::conf::load(&lab.conf_dir).unwrap();
    let mut env = cluster_env(&cluster);
    let mode = env["KSW_LB_MODE"].clone();
    let topology = env
        .get("KSW_ETCD_TOPOLOGY")
        .map_or("external", String::as_str)
        .to_string();
    for step in plan.steps.iter().filter(|s| {
        (s.lb.is_empty() || s.lb.contains(&mode))
            && (s.etcd.is_empty() || s.etcd.contains(&topology))
    }) {
        if step.deliver.is_some() {
            deliver_bundle(lab, &cluster);
            continue;
        }
        let script = match (&step.script, &step.run) {
            (Some(s), _) => std::fs::read_to_string(plan_path.parent().unwrap().join(s)).unwrap(),
            (None, Some(r)) => r.clone(),
            (None, None) => panic!("step {} has neither script nor run", step.id),
        };
        let targets: Vec<_> = cluster
            .hosts
            .iter()
            .filter(|h| {
                let mut roles = h.roles.names();
                if h.node_ip() == env["KSW_FIRST_MASTER"] {
                    roles.push("first-master");
                }
                step.roles
                    .iter()
                    .any(|r| r == "all" || roles.contains(&r.as_str()))
            })
            .collect();
        let started = Instant::now();
        let outputs: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|h| {
                    let mut node_env = env.clone();
                    node_env.insert("KSW_NODE".into(), h.name.clone());
                    node_env.insert("KSW_IP".into(), h.node_ip().into());
                    node_env.insert("KSW_ROLES".into(), h.roles.names().join(","));
                    node_env.insert(
                        "KSW_OUTPUT".into(),
                        format!("{}/{}.out", env["KSW_STATE"], step.id),
                    );
                    let name = h.name.clone();
                    let ip = h.node_ip().to_string();
                    let script = &script;
                    s.spawn(move || {
                        let (ok, log, published) = run_step(lab, &ip, &node_env, script);
                        assert!(ok, "step {} failed on {name}:\n{log}", step.id);
                        // Shown with --nocapture: the step's progress lines, per node.
                        eprint!(
                            "{}",
                            log.lines()
                                .map(|l| format!("  [{}] {name}: {l}\n", step.id))
                                .collect::<String>()
                        );
                        published
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("step thread"))
                .collect()
        });
        for line in outputs.iter().flat_map(|o| o.lines()) {
            if let Some((k, v)) = line.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
        eprintln!(
            "step {:<18} ok on {} nodes in {:.1?}",
            step.id,
            targets.len(),
            started.elapsed()
        );
    }
    env
}

fn curl_readyz_through_lb(lab: &Lab) -> String {
    let ca = lab.nodes[0].path("/etc/kubernetes/pki/ca.crt");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!(
            "{}:{}:{}",
            lab.lb_domain, lab.lb_port, lab.lb_address
        ))
        .arg(format!("https://{}:{}/readyz", lab.lb_domain, lab.lb_port))
        .output()
        .unwrap();
    text(&out)
}

#[test]
#[ignore = "needs root and the lab"]
fn plan_installs_ha_cluster_on_lab() {
    let up = lab_up(78, 4);
    let lab = up.lab.clone();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plan.yaml");
    run_plan(&lab, &plan);

    // The real etcd cluster, seen from the host with the first master's client certificate.
    let pki = lab.nodes[0].path("/etc/etcd/pki");
    let endpoints: Vec<String> = lab.nodes[..3]
        .iter()
        .map(|n| format!("https://{}:2379", n.ip))
        .collect();
    let etcdctl = |args: &[&str]| {
        common::lab::etcdctl(&pki, "apiserver-etcd-client", &endpoints.join(","), args)
    };
    let (ok, health) = etcdctl(&["endpoint", "health"]);
    assert!(ok, "{health}");
    let (ok, members) = etcdctl(&["member", "list"]);
    assert!(ok, "{members}");
    assert_eq!(members.matches("started").count(), 3, "{members}");

    // The stand-in apiservers answer through the real haproxy, which sees every master UP.
    assert_eq!(curl_readyz_through_lb(&lab), "ok");
    assert_backends(&lab, "UP");

    // The worker joined and is Ready (its stand-in kubelet heartbeats through the LB).
    let nodes = ssh(
        &lab,
        "kswlab",
        &lab.nodes[0].ip,
        "sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes",
        b"",
    );
    let listing = text(&nodes);
    assert_eq!(
        listing.lines().filter(|l| l.contains(" Ready ")).count(),
        4,
        "{listing}"
    );

    // Steps are idempotent: a second run changes nothing and succeeds.
    run_plan(&lab, &plan);

    drop(up);
    assert_gone(&lab);
}

/// What a test of `lab up` itself started: when the test ends, whatever happened in it, the `up`
/// is killed if it still runs and its lab taken down, so a failed run leaves no lab (and no
/// subnet clash) for the next.
struct UpGuard {
    dir: std::path::PathBuf,
    child: std::process::Child,
}

impl Drop for UpGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = lab::down(&self.dir);
    }
}

#[test]
#[ignore = "needs root and the lab"]
fn down_after_a_kill_9_of_up_leaves_nothing() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::Builder::new()
        .prefix("kt")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tmp.path().join("lab");
    let kswizard = env!("CARGO_BIN_EXE_kswizard");
    let child = Command::new(kswizard)
        .args([
            "lab",
            "up",
            "--nodes",
            "4",
            "--subnet",
            "10.231.90",
            "--yes",
            "--dir",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = UpGuard {
        dir: dir.clone(),
        child,
    };
    // Mid-way: a node's container has booted (its init runs), `up` has not finished. Waited for,
    // not timed: on a loaded machine a node's boot lags its namespace by seconds, and the first
    // process in a node's namespace may be one of `up`'s own short `ip` commands.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            up.child.try_wait().unwrap().is_none(),
            "lab up ended before it was killed"
        );
        if Lab::load(&dir).is_ok_and(|l| l.nodes.iter().any(|n| n.leader().is_some())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lab up started no node within 300 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-9", &up.child.id().to_string()])
        .status()
        .unwrap();
    let status = up.child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "lab up was killed mid-way: {status}"
    );
    let lab = Lab::load(&dir).expect("lab.json is written before anything is created");
    assert!(
        !lab.processes().is_empty(),
        "the nodes outlive a killed `up`: down has them to stop"
    );
    let down = Command::new(kswizard)
        .args(["lab", "down", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert_gone(&lab);
}
