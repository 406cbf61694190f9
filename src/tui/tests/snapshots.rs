//! Every screen rendered at 80×24 and 120×40 into a `TestBackend`, compared as text with the
//! committed snapshots (`INSTA_UPDATE=always cargo test` rewrites them; review the .snap files).

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{
    edit_lb_field, engine, finished, installing, lb, lb_built_in, loaded, opened, output, planned,
    send, started, type_text, with_console,
};
use crate::engine::events::{Event, Status, Summary};
use crate::engine::preflight::{Check, Level};
use crate::tui::action::Action;
use crate::tui::input::Edit;
use crate::tui::state::{Screen, State};
use crate::tui::view;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn draw(state: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::render(f, state)).unwrap();
    terminal.backend().to_string()
}

pub(super) fn check(name: &str, state: &State) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(state, w, h));
    }
}

#[test]
fn start() {
    check("start", &loaded());
}

#[test]
fn start_with_an_unfinished_install() {
    let mut s = loaded();
    if let Some(Ok(disk)) = s.disk.as_mut() {
        disk.install = Some((
            true,
            "12 of 36 steps done, master2 failed at etcd-start".into(),
        ));
    }
    check("start_unfinished", &s);
}

#[test]
fn start_with_an_unfinished_removal() {
    let mut s = loaded();
    if let Some(Ok(disk)) = s.disk.as_mut() {
        disk.install = Some((false, "46 of 46 steps done".into()));
        let resume = "kswizard remove master1 --conf conf".to_string();
        disk.unfinished = Ok(vec![crate::ops::unfinished::Unfinished {
            operation: "remove".into(),
            hosts: vec!["master1".into()],
            done: 4,
            resume,
        }]);
    }
    check("start_unfinished_removal", &s);
}

#[test]
fn hosts_with_an_ssh_test() {
    let mut s = opened();
    send(&mut s, [Action::Down]);
    let facts = super::facts();
    send(
        &mut s,
        [Action::Tested {
            host: "master2".into(),
            result: Ok(facts),
        }],
    );
    check("hosts_ssh_ok", &s);
    send(&mut s, [Action::Down, Action::TestSsh]);
    check("hosts_ssh_testing", &s);
}

#[test]
fn hosts() {
    check("hosts", &opened());
}

#[test]
fn hosts_with_findings() {
    let mut s = opened();
    send(&mut s, [Action::Edit]);
    send(&mut s, std::iter::repeat_n(Action::NextField, 2));
    send(&mut s, [Action::Text(Edit::Clear)]);
    type_text(&mut s, "192.168.0.2");
    send(&mut s, std::iter::repeat_n(Action::NextField, 6));
    type_text(&mut s, "sudo-secret");
    send(&mut s, [Action::Confirm]);
    check("hosts_findings", &s);
}

#[test]
fn host_form_with_a_hidden_password() {
    let mut s = opened();
    send(&mut s, [Action::Down, Action::Edit]);
    send(&mut s, std::iter::repeat_n(Action::NextField, 8));
    type_text(&mut s, "secret");
    check("host_form", &s);
}

#[test]
fn range_form() {
    let mut s = opened();
    send(&mut s, [Action::AddRange]);
    type_text(&mut s, "192.168.0.11-16");
    check("range_form", &s);
}

#[test]
fn paste_form() {
    let mut s = opened();
    send(&mut s, [Action::AddPaste]);
    type_text(
        &mut s,
        "node4 ansible_host=192.168.0.7 ip=192.168.0.7\nnode5 ansible_host=192.168.0.8",
    );
    check("paste_form", &s);
}

#[test]
fn new_cluster_hosts() {
    let mut s = loaded();
    send(&mut s, [Action::Down, Action::Confirm]);
    check("hosts_empty", &s);
}

#[test]
fn roles() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::Roles)]);
    check("roles", &s);
}

#[test]
fn roles_with_even_etcd() {
    let mut s = opened();
    send(
        &mut s,
        [
            Action::GoTo(Screen::Roles),
            Action::Down,
            Action::Down,
            Action::Down,
        ],
    );
    send(&mut s, [Action::Left, Action::Toggle]);
    check("roles_even_etcd", &s);
}

#[test]
fn roles_stacked_etcd_off_one_master() {
    let mut s = opened();
    send(
        &mut s,
        [
            Action::GoTo(Screen::Roles),
            Action::EtcdTopology,
            Action::Down,
            Action::Down,
        ],
    );
    send(&mut s, [Action::Left, Action::Toggle]);
    check("roles_stacked", &s);
}

#[test]
fn load_balancer() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::LoadBalancer)]);
    check("lb_external", &s);
}

#[test]
fn load_balancer_with_the_console_listener() {
    let mut s = opened();
    s.cluster.settings.console_lb = true;
    send(&mut s, [Action::GoTo(Screen::LoadBalancer)]);
    check("lb_external_console", &s);
    send(&mut s, [Action::Toggle]);
    check("lb_built_in_console", &s);
}

#[test]
fn load_balancer_editing_with_a_finding() {
    let mut s = opened();
    edit_lb_field(&mut s, 1, "192.168.0.3");
    check("lb_editing_finding", &s);
}

#[test]
fn load_balancer_built_in() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::LoadBalancer), Action::Toggle]);
    check("lb_built_in", &s);
}

#[test]
fn review_with_a_diff() {
    let mut s = opened();
    edit_lb_field(&mut s, 1, "192.168.0.250");
    send(
        &mut s,
        [
            Action::Confirm,
            Action::GoTo(Screen::Roles),
            Action::Down,
            Action::Down,
        ],
    );
    send(
        &mut s,
        [Action::Right, Action::Toggle, Action::GoTo(Screen::Review)],
    );
    check("review_diff", &s);
}

#[test]
fn review_with_findings_after_a_refused_write() {
    let mut s = opened();
    send(
        &mut s,
        [Action::GoTo(Screen::Roles), Action::Left, Action::Toggle],
    );
    send(&mut s, [Action::GoTo(Screen::Review), Action::Save]);
    check("review_findings", &s);
}

#[test]
fn review_without_changes() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::Review)]);
    check("review_clean", &s);
}

#[test]
fn help_overlay() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::Roles), Action::Help]);
    check("help", &s);
}

#[test]
fn quit_question() {
    let mut s = opened();
    send(&mut s, [Action::Delete, Action::Answer(true), Action::Quit]);
    check("quit_confirm", &s);
}

#[test]
fn too_small() {
    let s = opened();
    for (w, h) in [(79, 24), (60, 20)] {
        insta::assert_snapshot!(format!("too_small_{w}x{h}"), draw(&s, w, h));
    }
}

#[test]
fn no_color_renders_every_cell_without_colour() {
    let mut s = opened();
    send(
        &mut s,
        [Action::GoTo(Screen::Roles), Action::Left, Action::Toggle],
    );
    // State still shows, as symbols and words.
    let text = monochrome(s);
    assert!(text.contains("✗ error"), "{text}");
}

/// `state` drawn at 80×24 with the `NO_COLOR` theme, checked to use no colour at all; its text.
fn monochrome(mut state: State) -> String {
    state.theme = crate::tui::theme::Theme::monochrome();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| view::render(f, &state)).unwrap();
    let buffer = terminal.backend().buffer();
    assert!(buffer.content.iter().all(|c| {
        use ratatui::style::Color::Reset;
        c.fg == Reset && c.bg == Reset
    }));
    terminal.backend().to_string()
}

/// Every node through the first steps of the bundled plan: node2 fails container-runtime,
/// master1 is installing packages, the others wait for it at the etcd barrier or still run.
fn mid_install() -> State {
    let mut s = planned();
    // The clock: the install began at t0; its last steps started then too; now t0 + 12.
    let t0: u64 = 1_800_000_000;
    // No earlier run in the journal; the plan's timeouts.
    let plan = crate::engine::paths::load_plan(std::path::Path::new(crate::engine::paths::BUNDLED))
        .unwrap();
    send(
        &mut s,
        [
            Action::Tick(t0),
            Action::History {
                history: crate::engine::eta::History::default(),
                timeouts: plan
                    .steps
                    .iter()
                    .map(|s| (s.id.clone(), s.timeout))
                    .collect(),
            },
        ],
    );
    let nodes = ["master1", "master2", "master3", "node1", "node2", "node3"];
    for (i, node) in nodes.iter().enumerate() {
        let ms = 900 + 100 * i as u64;
        engine(
            &mut s,
            [
                Event::Preflight {
                    node: node.to_string(),
                    status: Level::Ok,
                    checks: vec![
                        Check::new("swap", Level::Ok, "off", ""),
                        Check::new("ports", Level::Ok, "10250 30880 free", ""),
                    ],
                    facts: std::collections::BTreeMap::new(),
                },
                started(node, "os-prep"),
                output(node, "os-prep", "net.ipv4.ip_forward = 1"),
                output(node, "os-prep", "loaded modules overlay br_netfilter"),
                finished(node, "os-prep", Status::Ok, 2 * ms),
                started(node, "container-runtime"),
                output(node, "container-runtime", "fetching containerd 1.7"),
            ],
        );
    }
    engine(
        &mut s,
        [
            output(
                "node2",
                "container-runtime",
                "E: Unable to fetch containerd.io",
            ),
            finished("node2", "container-runtime", Status::Failed, 4100),
        ],
    );
    for node in ["node2"; 2] {
        engine(
            &mut s,
            [Event::Finished {
                node: node.into(),
                step: "kube-packages".into(),
                status: Status::Skipped,
                elapsed_ms: 0,
                reason: Some("an earlier step failed".into()),
            }],
        );
    }
    for node in ["master1", "master2", "master3", "node1"] {
        engine(
            &mut s,
            [
                finished(node, "container-runtime", Status::Ok, 5200),
                started(node, "kube-packages"),
                output(node, "kube-packages", "kubeadm v1.29.3 kubelet kubectl"),
            ],
        );
    }
    engine(
        &mut s,
        [
            finished("master2", "kube-packages", Status::Ok, 3100),
            finished("master3", "kube-packages", Status::Ok, 3300),
        ],
    );
    send(&mut s, [Action::Tick(t0 + 12)]);
    send(&mut s, [Action::LbProbed(Box::new(lb(false)))]);
    s
}

#[test]
fn install_in_progress() {
    let mut s = mid_install();
    check("install_running", &s);
    // The failed node's log, scrolled back to its start.
    send(&mut s, std::iter::repeat_n(Action::Down, 4));
    send(&mut s, [Action::PageUp]);
    check("install_failed_node", &s);
}

#[test]
fn install_with_the_built_in_lb_shows_the_vip_and_each_haproxy() {
    let mut s = mid_install();
    send(&mut s, [Action::LbProbed(Box::new(lb_built_in()))]);
    check("install_built_in_lb", &s);
}

/// The verify step's output on master1 as the bundled step prints it: its checks, then
/// `kubectl get nodes`.
fn verified(s: &mut State) {
    let mut lines = vec![
        "ok    apiserver 192.168.0.1:6443 /readyz".to_string(),
        "ok    6 of 6 nodes Ready".to_string(),
        "NAME      STATUS   ROLES           AGE   VERSION".to_string(),
    ];
    for (n, r) in [
        ("master1", "control-plane"),
        ("master2", "control-plane"),
        ("master3", "control-plane"),
        ("node1", "<none>"),
        ("node2", "<none>"),
        ("node3", "<none>"),
    ] {
        lines.push(format!("{n:<9} Ready    {r:<15} 4m    v1.29.3"));
    }
    lines.push("verified".into());
    engine(s, lines.iter().map(|l| output("master1", "verify", l)));
}

#[test]
fn install_done() {
    let mut s = planned();
    verified(&mut s);
    let summary = Summary {
        ok: 44,
        elapsed_ms: 312_400,
        ..Summary::default()
    };
    send(
        &mut s,
        [
            Action::LbProbed(Box::new(lb(true))),
            Action::InstallEnded(Ok(summary)),
        ],
    );
    check("done", &s);
    // The rest, scrolled to.
    send(&mut s, std::iter::repeat_n(Action::Down, 12));
    check("done_scrolled", &s);
}

/// `/` types "etcd", Enter finds the newest match, `[` the one before: the pane's bottom line.
#[test]
fn install_log_search() {
    let mut s = mid_install();
    engine(
        &mut s,
        (0..30).map(|i| {
            let line = match i % 10 {
                3 => format!("waiting for etcd endpoint {i}"),
                _ => format!("unpacking layer {i} of 30"),
            };
            output("master1", "kube-packages", &line)
        }),
    );
    send(&mut s, [Action::SearchLog]);
    type_text(&mut s, "ETCD");
    check("install_log_search_typing", &s);
    send(&mut s, [Action::Confirm, Action::NextMatch(true)]);
    check("install_log_search", &s);
    // The match is highlighted in the cells themselves (reversed: NO_COLOR shows it too).
    let mut terminal = ratatui::Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal.draw(|f| view::render(f, &s)).unwrap();
    let buffer = terminal.backend().buffer();
    let reversed: String = buffer
        .content
        .iter()
        .filter(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED))
        .map(ratatui::buffer::Cell::symbol)
        .collect();
    assert!(reversed.contains("etcd"), "{reversed}");
}

/// `L`: the selected node's step's whole log, read from the taskbox, searched and moved
/// sideways past a long line.
#[test]
fn install_full_log() {
    let mut s = mid_install();
    let effects = crate::tui::update::update(&mut s, Action::FullLog);
    let Some(crate::tui::action::Effect::ReadLog(path)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        path,
        std::path::Path::new(
            "/home/op/.kswizard/logs/20261123-020521-4f2a/master1/kube-packages.log"
        )
    );
    let mut lines = vec!["kswizard: kube-packages attempt 1 on master1".to_string()];
    lines.extend((1..=60).map(|i| format!("Get:{i} http://deb.example/pool kubelet-part-{i}")));
    lines.push(format!("{} the end of a very long line", "x".repeat(150)));
    send(
        &mut s,
        [Action::LogRead {
            path: path.clone(),
            lines: Ok(lines),
        }],
    );
    check("install_full_log", &s);
    send(&mut s, [Action::SearchLog]);
    type_text(&mut s, "part-42");
    send(&mut s, [Action::Confirm]);
    check("install_full_log_search", &s);
    send(
        &mut s,
        [Action::PageDown, Action::PageDown, Action::PageDown],
    );
    send(&mut s, std::iter::repeat_n(Action::Right, 9));
    check("install_full_log_sideways", &s);
    send(&mut s, [Action::Back]);
    assert!(s.install.as_ref().unwrap().full.is_none());
    assert_eq!(s.screen, Screen::Install);
}

/// `F`: only the failed nodes, with the count.
#[test]
fn install_filter() {
    let mut s = mid_install();
    send(&mut s, [Action::FilterNodes]);
    check("install_filter_failed", &s);
    send(&mut s, [Action::FilterNodes]);
    check("install_filter_running", &s);
}

#[test]
fn install_with_the_console_listener_shows_it_and_its_backends() {
    let mut s = mid_install();
    s.install.as_mut().unwrap().cluster.settings.console_lb = true;
    send(
        &mut s,
        [Action::LbProbed(Box::new(with_console(lb_built_in(), 0)))],
    );
    check("install_console_lb", &s);
}

#[test]
fn install_done_with_the_console_listener() {
    let mut s = planned();
    verified(&mut s);
    s.install.as_mut().unwrap().cluster.settings.console_lb = true;
    let summary = Summary {
        ok: 48,
        elapsed_ms: 340_100,
        ..Summary::default()
    };
    send(
        &mut s,
        [
            Action::LbProbed(Box::new(with_console(lb(true), 6))),
            Action::InstallEnded(Ok(summary)),
        ],
    );
    check("done_console_lb", &s);
}

#[test]
fn quit_question_during_an_install() {
    let (mut s, _) = installing();
    send(&mut s, [Action::Quit]);
    check("install_quit", &s);
}

#[test]
fn install_with_the_log_full_width() {
    let mut s = mid_install();
    send(&mut s, [Action::WideLog]);
    check("install_wide_log", &s);
}

#[test]
fn install_question_on_a_complete_install() {
    let mut s = opened();
    send(
        &mut s,
        [
            Action::GoTo(Screen::Review),
            Action::Install,
            Action::InstallPreviewed(Ok(Box::new(crate::engine::executor::Preview {
                mode: crate::engine::decide::Mode::Fresh,
                complete: true,
                steps: 44,
                nodes: 6,
                done: 0,
                changed: vec![
                    ("master1".into(), "os-prep".into()),
                    ("node1".into(), "os-prep".into()),
                ],
                day2: Vec::new(),
            }))),
        ],
    );
    check("install_question_complete", &s);
}

#[test]
fn no_color_install_shows_state_in_symbols_and_words() {
    let text = monochrome(mid_install());
    for word in [
        "✗ failed",
        "» running",
        "· waiting",
        "✗ frontend",
        "✗ master1",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
}
