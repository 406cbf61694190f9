//! Preflight across nodes on the lab (issue 9 item 6, issue 11 item 2): a clock 60 s ahead, a
//! duplicate hostname, a taken port and an old Docker install, each put on a node of its own;
//! `kswizard install` finds each (reason and fix, a `preflight` event per node), exits 1, and
//! no node was changed: no step ran, no journal was written.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::lab::{assert_gone, lab_up};
use common::{install_run, kswizard};

/// The check `id` of `node`'s `preflight` event.
fn check<'a>(events: &'a [Value], node: &str, id: &str) -> &'a Value {
    let e = events
        .iter()
        .find(|e| e["event"] == "preflight" && e["node"] == node)
        .unwrap_or_else(|| panic!("no preflight event for {node}: {events:?}"));
    e["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} on {node}: {e}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[test]
#[ignore = "needs root and the lab"]
fn preflight_finds_skew_duplicate_hostname_taken_port_and_old_docker_before_any_change() {
    let started = Instant::now();
    let g = lab_up(160, 4);
    let lab = &g.lab;
    let n = &lab.nodes;

    // Test fault injection, one fault a node.
    // n[0]: its clock reads 60 s ahead. nspawn nodes share the kernel's clock, so a `date` put
    // before /usr/bin on the PATH (sudo's secure_path has /usr/local/bin first) adds 60 s.
    n[0].exec(
        "printf '#!/bin/sh\\n# kswizard test fault injection: this clock reads 60 s ahead.\\nexec /bin/date -d \"+60 seconds\" \"$@\"\\n' >/usr/local/bin/date && chmod 755 /usr/local/bin/date",
    )
    .unwrap();
    // n[1]: the hostname of n[2] (its own UTS namespace).
    n[1].exec(&format!("hostname {}", n[2].name)).unwrap();
    // n[2]: something listening on the kubelet's port, on every address.
    n[2].command("setsid")
        .unwrap()
        .args([
            "-f",
            "python3",
            "-c",
            "import socket,time; s=socket.socket(); s.bind(('0.0.0.0',10250)); s.listen(); time.sleep(600)",
        ])
        .status()
        .unwrap();
    // A python3 starting in a node: seconds on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !n[2].exec("ss -Hltn").unwrap().contains(":10250") {
        assert!(Instant::now() < deadline, "the listener on {}", n[2].name);
        std::thread::sleep(Duration::from_millis(100));
    }
    // n[3]: an old Docker: its binary (a fake one) and its data directory.
    n[3].exec(
        "printf '#!/bin/sh\\n# kswizard test fault injection: an old Docker.\\necho Docker version 20.10.5\\n' >/usr/bin/docker && chmod 755 /usr/bin/docker && mkdir -p /var/lib/docker/overlay2",
    )
    .unwrap();

    let t = Instant::now();
    let out = kswizard()
        .args(["install", "--yes", "--output", "json", "--conf"])
        .arg(&lab.conf_dir)
        .output()
        .unwrap();
    let took = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("kswizard: preflight failed on "),
        "{stderr}"
    );

    // A clock 60 s ahead (less the time the report took to come back).
    let clock = check(&events, &n[0].name, "clock");
    assert_eq!(clock["level"], "fail", "{clock}");
    let reason = text(&clock["reason"]);
    let secs: f64 = reason.split(' ').next().unwrap().parse().unwrap();
    // The script's own run time drops out (it reads the time first and last): 60 s less the
    // report's way back, which a loaded machine stretches to seconds (never more than the
    // install took).
    let lowest = 60.0 - took.as_secs_f64() - 1.0;
    assert!(
        (lowest..=61.0).contains(&secs),
        "{reason} (install took {took:?})"
    );
    assert!(
        reason.contains("ahead of the taskbox (more than 30 s)"),
        "{reason}"
    );
    assert!(
        text(&clock["fix"]).contains("timedatectl set-ntp true"),
        "{clock}"
    );
    assert_eq!(check(&events, &n[3].name, "clock")["level"], "ok");

    // The duplicate hostname, as the nodes report it, on both nodes that have it.
    for (node, other) in [(&n[1], &n[2]), (&n[2], &n[1])] {
        let h = check(&events, &node.name, "unique-hostname");
        assert_eq!(h["level"], "fail", "{h}");
        assert_eq!(
            text(&h["reason"]),
            format!(
                "its hostname '{}' is also the hostname of {}",
                n[2].name, other.name
            )
        );
        assert!(text(&h["fix"]).contains("hostnamectl set-hostname"), "{h}");
    }
    assert_eq!(check(&events, &n[0].name, "unique-hostname")["level"], "ok");

    // The taken port, with what holds it.
    let ports = check(&events, &n[2].name, "ports");
    assert_eq!(ports["level"], "fail", "{ports}");
    assert_eq!(text(&ports["reason"]), "in use: 10250 (python3)");
    assert!(!text(&ports["fix"]).is_empty());
    assert_eq!(check(&events, &n[1].name, "ports")["level"], "ok");

    // The old Docker, and what to do about it.
    let docker = check(&events, &n[3].name, "docker");
    assert_eq!(docker["level"], "fail", "{docker}");
    assert_eq!(
        text(&docker["reason"]),
        "Docker is installed (/usr/bin/docker)"
    );
    assert!(
        text(&docker["fix"]).contains("rm -rf /var/lib/docker"),
        "{docker}"
    );
    assert_eq!(check(&events, &n[0].name, "docker")["level"], "ok");

    // Nothing else failed: each node is a machine of its own, at its own address.
    for node in n {
        for id in [
            "same-machine",
            "unique-ip",
            "ip",
            "root",
            "swap",
            "kubernetes",
            "lb-domain",
        ] {
            let c = check(&events, &node.name, id);
            assert_eq!(c["level"], "ok", "{}: {c}", node.name);
        }
    }

    // Each node's event says it failed; nothing started.
    for node in n {
        let e = events
            .iter()
            .find(|e| e["event"] == "preflight" && e["node"] == node.name.as_str())
            .unwrap();
        assert_eq!(e["status"], "fail", "{e}");
    }
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "started" || e["event"] == "finished"),
        "{stdout}"
    );

    // No node changed: os-prep's effects are absent, the runner left no state, and there is
    // no journal (a failed preflight leaves it as it was: here, absent).
    for node in n {
        assert!(
            !node
                .path("/etc/modules-load.d/kswizard-kubernetes.conf")
                .exists(),
            "{}",
            node.name
        );
        let hosts = std::fs::read_to_string(node.path("/etc/hosts")).unwrap();
        assert!(!hosts.contains("# kswizard:"), "{}: {hosts}", node.name);
        assert!(!node.path("/var/lib/kswizard").exists(), "{}", node.name);
    }
    let state = lab.conf_dir.parent().unwrap().join(".kswizard");
    assert!(!state.join("journal.jsonl").exists());

    // The text report: one table, node × check, then the failures with their fixes.
    let out = kswizard()
        .args(["install", "--yes", "--conf"])
        .arg(&lab.conf_dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(1), "{report}");
    let mut lines = report.lines().skip_while(|l| !l.starts_with("preflight "));
    let header = lines.next().unwrap_or_else(|| panic!("{report}"));
    for id in ["clock", "unique-hostname", "ports", "docker"] {
        assert!(header.contains(id), "{header}");
    }
    for node in n {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("{} ", node.name)) && l.contains('✗')),
            "{report}"
        );
    }
    assert!(
        report.contains(&format!(
            "  {} docker: Docker is installed (/usr/bin/docker) (fix: ",
            n[3].name
        )),
        "{report}"
    );
    assert!(!state.join("journal.jsonl").exists());

    eprintln!(
        "preflight of {} nodes: {took:?} (whole test {:?})",
        n.len(),
        started.elapsed()
    );
    let lab = g.lab.clone();
    drop(g);
    assert_gone(&lab);
}

/// A cluster kswizard installed passes preflight again (`--restart` runs every step again):
/// its own etcd and apiservers hold the ports, its own /etc/kubernetes is there, the LB domain is
/// its own /etc/hosts line.
#[test]
#[ignore = "needs root and the lab"]
fn a_rerun_on_a_cluster_kswizard_installed_passes_preflight() {
    let g = lab_up(161, 3);
    let lab = &g.lab;
    let (code, events, err) = install_run(&lab.conf_dir, &[]);
    assert_eq!(code, Some(0), "{err}{events:?}");
    let (code, events, err) = install_run(&lab.conf_dir, &["--restart"]);
    assert_eq!(code, Some(0), "{err}{events:?}");
    for node in &lab.nodes {
        let ports = check(&events, &node.name, "ports");
        assert_eq!(ports["level"], "ok", "{ports}");
        assert!(
            // The console's NodePort (KubeSphere's step) too.
            text(&ports["reason"])
                .ends_with("held by kswizard's earlier install (30880 6443 2379 2380)"),
            "{ports}"
        );
        let k8s = check(&events, &node.name, "kubernetes");
        assert_eq!(k8s["level"], "ok", "{k8s}");
        assert!(
            text(&k8s["reason"])
                .starts_with("kswizard's earlier install: /etc/kubernetes/admin.conf"),
            "{k8s}"
        );
        let lb = check(&events, &node.name, "lb-domain");
        assert_eq!(
            text(&lb["reason"]),
            format!("{} resolves to {}", lab.lb_domain, lab.lb_address),
            "{lb}"
        );
    }
    let lab = g.lab.clone();
    drop(g);
    assert_gone(&lab);
}
