//! The wizard's day 2 on a lab (needs root): the effects the keys ask for run for real and their
//! actions go back into `update`, as the event loop does, without a terminal. Install the lab's
//! 4 hosts from Review, then delete worker1 on the Hosts screen: the pre-check's arithmetic in
//! the question, yes, the remove plan on the Install screen, and the conf and the installed
//! record without worker1 at the end. Then, on a lab of 3: back up etcd from Done, write a key,
//! restore from the backup (forced: etcd is healthy) and find the key gone, every member healthy.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use tokio::sync::mpsc;

use super::send;
use crate::engine::installed::Installed;
use crate::lab::{self, Spec};
use crate::tui::Msg;
use crate::tui::action::{Action, Effect};
use crate::tui::effects;
use crate::tui::state::{Confirm, Modal, Screen, State};
use crate::tui::theme::Theme;
use crate::tui::update::update;

/// The lab goes down when the test ends, whatever happens in it.
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

/// Run `effects` as the loop does, feeding their actions to `update` (and the effects those ask
/// for) until `done` holds; a bounded wait, so a hang fails with what the state was.
async fn until(
    s: &mut State,
    effects: Vec<Effect>,
    limit: Duration,
    done: impl Fn(&State) -> bool,
) {
    let (tx, mut rx) = mpsc::channel(256);
    for e in effects {
        tokio::spawn(effects::run(e, tx.clone()));
    }
    let deadline = tokio::time::Instant::now() + limit;
    while !done(s) {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; status {:?}, modal {:?}", s.status, s.modal));
        let Some(Msg::Action(a)) = msg else {
            panic!("the channel closed")
        };
        let mut asked = update(s, a);
        // The lab's nodes are clones of one image: preflight warns (one machine-id), and the
        // operator continues anyway.
        if s.install
            .as_ref()
            .is_some_and(|i| i.running && i.preflight.asked && i.preflight.answered.is_none())
        {
            asked.extend(update(s, Action::ContinueAnyway));
        }
        for e in asked {
            tokio::spawn(effects::run(e, tx.clone()));
        }
    }
}

/// A lab of `nodes` hosts on `subnet` (down when the guard drops), installed from the wizard's
/// Review (open, Review, i, yes), which ends at Done with the record read again.
async fn installed_from_review(
    nodes: usize,
    subnet: &str,
) -> (tempfile::TempDir, Down, lab::Lab, State) {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let spec = Spec {
        dir: tmp.path().join("lab"),
        nodes,
        subnet: Some(subnet.into()),
    };
    let lab = tokio::task::spawn_blocking(move || lab::up(&spec, true))
        .await
        .unwrap()
        .expect("the lab (needs root and its packages)");
    let down = Down(lab.dir.clone());
    let conf = lab.conf_dir.clone();
    let minute = Duration::from_secs(60);
    let mut s = State::new(conf.clone(), Theme::monochrome());
    until(&mut s, vec![Effect::Load(conf)], minute, |s| {
        s.disk.is_some()
    })
    .await;
    assert!(s.installed().is_none(), "nothing installed yet");
    send(&mut s, [Action::Confirm, Action::GoTo(Screen::Review)]);
    let ask = send(&mut s, [Action::Install]);
    until(&mut s, ask, minute, |s| s.modal.is_some()).await;
    let go = send(&mut s, [Action::Answer(true)]);
    until(&mut s, go, 5 * minute, |s| {
        !s.installing() && s.installed().is_some()
    })
    .await;
    assert_eq!(s.screen, Screen::Done, "{:?}", s.status);
    (tmp, down, lab, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and the lab"]
async fn install_then_delete_a_worker_removes_it_from_the_cluster_then_the_conf() {
    let (_tmp, _down, lab, mut s) = installed_from_review(4, "10.231.245").await;
    let conf = lab.conf_dir.clone();
    let minute = Duration::from_secs(60);
    // The record was read again: the conf says what is installed.
    assert!(s.changes().is_empty(), "{:?}", s.changes());

    // Hosts, worker1 (the last row), Delete: the pre-check over SSH, then the question.
    send(&mut s, [Action::Back, Action::GoTo(Screen::Hosts)]);
    send(&mut s, std::iter::repeat_n(Action::Down, 3));
    assert_eq!(s.cluster.hosts[s.host_selected].name, "worker1");
    let check = send(&mut s, [Action::Delete]);
    assert!(
        matches!(&check[..], [Effect::PrepareRemove { .. }]),
        "{check:?}"
    );
    until(&mut s, check, minute, |s| s.modal.is_some()).await;
    let Some(Modal::Confirm(Confirm::RemoveNode { node, check })) = &s.modal else {
        panic!("{:?}", s.modal)
    };
    assert_eq!(node, "worker1");
    let arithmetic = check.as_ref().unwrap();
    assert!(
        arithmetic.contains("etcd members now      3 (3 healthy; quorum 2)"),
        "{arithmetic}"
    );
    assert!(arithmetic.contains("no member leaves"), "{arithmetic}");

    // Yes: the remove plan on the Install screen titled for it, then the conf.
    let go = send(&mut s, [Action::Answer(true)]);
    assert_eq!(s.screen, Screen::Install);
    until(&mut s, go, 5 * minute, |s| !s.installing()).await;
    let status = s.status.clone().unwrap();
    assert!(
        status
            .text
            .starts_with("worker1 left the cluster, the conf and the installed record"),
        "{status:?}"
    );
    let install = s.install.as_ref().unwrap();
    assert!(
        install
            .nodes
            .iter()
            .any(|n| n.name == "worker1" && !n.steps.is_empty())
    );
    assert!(s.cluster.host("worker1").is_none());
    assert!(s.written(), "the wizard's files are those on disk");
    assert!(s.changes().is_empty(), "{:?}", s.changes());
    // On disk: the conf and the record without worker1.
    let (on_disk, _) = crate::conf::load(&conf).unwrap();
    assert!(on_disk.host("worker1").is_none());
    assert_eq!(on_disk.hosts.len(), 3);
    let state = crate::engine::paths::state_dir(&conf, None);
    let record = Installed::load(&state).unwrap().unwrap();
    assert!(record.host("worker1").is_none());
    assert_eq!(record.hosts.len(), 3);
}

/// `etcdctl ARGS` on the lab's first node (its member's certificates, every member as an
/// endpoint) over the lab's own ssh, as root through sudo: (ok, stdout and stderr).
fn etcdctl_on_node(lab: &lab::Lab, args: &str) -> (bool, String) {
    let endpoints: Vec<String> = lab
        .nodes
        .iter()
        .map(|n| format!("https://{}:2379", n.ip))
        .collect();
    let command = format!(
        "sudo -n env ETCDCTL_API=3 etcdctl --endpoints {} --dial-timeout 3s \
         --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/member.crt \
         --key /etc/etcd/pki/member.key {args}",
        endpoints.join(",")
    );
    let out = lab
        .ssh()
        .arg(format!("{}@{}", lab.key_user, lab.nodes[0].ip))
        .arg(command)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and the lab"]
async fn backup_from_the_wizard_then_a_forced_restore_loses_what_was_written_since() {
    let started = std::time::Instant::now();
    let (_tmp, _down, lab, mut s) = installed_from_review(3, "10.231.246").await;
    let minute = Duration::from_secs(60);
    let installed_in = started.elapsed();

    // Done, o, Back up etcd: the operation, then the snapshot kept on the taskbox.
    let go = send(&mut s, [Action::Operations, Action::Confirm]);
    assert_eq!(s.screen, Screen::Install);
    until(&mut s, go, 2 * minute, |s| !s.installing()).await;
    let status = s.status.clone().unwrap();
    assert!(
        status.text.starts_with("etcd backed up: revision "),
        "{status:?}"
    );
    let kept = s.install.as_ref().unwrap().kept.clone().unwrap();
    assert!(kept.dir.join("snapshot.db").is_file());
    assert!(kept.meta.keys.is_some_and(|k| k > 0), "{:?}", kept.meta);
    let backed_up_in = started.elapsed().saturating_sub(installed_in);

    // A key written after the backup.
    let (ok, out) = etcdctl_on_node(&lab, "put /kswizard-test/after-backup written");
    assert!(ok, "{out}");

    // Review, o, Restore: the backup listed first, checked; etcd is healthy, so refused until F.
    send(&mut s, [Action::Back, Action::GoTo(Screen::Review)]);
    let list = send(&mut s, [Action::Operations, Action::Down, Action::Confirm]);
    until(&mut s, list, minute, |s| {
        matches!(
            &s.modal,
            Some(Modal::Ops(crate::tui::ops::Dialog::Backups {
                list: Some(_),
                ..
            }))
        )
    })
    .await;
    let checking = send(&mut s, [Action::Confirm]);
    until(&mut s, checking, minute, |s| {
        matches!(
            &s.modal,
            Some(Modal::Ops(crate::tui::ops::Dialog::Restore {
                check: Some(_),
                ..
            }))
        )
    })
    .await;
    let Some(Modal::Ops(crate::tui::ops::Dialog::Restore {
        backup,
        check: Some(Ok(check)),
        ..
    })) = &s.modal
    else {
        panic!("{:?}", s.modal)
    };
    assert_eq!(backup, &kept.dir);
    assert!(check.refused.is_some(), "a healthy cluster is refused");
    assert!(
        check
            .loss
            .iter()
            .any(|l| l.starts_with("Restoring loses the ")),
        "{:?}",
        check.loss
    );
    assert!(send(&mut s, [Action::Answer(true)]).is_empty(), "y alone");
    let go = send(&mut s, [Action::ForceRestore, Action::Answer(true)]);
    assert_eq!(s.screen, Screen::Install);
    until(&mut s, go, 3 * minute, |s| !s.installing()).await;
    let status = s.status.clone().unwrap();
    assert!(
        status.text.starts_with("etcd restored from etcd-"),
        "{status:?}"
    );
    let restored_in = started
        .elapsed()
        .saturating_sub(installed_in + backed_up_in);

    // The key is gone, every member healthy.
    let (ok, out) = etcdctl_on_node(&lab, "get /kswizard-test/after-backup --print-value-only");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "", "the key written after the backup is gone");
    let (ok, health) = etcdctl_on_node(&lab, "endpoint health");
    assert!(ok, "{health}");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    eprintln!(
        "install {:.1}s, backup {:.1}s, restore {:.1}s",
        installed_in.as_secs_f64(),
        backed_up_in.as_secs_f64(),
        restored_in.as_secs_f64()
    );
}
