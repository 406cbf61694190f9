//! Bundle delivery (issue 9, item 1) against `scp`, on the same lab nodes, in one run: a bundle of
//! Debian's etcd and etcdctl (about 39 MB; every node gets all of it) delivered by kswizard's
//! `deliver` step to every node, against one `scp` of the same files to one node times the node
//! count (what copying node by node costs). Then the same delivery again, which sends nothing.
//!
//! Needs root (the lab). Run: `cargo bench --bench bundle_delivery` (`KSW_BENCH_NODES=20,100`).
// A benchmark fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use kswizard::bundle::{Entry, MANIFEST, Manifest};
use kswizard::engine::events::Event;
use kswizard::engine::executor::{self, Options};
use kswizard::engine::plan::{self, Role};
use kswizard::lab::{self, Lab};

#[path = "common/lab.rs"]
mod lab_common;

const FILES: &[(&str, &str)] = &[("etcd", "/usr/bin/etcd"), ("etcdctl", "/usr/bin/etcdctl")];

/// A bundle of FILES for every node, in `dir`; its size in bytes.
fn bundle(dir: &Path) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut m = Manifest {
        kubernetes: kswizard::model::KUBERNETES_VERSION.into(),
        arch: "amd64".into(),
        files: Vec::new(),
    };
    for (name, from) in FILES {
        std::fs::copy(from, dir.join(name)).unwrap();
        let (sha256, size) = kswizard::bundle::manifest::sha256_file(&dir.join(name)).unwrap();
        m.files.push(Entry {
            name: (*name).into(),
            version: "debian".into(),
            file: (*name).into(),
            target: format!("/opt/bench/{name}"),
            mode: "0755".into(),
            sha256,
            size,
            roles: vec![Role::All],
            source: None,
            member: None,
            checksum_url: None,
            standin: false,
        });
    }
    std::fs::write(dir.join(MANIFEST), m.render()).unwrap();
    m.files.iter().map(|e| e.size).sum()
}

/// One delivery to every node of the lab; (seconds, bytes sent).
fn deliver(lab: &Lab, bundle: &Path, state: &Path) -> (f64, u64) {
    let (mut cluster, _) = kswizard::conf::load(&lab.conf_dir).unwrap();
    cluster.settings.bundle = Some(bundle.display().to_string());
    let plan = plan::parse(
        "steps:\n- {id: deliver, roles: [all], deliver: bundle}\n",
        Path::new("bench.yaml"),
        |_| unreachable!(),
    )
    .unwrap();
    let opts = Options {
        restart: true,
        bundle: Some(bundle.to_path_buf()),
        ..Options::new(state.to_path_buf())
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = Instant::now();
    let (summary, sent) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let count = tokio::spawn(async move {
            let mut bytes = 0;
            while let Some(e) = rx.recv().await {
                if let Event::Delivered { bytes: b, .. } = e {
                    bytes += b;
                }
            }
            bytes
        });
        let s = executor::install(&cluster, &plan, &opts, tx).await.unwrap();
        (s, count.await.unwrap())
    });
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(summary.failed, 0, "{summary:?}");
    (secs, sent)
}

/// One `scp` of the bundle's files to the first node, through a fresh connection as scp makes.
fn scp_one(lab: &Lab, bundle: &Path) -> f64 {
    let files: Vec<PathBuf> = FILES.iter().map(|(n, _)| bundle.join(n)).collect();
    let t = Instant::now();
    let out = std::process::Command::new("scp")
        .arg("-q")
        .arg("-i")
        .arg(&lab.key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=ERROR", "-o", "BatchMode=yes"])
        .args(&files)
        .arg(format!("{}@{}:/tmp/", lab::KEY_USER, lab.nodes[0].ip))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn main() {
    if !lab::is_root() {
        println!("bundle_delivery: skipped, the lab needs root");
        return;
    }
    println!(
        "a {}-file bundle to every node; median wall time of 3 (1 at 100 nodes)",
        FILES.len()
    );
    println!(
        "{:>6} {:>9} {:>10} {:>10} {:>12} {:>14} {:>12}",
        "nodes", "MB/node", "kswizard", "MB/s", "scp × nodes", "scp/kswizard", "again (0 B)"
    );
    for n in lab_common::sizes() {
        let tmp = tempfile::Builder::new()
            .prefix("kd")
            .tempdir_in("/tmp")
            .unwrap();
        let (lab, _down) = lab_common::up(tmp.path(), n);
        let dir = tmp.path().join("bundle");
        let size = bundle(&dir);
        // Warm the page cache, sshd and the nodes' first contact for both contestants.
        let _ = scp_one(&lab, &dir);
        let runs = if n <= 20 { 3 } else { 1 };
        let (mut k, mut s, mut again) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..runs {
            // A fresh target each run: the nodes lose the files they got.
            for node in &lab.nodes {
                node.exec("rm -rf /opt/bench").unwrap();
            }
            let (secs, sent) = deliver(&lab, &dir, &tmp.path().join(format!("state{r}")));
            assert_eq!(sent, size * n as u64);
            k.push(secs);
            s.push(scp_one(&lab, &dir) * n as f64);
            let (secs, sent) = deliver(&lab, &dir, &tmp.path().join(format!("state{r}")));
            assert_eq!(sent, 0);
            again.push(secs);
        }
        let (k, s, again) = (
            lab_common::median(k).unwrap(),
            lab_common::median(s).unwrap(),
            lab_common::median(again).unwrap(),
        );
        let mb = size as f64 / 1e6;
        println!(
            "{n:>6} {mb:>9.1} {k:>9.2}s {:>10.0} {s:>11.2}s {:>13.1}x {again:>11.2}s",
            mb * n as f64 / k,
            s / k
        );
    }
}
