//! The Preflight screen: engine events in, the table's state, the wait for "continue anyway",
//! a failure that stops the install; and its snapshots at 80×24 and 120×40.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{engine, planned, send, started};
use crate::engine::events::Event;
use crate::engine::preflight::{Check, Level};
use crate::tui::action::{Action, Effect};
use crate::tui::keymap::map_key;
use crate::tui::preflight::Stage;
use crate::tui::state::{Screen, State};
use crate::tui::view;

const NODES: [&str; 6] = ["master1", "master2", "master3", "node1", "node2", "node3"];

/// The checks of a lab node (`assets/steps/preflight.sh` and the cross-node ones), all ok.
const IDS: [&str; 18] = [
    "root",
    "tools",
    "cpus",
    "memory",
    "disk-containerd",
    "disk-etcd",
    "swap",
    "cgroup",
    "docker",
    "kubernetes",
    "ports",
    "hostname",
    "ip",
    "lb-domain",
    "clock",
    "unique-hostname",
    "same-machine",
    "unique-ip",
];

fn report(node: &str, odd: &[Check]) -> Event {
    let mut checks: Vec<Check> = IDS
        .iter()
        .map(|id| Check::new(id, Level::Ok, "fine", ""))
        .collect();
    for c in odd {
        if let Some(k) = checks.iter_mut().find(|k| k.id == c.id) {
            *k = c.clone();
        }
    }
    Event::Preflight {
        node: node.into(),
        status: checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok),
        checks,
        facts: std::collections::BTreeMap::new(),
    }
}

fn cgroup_v1() -> Check {
    Check::new(
        "cgroup",
        Level::Warn,
        "cgroup v1 (the kubelet prefers v2)",
        "boot with systemd.unified_cgroup_hierarchy=1",
    )
}

/// Every node warned (cgroup v1), master3's clock too; the engine asks "continue anyway?".
fn waiting() -> State {
    let mut s = planned();
    for node in NODES {
        let mut odd = vec![cgroup_v1()];
        if node == "master3" {
            odd.push(Check::new(
                "clock",
                Level::Warn,
                "7.2 s ahead of the taskbox",
                "timedatectl set-ntp true",
            ));
        }
        if node == "node3" {
            odd.clear();
        }
        engine(&mut s, [report(node, &odd)]);
    }
    send(&mut s, [Action::PreflightAsked]);
    s
}

/// master2's clock and node1's Docker failed; every node warned; the engine's error came.
fn failed() -> State {
    let mut s = planned();
    for node in NODES {
        let mut odd = vec![cgroup_v1()];
        match node {
            "master2" => odd.push(Check::new(
                "clock",
                Level::Fail,
                "60.0 s ahead of the taskbox (more than 30 s)",
                "synchronise the clocks (timedatectl set-ntp true)",
            )),
            "node1" => odd.push(Check::new(
                "docker",
                Level::Fail,
                "Docker is installed (/usr/bin/docker)",
                "apt-get purge docker-ce docker.io; rm -rf /var/lib/docker",
            )),
            _ => {}
        }
        engine(&mut s, [report(node, &odd)]);
    }
    send(
        &mut s,
        [Action::InstallEnded(Err(
            "preflight failed on master2, node1 (no node was changed); fix what it found and install again\n(the table)".into(),
        ))],
    );
    s
}

fn stage(s: &State) -> Stage {
    s.install.as_ref().unwrap().preflight.stage()
}

#[test]
fn preflight_events_fill_the_table_on_its_own_screen() {
    let mut s = planned();
    assert_eq!(s.screen, Screen::Install);
    engine(&mut s, [report("master1", &[cgroup_v1()])]);
    assert_eq!(s.screen, Screen::Preflight);
    assert_eq!(stage(&s), Stage::Running);
    engine(
        &mut s,
        [report(
            "master2",
            &[Check::new("docker", Level::Fail, "installed", "purge it")],
        )],
    );
    let p = &s.install.as_ref().unwrap().preflight;
    assert_eq!(p.expected, 6);
    assert_eq!(p.counts(), (0, 1, 1));
    // Failed first, then warned; the columns not all ok first, worst first.
    let rows: Vec<&str> = p.rows().iter().map(|r| r.node.as_str()).collect();
    assert_eq!(rows, ["master2", "master1"]);
    let cols: Vec<(&str, Level)> = p.columns().into_iter().take(3).collect();
    assert_eq!(
        cols,
        [
            ("docker", Level::Fail),
            ("cgroup", Level::Warn),
            ("root", Level::Ok)
        ]
    );
    assert_eq!(stage(&s), Stage::Failed);
}

#[test]
fn the_same_finding_on_many_nodes_is_one_note() {
    let s = waiting();
    let p = &s.install.as_ref().unwrap().preflight;
    assert_eq!(
        (p.nodes_with(Level::Warn), p.nodes_with(Level::Fail)),
        (5, 0)
    );
    let notes: Vec<(&str, Vec<&str>)> = p
        .notes(Level::Warn, 0)
        .into_iter()
        .map(|n| (n.check.id.as_str(), n.nodes))
        .collect();
    assert_eq!(
        notes,
        [
            (
                "cgroup",
                vec!["master1", "master2", "master3", "node1", "node2"]
            ),
            ("clock", vec!["master3"]),
        ]
    );
    // From the third row on (the table scrolled): the nodes above are left out.
    assert_eq!(p.notes(Level::Warn, 3)[0].nodes, ["node1", "node2"]);
}

#[test]
fn all_ok_goes_on_to_the_install_progress_when_steps_start() {
    let mut s = planned();
    for node in NODES {
        engine(&mut s, [report(node, &[])]);
    }
    assert_eq!((s.screen, stage(&s)), (Screen::Preflight, Stage::Passed));
    engine(&mut s, [started("master1", "os-prep")]);
    assert_eq!(s.screen, Screen::Install);
}

#[test]
fn warnings_wait_for_c_and_continue_only_then() {
    let mut s = planned();
    for node in NODES {
        engine(&mut s, [report(node, &[cgroup_v1()])]);
    }
    // Every report in, the engine's question not yet: c does nothing.
    assert_eq!(stage(&s), Stage::Running);
    assert!(send(&mut s, [Action::ContinueAnyway]).is_empty());
    send(&mut s, [Action::PreflightAsked]);
    assert_eq!(stage(&s), Stage::Waiting);
    // Other screens stay closed while it waits.
    send(&mut s, [Action::GoTo(Screen::Hosts)]);
    assert_eq!(s.screen, Screen::Preflight);
    let effects = send(&mut s, [Action::ContinueAnyway]);
    assert!(
        matches!(effects[..], [Effect::AnswerPreflight(true)]),
        "{effects:?}"
    );
    assert_eq!((s.screen, stage(&s)), (Screen::Install, Stage::Continued));
    // A second c is no answer to anything.
    assert!(send(&mut s, [Action::ContinueAnyway]).is_empty());
}

#[test]
fn esc_to_the_warnings_stops_the_install_with_nothing_changed() {
    let mut s = waiting();
    let effects = send(&mut s, [Action::Back]);
    assert!(
        matches!(effects[..], [Effect::AnswerPreflight(false)]),
        "{effects:?}"
    );
    assert_eq!((s.screen, stage(&s)), (Screen::Preflight, Stage::Declined));
    send(
        &mut s,
        [Action::InstallEnded(Err(
            "preflight warned on master1 and the install was not continued: this run changed nothing"
                .into(),
        ))],
    );
    assert!(!s.installing());
    send(&mut s, [Action::Back]);
    assert_eq!(s.screen, Screen::Review);
}

#[test]
fn a_failure_stops_the_install_and_i_runs_it_again() {
    let mut s = failed();
    assert_eq!((s.screen, stage(&s)), (Screen::Preflight, Stage::Failed));
    assert!(!s.installing());
    // No "continue anyway" past a failure.
    assert!(send(&mut s, [Action::ContinueAnyway]).is_empty());
    let effects = send(&mut s, [Action::Install]);
    assert!(
        matches!(effects[..], [Effect::PreviewInstall { .. }]),
        "{effects:?}"
    );
    send(&mut s, [Action::Back]);
    assert_eq!(s.screen, Screen::Review);
}

#[test]
fn keys_on_the_preflight_screen() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let mut s = waiting();
    assert!(matches!(
        map_key(&s, key('c')),
        Some(Action::ContinueAnyway)
    ));
    assert!(matches!(map_key(&s, key('i')), Some(Action::Install)));
    // Scrolling stays within the rows and the columns.
    send(&mut s, std::iter::repeat_n(Action::PageDown, 3));
    send(&mut s, std::iter::repeat_n(Action::Right, 40));
    let p = &s.install.as_ref().unwrap().preflight;
    assert_eq!((p.top, p.left), (5, IDS.len() - 1));
}

fn draw(state: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::render(f, state)).unwrap();
    terminal.backend().to_string()
}

fn check(name: &str, state: &State) {
    for (w, h) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(state, w, h));
    }
}

#[test]
fn snapshot_preflight_failed() {
    check("preflight_failed", &failed());
}

#[test]
fn snapshot_preflight_waiting_for_continue_anyway() {
    check("preflight_waiting", &waiting());
}

/// 500 nodes, a few of them failing: the table scrolls, the failures first.
#[test]
fn snapshot_preflight_500_nodes() {
    let mut s = planned();
    s.install.as_mut().unwrap().preflight.expected = 500;
    for i in 1..=500 {
        let mut odd = Vec::new();
        if i % 97 == 0 {
            odd.push(Check::new(
                "ports",
                Level::Fail,
                format!("6443 is held by nginx (pid {})", 1000 + i),
                "stop what holds it, or free the port",
            ));
        }
        if i % 50 == 0 {
            odd.push(cgroup_v1());
        }
        engine(&mut s, [report(&format!("node{i:03}"), &odd)]);
    }
    send(
        &mut s,
        [Action::InstallEnded(Err(
            "preflight failed on node097, node194, node291, node388, node485 (no node was changed)"
                .into(),
        ))],
    );
    check("preflight_500", &s);
    send(&mut s, [Action::PageDown, Action::Right]);
    check("preflight_500_scrolled", &s);
}
