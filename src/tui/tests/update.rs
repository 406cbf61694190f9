//! `update` along the paths an operator takes: no terminal, no disk.

use super::{
    edit_lb_field, engine, finished, install_yes, installing, lb, loaded, opened, output,
    plan_event, planned, preview, send, started, type_text,
};
use crate::engine::decide::Mode;
use crate::engine::events::{Event, Failure, Status, Summary};
use crate::engine::executor::Preview;
use crate::model::{Auth, LbMode, Secret};
use crate::tui::action::{Action, Effect, Rerun};
use crate::tui::input::Edit;
use crate::tui::install::{LOG_LINES, NodeState};
use crate::tui::state::{Confirm, LbField, Modal, Screen, State, StatusKind};
use crate::tui::update::{LB_PROBE_EVERY, update};

fn codes(s: &crate::tui::state::State) -> Vec<&'static str> {
    s.findings().iter().map(|f| f.code).collect()
}

/// The demo's entry: once the files are read the wizard is at Review of them with the demo's
/// line, and `i` asks what the install would run.
#[test]
fn an_opening_opens_the_files_at_its_screen_with_its_message() {
    let mut s = State::new("conf".into(), crate::tui::theme::Theme::color());
    s.opening = Some(crate::tui::state::Opening {
        screen: Screen::Review,
        message: "Demo lab: i installs".into(),
    });
    let disk = crate::tui::effects::load(std::path::Path::new("conf"));
    send(&mut s, [Action::Loaded(Box::new(disk))]);
    assert_eq!(s.screen, Screen::Review);
    assert!(s.opened && s.written() && s.opening.is_none());
    assert_eq!(s.cluster.hosts.len(), 6);
    assert_eq!(
        s.status.as_ref().map(|st| st.text.as_str()),
        Some("Demo lab: i installs")
    );
    assert!(matches!(
        send(&mut s, [Action::Install]).as_slice(),
        [Effect::PreviewInstall { .. }]
    ));
}

#[test]
fn an_opening_without_a_cluster_leaves_the_start_screen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::new(dir.path().into(), crate::tui::theme::Theme::color());
    s.opening = Some(crate::tui::state::Opening {
        screen: Screen::Review,
        message: "Demo lab: i installs".into(),
    });
    send(
        &mut s,
        [Action::Loaded(Box::new(crate::tui::effects::load(
            dir.path(),
        )))],
    );
    assert_eq!(s.screen, Screen::Start);
    assert!(!s.opened);
}

#[test]
fn open_goes_to_hosts_with_the_files_cluster() {
    let s = opened();
    assert_eq!(s.screen, Screen::Hosts);
    assert_eq!(s.cluster.hosts.len(), 6);
    assert!(!s.dirty());
    assert!(s.findings().is_empty(), "{:?}", s.findings());
}

#[test]
fn add_host_through_the_form() {
    let mut s = opened();
    send(&mut s, [Action::Add]);
    type_text(&mut s, "node4");
    send(&mut s, [Action::NextField]);
    type_text(&mut s, "192.168.0.7");
    // User, then auth = password, then the passwords.
    send(
        &mut s,
        [Action::NextField, Action::NextField, Action::NextField],
    );
    type_text(&mut s, "ubuntu");
    send(&mut s, [Action::NextField, Action::Toggle]);
    send(&mut s, [Action::NextField, Action::NextField]);
    type_text(&mut s, "pw");
    send(&mut s, [Action::NextField]);
    type_text(&mut s, "sudo");
    send(&mut s, [Action::Confirm]);
    assert!(s.modal.is_none());
    let h = s.cluster.hosts.last().unwrap();
    assert_eq!(h.name, "node4");
    assert_eq!(
        h.ip.as_deref(),
        Some("192.168.0.7"),
        "ip defaults to the address"
    );
    assert_eq!(h.user.as_deref(), Some("ubuntu"));
    assert_eq!(h.auth, Auth::Password(Secret::new("pw")));
    assert_eq!(h.become_pass, Some(Secret::new("sudo")));
    assert_eq!(s.host_selected, 6);
    assert!(s.dirty());
    assert!(codes(&s).contains(&"plaintext-password"));
}

#[test]
fn a_refused_form_stays_open_with_the_reason() {
    let mut s = opened();
    send(&mut s, [Action::Add, Action::Confirm]);
    let Some(Modal::Form(form)) = &s.modal else {
        panic!("form closed")
    };
    assert_eq!(form.error.as_deref(), Some("give the host a name"));
    send(&mut s, [Action::Back]);
    assert!(s.modal.is_none());
    assert_eq!(s.cluster.hosts.len(), 6);
}

#[test]
fn bulk_add_from_a_range_on_a_new_cluster() {
    let mut s = loaded();
    send(&mut s, [Action::Down, Action::Confirm]);
    assert!(s.cluster.hosts.is_empty(), "New starts empty");
    send(&mut s, [Action::AddRange]);
    type_text(&mut s, "192.168.0.11-16");
    send(&mut s, [Action::Confirm]);
    let names: Vec<&str> = s.cluster.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["node1", "node2", "node3", "node4", "node5", "node6"]
    );
    assert_eq!(s.cluster.hosts[5].ip.as_deref(), Some("192.168.0.16"));
    assert!(s.status.as_ref().unwrap().text.contains("Added 6 hosts"));
}

#[test]
fn a_range_added_to_a_cluster_takes_the_access_most_hosts_have() {
    let mut s = opened();
    for h in &mut s.cluster.hosts[1..] {
        h.user = Some("ubuntu".into());
        h.become_pass = Some(crate::model::Secret::new("sudo-pw"));
    }
    let before = s.cluster.hosts.len();
    send(&mut s, [Action::AddRange]);
    type_text(&mut s, "192.168.0.21-22");
    send(&mut s, [Action::Confirm]);
    let added = &s.cluster.hosts[before..];
    assert_eq!(added.len(), 2);
    for h in added {
        assert_eq!(h.user.as_deref(), Some("ubuntu"), "{}", h.name);
        assert_eq!(
            h.become_pass,
            Some(crate::model::Secret::new("sudo-pw")),
            "{}",
            h.name
        );
        assert_eq!(h.auth, s.cluster.hosts[1].auth);
    }
}

#[test]
fn bulk_add_from_pasted_lines() {
    let mut s = opened();
    send(&mut s, [Action::AddPaste]);
    type_text(
        &mut s,
        "node4 ansible_host=192.168.0.7 ip=192.168.0.7\nnode5 ansible_host=192.168.0.8 ip=192.168.0.8",
    );
    send(&mut s, [Action::Confirm]);
    assert_eq!(s.cluster.hosts.len(), 8);
    assert_eq!(s.cluster.hosts[7].name, "node5");
}

#[test]
fn delete_asks_first() {
    let mut s = opened();
    send(
        &mut s,
        [Action::Down, Action::Delete, Action::Answer(false)],
    );
    assert_eq!(s.cluster.hosts.len(), 6);
    send(&mut s, [Action::Delete, Action::Answer(true)]);
    assert_eq!(s.cluster.hosts.len(), 5);
    assert!(s.cluster.host("master2").is_none());
}

#[test]
fn toggle_etcd_on_a_worker_and_back() {
    let mut s = opened();
    send(&mut s, [Action::Confirm]);
    assert_eq!(s.screen, Screen::Roles);
    // node1, etcd column.
    send(
        &mut s,
        [
            Action::Down,
            Action::Down,
            Action::Down,
            Action::Left,
            Action::Toggle,
        ],
    );
    assert!(s.cluster.hosts[3].roles.etcd);
    assert_eq!(codes(&s), ["etcd-count-even", "etcd-on-worker"]);
    send(&mut s, [Action::Toggle]);
    assert!(codes(&s).is_empty());
    assert!(!s.dirty(), "back to what was opened");
}

#[test]
fn preset_gives_three_masters_with_etcd() {
    let mut s = loaded();
    send(&mut s, [Action::Down, Action::Confirm, Action::AddRange]);
    type_text(&mut s, "10.0.0.1-5");
    send(
        &mut s,
        [Action::Confirm, Action::GoTo(Screen::Roles), Action::Preset],
    );
    let c = &s.cluster;
    assert_eq!(
        (c.masters().count(), c.workers().count(), c.etcd().count()),
        (3, 2, 3)
    );
    assert_eq!(codes(&s), ["lb-required"], "three masters need an LB");
}

#[test]
fn t_on_roles_switches_the_etcd_topology_and_validation_follows() {
    use crate::model::EtcdTopology;
    let mut s = opened();
    let t =
        ratatui::crossterm::event::KeyEvent::from(ratatui::crossterm::event::KeyCode::Char('t'));
    assert!(matches!(
        crate::tui::keymap::map_key(&s, t),
        Some(Action::TestSsh)
    ));
    send(&mut s, [Action::GoTo(Screen::Roles)]);
    let action = crate::tui::keymap::map_key(&s, t).unwrap();
    assert!(matches!(action, Action::EtcdTopology));
    send(&mut s, [action]);
    assert_eq!(s.cluster.settings.etcd_topology, EtcdTopology::Stacked);
    assert!(s.dirty());
    assert!(codes(&s).is_empty(), "the seeds' etcd is on the masters");
    // etcd off master3: stacked needs it on every master.
    send(
        &mut s,
        [Action::Down, Action::Down, Action::Left, Action::Toggle],
    );
    assert_eq!(codes(&s), ["etcd-count-even", "etcd-stacked-not-masters"]);
    send(&mut s, [Action::Toggle, Action::EtcdTopology]);
    assert_eq!(s.cluster.settings.etcd_topology, EtcdTopology::External);
    assert!(!s.dirty(), "back to what was opened");
}

#[test]
fn set_the_vip_and_see_its_findings_while_typing() {
    let mut s = opened();
    edit_lb_field(&mut s, 1, "192.168.0.2");
    assert_eq!(s.lb_field, LbField::Address);
    assert_eq!(s.cluster.lb.address.as_deref(), Some("192.168.0.2"));
    assert_eq!(codes(&s), ["vip-is-node-ip"]);
    send(&mut s, [Action::Text(Edit::Backspace)]);
    type_text(&mut s, "50");
    send(&mut s, [Action::Confirm]);
    assert!(s.lb_edit.is_none());
    assert_eq!(s.cluster.lb.address.as_deref(), Some("192.168.0.50"));
    assert!(codes(&s).is_empty());
}

#[test]
fn esc_undoes_an_lb_edit_and_a_bad_port_is_refused() {
    let mut s = opened();
    edit_lb_field(&mut s, 2, "x");
    assert!(s.lb_edit.as_ref().unwrap().error.is_some());
    send(&mut s, [Action::Confirm]);
    assert!(s.lb_edit.is_some(), "Enter does not keep a bad value");
    send(&mut s, [Action::Back]);
    assert_eq!(s.cluster.lb.port, 6443);
    assert!(!s.dirty());
    // The findings follow the field as it is now: typed, then undone with Esc.
    let mut s = opened();
    edit_lb_field(&mut s, 1, "192.168.0.2");
    assert_eq!(codes(&s), ["vip-is-node-ip"]);
    send(&mut s, [Action::Back]);
    assert!(codes(&s).is_empty(), "{:?}", codes(&s));
}

#[test]
fn lb_mode_cycles() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::LoadBalancer), Action::Toggle]);
    assert_eq!(s.cluster.lb.mode, LbMode::BuiltIn);
    assert!(codes(&s).contains(&"lb-port-conflict"));
    send(&mut s, [Action::Left, Action::Left]);
    assert_eq!(s.cluster.lb.mode, LbMode::None);
}

#[test]
fn errors_block_the_write() {
    let mut s = opened();
    send(
        &mut s,
        [Action::GoTo(Screen::Roles), Action::Left, Action::Toggle],
    );
    assert!(s.errors() > 0);
    let effects = send(&mut s, [Action::Save]);
    assert!(effects.is_empty());
    let status = s.status.clone().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status
            .text
            .starts_with("Not written: 1 error remains (see Review)."),
        "{}",
        status.text
    );
    // The count follows the cluster, whatever changed it: another error, then none.
    let before = s.cluster.clone();
    s.cluster.hosts[1].ip = Some("abc".into());
    send(&mut s, [Action::GoTo(Screen::Review)]);
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Not written: 2 errors remain (see Review)."
    );
    s.cluster = opened().cluster;
    assert_ne!(s.cluster, before);
    send(&mut s, [Action::GoTo(Screen::Roles)]);
    assert_eq!(s.errors(), 0);
    assert_eq!(s.status.as_ref().unwrap().text, "No error remains.");
}

#[test]
fn write_without_findings_produces_the_save_effect() {
    let mut s = opened();
    edit_lb_field(&mut s, 1, "192.168.0.250");
    send(&mut s, [Action::Confirm]);
    let effects = send(&mut s, [Action::Save]);
    let [Effect::Save { cluster, dir, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(cluster.lb.address.as_deref(), Some("192.168.0.250"));
    assert_eq!(dir.to_str(), Some("conf"));
    assert!(s.saving);
    assert!(
        send(&mut s, [Action::Save]).is_empty(),
        "one write at a time"
    );
}

#[test]
fn warnings_need_an_explicit_yes() {
    let mut s = opened();
    // Turn master1's auth into a password: a plaintext-password warning.
    send(&mut s, [Action::Edit]);
    send(&mut s, std::iter::repeat_n(Action::NextField, 5));
    send(
        &mut s,
        [
            Action::Right,
            Action::Right,
            Action::NextField,
            Action::NextField,
        ],
    );
    type_text(&mut s, "pw");
    send(&mut s, [Action::Confirm]);
    assert_eq!(codes(&s), ["plaintext-password"]);
    assert!(send(&mut s, [Action::Save]).is_empty());
    assert!(matches!(
        s.modal,
        Some(Modal::Confirm(Confirm::WriteWithWarnings(1)))
    ));
    assert!(send(&mut s, [Action::Answer(false)]).is_empty());
    send(&mut s, [Action::Save]);
    let effects = send(&mut s, [Action::Answer(true)]);
    assert!(matches!(effects.as_slice(), [Effect::Save { .. }]));
}

#[test]
fn a_finished_write_marks_the_state_saved() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::Roles), Action::Preset]);
    s.cluster.lb.port = 8443;
    assert!(s.dirty());
    let disk = crate::tui::effects::load(std::path::Path::new("conf"));
    let written = Box::new(s.cluster.clone());
    send(
        &mut s,
        [Action::Saved {
            outcome: Box::new(disk),
            written: written.clone(),
        }],
    );
    assert!(!s.dirty());
    assert_eq!(s.status.as_ref().unwrap().kind, StatusKind::Ok);
    assert!(
        s.status
            .as_ref()
            .unwrap()
            .text
            .ends_with("(the old files are kept as .bak).")
    );
    send(
        &mut s,
        [Action::Saved {
            outcome: Box::new(Err("disk full".into())),
            written,
        }],
    );
    assert_eq!(s.status.as_ref().unwrap().text, "Not written: disk full");
}

#[test]
fn a_resumed_install_says_how_long_the_whole_install_took() {
    let (mut s, _) = installing();
    let summary = Summary {
        ok: 3,
        elapsed_ms: 61_000,
        install_elapsed_s: 725,
        ..Summary::default()
    };
    send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Installed: this run 61.0s; 12m 05s since the install began (every run and the time between)."
    );
}

#[test]
fn a_file_that_could_not_be_read_is_never_written_over() {
    let mut s = loaded();
    s.disk = Some(Err("conf/hosts.ini:2: expected a port number".into()));
    send(&mut s, [Action::Confirm]);
    s.cluster
        .hosts
        .push(crate::model::Host::new("m1", "10.0.0.1"));
    s.cluster.hosts[0].roles.master = true;
    s.cluster.hosts[0].roles.etcd = true;
    s.cluster.hosts[0].roles.worker = true;
    let effects = send(&mut s, [Action::Save]);
    assert!(effects.is_empty(), "{effects:?}");
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert!(
        status.text.starts_with("Not written: conf/hosts.ini:2"),
        "{}",
        status.text
    );
}

#[test]
fn a_first_write_does_not_speak_of_old_files() {
    let mut s = loaded();
    s.disk = None;
    send(&mut s, [Action::Down, Action::Confirm]);
    let written = Box::new(s.cluster.clone());
    let disk = crate::tui::effects::load(std::path::Path::new("conf"));
    send(
        &mut s,
        [Action::Saved {
            outcome: Box::new(disk),
            written,
        }],
    );
    let text = &s.status.as_ref().unwrap().text;
    assert!(
        text.starts_with("Wrote ") && !text.contains(".bak"),
        "{text}"
    );
}

#[test]
fn edits_made_while_the_files_are_written_stay_unsaved() {
    let mut s = opened();
    s.cluster.lb.port = 8443;
    let written = Box::new(s.cluster.clone());
    // The operator goes on editing before the write reports back.
    s.cluster.lb.port = 9443;
    let disk = crate::tui::effects::load(std::path::Path::new("conf"));
    send(
        &mut s,
        [Action::Saved {
            outcome: Box::new(disk),
            written,
        }],
    );
    assert!(s.dirty());
}

#[test]
fn quit_asks_only_when_changes_would_be_lost() {
    let mut s = opened();
    send(&mut s, [Action::Quit]);
    assert!(s.quit, "nothing to lose");

    let mut s = opened();
    send(&mut s, [Action::Delete, Action::Answer(true), Action::Quit]);
    assert!(matches!(
        s.modal,
        Some(Modal::Confirm(Confirm::Quit { unsaved: true }))
    ));
    send(&mut s, [Action::Answer(false)]);
    assert!(!s.quit && s.modal.is_none());
    send(&mut s, [Action::Quit, Action::Answer(true)]);
    assert!(s.quit);
}

#[test]
fn ctrl_c_asks_and_a_second_one_quits() {
    let mut s = opened();
    send(&mut s, [Action::Interrupt]);
    assert!(!s.quit);
    assert!(matches!(
        s.modal,
        Some(Modal::Confirm(Confirm::Quit { unsaved: false }))
    ));
    send(&mut s, [Action::Up]);
    assert!(s.modal.is_some(), "other keys leave the question open");
    send(&mut s, [Action::Interrupt]);
    assert!(s.quit);
}

#[test]
fn screens_other_than_start_need_a_cluster_first() {
    let mut s = loaded();
    send(&mut s, [Action::GoTo(Screen::Review)]);
    assert_eq!(s.screen, Screen::Start);
    let effects = send(&mut s, [Action::Save]);
    assert!(effects.is_empty());
}

#[test]
fn review_enter_jumps_to_the_section() {
    let mut s = opened();
    send(
        &mut s,
        [
            Action::GoTo(Screen::Review),
            Action::Down,
            Action::Down,
            Action::Confirm,
        ],
    );
    assert_eq!(s.screen, Screen::LoadBalancer);
    send(&mut s, [Action::Back, Action::Back]);
    assert_eq!(s.screen, Screen::Hosts);
}

#[test]
fn help_opens_and_any_key_closes_it() {
    let mut s = opened();
    update(&mut s, Action::Help);
    assert!(s.help);
    update(&mut s, Action::Delete);
    assert!(!s.help);
    assert!(s.modal.is_none(), "the closing key does nothing else");
}

#[test]
fn t_tests_ssh_on_the_selected_host_once_at_a_time() {
    let mut s = opened();
    send(&mut s, [Action::Down]);
    let effects = send(&mut s, [Action::TestSsh]);
    match effects.as_slice() {
        [Effect::TestSsh { host, dir }] => {
            assert_eq!(host.name, "master2");
            // The conf directory as given: finding the state dir from it is the effect's I/O.
            assert_eq!(dir, &s.conf_dir);
        }
        other => panic!("{other:?}"),
    }
    // A second t while it runs asks for nothing more.
    assert!(send(&mut s, [Action::TestSsh]).is_empty());
    let facts = super::facts();
    send(
        &mut s,
        [Action::Tested {
            host: "master2".into(),
            result: Ok(facts),
        }],
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "master2: SSH and sudo work (Debian GNU/Linux 12 (bookworm))."
    );
    send(
        &mut s,
        [Action::Tested {
            host: "master2".into(),
            result: Err("master2: cannot connect (refused)".into()),
        }],
    );
    assert_eq!(s.status.as_ref().unwrap().kind, StatusKind::Error);
}

#[test]
fn install_is_refused_while_errors_remain() {
    let mut s = opened();
    send(
        &mut s,
        [Action::GoTo(Screen::Roles), Action::Left, Action::Toggle],
    );
    let effects = send(&mut s, [Action::GoTo(Screen::Review), Action::Install]);
    assert!(effects.is_empty());
    assert!(s.modal.is_none());
    let status = s.status.unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert_eq!(status.text, "Not installing: 1 error remains (see Review).");
}

#[test]
fn install_is_refused_with_unsaved_changes() {
    let mut s = opened();
    send(
        &mut s,
        [
            Action::GoTo(Screen::Roles),
            Action::Down,
            Action::Down,
            Action::Right,
            Action::Toggle,
        ],
    );
    assert!(s.findings().is_empty());
    let effects = send(&mut s, [Action::GoTo(Screen::Review), Action::Install]);
    assert!(effects.is_empty());
    assert!(s.modal.is_none());
    assert!(s.status.unwrap().text.contains("Ctrl-s first"));
}

#[test]
fn install_asks_then_starts_the_engine_and_the_lb_probe() {
    let mut s = opened();
    let effects = send(&mut s, [Action::GoTo(Screen::Review), Action::Install]);
    // The question waits for a look at what would run.
    assert!(matches!(&effects[..], [Effect::PreviewInstall { .. }]));
    send(
        &mut s,
        [Action::InstallPreviewed(Ok(preview(Mode::Fresh, 44, 0)))],
    );
    assert_eq!(
        s.modal,
        Some(Modal::Confirm(Confirm::Install(preview(
            Mode::Fresh,
            44,
            0
        ))))
    );
    // No: nothing runs.
    assert!(send(&mut s, [Action::Answer(false)]).is_empty());
    assert_eq!(s.screen, Screen::Review);

    let (s, effects) = installing();
    assert_eq!(s.screen, Screen::Install);
    assert!(s.installing());
    assert_eq!(s.status.unwrap().text, "Installing on 6 hosts…");
    assert!(matches!(
        &effects[..],
        [Effect::Install { cluster, dir, restart: false, resume: false }, Effect::Tick(_), Effect::ProbeLb { after, .. }]
            if cluster.hosts.len() == 6 && dir.as_path() == std::path::Path::new("conf")
                && after.is_zero()
    ));
}

#[test]
fn a_long_failure_reason_is_never_cut_on_the_status_line() {
    let mut s = planned();
    let why = "master2: cannot connect (ssh: connect to host 10.0.0.2 port 22: Connection refused); check ansible_host / ansible_port and that sshd runs there";
    let summary = Summary {
        failed: 1,
        failures: vec![Failure {
            node: "master2".into(),
            step: "os-prep".into(),
            reason: why.into(),
            log_tail: Vec::new(),
        }],
        ..Summary::default()
    };
    engine(
        &mut s,
        [Event::Finished {
            node: "master2".into(),
            step: "os-prep".into(),
            status: Status::Failed,
            elapsed_ms: 0,
            reason: Some(why.into()),
        }],
    );
    send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "master2 failed at os-prep: the reason is in its log. i resumes (or kswizard install --resume)."
    );
    let log = &s.install.as_ref().unwrap().nodes[1].log;
    assert_eq!(log.back().unwrap(), &format!("os-prep: ✗ failed: {why}"));
}

#[test]
fn a_failed_preflight_shows_the_node_failed_with_its_reasons_and_fixes() {
    use crate::engine::preflight::{Check, Level};
    let mut s = planned();
    let checks = vec![
        Check::new("swap", Level::Ok, "off", ""),
        Check::new(
            "clock",
            Level::Fail,
            "60.0 s ahead of the taskbox (more than 30 s)",
            "timedatectl set-ntp true",
        ),
        Check::new("cgroup", Level::Warn, "v1", "use v2"),
    ];
    engine(
        &mut s,
        [Event::Preflight {
            node: "master2".into(),
            status: Level::Fail,
            checks,
            facts: std::collections::BTreeMap::new(),
        }],
    );
    let m2 = s.install.as_ref().unwrap().nodes[1].clone();
    assert_eq!(m2.state(), NodeState::Failed);
    assert_eq!(
        m2.failed,
        Some((
            "preflight".to_string(),
            "clock: 60.0 s ahead of the taskbox (more than 30 s) (fix: timedatectl set-ntp true)"
                .to_string()
        ))
    );
    assert_eq!(
        m2.log.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "preflight: ✓ 1 of 3 checks passed",
            "preflight: ✗ clock: 60.0 s ahead of the taskbox (more than 30 s) (fix: timedatectl set-ntp true)",
            "preflight: ! cgroup: v1 (fix: use v2)",
        ]
    );
    // The engine's error carries the whole table after its first line: the status line shows
    // only that line.
    send(
        &mut s,
        [Action::InstallEnded(Err(
            "preflight failed on master2 (no node was changed); fix what it found and install again\npreflight swap clock\n..."
                .into(),
        ))],
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "The install stopped: preflight failed on master2 (no node was changed); fix what it found and install again. i tries again."
    );
}

#[test]
fn n_jumps_to_the_next_failed_node() {
    let mut s = planned();
    engine(
        &mut s,
        [
            finished("master2", "os-prep", Status::Failed, 10),
            finished("node3", "os-prep", Status::Failed, 10),
        ],
    );
    send(&mut s, [Action::NextFailed]);
    assert_eq!(s.install.as_ref().unwrap().selected, 1);
    send(&mut s, [Action::NextFailed]);
    assert_eq!(s.install.as_ref().unwrap().selected, 5);
    // Around again.
    send(&mut s, [Action::NextFailed]);
    assert_eq!(s.install.as_ref().unwrap().selected, 1);
}

#[test]
fn a_resume_keeps_the_selected_node_its_log_and_its_time() {
    let mut s = planned();
    engine(
        &mut s,
        [
            started("node2", "os-prep"),
            output("node2", "os-prep", "checking swap"),
            finished("node2", "os-prep", Status::Ok, 1500),
        ],
    );
    send(
        &mut s,
        [Action::Down, Action::Down, Action::Down, Action::Down],
    );
    assert_eq!(s.install.as_ref().unwrap().selected, 4);
    send(&mut s, [Action::InstallEnded(Err("lost".into()))]);
    send(
        &mut s,
        [
            Action::Install,
            Action::InstallPreviewed(Ok(preview(Mode::Resume, 40, 4))),
            Action::Answer(true),
        ],
    );
    let install = s.install.as_ref().unwrap();
    assert_eq!(install.selected, 4);
    let node2 = &install.nodes[4];
    assert_eq!(node2.elapsed_ms, 1500, "the time keeps counting");
    assert_eq!(
        node2.log.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "os-prep: checking swap",
            "kswizard: — the install goes on here —"
        ]
    );
}

#[test]
fn a_complete_install_is_never_run_again_silently() {
    let mut s = opened();
    let complete = Box::new(Preview {
        mode: Mode::Fresh,
        complete: true,
        steps: 44,
        nodes: 6,
        done: 0,
        changed: vec![("node1".into(), "os-prep".into())],
        day2: Vec::new(),
    });
    send(
        &mut s,
        [
            Action::GoTo(Screen::Review),
            Action::Install,
            Action::InstallPreviewed(Ok(complete.clone())),
        ],
    );
    // y is not an answer here: the question says what each choice runs.
    assert!(send(&mut s, [Action::Answer(true)]).is_empty());
    assert_eq!(
        s.modal,
        Some(Modal::Confirm(Confirm::Install(complete.clone())))
    );
    // c: only the changed steps (a resume of the complete install).
    let effects = send(&mut s, [Action::Rerun(Rerun::Changed)]);
    assert!(matches!(
        &effects[..],
        [
            Effect::Install {
                restart: false,
                resume: true,
                ..
            },
            ..
        ]
    ));
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Running the 1 changed steps again…"
    );
    // r on another complete install: everything from the start.
    let mut s = opened();
    send(
        &mut s,
        [
            Action::GoTo(Screen::Review),
            Action::Install,
            Action::InstallPreviewed(Ok(complete)),
        ],
    );
    let effects = send(&mut s, [Action::Rerun(Rerun::All)]);
    assert!(matches!(
        &effects[..],
        [
            Effect::Install {
                restart: true,
                resume: false,
                ..
            },
            ..
        ]
    ));
}

#[test]
fn an_unfinished_install_on_disk_is_resumed() {
    let mut s = opened();
    if let Some(Ok(disk)) = s.disk.as_mut() {
        disk.install = Some((true, "3 of 44 steps done".into()));
    }
    send(
        &mut s,
        [
            Action::GoTo(Screen::Review),
            Action::Install,
            Action::InstallPreviewed(Ok(preview(Mode::Resume, 41, 3))),
            Action::Answer(true),
        ],
    );
    assert_eq!(
        s.status.as_ref().unwrap().text,
        "Resuming the unfinished install: 41 steps on 6 nodes…"
    );
    let mut plan = plan_event(&s);
    if let Event::Plan { done, .. } = &mut plan {
        done.push(("master1".into(), "os-prep".into()));
    }
    engine(&mut s, [plan]);
    let install = s.install.as_ref().unwrap();
    assert_eq!((install.nodes[0].done, install.already_done), (1, 1));
    assert!(
        s.status
            .unwrap()
            .text
            .contains("1 steps an earlier run finished")
    );
}

#[test]
fn engine_events_drive_each_nodes_progress() {
    let mut s = planned();
    engine(&mut s, [started("master1", "os-prep")]);
    let node = |s: &State, i: usize| s.install.as_ref().unwrap().nodes[i].clone();
    assert_eq!(node(&s, 0).state(), NodeState::Running);
    assert_eq!(node(&s, 0).running.as_deref(), Some("os-prep"));
    assert_eq!(node(&s, 3).state(), NodeState::Waiting);

    engine(
        &mut s,
        [
            finished("master1", "os-prep", Status::Ok, 1200),
            started("node2", "os-prep"),
            finished("node2", "os-prep", Status::Failed, 300),
        ],
    );
    let m1 = node(&s, 0);
    assert_eq!((m1.done, m1.steps.len(), m1.elapsed_ms), (1, 15, 1200));
    assert_eq!(m1.state(), NodeState::Waiting);
    let n2 = node(&s, 4);
    assert_eq!(n2.state(), NodeState::Failed);
    assert_eq!(
        n2.failed,
        Some(("os-prep".to_string(), "exit code 1".to_string()))
    );
    assert_eq!(s.install.as_ref().unwrap().totals(), (1, 45));

    // The log keeps the newest LOG_LINES lines.
    let lines = (0..LOG_LINES + 10).map(|i| output("master2", "os-prep", &format!("line {i}")));
    engine(&mut s, lines);
    let log = &node(&s, 1).log;
    assert_eq!(log.len(), LOG_LINES);
    assert_eq!(log.front().unwrap(), "os-prep: line 10");
    assert_eq!(
        log.back().unwrap(),
        &format!("os-prep: line {}", LOG_LINES + 9)
    );

    // PgUp scrolls master2's log back; new lines keep the view where it is; PgDn follows again.
    send(&mut s, [Action::Down, Action::PageUp]);
    assert_eq!(s.install.as_ref().unwrap().log_scroll, 10);
    engine(&mut s, [output("master2", "os-prep", "one more")]);
    assert_eq!(s.install.as_ref().unwrap().log_scroll, 11);
    send(&mut s, [Action::PageDown, Action::PageDown]);
    assert_eq!(s.install.as_ref().unwrap().log_scroll, 0);

    send(&mut s, [Action::PageUp, Action::Down]);
    let install = s.install.as_ref().unwrap();
    assert_eq!((install.selected, install.log_scroll), (2, 0));
}

#[test]
fn a_clean_end_shows_done_and_a_failed_one_stays_with_the_reason() {
    let (mut s, _) = installing();
    let summary = Summary {
        ok: 44,
        elapsed_ms: 61_000,
        ..Summary::default()
    };
    send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert_eq!(s.screen, Screen::Done);
    assert!(!s.installing());
    assert_eq!(s.status.as_ref().unwrap().text, "Installed in 61.0s.");
    // Installing again after a clean end starts a new install.
    send(&mut s, [Action::Back]);
    install_yes(&mut s);
    assert_eq!(s.status.unwrap().text, "Installing on 6 hosts…");

    let (mut s, _) = installing();
    let summary = Summary {
        ok: 20,
        failed: 1,
        skipped: 9,
        failures: vec![Failure {
            node: "node2".into(),
            step: "container-runtime".into(),
            reason: "exit code 1".into(),
            log_tail: Vec::new(),
        }],
        ..Summary::default()
    };
    send(&mut s, [Action::InstallEnded(Ok(summary))]);
    assert_eq!(s.screen, Screen::Install);
    let status = s.status.clone().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert_eq!(
        status.text,
        "node2 failed at container-runtime: exit code 1. i resumes (or kswizard install --resume)."
    );
    // i again asks, and the second run says it resumes.
    send(
        &mut s,
        [
            Action::Install,
            Action::InstallPreviewed(Ok(preview(Mode::Resume, 10, 34))),
            Action::Answer(true),
        ],
    );
    assert!(s.status.unwrap().text.starts_with("Resuming"));

    let (mut s, _) = installing();
    send(&mut s, [Action::InstallEnded(Err("busy".into()))]);
    assert_eq!(s.screen, Screen::Install);
    assert!(s.status.unwrap().text.contains("install stopped: busy"));
}

#[test]
fn quitting_during_an_install_asks_first() {
    let (mut s, _) = installing();
    send(&mut s, [Action::Quit]);
    assert_eq!(s.modal, Some(Modal::Confirm(Confirm::StopInstall)));
    send(&mut s, [Action::Answer(false)]);
    assert!(!s.quit);
    send(&mut s, [Action::Interrupt, Action::Interrupt]);
    assert!(s.quit);

    // Once it has ended, q quits as usual.
    let (mut s, _) = installing();
    send(
        &mut s,
        [Action::InstallEnded(Err("busy".into())), Action::Quit],
    );
    assert!(s.quit);
}

#[test]
fn other_screens_wait_until_the_install_ends() {
    let (mut s, _) = installing();
    send(&mut s, [Action::GoTo(Screen::Hosts), Action::Back]);
    assert_eq!(s.screen, Screen::Install);
    send(
        &mut s,
        [Action::InstallEnded(Err("busy".into())), Action::Back],
    );
    assert_eq!(s.screen, Screen::Review);
}

#[test]
fn the_lb_is_probed_again_only_while_the_install_screens_show() {
    let (mut s, _) = installing();
    let effects = send(&mut s, [Action::LbProbed(Box::new(lb(false)))]);
    assert!(matches!(
        &effects[..],
        [Effect::ProbeLb { after, .. }] if *after == LB_PROBE_EVERY
    ));
    // A second install while a probe is scheduled starts no second probe loop.
    send(&mut s, [Action::InstallEnded(Err("busy".into()))]);
    let effects = install_yes(&mut s);
    assert!(matches!(&effects[..], [Effect::Install { .. }]));

    // Done shows the LB as last probed, so probes go on there; elsewhere they stop.
    send(&mut s, [Action::InstallEnded(Ok(Summary::default()))]);
    assert_eq!(s.screen, Screen::Done);
    let effects = send(&mut s, [Action::LbProbed(Box::new(lb(true)))]);
    assert!(matches!(&effects[..], [Effect::ProbeLb { .. }]));
    assert!(
        s.install
            .as_ref()
            .unwrap()
            .lb
            .as_ref()
            .unwrap()
            .frontend
            .as_ref()
            .unwrap()
            .up
    );
    s.screen = Screen::Review;
    assert!(send(&mut s, [Action::LbProbed(Box::new(lb(true)))]).is_empty());
}

#[test]
fn findings_and_diffs_follow_the_cluster_whatever_changed_it() {
    // No action has to remember to recompute them: a change the next action finds is seen too.
    let mut s = opened();
    assert!(codes(&s).is_empty());
    s.cluster.hosts[0].roles.etcd = false;
    send(&mut s, [Action::Help, Action::Help]);
    assert_eq!(codes(&s), ["etcd-count-even"]);
    let diff_lines = |s: &State| -> usize {
        s.diffs()
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| f.lines.len())
            .sum()
    };
    assert!(diff_lines(&s) > 0, "the diff shows master1 leaving [etcd]");
    s.cluster.hosts[0].roles.etcd = true;
    send(&mut s, [Action::Help, Action::Help]);
    assert_eq!((codes(&s).len(), diff_lines(&s)), (0, 0));
}

/// A re-attached step: the runner sends its log again from the first line, so the lines the
/// node's log holds of it go first; no line shows twice.
#[test]
fn a_reattached_step_does_not_show_its_lines_twice() {
    let mut s = planned();
    let lines = ["pulling images", "kubeadm init phase preflight"];
    engine(&mut s, [started("master1", "kubeadm-init")]);
    engine(&mut s, lines.map(|l| output("master1", "kubeadm-init", l)));
    let (previous, cluster) = (s.install.take().unwrap(), s.cluster.clone());
    s.install = Some(crate::tui::install::Install::next_run(previous, cluster));
    engine(
        &mut s,
        [Event::Started {
            node: "master1".into(),
            step: "kubeadm-init".into(),
            attempt: 1,
            reattached: true,
            already_done: false,
        }],
    );
    engine(&mut s, lines.map(|l| output("master1", "kubeadm-init", l)));
    let log = &s.install.as_ref().unwrap().nodes[0].log;
    for l in lines {
        let n = log.iter().filter(|x| x.ends_with(l)).count();
        assert_eq!(n, 1, "{log:?}");
    }
    assert!(log.iter().any(|l| l.contains("re-attached")), "{log:?}");
}

/// `/` takes letters (n among them) as text; Enter searches; `[` `]` move; Esc drops the
/// search before it leaves the screen; `F` cycles the filter and ↑↓ move among kept nodes.
#[test]
fn search_and_filter_keys_on_install() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut s = planned();
    for i in 0..5 {
        let line = if i % 2 == 0 {
            format!("etcd {i}")
        } else {
            format!("other {i}")
        };
        engine(&mut s, [output("master1", "os-prep", &line)]);
    }
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    assert!(matches!(
        crate::tui::keymap::map_key(&s, key('/')),
        Some(Action::SearchLog)
    ));
    send(&mut s, [Action::SearchLog]);
    assert!(matches!(
        crate::tui::keymap::map_key(&s, key('n')),
        Some(Action::Text(Edit::Insert('n')))
    ));
    type_text(&mut s, "etcd");
    send(&mut s, [Action::Confirm]);
    let at = |s: &State| s.install.as_ref().unwrap().log_at();
    let i = s.install.as_ref().unwrap();
    assert_eq!(i.nodes[0].log[at(&s)], "os-prep: etcd 4");
    send(&mut s, [Action::NextMatch(true)]);
    assert_eq!(
        s.install.as_ref().unwrap().nodes[0].log[at(&s)],
        "os-prep: etcd 2"
    );
    send(&mut s, [Action::NextMatch(false)]);
    assert_eq!(
        s.install.as_ref().unwrap().nodes[0].log[at(&s)],
        "os-prep: etcd 4"
    );
    send(&mut s, [Action::NextMatch(false)]);
    assert!(s.status.as_ref().unwrap().text.contains("No later line"));
    send(&mut s, [Action::Back]);
    assert!(s.install.as_ref().unwrap().search.is_none());
    assert_eq!(s.screen, Screen::Install);

    engine(
        &mut s,
        [started("node1", "os-prep"), started("node3", "os-prep")],
    );
    send(&mut s, [Action::FilterNodes, Action::FilterNodes]);
    let i = s.install.as_ref().unwrap();
    assert_eq!(i.filter, crate::tui::log_view::Filter::Running);
    assert_eq!(i.nodes[i.selected].name, "node1");
    send(&mut s, [Action::Down]);
    let i = s.install.as_ref().unwrap();
    assert_eq!(i.nodes[i.selected].name, "node3");
    send(&mut s, [Action::Up]);
    let i = s.install.as_ref().unwrap();
    assert_eq!(i.nodes[i.selected].name, "node1");
}
