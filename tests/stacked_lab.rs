//! Stacked etcd on the lab (issue 9, item 4): three masters and a worker installed with
//! `etcd_topology: stacked` and the bundled plan. kubeadm (the stand-in) makes the etcd members on
//! the masters with the real etcd; the taskbox's own `etcdctl` then asks the masters' client URLs,
//! with the certificates fetched from the first master, who the members are and whether they are
//! healthy, and the journal shows that kswizard's own external-etcd steps did not run; then one
//! member stopped shows the coupling stacked etcd brings (its master's apiserver not ready). Without the
//! lab: the kubeadm config `kubeadm-init.sh` renders in each topology.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use kswizard::model::EtcdTopology;

mod common;
use common::lab::{etcdctl, lab_up, readyz};

/// `kubeadm-init.sh --render` with the environment the engine gives the repository's first master.
fn kubeadm_config(topology: EtcdTopology) -> String {
    let (mut c, _) = kswizard::conf::load(Path::new("conf")).unwrap();
    c.settings.etcd_topology = topology;
    let first = c.masters().next().unwrap();
    let out = Command::new("bash")
        .args(["assets/steps/kubeadm-init.sh", "--render"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(kswizard::engine::executor::base_env(&c, first, "test"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kubeadm_gets_local_etcd_when_stacked_and_the_external_endpoints_otherwise() {
    let stacked = kubeadm_config(EtcdTopology::Stacked);
    assert!(
        stacked.ends_with("etcd:\n  local:\n    dataDir: /var/lib/etcd\n"),
        "{stacked}"
    );
    assert!(!stacked.contains("external"), "{stacked}");
    let external = kubeadm_config(EtcdTopology::External);
    assert!(
        external.contains("etcd:\n  external:\n    caFile: /etc/etcd/pki/ca.crt\n"),
        "{external}"
    );
    assert!(
        external.contains("    - https://192.168.0.2:2379\n"),
        "{external}"
    );
    // Everything above the etcd section is the same in both.
    assert_eq!(
        stacked.split("etcd:\n").next(),
        external.split("etcd:\n").next()
    );
}

/// kswizard's own etcd steps: the bundled plan's steps for external etcd only.
fn external_etcd_steps() -> Vec<String> {
    let plan =
        kswizard::engine::paths::load_plan(Path::new(kswizard::engine::paths::BUNDLED)).unwrap();
    let own: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.etcd == [EtcdTopology::External])
        .map(|s| s.id.clone())
        .collect();
    assert!(own.iter().any(|s| s == "etcd-start"), "{own:?}");
    own
}

#[test]
#[ignore = "needs root and the lab"]
fn stacked_etcd_installs_with_its_members_on_exactly_the_masters() {
    let started = std::time::Instant::now();
    let g = lab_up(170, 4);
    let mut c = g.cluster();
    c.settings.etcd_topology = EtcdTopology::Stacked;
    let masters: Vec<_> = c.masters().cloned().collect();
    assert_eq!(masters.len(), 3);
    assert!(
        c.hosts.iter().all(|h| h.roles.etcd == h.roles.master),
        "the lab's preset: etcd exactly on the masters"
    );
    let conf = g.conf_dir("s", &c);
    let written = std::fs::read_to_string(conf.join("kswizard.yaml")).unwrap();
    assert!(written.contains("etcd_topology: stacked"), "{written}");

    let out = Command::new(env!("CARGO_BIN_EXE_kswizard"))
        .args(["install", "--yes", "--output", "json", "--conf"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    let installed = started.elapsed();

    // The journal: kubeadm-init and the joins ran, kswizard's external etcd steps nowhere.
    let journal =
        std::fs::read_to_string(conf.join("../.kswizard/journal.jsonl")).expect("the journal");
    let started_steps: Vec<(String, String)> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["t"] == "start")
        .map(|r| {
            (
                r["node"].as_str().unwrap().to_string(),
                r["step"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        started_steps
            .iter()
            .any(|(n, s)| n == &masters[0].name && s == "kubeadm-init"),
        "{journal}"
    );
    let own = external_etcd_steps();
    for (node, step) in &started_steps {
        assert!(
            !own.contains(step),
            "{step} ran on {node} with stacked etcd"
        );
    }

    // Each master runs its member as the stand-in's unit for kubeadm's etcd pod, none of
    // kswizard's external etcd unit; the worker runs no etcd.
    for n in &g.lab.nodes[..3] {
        let unit = n
            .exec("systemctl is-active kswizard-standin-etcd.service; systemctl is-active kswizard-etcd.service || true")
            .unwrap_or_else(|e| format!("{e}"));
        assert_eq!(
            unit.split_whitespace().collect::<Vec<_>>(),
            ["active", "inactive"],
            "{}: {unit}",
            n.name
        );
    }
    let worker = g.lab.nodes[3].exec("pgrep -x etcd || echo none").unwrap();
    assert_eq!(worker.trim(), "none");

    // The certificates from the first master (kubeadm's places), the taskbox's etcdctl.
    let pki = g.tmp.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    std::fs::set_permissions(&pki, std::fs::Permissions::from_mode(0o700)).unwrap();
    let first = &g.lab.nodes[0];
    for (from, to) in [
        ("/etc/kubernetes/pki/etcd/ca.crt", "ca.crt"),
        (
            "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
            "client.crt",
        ),
        (
            "/etc/kubernetes/pki/etcd/healthcheck-client.key",
            "client.key",
        ),
    ] {
        std::fs::copy(first.path(from), pki.join(to)).unwrap();
    }
    let endpoints = masters
        .iter()
        .map(|h| format!("https://{}:2379", h.node_ip()))
        .collect::<Vec<_>>()
        .join(",");
    let (ok, list) = etcdctl(
        &pki,
        "client",
        &endpoints,
        &["member", "list", "-w", "json"],
    );
    assert!(ok, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let mut members: Vec<(String, String, String)> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["peerURLs"][0].as_str().unwrap_or("").to_string(),
                m["clientURLs"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    members.sort();
    let want: Vec<(String, String, String)> = masters
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                format!("https://{}:2380", h.node_ip()),
                format!("https://{}:2379", h.node_ip()),
            )
        })
        .collect();
    assert_eq!(members, want, "members named after the masters, on them");
    let (ok, health) = etcdctl(&pki, "client", &endpoints, &["endpoint", "health"]);
    assert!(ok, "{health}");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    // The human table too, as an operator would read it.
    let (ok, table) = etcdctl(&pki, "client", &endpoints, &["member", "list"]);
    assert!(ok && table.lines().count() == 3, "{table}");
    println!("{table}");

    // The etcd CA key went from master to master, never through the install's output or journal.
    let key = std::fs::read_to_string(first.path("/etc/kubernetes/pki/etcd/ca.key")).unwrap();
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!body.is_empty());
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !text.contains(line) && !journal.contains(line),
            "the etcd CA key leaked"
        );
    }
    for n in &g.lab.nodes[1..3] {
        let theirs = std::fs::read_to_string(n.path("/etc/kubernetes/pki/etcd/ca.key")).unwrap();
        assert_eq!(theirs, key, "{}: the same etcd CA", n.name);
        let mode = std::fs::metadata(n.path("/etc/kubernetes/pki/etcd/ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", n.name);
    }

    // The trade-off: stopping master3's member leaves etcd with a quorum, but master3's apiserver,
    // which uses its own member, is not ready any more; master1's is.
    let m3 = &g.lab.nodes[2];
    m3.exec("systemctl stop kswizard-standin-etcd.service")
        .unwrap();
    let (ok, health) = etcdctl(&pki, "client", &endpoints, &["endpoint", "health"]);
    assert!(!ok, "{health}");
    assert_eq!(health.matches("is healthy").count(), 2, "{health}");
    assert_eq!(readyz(&format!("{}:6443", masters[0].node_ip())), 200);
    assert_eq!(
        readyz(&format!("{}:6443", masters[2].node_ip())),
        500,
        "coupled: no member, no ready apiserver"
    );
    println!(
        "installed in {installed:.1?} (lab up included), checked in {:.1?}",
        started.elapsed()
    );
}
