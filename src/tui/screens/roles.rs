//! Roles: host × {master, worker, etcd}, with the findings next to the hosts they concern and the
//! etcd quorum arithmetic spelled out.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};

use crate::tui::state::{Screen, State};
use crate::tui::theme::{SYM_ERROR, SYM_OK, SYM_SELECTED, Theme};
use crate::tui::update::ROLE_COLUMNS;
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::{findings, panel, table, table_and_notes, visible};

pub const PURPOSE: &str =
    "Which hosts run the control plane (master), workloads (worker) and etcd.";

pub fn hints(_: &State) -> Vec<Hint> {
    vec![
        ("↑↓", "host"),
        // Tab moves like →; said in the help, left out here so the footer fits 80 columns.
        ("←→", "role"),
        ("space", "toggle"),
        ("p", "preset"),
        ("t", "etcd"),
        ("Enter", "next"),
    ]
}

/// etcd needs a majority: n members tolerate (n-1)/2 failures, so an even count buys nothing.
pub fn quorum_line(etcd: usize, theme: &Theme) -> Line<'static> {
    match etcd {
        0 => Line::styled(
            format!("{SYM_ERROR} etcd: no hosts — give the etcd role to 1 or 3 masters"),
            theme.error,
        ),
        n if n % 2 == 0 => Line::styled(
            format!(
                "{SYM_ERROR} etcd: {n} hosts — needs an odd count; {} tolerate {} failure{}, {} tolerate {}",
                n - 1,
                (n - 2) / 2,
                if (n - 2) / 2 == 1 { "" } else { "s" },
                n + 1,
                n / 2
            ),
            theme.error,
        ),
        n => Line::styled(
            format!(
                "{SYM_OK} etcd: {n} host{} — quorum {}, tolerates {} failure{}",
                if n == 1 { "" } else { "s" },
                n / 2 + 1,
                (n - 1) / 2,
                if (n - 1) / 2 == 1 { "" } else { "s" }
            ),
            theme.ok,
        ),
    }
}

fn check(on: bool) -> &'static str {
    if on { "[x]" } else { "[ ]" }
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let hosts = &state.cluster.hosts;
    let topology = state.cluster.settings.etcd_topology;
    let mut notes = vec![quorum_line(state.cluster.etcd().count(), theme)];
    notes.extend(findings::lines(state.findings_for(Screen::Roles), theme));
    // After the findings: on a small terminal they matter more (switching also says it below).
    notes.push(Line::from(format!(
        "etcd topology (t) {}",
        topology.trade_off()
    )));
    let [table_area, notes_area] = table_and_notes(area, hosts.len(), &notes);

    let rows_height = table_area.height.saturating_sub(3) as usize;
    let rows = visible(state.role_row, hosts.len(), rows_height).map(|i| {
        let h = &hosts[i];
        let selected = i == state.role_row;
        let flags = [h.roles.master, h.roles.worker, h.roles.etcd];
        let mut cells = vec![
            Cell::from(if selected { SYM_SELECTED } else { " " }),
            Cell::from(h.name.clone()),
            Cell::from(h.node_ip().to_string()),
        ];
        cells.extend(flags.iter().enumerate().map(|(col, &on)| {
            let text = if selected && col == state.role_col {
                format!(">{}<", check(on))
            } else {
                format!(" {} ", check(on))
            };
            let cell = Cell::from(text);
            if selected && col == state.role_col {
                cell.style(theme.selected)
            } else {
                cell
            }
        }));
        cells.push(Cell::from(findings::host_note(
            state.findings(),
            &h.name,
            theme,
        )));
        Row::new(cells)
    });
    let mut header = vec!["", "Host", "IP"];
    header.extend(ROLE_COLUMNS);
    header.push("Findings");
    let title = format!(
        "Roles: {} masters, {} workers, {} etcd",
        state.cluster.masters().count(),
        state.cluster.workers().count(),
        state.cluster.etcd().count()
    );
    let table = table(
        rows,
        &[
            Constraint::Length(1),
            Constraint::Length(14),
            Constraint::Length(15),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Min(10),
        ],
        header,
        &title,
        theme,
    );
    frame.render_widget(table, table_area);

    frame.render_widget(panel(notes, "Findings"), notes_area);
}
