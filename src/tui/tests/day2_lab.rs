//! The wizard's day 2 on a lab (needs root): the effects the keys ask for run for real and their
//! actions go back into `update`, as the event loop does, without a terminal. Install the lab's
//! 4 hosts from Review, then delete worker1 on the Hosts screen: the pre-check's arithmetic in
//! the question, yes, the remove plan on the Install screen, and the conf and the installed
//! record without worker1 at the end.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and the lab"]
async fn install_then_delete_a_worker_removes_it_from_the_cluster_then_the_conf() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let spec = Spec {
        dir: tmp.path().join("lab"),
        nodes: 4,
        subnet: Some("10.231.245".into()),
    };
    let lab = tokio::task::spawn_blocking(move || lab::up(&spec, true))
        .await
        .unwrap()
        .expect("the lab (needs root and its packages)");
    let _down = Down(lab.dir.clone());
    let conf = lab.conf_dir.clone();
    let minute = Duration::from_secs(60);

    let mut s = State::new(conf.clone(), Theme::monochrome());
    until(&mut s, vec![Effect::Load(conf.clone())], minute, |s| {
        s.disk.is_some()
    })
    .await;
    assert!(s.installed().is_none(), "nothing installed yet");
    // Open, Review, i, yes: the install, to Done.
    send(&mut s, [Action::Confirm, Action::GoTo(Screen::Review)]);
    let ask = send(&mut s, [Action::Install]);
    until(&mut s, ask, minute, |s| s.modal.is_some()).await;
    let go = send(&mut s, [Action::Answer(true)]);
    until(&mut s, go, 5 * minute, |s| {
        !s.installing() && s.installed().is_some()
    })
    .await;
    assert_eq!(s.screen, Screen::Done, "{:?}", s.status);
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
