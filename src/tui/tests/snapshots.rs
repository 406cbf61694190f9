//! Every screen rendered at 80×24 and 120×40 into a `TestBackend`, compared as text with the
//! committed snapshots (`INSTA_UPDATE=always cargo test` rewrites them; review the .snap files).

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{edit_lb_field, loaded, opened, send, type_text};
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

fn check(name: &str, state: &State) {
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
fn hosts_with_an_ssh_test() {
    let mut s = opened();
    send(&mut s, [Action::Down]);
    let facts = crate::engine::events::Facts {
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        cpus: 4,
        memory_mb: 8192,
        disk_free_mb: 51200,
    };
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
fn load_balancer() {
    let mut s = opened();
    send(&mut s, [Action::GoTo(Screen::LoadBalancer)]);
    check("lb_external", &s);
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
    s.theme = crate::tui::theme::Theme::monochrome();
    send(
        &mut s,
        [Action::GoTo(Screen::Roles), Action::Left, Action::Toggle],
    );
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| view::render(f, &s)).unwrap();
    let buffer = terminal.backend().buffer();
    assert!(buffer.content.iter().all(|c| {
        use ratatui::style::Color::Reset;
        c.fg == Reset && c.bg == Reset
    }));
    // State still shows, as symbols and words.
    let text = terminal.backend().to_string();
    assert!(text.contains("✗ error"), "{text}");
}
