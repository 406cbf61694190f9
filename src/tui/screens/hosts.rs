//! Hosts: the table of hosts with their address and how kswizard reaches them; add, edit, delete,
//! and bulk add from a range or from pasted hosts.ini lines.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};

use crate::model::{Auth, Host};
use crate::tui::state::{Screen, State};
use crate::tui::theme::{SYM_ERROR, SYM_OK, SYM_SELECTED};
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::{findings, panel, table, table_and_notes, visible};

pub const PURPOSE: &str =
    "The machines of the cluster and how kswizard reaches them (SSH or local).";

pub fn hints(state: &State) -> Vec<Hint> {
    // An installed host is not just deleted: it leaves the cluster first.
    let installed = state
        .cluster
        .hosts
        .get(state.host_selected)
        .is_some_and(|h| state.is_installed(&h.name));
    let mut hints = vec![
        ("a", "add"),
        ("r", "range"),
        ("i", "paste ini"),
        ("e", "edit"),
        ("d", if installed { "remove" } else { "delete" }),
        ("t", "test SSH"),
        ("Enter", "next"),
    ];
    hints.extend(super::ops::hint(state));
    hints
}

/// The Auth column: how, never the secret; a set password shows as a fixed run of dots so its
/// length does not leak either.
fn auth(h: &Host) -> String {
    match &h.auth {
        Auth::Local => "local".to_string(),
        Auth::Key { file: None } => "key".to_string(),
        Auth::Key { file: Some(f) } => format!("key {f}"),
        Auth::Password(_) => "password ••••••".to_string(),
    }
}

/// The selected host's SSH test (`t`): under way, its facts, or why it failed.
fn ssh_test_lines(state: &State) -> Vec<Line<'static>> {
    let theme = &state.theme;
    let Some(h) = state.cluster.hosts.get(state.host_selected) else {
        return Vec::new();
    };
    match state.ssh_tests.get(&h.name) {
        None => Vec::new(),
        Some(None) => vec![Line::styled(
            format!("… {}: testing SSH and sudo", h.name),
            theme.dim,
        )],
        Some(Some(Ok(f))) => vec![Line::styled(
            format!(
                "{SYM_OK} {}: SSH and sudo ok · {} · {} CPUs · {:.1} GiB memory · {:.1} GiB free on /",
                h.name,
                f.os,
                f.cpus,
                f.memory_mb as f64 / 1024.0,
                f.disk_free_mb as f64 / 1024.0
            ),
            theme.ok,
        )],
        Some(Some(Err(e))) => vec![Line::styled(format!("{SYM_ERROR} {e}"), theme.error)],
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let hosts = &state.cluster.hosts;
    let mut notes = ssh_test_lines(state);
    let notes_title = if notes.is_empty() {
        "Findings"
    } else {
        "SSH test and findings"
    };
    notes.extend(findings::lines(state.findings_for(Screen::Hosts), theme));
    let [table_area, notes_area] = table_and_notes(area, hosts.len(), &notes);

    if hosts.is_empty() {
        let empty = panel(
            vec![
                Line::raw(""),
                Line::raw("  No hosts yet. Press a to add one, r to add a range of addresses"),
                Line::raw(
                    "  (192.168.0.11-16 with prefix node gives node1 … node6), or i to paste",
                ),
                Line::raw("  host lines from a hosts.ini."),
            ],
            "Hosts",
        );
        frame.render_widget(empty, table_area);
    } else {
        let rows_height = table_area.height.saturating_sub(3) as usize;
        let rows = visible(state.host_selected, hosts.len(), rows_height).map(|i| {
            let h = &hosts[i];
            let selected = i == state.host_selected;
            let row = Row::new(vec![
                Cell::from(if selected { SYM_SELECTED } else { " " }),
                Cell::from(h.name.clone()),
                Cell::from(h.address.clone().unwrap_or_default()),
                Cell::from(h.ip.clone().unwrap_or_default()),
                Cell::from(h.user.clone().unwrap_or_else(|| "root".to_string())),
                Cell::from(auth(h)),
                Cell::from(if h.become_pass.is_some() {
                    "••••••"
                } else {
                    ""
                }),
                Cell::from(findings::host_note(state.findings(), &h.name, theme)),
            ]);
            if selected {
                row.style(theme.selected)
            } else {
                row
            }
        });
        let table = table(
            rows,
            &[
                Constraint::Length(1),
                Constraint::Length(12),
                Constraint::Length(15),
                Constraint::Length(15),
                Constraint::Length(8),
                Constraint::Length(15),
                Constraint::Length(6),
                Constraint::Min(10),
            ],
            vec![
                "", "Name", "Address", "IP", "User", "Auth", "Sudo", "Findings",
            ],
            &format!("Hosts ({})", hosts.len()),
            theme,
        );
        frame.render_widget(table, table_area);
    }
    if !notes.is_empty() {
        frame.render_widget(panel(notes, notes_title), notes_area);
    }
}
