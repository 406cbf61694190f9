//! The day-2 operations dialog (`o`): etcd backup, restore from a backup, reset; `update` along
//! the operator's paths (pure: the effects are only looked at), then snapshots of each box and
//! of the Install screen running an operation.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::day2::{INSTALL_ID, conf, opened_with};
use super::snapshots::check;
use super::{engine, finished, send, started, type_text};
use crate::engine::events::{Event, Failure, Status, Summary};
use crate::engine::installed::Installed;
use crate::engine::plan::NodePlan;
use crate::ops::etcd::{self, Meta};
use crate::ops::etcd_io::Backup;
use crate::tui::action::{Action, Effect};
use crate::tui::install::Operation;
use crate::tui::ops::{Dialog, Kept, RestoreCheck};
use crate::tui::state::{Modal, Screen, State};
use crate::tui::update::update;

/// 2026-12-02 07:00:00 UTC: the clock of the listing.
const NOW: u64 = 1_796_194_800;

/// conf/ opened, installed as it is, on `screen`.
fn on(screen: Screen) -> State {
    let mut s = opened_with(Installed::of(&conf(), INSTALL_ID));
    send(&mut s, [Action::GoTo(screen)]);
    s
}

/// `o`, then the third entry: reset the cluster (its question, waiting for the name).
fn open_reset_of_the_cluster(s: &mut State) {
    send(
        s,
        [
            Action::Operations,
            Action::Down,
            Action::Down,
            Action::Confirm,
        ],
    );
}

fn dialog(s: &State) -> &Dialog {
    match &s.modal {
        Some(Modal::Ops(d)) => d,
        m => panic!("no operations dialog: {m:?}"),
    }
}

fn status(s: &State) -> &str {
    &s.status.as_ref().unwrap().text
}

fn meta(taken: u64, revision: u64, keys: u64) -> Meta {
    Meta {
        taken,
        node: "master1".into(),
        member: "etcd-master1".into(),
        revision: Some(revision),
        keys: Some(keys),
        size: 2_129_952,
        sha256: "3f".repeat(32),
        install_id: Some(INSTALL_ID.into()),
    }
}

fn backup(taken: u64, meta: Option<Meta>) -> Backup {
    Backup {
        dir: PathBuf::from("/home/op/.kswizard/backups").join(etcd::backup_name(taken)),
        meta,
    }
}

/// Three backups, newest first (the oldest without a record), as the effect lists them.
fn listed() -> Vec<Backup> {
    vec![
        backup(NOW - 720, Some(meta(NOW - 720, 18_204, 1_187))),
        backup(NOW - 90_000, Some(meta(NOW - 90_000, 9_870, 1_102))),
        backup(NOW - 200_000, None),
    ]
}

/// What the check says of a healthy cluster: the loss, and the refusal.
fn healthy_check() -> RestoreCheck {
    RestoreCheck {
        loss: etcd::loss_lines(
            Some(&meta(NOW - 720, 18_204, 1_187)),
            NOW,
            Some(&etcd::Live {
                members: vec![
                    ("192.168.0.1".into(), true),
                    ("192.168.0.2".into(), true),
                    ("192.168.0.3".into(), true),
                ],
                revision: Some(18_650),
                keys: Some(1_191),
            }),
        ),
        refused: Some(
            "etcd is healthy (3 of 3 members): a restore would replace its data with the snapshot's. Back it up first (`kswizard etcd backup`), then pass --force to restore anyway.".into(),
        ),
        resuming: false,
    }
}

/// On Review: o, Restore, the backups listed.
fn choosing_a_backup() -> State {
    let mut s = on(Screen::Review);
    let effects = send(&mut s, [Action::Operations, Action::Down, Action::Confirm]);
    assert!(
        matches!(&effects[..], [Effect::ListBackups(d)] if d == &PathBuf::from("conf")),
        "{effects:?}"
    );
    assert!(matches!(dialog(&s), Dialog::Backups { list: None, .. }));
    send(
        &mut s,
        [Action::BackupsListed {
            now: NOW,
            list: Ok(listed()),
        }],
    );
    s
}

/// The newest backup chosen, and the check of a healthy cluster in.
fn restore_refused() -> State {
    let mut s = choosing_a_backup();
    let effects = send(&mut s, [Action::Confirm]);
    let newest = listed()[0].dir.clone();
    assert!(
        matches!(&effects[..], [Effect::CheckRestore { backup, .. }] if backup == &newest),
        "{effects:?}"
    );
    send(
        &mut s,
        [Action::RestoreChecked {
            backup: newest,
            check: Ok(healthy_check()),
        }],
    );
    s
}

#[test]
fn o_offers_the_operations_only_for_an_installed_cluster_whose_files_are_written() {
    // Nothing installed: refused, saying why.
    let mut s = super::opened();
    send(&mut s, [Action::GoTo(Screen::Review), Action::Operations]);
    assert!(s.modal.is_none());
    assert!(status(&s).starts_with("No operation: nothing is installed"));
    // Installed: the menu, with the reset of the selected host on Hosts only.
    let mut s = on(Screen::Review);
    send(&mut s, [Action::Operations]);
    assert!(matches!(dialog(&s), Dialog::Menu { choices, .. } if choices.len() == 3));
    send(&mut s, [Action::Back]);
    assert!(s.modal.is_none());
    let mut s = on(Screen::Hosts);
    send(&mut s, [Action::Operations]);
    assert!(matches!(dialog(&s), Dialog::Menu { choices, .. } if choices.len() == 4));
    // Unsaved edits: the operations read the conf on disk, so first write or undo.
    let mut s = on(Screen::Roles);
    send(
        &mut s,
        [
            Action::Toggle,
            Action::GoTo(Screen::Done),
            Action::Operations,
        ],
    );
    assert!(s.modal.is_none());
    assert!(
        status(&s).contains("write (Ctrl-s) or undo"),
        "{}",
        status(&s)
    );
}

#[test]
fn a_backup_runs_on_the_install_screen_and_says_where_it_is_kept_and_what_it_holds() {
    let mut s = on(Screen::Done);
    let effects = send(&mut s, [Action::Operations, Action::Confirm]);
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::RunOp {
                op: Operation::Backup,
                force: false,
                ..
            }
        )),
        "{effects:?}"
    );
    assert_eq!(s.screen, Screen::Install);
    assert!(s.modal.is_none());
    assert_eq!(status(&s), "Backing up etcd…");
    backing_up(&mut s);
    let install = s.install.as_ref().unwrap();
    // Only master1 has a step: the others are left out of the table, and ↑↓ stay on it.
    assert_eq!(install.shown(), [0]);
    send(&mut s, [Action::Down, Action::Down]);
    assert_eq!(s.install.as_ref().unwrap().selected, 0);
    backed_up(&mut s);
    assert_eq!(
        status(&s),
        "etcd backed up: revision 18204, 1187 keys, 2.0 MiB; the log says where it is."
    );
    let log = &s.install.as_ref().unwrap().nodes[0].log;
    assert!(
        log.iter()
            .any(|l| l
                == "kswizard: backup kept in /home/op/.kswizard/backups/etcd-20261202T065800Z"),
        "{log:?}"
    );
    // Done: i has nothing to resume.
    send(&mut s, [Action::Install]);
    assert_eq!(status(&s), "The etcd backup is done; Esc goes to Review.");
}

/// The backup's plan: one step on master1, none elsewhere; it runs.
fn backing_up(s: &mut State) {
    let names = ["master1", "master2", "master3", "node1", "node2", "node3"];
    engine(
        s,
        [
            Event::Plan {
                install_id: "20261202-065740-9c1d".into(),
                nodes: names
                    .iter()
                    .map(|n| NodePlan {
                        node: (*n).into(),
                        steps: if *n == "master1" {
                            vec!["etcd-snapshot".into()]
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
                done: Vec::new(),
                changed: Vec::new(),
                left: Vec::new(),
                logs: "/home/op/.kswizard/logs/ops-etcd-backup".into(),
            },
            started("master1", "etcd-snapshot"),
            super::output(
                "master1",
                "etcd-snapshot",
                "Snapshot saved at /var/lib/kswizard/etcd-snapshot.db",
            ),
        ],
    );
}

/// The snapshot step ended, the backup was kept, the operation ended.
fn backed_up(s: &mut State) {
    engine(s, [finished("master1", "etcd-snapshot", Status::Ok, 2_300)]);
    let kept = Kept {
        dir: PathBuf::from("/home/op/.kswizard/backups/etcd-20261202T065800Z"),
        meta: meta(NOW - 120, 18_204, 1_187),
    };
    send(
        s,
        [
            Action::BackedUp(Box::new(kept)),
            Action::InstallEnded(Ok(Summary {
                ok: 1,
                elapsed_ms: 4_100,
                ..Summary::default()
            })),
        ],
    );
}

/// Removing a master of three leaves two etcd members, an error install refuses; the
/// operations go on, as `kswizard reset` and `etcd backup` do.
#[test]
fn o_goes_on_with_the_even_etcd_count_a_removal_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, source) = crate::conf::load(std::path::Path::new("conf")).unwrap();
    c.hosts.retain(|h| h.name != "master3");
    let conf_dir = dir.path().join("conf");
    crate::conf::save(&c, &source, &conf_dir).unwrap();
    let mut s = State::new(conf_dir.clone(), crate::tui::theme::Theme::color());
    let mut disk = crate::tui::effects::load(&conf_dir).unwrap();
    disk.installed = Ok(Some(Installed::of(&c, INSTALL_ID)));
    update(&mut s, Action::Loaded(Box::new(Ok(disk))));
    send(&mut s, [Action::Confirm, Action::GoTo(Screen::Review)]);
    assert!(
        s.findings().iter().any(|f| f.code == "etcd-count-even"),
        "{:?}",
        s.findings()
    );
    send(&mut s, [Action::Operations]);
    assert!(matches!(dialog(&s), Dialog::Menu { .. }), "{:?}", s.status);
}

#[test]
fn a_restore_lists_the_backups_newest_first_and_checks_the_one_chosen() {
    let s = choosing_a_backup();
    let Dialog::Backups {
        list: Some(Ok(l)), ..
    } = dialog(&s)
    else {
        panic!()
    };
    assert_eq!(l.len(), 3);
    // Esc while it is checked: closed, and a late answer changes nothing.
    let mut s = s;
    send(&mut s, [Action::Confirm, Action::Back]);
    assert!(s.modal.is_none());
    send(
        &mut s,
        [Action::RestoreChecked {
            backup: listed()[0].dir.clone(),
            check: Ok(healthy_check()),
        }],
    );
    assert!(s.modal.is_none());
}

#[test]
fn a_healthy_cluster_is_restored_only_after_f_then_y() {
    let mut s = restore_refused();
    // y alone does nothing while etcd has quorum.
    let effects = send(&mut s, [Action::Answer(true)]);
    assert!(effects.is_empty());
    assert!(matches!(dialog(&s), Dialog::Restore { forced: false, .. }));
    let effects = send(&mut s, [Action::ForceRestore]);
    assert!(effects.is_empty());
    assert!(matches!(dialog(&s), Dialog::Restore { forced: true, .. }));
    let effects = send(&mut s, [Action::Answer(true)]);
    let newest = listed()[0].dir.clone();
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::RunOp { op: Operation::Restore(b), force: true, .. } if *b == newest
        )),
        "{effects:?}"
    );
    assert_eq!(s.screen, Screen::Install);
    // n cancels at any point.
    let mut s = restore_refused();
    send(&mut s, [Action::ForceRestore, Action::Answer(false)]);
    assert!(s.modal.is_none());
    assert_ne!(s.screen, Screen::Install);
}

#[test]
fn a_restore_without_quorum_asks_y_and_a_cut_one_is_asked_again_with_i() {
    let mut s = choosing_a_backup();
    send(&mut s, [Action::Down, Action::Confirm]);
    let second = listed()[1].dir.clone();
    let check = RestoreCheck {
        refused: None,
        ..healthy_check()
    };
    send(
        &mut s,
        [Action::RestoreChecked {
            backup: second.clone(),
            check: Ok(check),
        }],
    );
    let effects = send(&mut s, [Action::Answer(true)]);
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::RunOp { op: Operation::Restore(b), force: false, .. } if *b == second
        )),
        "{effects:?}"
    );
    // Cut: it failed on a member; i checks the same backup again (the check says it resumes).
    let summary = Summary {
        failed: 1,
        failures: vec![Failure {
            node: "master2".into(),
            step: "etcd-restore-member".into(),
            reason: "exit code 1".into(),
            log_tail: Vec::new(),
        }],
        ..Summary::default()
    };
    send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert!(
        status(&s).contains("i resumes (or kswizard etcd restore"),
        "{}",
        status(&s)
    );
    let effects = send(&mut s, [Action::Install]);
    assert!(
        matches!(&effects[..], [Effect::CheckRestore { backup, .. }] if *backup == second),
        "{effects:?}"
    );
    assert!(matches!(dialog(&s), Dialog::Restore { check: None, .. }));
}

#[test]
fn a_reset_needs_the_clusters_address_typed_and_wrong_text_refuses() {
    let mut s = on(Screen::Review);
    open_reset_of_the_cluster(&mut s);
    assert!(matches!(dialog(&s), Dialog::Reset { hosts, .. } if hosts.len() == 6));
    type_text(&mut s, "lb.kubesphere.local");
    let effects = send(&mut s, [Action::Confirm]);
    assert!(effects.is_empty());
    assert_eq!(
        dialog(&s),
        &Dialog::Refused {
            title: "Not resetting".into(),
            why: "'lb.kubesphere.local' is not the cluster's name (192.168.0.253): nothing was reset.".into()
        }
    );
    check("ops_reset_refused", &s);
    // The box only closes.
    assert!(send(&mut s, [Action::Confirm]).is_empty());
    assert!(s.modal.is_none());
    assert_eq!(s.screen, Screen::Review);
    // The address: the reset of every host runs, titled for it.
    open_reset_of_the_cluster(&mut s);
    type_text(&mut s, "192.168.0.253");
    let effects = send(&mut s, [Action::Confirm]);
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::RunOp { op: Operation::Reset { all: true, hosts }, .. } if hosts.len() == 6
        )),
        "{effects:?}"
    );
    assert_eq!(s.screen, Screen::Install);
    // Ended: the installed record changed, so the files are read again.
    let effects = send(
        &mut s,
        [Action::InstallEnded(Ok(Summary {
            ok: 12,
            elapsed_ms: 30_000,
            ..Summary::default()
        }))],
    );
    assert!(matches!(&effects[..], [Effect::Load(_)]), "{effects:?}");
    assert_eq!(
        status(&s),
        "Reset master1, master2, master3, node1, node2, node3: the next install starts fresh; the conf is unchanged (30.0s)."
    );
}

#[test]
fn resetting_an_etcd_member_alone_is_refused_as_the_command_refuses_it() {
    let mut s = on(Screen::Hosts);
    let reset_selected = [
        Action::Operations,
        Action::Down,
        Action::Down,
        Action::Down,
        Action::Confirm,
    ];
    send(&mut s, reset_selected.clone());
    assert!(
        matches!(dialog(&s), Dialog::Refused { why, .. } if why.starts_with("master1 runs an etcd member: resetting it alone")),
        "{:?}",
        s.modal
    );
    send(&mut s, [Action::Back]);
    assert!(s.modal.is_none());
    // A worker alone: asked, titled for it.
    send(&mut s, std::iter::repeat_n(Action::Down, 3));
    send(&mut s, reset_selected);
    assert!(
        matches!(dialog(&s), Dialog::Reset { hosts, .. } if *hosts == BTreeSet::from(["node1".to_string()]))
    );
}

#[test]
fn snapshot_operations_menu_and_backups() {
    let mut s = on(Screen::Hosts);
    send(&mut s, [Action::Operations]);
    check("ops_menu", &s);
    check("ops_backups", &choosing_a_backup());
    let mut none = on(Screen::Review);
    send(
        &mut none,
        [
            Action::Operations,
            Action::Down,
            Action::Confirm,
            Action::BackupsListed {
                now: NOW,
                list: Ok(Vec::new()),
            },
        ],
    );
    check("ops_no_backups", &none);
}

#[test]
fn snapshot_restore_refused_then_forced() {
    let mut s = restore_refused();
    check("ops_restore_refused", &s);
    send(&mut s, [Action::ForceRestore]);
    check("ops_restore_forced", &s);
}

#[test]
fn snapshot_reset_question() {
    let mut s = on(Screen::Review);
    open_reset_of_the_cluster(&mut s);
    type_text(&mut s, "192.168.0.2");
    check("ops_reset_question", &s);
}

#[test]
fn snapshot_install_screen_backing_up_and_backed_up() {
    let mut s = on(Screen::Done);
    send(&mut s, [Action::Operations, Action::Confirm]);
    backing_up(&mut s);
    check("ops_backing_up", &s);
    backed_up(&mut s);
    check("ops_backed_up", &s);
}

#[test]
fn snapshot_quitting_during_a_restore_names_it_and_its_command() {
    let mut s = restore_refused();
    send(
        &mut s,
        [Action::ForceRestore, Action::Answer(true), Action::Quit],
    );
    check("ops_quit_restoring", &s);
}

#[test]
fn update_is_pure_for_an_action_with_no_dialog() {
    // A late listing or check with no dialog open changes nothing.
    let mut s = on(Screen::Review);
    update(
        &mut s,
        Action::BackupsListed {
            now: NOW,
            list: Ok(listed()),
        },
    );
    assert!(s.modal.is_none());
}
