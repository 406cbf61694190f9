//! The real installer files in ../shared/samples: each reads, and gives the findings a person
//! reading it would expect.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use kswizard::conf::{self, common_yaml, hosts_ini};
use kswizard::model::Cluster;
use kswizard::validate::{Severity, validate};

fn codes(c: &Cluster) -> Vec<(&'static str, Severity, Vec<String>)> {
    validate(c)
        .into_iter()
        .map(|f| (f.code, f.severity, f.hosts))
        .collect()
}

fn read_ini(text: &str) -> Cluster {
    hosts_ini::parse(text.as_bytes(), Path::new("hosts.ini")).unwrap_or_else(|e| panic!("{e}"))
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(std::string::ToString::to_string).collect()
}

/// The sample with its example hosts switched on: the `# ` before each `nodeN` line removed, as a
/// user filling in the sample does (the `# ## ...` notes and the bastion line stay comments).
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.starts_with("node") => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn every_sample_reads_without_error() {
    let mut seen = 0;
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("ini") => drop(hosts_ini::parse(&bytes, &path).unwrap_or_else(|e| panic!("{e}"))),
            Some("yml" | "yaml") => {
                let v = common_yaml::parse(std::str::from_utf8(&bytes).unwrap(), &path)
                    .unwrap_or_else(|e| panic!("{e}"));
                // All of them carry the LB block commented out only; KubeSphere's set its pod
                // network (kubespray's group_vars leave it to another file).
                let ks = path.display().to_string().contains("ks-installer");
                let pods_subnet = ks.then(|| "10.233.64.0/18".to_string());
                assert_eq!(
                    v,
                    common_yaml::LbValues {
                        pods_subnet,
                        ..common_yaml::LbValues::default()
                    },
                    "{}",
                    path.display()
                );
            }
            _ => continue,
        }
        seen += 1;
    }
    assert_eq!(
        seen, 6,
        "a sample was added or removed: give it its expectations here"
    );
}

#[test]
fn kubesphere_conf_is_a_valid_single_master_layout() {
    for common_name in ["common.yaml", "vars.yml"] {
        let common_sample = if common_name == "vars.yml" {
            KS_VARS
        } else {
            KS_COMMON
        };
        let dir = conf_dir(&[
            ("hosts.ini", &sample(KS_HOSTS)),
            (common_name, &sample(common_sample)),
        ]);
        let (c, source) = conf::load(dir.path()).unwrap();
        assert_eq!(source.common_name, common_name);
        assert_eq!(c.lb.address, None);
        // Single master: no LB needed; the root passwords in the file are the only remark.
        assert_eq!(
            codes(&c),
            [(
                "plaintext-password",
                Severity::Warning,
                names(&["node1", "node2"])
            )]
        );
    }
}

#[test]
fn kubespray_samples_as_shipped_are_empty_inventories() {
    for name in [KUBESPRAY_OLD, KUBESPRAY_NEW] {
        let c = read_ini(&sample(name));
        assert!(c.hosts.is_empty(), "{name}: {:?}", c.hosts);
        assert_eq!(
            codes(&c),
            [
                ("no-master", Severity::Error, vec![]),
                ("no-etcd", Severity::Error, vec![])
            ],
            "{name}"
        );
    }
}

#[test]
fn kubespray_v2_11_with_its_hosts_filled_in() {
    let c = read_ini(&uncommented(&sample(KUBESPRAY_OLD)));
    assert_eq!(c.hosts.len(), 6);
    // The `# ip=... etcd_member_name=...` part stays a comment on each line.
    let n1 = c.host("node1").unwrap();
    assert_eq!(
        (n1.address.as_deref(), n1.ip.as_deref()),
        (Some("95.54.0.12"), None)
    );
    assert_eq!(
        n1.comment.as_deref(),
        Some("# ip=10.3.0.1 etcd_member_name=etcd1")
    );
    // Three etcd (fine); node3 runs etcd as a plain worker; two masters and no LB.
    assert_eq!(
        codes(&c),
        [
            ("etcd-on-worker", Severity::Error, names(&["node3"])),
            ("lb-required", Severity::Error, names(&["node1", "node2"])),
        ]
    );
    // The empty [calico-rr] and the cluster's child entry for it are kept.
    let out = hosts_ini::render(&c);
    assert!(
        out.contains("\n[calico-rr]\n") && out.contains("kube-master\ncalico-rr\n"),
        "{out}"
    );
}

#[test]
fn kubespray_master_with_its_hosts_filled_in() {
    let c = read_ini(&uncommented(&sample(KUBESPRAY_NEW)));
    let roles: Vec<(String, Vec<&str>)> = c
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.roles.names()))
        .collect();
    let want = |n: &str, r: &[&'static str]| (n.to_string(), r.to_vec());
    assert_eq!(
        roles,
        [
            want("node1", &["master", "etcd"]),
            want("node2", &["master", "etcd"]),
            want("node3", &["master", "etcd"]),
            want("node4", &["worker"]),
            want("node5", &["worker"]),
            want("node6", &["worker"]),
        ]
    );
    // Stacked etcd on three masters is the recommended layout: only the LB is missing.
    assert_eq!(
        codes(&c),
        [(
            "lb-required",
            Severity::Error,
            names(&["node1", "node2", "node3"])
        )]
    );
}

/// The samples with an LB set by hand (the HA block's `#` taken off its three lines) and the
/// domain line left commented, in LF and CRLF: writing with nothing changed keeps every byte.
#[test]
fn a_write_without_changes_keeps_common_yaml_byte_for_byte() {
    for (common_name, name) in [("common.yaml", KS_COMMON), ("vars.yml", KS_VARS)] {
        let lb_set: String = sample(name)
            .lines()
            .map(|l| {
                let bare = l.trim_start_matches(['#', ' ']);
                let is_block = bare.starts_with("loadbalancer_apiserver:")
                    || bare.starts_with("address: 192.168.0.10")
                    || bare.starts_with("port: 6443");
                match (is_block, bare.starts_with("loadbalancer")) {
                    (true, true) => format!("{bare}\n"),
                    (true, false) => format!("  {bare}\n"),
                    _ => format!("{l}\n"),
                }
            })
            .collect();
        for text in [lb_set.clone(), lb_set.replace('\n', "\r\n")] {
            let dir = conf_dir(&[("hosts.ini", &sample(KS_HOSTS)), (common_name, &text)]);
            let (c, source) = conf::load(dir.path()).unwrap();
            assert_eq!(c.lb.address.as_deref(), Some("192.168.0.10"), "{name}");
            let files = conf::render_all(&c, &source).unwrap();
            let (_, written) = files.iter().find(|(n, _)| n == common_name).unwrap();
            assert!(
                written == &text,
                "{common_name} changed on a write without changes"
            );
        }
    }
}
