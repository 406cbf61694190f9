//! The bundle delivered from the taskbox (issue 9, item 1) on the lab, whose nodes start with
//! neither etcd nor the Kubernetes stand-ins: `kswizard install` (the real binary, JSON events)
//! delivers them with the bundled plan and the cluster comes up on them; a second install sends
//! nothing; a damaged bundle is refused before the journal or any node hears of the install.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

mod common;
use common::lab::lab_up;

/// `kswizard install` on the lab's conf (JSON): (exit ok, events, stderr).
fn install(conf: &Path, restart: bool) -> (bool, Vec<serde_json::Value>, String) {
    let extra: &[&str] = if restart { &["--restart"] } else { &[] };
    let (code, events, err) = common::install_run(conf, extra);
    (code == Some(0), events, err)
}

/// Each node's `delivered` event: (node, files sent, bytes sent, files already there).
fn delivered(events: &[serde_json::Value]) -> Vec<(String, u64, u64, u64)> {
    let mut v: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "delivered")
        .map(|e| {
            (
                e["node"].as_str().unwrap().to_string(),
                e["files"].as_u64().unwrap(),
                e["bytes"].as_u64().unwrap(),
                e["unchanged"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs root and the lab"]
fn the_bundle_reaches_bare_nodes_once_and_a_damaged_one_is_refused_before_anything() {
    let g = lab_up(211, 4);
    let lab = &g.lab;
    let conf = &lab.conf_dir;
    for n in &lab.nodes {
        for bin in ["kubeadm", "kubelet", "etcd", "etcdctl"] {
            assert!(
                !n.path("/usr/local/bin").join(bin).exists()
                    && n.exec(&format!("command -v {bin}")).is_err(),
                "{bin} is on {} before the install",
                n.name
            );
        }
    }
    let manifest = kswizard::bundle::Manifest::load(&lab.dir.join("bundle")).unwrap();
    let (cluster, _) = kswizard::conf::load(conf).unwrap();
    // What each node's roles get: the first master the addons too, masters etcd, all the rest.
    let bytes_for = |node: &str| -> u64 {
        let i = cluster.hosts.iter().position(|h| h.name == node).unwrap();
        kswizard::bundle::deliver::for_host(&manifest, &cluster, i)
            .iter()
            .map(|e| e.size)
            .sum()
    };
    let (ok, events, err) = install(conf, false);
    assert!(ok, "{err}");
    let sent = delivered(&events);
    assert_eq!(sent.len(), 4, "{sent:?}");
    for (node, files, bytes, unchanged) in &sent {
        assert_eq!(
            (*bytes, *unchanged),
            (bytes_for(node), 0),
            "{node}: {sent:?}"
        );
        assert!(*files > 0);
    }
    // Masters get etcd (39 MB); the worker only the stand-ins.
    assert!(bytes_for("master2") > 30_000_000 && bytes_for("worker1") < 1_000_000);
    assert!(bytes_for("master1") > bytes_for("master2"));
    let m1 = &lab.nodes[0];
    assert_eq!(
        m1.exec("stat -c %a /usr/local/bin/etcd").unwrap().trim(),
        "755"
    );
    assert!(
        m1.exec("ls /usr/local/bin/*.ksw-part 2>/dev/null || true")
            .unwrap()
            .is_empty()
    );
    // The cluster came up on what was delivered: the real etcd and the stand-ins.
    let members = m1
        .exec("ETCDCTL_API=3 etcdctl --endpoints https://10.231.211.1:2379 --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/member.crt --key /etc/etcd/pki/member.key member list")
        .unwrap();
    assert_eq!(members.lines().count(), 3, "{members}");
    let version = m1.exec("kubeadm version").unwrap();
    assert!(version.contains("STAND-IN"), "{version}");

    // Again: nothing to send anywhere.
    let (ok, events, err) = install(conf, true);
    assert!(ok, "{err}");
    assert!(
        delivered(&events)
            .iter()
            .all(|(_, files, bytes, unchanged)| *files == 0 && *bytes == 0 && *unchanged > 0),
        "{:?}",
        delivered(&events)
    );

    // A damaged bundle file: refused with its name; the journal and the nodes are as they were.
    let kubectl = lab.dir.join("bundle/files/kubectl");
    let mut body = std::fs::read(&kubectl).unwrap();
    body.push(b'\n');
    std::fs::write(&kubectl, body).unwrap();
    let journal = lab.dir.join(".kswizard/journal.jsonl");
    let before = std::fs::read(&journal).unwrap();
    let on_node = m1.exec("sha256sum /usr/local/bin/kubectl").unwrap();
    let (ok, events, err) = install(conf, true);
    assert!(!ok && events.is_empty(), "{err}");
    assert!(
        err.contains("bundle/files/kubectl") && err.contains("nothing was copied"),
        "{err}"
    );
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    assert_eq!(
        m1.exec("sha256sum /usr/local/bin/kubectl").unwrap(),
        on_node
    );
}
