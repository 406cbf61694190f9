//! The lab and the install content, end to end on this machine: real sshd nodes, real etcd, real
//! haproxy, stand-in Kubernetes binaries. Needs root and the lab's packages: ignored by a plain
//! `cargo nextest run`, run by `.ci/run` (`--run-ignored all`), and failing when run without them.
//!
//! The plan's steps are run by a small driver here (step by step, in parallel over the nodes a step
//! targets, outputs passed on as environment): it proves the scripts, not the product's engine.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kswizard::lab::{self, Lab, Spec};
use kswizard::model::Cluster;
use serde::Deserialize;

/// Labs share the machine's users and sudoers files; bringing two up at once would race on them.
static UP: Mutex<()> = Mutex::new(());

/// A lab that goes down when the test ends, whether it passed or not.
struct Up(Lab);

impl Up {
    /// Run without root or the lab's packages, this fails saying so: a lab test never passes
    /// without having run.
    fn new(name: &str, subnet: &str, nodes: usize) -> Up {
        let dir = PathBuf::from(format!("/tmp/ksw-test-{name}"));
        let _ = lab::down(&dir);
        let _guard = UP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let spec = Spec {
            dir,
            nodes,
            subnet: subnet.into(),
        };
        Up(lab::up(&spec, false)
            .expect("the lab (needs root and its packages; `bash .ci/run` has both)"))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = lab::down(&self.0.dir);
    }
}

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

/// After `down`: no process of the lab and no listener on its subnet.
fn assert_gone(lab: &Lab) {
    assert!(
        lab.processes().is_empty(),
        "lab processes left: {:?}",
        lab.processes()
    );
    let ss = Command::new("ss").arg("-Hltn").output().unwrap();
    let listeners = String::from_utf8_lossy(&ss.stdout);
    let prefix = format!("{}.", lab.subnet);
    assert!(
        !listeners.contains(&prefix),
        "listeners left on {}: {listeners}",
        lab.subnet
    );
    assert!(!lab.dir.exists());
}

/// Wait (health checks run every second) until haproxy sees all three masters in `state`.
fn assert_backends(lab: &Lab, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
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
    let up = Up::new("nodes", "127.0.77", 3);
    let lab = up.0.clone();
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
        "echo node1 | sudo -n tee /var/lib/kswizard/mark",
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

    // Preflight catches a port taken on the node's IP (the nodes share this process's network).
    let taken = std::net::TcpListener::bind((one.as_str(), 6443)).unwrap();
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
    assert!(!ok, "{log}");
    assert!(
        log.contains(&format!("FAIL  port {one}:6443 is in use")),
        "{log}"
    );
    assert!(
        log.contains(&format!("ok    port {one}:2379 free")),
        "{log}"
    );
    drop(taken);

    // A second `up` in the same dir is refused while the lab runs.
    let again = lab::up(
        &Spec {
            dir: lab.dir.clone(),
            nodes: 3,
            subnet: lab.subnet.clone(),
        },
        false,
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
    script: Option<String>,
    run: Option<String>,
}

/// Values of KSW_* that are the same on every node.
fn cluster_env(cluster: &Cluster) -> BTreeMap<String, String> {
    let ips = |hosts: Vec<&kswizard::model::Host>| {
        hosts
            .iter()
            .map(|h| h.node_ip())
            .collect::<Vec<_>>()
            .join(",")
    };
    let masters = ips(cluster.masters().collect());
    let first = masters.split(',').next().unwrap_or_default().to_string();
    BTreeMap::from([
        ("KSW_MASTERS".into(), masters),
        ("KSW_ETCD".into(), ips(cluster.etcd().collect())),
        ("KSW_WORKERS".into(), ips(cluster.workers().collect())),
        ("KSW_FIRST_MASTER".into(), first),
        (
            "KSW_LB_ADDRESS".into(),
            cluster.lb.address.clone().unwrap_or_default(),
        ),
        ("KSW_LB_PORT".into(), cluster.lb.port.to_string()),
        ("KSW_LB_DOMAIN".into(), cluster.lb.domain.clone()),
        ("KSW_STATE".into(), "/var/lib/kswizard/test-install".into()),
    ])
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

/// Run every step of the plan on the nodes it targets; return the published values.
fn run_plan(lab: &Lab, plan_path: &Path) -> BTreeMap<String, String> {
    let plan: Plan = serde_yaml::from_str(&std::fs::read_to_string(plan_path).unwrap()).unwrap();
    let (cluster, _) = kswizard::conf::load(&lab.conf_dir).unwrap();
    let mut env = cluster_env(&cluster);
    for step in &plan.steps {
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
    let ca = lab.nodes[0].dir.join("etc-kubernetes/pki/ca.crt");
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
    let up = Up::new("plan", "127.0.78", 4);
    let lab = up.0.clone();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plan.yaml");
    run_plan(&lab, &plan);

    // The real etcd cluster, seen from the host with the first master's client certificate.
    let pki = lab.nodes[0].dir.join("etc-etcd/pki");
    let endpoints: Vec<String> = lab.nodes[..3]
        .iter()
        .map(|n| format!("https://{}:2379", n.ip))
        .collect();
    let etcdctl = |args: &[&str]| {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(endpoints.join(","))
            .arg("--cacert")
            .arg(pki.join("ca.crt"))
            .arg("--cert")
            .arg(pki.join("apiserver-etcd-client.crt"))
            .arg("--key")
            .arg(pki.join("apiserver-etcd-client.key"))
            .args(args)
            .output()
            .unwrap()
    };
    let health = etcdctl(&["endpoint", "health"]);
    assert!(health.status.success(), "{}", text(&health));
    let members = etcdctl(&["member", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&members.stdout)
            .matches("started")
            .count(),
        3,
        "{}",
        text(&members)
    );

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
