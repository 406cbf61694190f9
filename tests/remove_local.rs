//! `kswizard remove`'s pre-check (`ops::remove::precheck`, shared with the wizard's delete)
//! without a lab: hosts that cannot leave are refused by name, and when no staying master can
//! list the etcd members nothing is removed. The hosts are loopback addresses on port 1, where
//! nothing listens.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use kswizard::conf::{self, Source};
use kswizard::engine::installed::Installed;
use kswizard::engine::paths::state_dir;
use kswizard::model::{Cluster, Host};

mod common;
use common::kswizard;

/// m1 (master, etcd) and w1 (worker), installed, as `<tmp>/conf`.
fn installed_conf(tmp: &Path) -> std::path::PathBuf {
    let mut c = Cluster::default();
    for (name, ip) in [("m1", "127.0.99.1"), ("w1", "127.0.99.2")] {
        let mut h = Host::new(name, ip);
        h.port = Some(1);
        c.hosts.push(h);
    }
    c.hosts[0].roles.master = true;
    c.hosts[0].roles.etcd = true;
    c.hosts[1].roles.worker = true;
    let dir = tmp.join("conf");
    conf::save(&c, &Source::default(), &dir).unwrap();
    let state = state_dir(&dir, None);
    kswizard::engine::executor::ensure_state_dir(&state).unwrap();
    Installed::of(&c, "20261202-050000-0000")
        .save(&state)
        .unwrap();
    dir
}

/// `kswizard remove NODE --yes --conf CONF`: exit code and stderr.
fn remove(conf: &Path, node: &str) -> (i32, String) {
    let out = kswizard()
        .args(["remove", node, "--yes", "--conf"])
        .arg(conf)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hosts_that_cannot_leave_and_an_unanswered_pre_check_remove_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = installed_conf(tmp.path());
    let before = std::fs::read_to_string(conf.join("hosts.ini")).unwrap();

    let (code, err) = remove(&conf, "nosuch");
    assert_ne!(code, 0);
    assert!(err.contains("not a host of the conf: nosuch"), "{err}");

    let (code, err) = remove(&conf, "m1");
    assert_ne!(code, 0);
    assert!(err.contains("that removes every master"), "{err}");

    let (code, err) = remove(&conf, "w1");
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot check etcd quorum, so nothing is removed: no staying master could list the etcd members: m1:"),
        "{err}"
    );
    // An unfinished remove of another host comes first.
    kswizard::ops::remove::write_pending(&state_dir(&conf, None), &["m9".to_string()]).unwrap();
    let (code, err) = remove(&conf, "w1");
    assert_ne!(code, 0);
    assert!(
        err.contains(
            "an earlier `kswizard remove m9` has not ended: run it again to finish it first"
        ),
        "{err}"
    );
    // Nothing changed: the conf, the record, no remove journal.
    assert_eq!(
        std::fs::read_to_string(conf.join("hosts.ini")).unwrap(),
        before
    );
    let state = state_dir(&conf, None);
    assert_eq!(Installed::load(&state).unwrap().unwrap().hosts.len(), 2);
    assert!(!state.join("ops").join("remove.jsonl").exists());
}
