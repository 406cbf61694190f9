//! Preflight: every node's checks as one table (node × check: ✓ ok, ! warning, ✗ failed, · not
//! made there), below it the failures and the warnings with their reasons and fixes, and what
//! happens next: the install waits for `c` after warnings, stops before any change after a
//! failure. Drawn from `Install::preflight` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::engine::preflight::{Level, Report};
use crate::tui::preflight::{Preflight, Stage};
use crate::tui::state::State;
use crate::tui::theme::Theme;
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::{boxed_height, panel, table};

pub const PURPOSE: &str = "Preflight checks every node before anything on it is changed.";

/// The widest node column; longer names are cut.
const NODE_WIDTH: usize = 20;
/// Room kept for the column that stands for the checks not shown ("+12 more").
const MORE_WIDTH: usize = 9;

pub fn hints(state: &State) -> Vec<Hint> {
    let mut hints = vec![("↑↓ PgUp/PgDn", "nodes"), ("←→", "checks")];
    let Some(install) = &state.install else {
        return hints;
    };
    if install.running && install.preflight.stage() == Stage::Waiting {
        hints.extend([("c", "continue anyway"), ("Esc", "stop")]);
    } else if !install.running {
        hints.extend([("i", "install again"), ("Esc", "Review")]);
    }
    hints
}

fn style(level: Level, theme: &Theme) -> ratatui::style::Style {
    match level {
        Level::Ok => theme.ok,
        Level::Warn => theme.warning,
        Level::Fail => theme.error,
    }
}

/// What happens now and which keys act, in a sentence or two.
fn message(p: &Preflight, running: bool) -> String {
    let (_, warned, _) = p.counts();
    match p.stage() {
        Stage::Running => format!(
            "Waiting for the nodes' reports: {} of {} in. No step runs before every node passes.",
            p.reports.len(),
            p.expected.max(p.reports.len())
        ),
        Stage::Passed => "Every check passed on every node: the install goes on.".into(),
        Stage::Waiting => format!(
            "Warnings on {warned} nodes, no failure. No step has run yet: c continues anyway, Esc stops here."
        ),
        Stage::Continued => "Continuing despite the warnings…".into(),
        Stage::Declined if running => "Stopping before any step: this run changes nothing.".into(),
        Stage::Declined => {
            "Stopped at your answer before any step: this run changed nothing. i runs preflight and the install again; Esc: back to Review.".into()
        }
        Stage::Failed if running => {
            "A check failed: the install stops before any step runs.".into()
        }
        Stage::Failed => "Stopped before any step: this run changed nothing. Fix what failed (each says how), then i runs preflight and the install again; Esc: back to Review.".into(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let Some(install) = &state.install else {
        return;
    };
    let p = &install.preflight;
    let theme = &state.theme;
    let (ok, warned, failed) = p.counts();
    let rows = p.rows();

    let text = message(p, install.running);
    let message_height = if text.chars().count() + 2 > usize::from(area.width) {
        2
    } else {
        1
    };
    let notes = [failed > 0, warned > 0].iter().filter(|&&b| b).count() as u16;
    // The table keeps at least half the body (all its rows when they fit); the notes the rest.
    let table_height = if notes == 0 {
        area.height.saturating_sub(message_height)
    } else {
        (rows.len() as u16 + 3).min(area.height / 2)
    };
    let [table_area, notes_area, message_area] = Layout::vertical([
        Constraint::Length(table_height),
        Constraint::Min(0),
        Constraint::Length(message_height),
    ])
    .areas(area);

    // Nodes: the window from `top`, kept full at the end.
    let height = usize::from(table_height.saturating_sub(3)).max(1);
    let start = p.top.min(rows.len().saturating_sub(height));
    let shown = &rows[start..(start + height).min(rows.len())];

    let title = format!(
        "Preflight: {} of {} nodes · ✗ {failed} failed · ! {warned} warned · ✓ {ok} ok",
        p.reports.len(),
        p.expected.max(p.reports.len())
    );
    grid(frame, table_area, p, shown, &title, theme);

    // Failures above warnings, each from the first node shown on: scrolling the table scrolls
    // them too (500 nodes' reasons never fit at once). Each box as tall as its lines need; when
    // both cannot have that, the failures get up to 60%.
    let room = usize::from(notes_area.height);
    let boxes: Vec<(String, Vec<Line>)> = [(Level::Fail, "Failed"), (Level::Warn, "Warnings")]
        .into_iter()
        .map(|(l, t)| (l, t, p.nodes_with(l)))
        .filter(|(_, _, n)| *n > 0)
        .map(|(l, t, n)| {
            let title = format!("{t} on {n} nodes: reason and fix");
            (title, note_lines(p, l, start, room, theme))
        })
        .collect();
    let needs: Vec<u16> = boxes
        .iter()
        .map(|(_, lines)| boxed_height(lines, notes_area.width))
        .collect();
    let constraints: Vec<Constraint> = match needs[..] {
        [a, b] if a + b > notes_area.height => {
            let first = a
                .min(notes_area.height * 3 / 5)
                .max(notes_area.height.saturating_sub(b));
            vec![Constraint::Length(first), Constraint::Min(0)]
        }
        _ => needs
            .iter()
            .map(|&n| Constraint::Length(n))
            .chain([Constraint::Min(0)])
            .collect(),
    };
    let areas = Layout::vertical(constraints).split(notes_area);
    for ((title, lines), box_area) in boxes.into_iter().zip(areas.iter()) {
        frame.render_widget(panel(lines, &title), *box_area);
    }

    let style = match p.stage() {
        Stage::Failed => theme.error,
        Stage::Waiting => theme.warning,
        _ => theme.key,
    };
    frame.render_widget(
        Paragraph::new(Line::styled(text, style)).wrap(Wrap { trim: true }),
        message_area,
    );
}

/// The notes of a box: each check at `level` on the rows from `start` on, its nodes, reason and
/// fix; at most `room` lines (the box shows no more).
fn note_lines<'a>(
    p: &'a Preflight,
    level: Level,
    start: usize,
    room: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let notes = p.notes(level, start);
    if notes.is_empty() {
        return vec![Line::styled(
            "On nodes above the ones shown: PgUp / ↑ scrolls back to them.",
            theme.dim,
        )];
    }
    notes
        .into_iter()
        .flat_map(|n| {
            let c = n.check;
            let mut l = vec![Line::from(vec![
                Span::styled(
                    format!("{} {} on {}", level.symbol(), c.id, nodes(&n.nodes)),
                    style(level, theme),
                ),
                Span::raw(format!(": {}", c.reason)),
            ])];
            if !c.fix.is_empty() {
                l.push(Line::styled(format!("    fix: {}", c.fix), theme.dim));
            }
            l
        })
        .take(room)
        .collect()
}

/// The node × check table: the check columns that fit from `p.left` on (those not ok somewhere
/// come first), and one column for the checks not shown with each node's worst among them.
fn grid(
    frame: &mut Frame,
    area: Rect,
    p: &Preflight,
    shown: &[&Report],
    title: &str,
    theme: &Theme,
) {
    let columns = p.columns();
    let node_width = p
        .reports
        .iter()
        .map(|r| r.node.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4)
        .min(NODE_WIDTH);
    // Inside the borders, the column spacing (1) included.
    let mut room = usize::from(area.width.saturating_sub(2)).saturating_sub(node_width + 1);
    let left = p.left.min(columns.len().saturating_sub(1));
    let mut visible = Vec::new();
    for (i, (id, _)) in columns.iter().enumerate().skip(left) {
        let w = id.chars().count().max(1) + 1;
        // The last column needs no room kept for "+N more".
        let keep = if i + 1 == columns.len() {
            0
        } else {
            MORE_WIDTH
        };
        if w + keep > room {
            break;
        }
        room -= w;
        visible.push(i);
    }
    let hidden: Vec<usize> = (0..columns.len())
        .filter(|i| !visible.contains(i))
        .collect();

    let mut header: Vec<String> = vec!["node".into()];
    header.extend(visible.iter().map(|&i| columns[i].0.to_string()));
    let mut widths = vec![Constraint::Length(node_width as u16)];
    widths.extend(
        visible
            .iter()
            .map(|&i| Constraint::Length(columns[i].0.chars().count().max(1) as u16)),
    );
    if !hidden.is_empty() {
        header.push(format!("+{} more", hidden.len()));
        widths.push(Constraint::Length(MORE_WIDTH as u16));
    }
    let cell = |r: &Report, id: &str| -> Span<'static> {
        match r.checks.iter().find(|c| c.id == id) {
            Some(c) => Span::styled(c.level.symbol(), style(c.level, theme)),
            None => Span::styled("·", theme.dim),
        }
    };
    let body = shown.iter().map(|r| {
        let mut cells: Vec<Line> = vec![Line::raw(cut(&r.node, node_width))];
        cells.extend(visible.iter().map(|&i| Line::from(cell(r, columns[i].0))));
        if !hidden.is_empty() {
            let worst = hidden
                .iter()
                .filter_map(|&i| r.checks.iter().find(|c| c.id == columns[i].0))
                .map(|c| c.level)
                .max();
            cells.push(Line::from(match worst {
                Some(l) => Span::styled(l.symbol(), style(l, theme)),
                None => Span::styled("·", theme.dim),
            }));
        }
        Row::new(cells)
    });
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    frame.render_widget(table(body, &widths, header, title, theme), area);
}

/// "node1", "node1, node2, node3", "node1, node2, node3 and 12 more".
fn nodes(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let list = names[..names.len().min(SHOWN)].join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => list,
        more => format!("{list} and {more} more"),
    }
}

/// At most `n` characters of `s`, the last one an ellipsis when cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}
