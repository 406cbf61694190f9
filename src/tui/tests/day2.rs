//! Day 2 in the wizard (issue 12): the conf against the installed cluster on Start and Review,
//! `i` adding hosts, and deleting an installed host, which removes it from the cluster on the
//! Install screen before the conf. `update` along the operator's paths, then snapshots.

use std::path::Path;

use super::snapshots::check;
use super::{engine, finished, preview, send, started};
use crate::engine::decide::Mode;
use crate::engine::events::{Event, Failure, Status, Summary};
use crate::engine::installed::{Change, Installed};
use crate::engine::plan::NodePlan;
use crate::model::Cluster;
use crate::tui::action::{Action, Effect};
use crate::tui::effects;
use crate::tui::install::Operation;
use crate::tui::screens::{hosts, install};
use crate::tui::state::{Confirm, Modal, Screen, State, StatusKind};
use crate::tui::theme::Theme;
use crate::tui::update::update;

pub const INSTALL_ID: &str = "20261123-020521-4f2a";

/// The repository's conf/ as read, its cluster.
pub fn conf() -> Cluster {
    effects::load(Path::new("conf"))
        .unwrap()
        .cluster
        .expect("conf/hosts.ini")
}

/// conf/'s cluster as an install recorded it, changed by `edit` (the conf then differs from it
/// the other way round).
fn record(edit: impl FnOnce(&mut Cluster)) -> Installed {
    let mut c = conf();
    edit(&mut c);
    Installed::of(&c, INSTALL_ID)
}

/// The record without `name`: the conf adds it.
fn without(name: &str) -> Installed {
    record(|c| c.hosts.retain(|h| h.name != name))
}

/// conf/ read with `installed` as its state dir's record, on Start.
pub fn loaded_with(installed: Installed) -> State {
    let mut s = State::new("conf".into(), Theme::color());
    let mut disk = effects::load(Path::new("conf")).unwrap();
    disk.installed = Ok(Some(installed));
    update(&mut s, Action::Loaded(Box::new(Ok(disk))));
    s
}

/// `loaded_with`, opened (the Hosts screen).
pub fn opened_with(installed: Installed) -> State {
    let mut s = loaded_with(installed);
    send(&mut s, [Action::Confirm]);
    s
}

/// The names of the hosts the conf adds.
fn added(s: &State) -> Vec<&str> {
    s.changes()
        .iter()
        .filter_map(|c| match c {
            Change::Added { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// On Roles: master2 (row 1) gets the worker role too.
fn master2_a_worker_too(s: &mut State) {
    send(
        s,
        [
            Action::GoTo(Screen::Roles),
            Action::Down,
            Action::Right,
            Action::Toggle,
        ],
    );
}

#[test]
fn the_conf_is_compared_with_the_installed_cluster_as_it_is_edited() {
    let mut s = opened_with(without("node3"));
    assert_eq!(added(&s), ["node3"]);
    // A role change on an installed host.
    master2_a_worker_too(&mut s);
    assert!(
        s.changes()
            .iter()
            .any(|c| matches!(c, Change::RolesChanged { name, .. } if name == "master2")),
        "{:?}",
        s.changes()
    );
    // Undone: only the added host again.
    send(&mut s, [Action::Toggle]);
    assert_eq!(s.changes().len(), 1);
}

#[test]
fn nothing_is_compared_before_a_cluster_is_opened_or_without_a_record() {
    let s = loaded_with(without("node3"));
    assert!(s.changes().is_empty());
    let mut s = State::new("conf".into(), Theme::color());
    let disk = effects::load(Path::new("conf")).map(|mut d| {
        d.installed = Ok(None);
        d
    });
    send(&mut s, [Action::Loaded(Box::new(disk)), Action::Confirm]);
    assert!(s.installed().is_none());
    assert!(s.changes().is_empty());
}

#[test]
fn i_with_added_hosts_asks_to_add_only_them() {
    let mut s = opened_with(without("node3"));
    let effects = send(&mut s, [Action::GoTo(Screen::Review), Action::Install]);
    assert!(matches!(&effects[..], [Effect::PreviewInstall { .. }]));
    // node3's steps and the re-wiring steps on the others, as the preview counts them.
    let mut p = preview(Mode::Resume, 14, 180);
    p.complete = true;
    p.day2 = s.changes().to_vec();
    send(&mut s, [Action::InstallPreviewed(Ok(p.clone()))]);
    assert_eq!(
        s.modal,
        Some(Modal::Confirm(Confirm::AddHosts {
            nodes: vec!["node3".into()],
            preview: p,
        }))
    );
    let effects = send(&mut s, [Action::Answer(true)]);
    // No flag: the engine goes on with the installed cluster by itself.
    assert!(matches!(
        &effects[..],
        [
            Effect::Install {
                restart: false,
                resume: false,
                ..
            },
            Effect::Tick(_),
            Effect::ProbeLb { .. }
        ]
    ));
    assert_eq!(s.screen, Screen::Install);
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Adding node3: 14 steps on 6 nodes…"
    );
    assert_eq!(s.install.as_ref().unwrap().operation, None);
}

#[test]
fn a_preview_that_finds_a_change_install_refuses_asks_nothing() {
    // The files changed on disk after `i`: the preview's comparison is the one the install makes.
    let mut s = opened_with(without("node3"));
    send(&mut s, [Action::GoTo(Screen::Review), Action::Install]);
    let mut p = preview(Mode::Resume, 14, 180);
    p.day2 = vec![Change::Removed {
        name: "node9".into(),
        roles: crate::model::Roles::default(),
    }];
    send(&mut s, [Action::InstallPreviewed(Ok(p))]);
    assert!(s.modal.is_none());
    let text = &s.status.as_ref().unwrap().text;
    assert!(text.contains("kswizard remove node9"), "{text}");
}

#[test]
fn i_refuses_what_install_does_not_carry_out_and_says_what_to_do() {
    // node9 was installed and is no longer in the conf.
    let mut s = opened_with(record(|c| {
        let mut h = c.hosts[5].clone();
        h.name = "node9".into();
        c.hosts.push(h);
    }));
    let effects = send(&mut s, [Action::GoTo(Screen::Review), Action::Install]);
    assert!(effects.is_empty());
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status.text.starts_with("Not installing: ")
            && status.text.contains("kswizard remove node9"),
        "{}",
        status.text
    );
}

/// Hosts screen, `row` selected, Delete.
fn delete(s: &mut State, row: usize) -> Vec<Effect> {
    send(s, [Action::GoTo(Screen::Hosts)]);
    send(s, std::iter::repeat_n(Action::Up, 10));
    send(s, std::iter::repeat_n(Action::Down, row));
    send(s, [Action::Delete])
}

/// The pre-check's answer for `node`, as its effect reports it.
fn prepared(s: &mut State, node: &str, check: Result<&str, &str>) {
    let check = check.map(str::to_string).map_err(str::to_string);
    let node = node.to_string();
    send(s, [Action::RemovePrepared { node, check }]);
}

/// The box that answer opens: the question, or the refusal.
fn remove_box(node: &str, check: Result<&str, &str>) -> Modal {
    Modal::Confirm(Confirm::RemoveNode {
        node: node.into(),
        check: check.map(str::to_string).map_err(str::to_string),
    })
}

/// The pre-check's arithmetic for a worker: no etcd member leaves.
const CHECK: &str = "  etcd members now      3 (3 healthy; quorum 2)
  removing              0
  staying               3 (3 healthy)
  quorum after          2 of 3: no member leaves";

/// node1 (row 3) deleted and its pre-check in: the question.
fn asked_to_remove_node1() -> State {
    let mut s = opened_with(record(|_| {}));
    let effects = delete(&mut s, 3);
    assert!(
        matches!(&effects[..], [Effect::PrepareRemove { node, dir, .. }]
            if node == "node1" && dir.as_path() == Path::new("conf")),
        "{effects:?}"
    );
    // Nothing is asked before the check is in, nothing deleted.
    assert!(s.modal.is_none());
    assert_eq!(s.cluster.hosts.len(), 6);
    prepared(&mut s, "node1", Ok(CHECK));
    s
}

#[test]
fn deleting_an_installed_host_checks_then_asks_to_remove_it_from_the_cluster() {
    let mut s = asked_to_remove_node1();
    assert_eq!(s.modal.as_ref(), Some(&remove_box("node1", Ok(CHECK))));
    // The footer said so before the key.
    send(&mut s, [Action::Answer(false)]);
    assert!(hosts::hints(&s).contains(&("d", "remove")));
    send(&mut s, [Action::Delete]);
    prepared(&mut s, "node1", Ok(CHECK));
    // No: nothing runs, nothing is deleted.
    assert!(send(&mut s, [Action::Answer(false)]).is_empty());
    assert_eq!(s.cluster.hosts.len(), 6);
    assert_eq!(s.screen, Screen::Hosts);
}

#[test]
fn yes_runs_the_removal_on_the_install_screen_titled_for_it() {
    let mut s = asked_to_remove_node1();
    let effects = send(&mut s, [Action::Answer(true)]);
    assert!(
        matches!(&effects[..], [Effect::Remove { node, cluster, dir, .. }, Effect::Tick(_), Effect::ProbeLb { .. }]
            if node == "node1" && cluster.hosts.len() == 6 && dir.as_path() == Path::new("conf")),
        "{effects:?}"
    );
    assert_eq!(s.screen, Screen::Install);
    assert!(s.installing());
    let install = s.install.as_ref().unwrap();
    assert_eq!(install.operation, Some(Operation::Remove("node1".into())));
    // The conf keeps node1 until it is out of the cluster.
    assert!(s.cluster.host("node1").is_some());
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Removing node1 from the cluster…"
    );
}

#[test]
fn a_host_the_install_never_reached_is_only_deleted_from_the_conf() {
    let mut s = opened_with(without("node3"));
    send(&mut s, std::iter::repeat_n(Action::Down, 5));
    assert!(hosts::hints(&s).contains(&("d", "delete")));
    let effects = delete(&mut s, 5);
    assert!(effects.is_empty());
    assert_eq!(s.modal, Some(Modal::Confirm(Confirm::DeleteHost(5))));
    send(&mut s, [Action::Answer(true)]);
    assert!(s.cluster.host("node3").is_none());
}

/// What the pre-check says of master1 when master3's etcd does not answer.
const REFUSAL: &str = "refused: the removal would lose etcd quorum
  etcd members now      3 (2 healthy; quorum 2)
  removing              1 (master1)
  staying               2 (1 healthy)
  quorum after          2 of 2: 1 healthy staying < 2 needed: refused (bring a member back first)";

fn refused_to_remove_master1() -> State {
    let mut s = opened_with(record(|_| {}));
    delete(&mut s, 0);
    prepared(&mut s, "master1", Err(REFUSAL));
    s
}

#[test]
fn a_removal_the_check_refuses_shows_why_and_deletes_nothing() {
    let mut s = refused_to_remove_master1();
    // The arithmetic in a box that only closes.
    assert_eq!(s.modal.as_ref(), Some(&remove_box("master1", Err(REFUSAL))));
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert_eq!(status.text, "Not removing master1.");
    assert!(send(&mut s, [Action::Answer(true)]).is_empty());
    assert!(s.modal.is_none());
    assert_eq!(s.cluster.hosts.len(), 6);
    assert!(!s.installing());
}

#[test]
fn removing_needs_the_files_to_say_what_the_wizard_shows() {
    let mut s = opened_with(record(|_| {}));
    // An unsaved change elsewhere.
    master2_a_worker_too(&mut s);
    let effects = delete(&mut s, 3);
    assert!(effects.is_empty());
    assert!(s.modal.is_none());
    let text = &s.status.as_ref().unwrap().text;
    assert!(text.starts_with("node1 is installed"), "{text}");
    assert!(text.contains("Ctrl-s"), "{text}");
}

/// What the remove plan announces: the leaving node's own steps, the re-wiring on the others.
pub fn remove_plan(node: &str) -> Event {
    let names = ["master1", "master2", "master3", "node1", "node2", "node3"];
    Event::Plan {
        install_id: INSTALL_ID.into(),
        nodes: names
            .iter()
            .map(|n| NodePlan {
                node: (*n).into(),
                steps: if *n == node {
                    vec!["cordon-drain".into(), "kubeadm-reset".into()]
                } else if n.starts_with("master") {
                    vec!["delete-node".into(), "lb-backends".into()]
                } else {
                    vec!["hosts-file".into()]
                },
            })
            .collect(),
        done: Vec::new(),
        changed: Vec::new(),
        left: Vec::new(),
        logs: "/home/op/.kswizard/logs/ops-remove".into(),
    }
}

/// The removal of node1 started, its plan in, node1 draining.
fn removing() -> State {
    let mut s = asked_to_remove_node1();
    send(&mut s, [Action::Answer(true)]);
    engine(
        &mut s,
        [
            remove_plan("node1"),
            started("node1", "cordon-drain"),
            super::output("node1", "cordon-drain", "node/node1 cordoned"),
            super::output(
                "node1",
                "cordon-drain",
                "evicting pod kube-system/coredns-5d78c9869d-x8k2p",
            ),
            started("master1", "delete-node"),
        ],
    );
    s
}

#[test]
fn a_finished_removal_leaves_the_wizard_on_the_conf_written_without_the_node() {
    let mut s = removing();
    // The effect wrote the conf and the record without node1 and read them back.
    let mut kept = s.cluster.clone();
    kept.hosts.retain(|h| h.name != "node1");
    let mut disk = effects::load(Path::new("conf")).unwrap();
    disk.cluster = Some(kept.clone());
    disk.installed = Ok(Some(record(|c| c.hosts.retain(|h| h.name != "node1"))));
    let summary = Summary {
        ok: 8,
        elapsed_ms: 41_000,
        ..Summary::default()
    };
    let effects = send(
        &mut s,
        [
            Action::Saved {
                outcome: Box::new(Ok(disk)),
                written: Box::new(kept),
            },
            Action::InstallEnded(Ok(summary)),
        ],
    );
    assert!(effects.is_empty(), "{effects:?}");
    assert!(s.cluster.host("node1").is_none());
    assert!(!s.dirty());
    // Nothing differs from the installed cluster any more.
    assert!(s.changes().is_empty(), "{:?}", s.changes());
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.kind, StatusKind::Ok);
    assert_eq!(
        status.text,
        "node1 left the cluster, the conf and the installed record (41.0s)."
    );
    // The Install screen stays, showing what ran; no Done screen for a removal.
    assert_eq!(s.screen, Screen::Install);
    // `i` there has nothing left to resume: the footer does not offer it.
    assert!(!install::hints(&s).iter().any(|(k, _)| *k == "i"));
    assert!(send(&mut s, [Action::Install]).is_empty());
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "node1 is removed; Esc goes to Review."
    );
}

/// A dead host's reset skipped by the operator (`s`): the removal ended all the same, and the
/// status says the host still needs wiping.
#[test]
fn a_removal_with_the_hosts_reset_skipped_ends_and_says_to_wipe_it() {
    let mut s = removing();
    engine(
        &mut s,
        [
            finished("node1", "cordon-drain", Status::Ok, 900),
            finished("node1", "kubeadm-reset", Status::Skipped, 0),
        ],
    );
    let mut kept = s.cluster.clone();
    kept.hosts.retain(|h| h.name != "node1");
    let mut disk = effects::load(Path::new("conf")).unwrap();
    disk.cluster = Some(kept.clone());
    let summary = Summary {
        ok: 5,
        skipped: 1,
        skipped_by_operator: 1,
        elapsed_ms: 12_000,
        ..Summary::default()
    };
    send(
        &mut s,
        [
            Action::Saved {
                outcome: Box::new(Ok(disk)),
                written: Box::new(kept),
            },
            Action::InstallEnded(Ok(summary)),
        ],
    );
    assert!(s.cluster.host("node1").is_none());
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.kind, StatusKind::Ok);
    assert_eq!(
        status.text,
        "node1 left the cluster, the conf and the installed record (12.0s). Not reset: see its log."
    );
    // Its log, shown, says why that matters.
    let install = s.install.as_ref().unwrap();
    assert_eq!(install.nodes[install.selected].name, "node1");
    let last = install.nodes[install.selected].log.back().unwrap();
    assert!(last.contains("wipe it before it is used again"), "{last}");
    assert!(!install::hints(&s).iter().any(|(k, _)| *k == "i"));
}

/// Steps skipped for an abort (`A`), not by the operator's choice: the removal did not end, and
/// the host stays in the conf.
#[test]
fn a_removal_whose_steps_were_skipped_by_an_abort_keeps_the_node() {
    let mut s = removing();
    let summary = Summary {
        ok: 2,
        skipped: 3,
        ..Summary::default()
    };
    let effects = send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert!(effects.is_empty());
    assert!(s.cluster.host("node1").is_some());
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert_eq!(
        status.text,
        "3 steps were skipped. i resumes (or kswizard remove node1)."
    );
    assert!(install::hints(&s).iter().any(|(k, _)| *k == "i"));
}

#[test]
fn a_failed_removal_keeps_the_node_and_i_runs_it_again_after_the_check() {
    let mut s = removing();
    let summary = Summary {
        ok: 3,
        failed: 1,
        failures: vec![Failure {
            node: "node1".into(),
            step: "cordon-drain".into(),
            reason: "exit code 1".into(),
            log_tail: Vec::new(),
        }],
        ..Summary::default()
    };
    let effects = send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert!(effects.is_empty());
    assert!(s.cluster.host("node1").is_some());
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "node1 failed at cordon-drain: exit code 1. i resumes (or kswizard remove node1)."
    );
    let effects = send(&mut s, [Action::Install]);
    assert!(
        matches!(&effects[..], [Effect::PrepareRemove { node, .. }] if node == "node1"),
        "{effects:?}"
    );
}

#[test]
fn a_removal_that_cannot_start_says_so_in_its_own_name() {
    let mut s = removing();
    send(
        &mut s,
        [Action::InstallEnded(Err(
            "another kswizard holds the state dir\nsecond line".into(),
        ))],
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "The removal of node1 stopped: another kswizard holds the state dir. i tries again."
    );
}

#[test]
fn snapshot_start_with_a_diff() {
    // The conf adds node3, and master2 was installed without etcd.
    let s = loaded_with(record(|c| {
        c.hosts.retain(|h| h.name != "node3");
        c.hosts[1].roles.etcd = false;
    }));
    check("day2_start_diff", &s);
}

#[test]
fn snapshot_review_with_a_diff() {
    let mut s = opened_with(without("node3"));
    send(&mut s, [Action::GoTo(Screen::Review)]);
    check("day2_review_added", &s);
    let mut p = preview(Mode::Resume, 14, 180);
    p.complete = true;
    p.day2 = s.changes().to_vec();
    send(&mut s, [Action::Install, Action::InstallPreviewed(Ok(p))]);
    check("day2_add_question", &s);
}

#[test]
fn snapshot_remove_question() {
    check("day2_remove_question", &asked_to_remove_node1());
    check("day2_remove_refused", &refused_to_remove_master1());
}

#[test]
fn snapshot_install_screen_titled_for_the_removal() {
    let mut s = removing();
    engine(
        &mut s,
        [finished("master1", "delete-node", Status::Ok, 1_200)],
    );
    check("day2_removing", &s);
}
