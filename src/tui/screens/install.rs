//! Install: per-node progress, the overall count, the selected node's log and the LB as the
//! taskbox sees it (with `console_lb`, the console's listener and its backends too). Drawn from
//! `State::install` only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row};

use crate::lb_status::{LbStatus, ProbeState, short, short_vip};
use crate::model::{CONSOLE_PORT, Cluster};
use crate::tui::install::{Install, NodeState, ended_well};
use crate::tui::log_view::Filter;
use crate::tui::state::State;
use crate::tui::theme::{SYM_ERROR, SYM_OK, Theme};
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::{bar, table, visible};

pub const PURPOSE: &str =
    "The install runs on every node at once; ↑↓ picks the node whose log is shown.";

/// A day-2 operation's line: its plan runs on the nodes it concerns.
const OPERATION_PURPOSE: &str =
    "Its plan runs on the nodes it concerns; ↑↓ picks the node whose log is shown.";

pub fn purpose(state: &State) -> &'static str {
    match state.install.as_ref().and_then(|i| i.operation.as_ref()) {
        Some(_) => OPERATION_PURPOSE,
        None => PURPOSE,
    }
}

/// Width of the LB panel (frontend and backends with their addresses), on a wide terminal and at
/// 80 columns, where the log needs the room more.
const LB_WIDTH: u16 = 40;
const LB_WIDTH_NARROW: u16 = 30;

pub fn hints(state: &State) -> Vec<Hint> {
    if state.install.as_ref().is_some_and(|i| i.full.is_some()) {
        return super::log_view::full_hints();
    }
    let wide = state.install.as_ref().is_some_and(|i| i.wide_log);
    // A decision the install waits for first: a narrow footer keeps the first hints.
    let mut hints = crate::tui::decision::hints(state);
    hints.extend([("↑↓", "node"), ("PgUp/PgDn", "log")]);
    if state
        .install
        .as_ref()
        .is_some_and(|i| i.nodes.iter().any(|n| n.state() == NodeState::Failed))
    {
        hints.push(("n", "next failed"));
    }
    hints.push(("f", if wide { "log and LB" } else { "wide log" }));
    // An operation that ended well has nothing to resume.
    let finished_op = state.install.as_ref().is_some_and(|i| {
        i.operation.is_some()
            && i.summary
                .as_ref()
                .is_some_and(|s| ended_well(i.operation.as_ref(), s))
    });
    if !state.installing() && !finished_op {
        hints.push(("i", "resume"));
    }
    if !state.installing() {
        hints.push(("Esc", "Review"));
    }
    // Last: a narrow footer drops these first (help lists them all).
    hints.extend([("/", "find"), ("L", "step log"), ("F", "filter")]);
    // `[` `]` only once there is something found to move between.
    if state
        .install
        .as_ref()
        .and_then(|i| i.search.as_ref())
        .is_some_and(|s| s.active().is_some())
    {
        hints.push(("[ ]", "match"));
    }
    hints
}

fn state_style(s: NodeState, theme: &Theme) -> ratatui::style::Style {
    match s {
        NodeState::Done => theme.ok,
        NodeState::Failed => theme.error,
        NodeState::Running => theme.key,
        NodeState::Skipped => theme.warning,
        NodeState::Waiting => theme.dim,
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let Some(install) = &state.install else {
        return;
    };
    let theme = &state.theme;
    if let Some(full) = &install.full {
        super::log_view::render_full(frame, area, install, full, theme);
        return;
    }
    // The nodes the filter keeps (all of them, by default).
    let kept = install.shown();
    let table_height = (kept.len().max(1) as u16 + 3).min(area.height / 2);
    let [nodes_area, overall_area, bottom] = Layout::vertical([
        Constraint::Length(table_height),
        Constraint::Length(1),
        Constraint::Min(3),
    ])
    .areas(area);
    // The built-in LB's per-master view needs the full width; f gives the log all of it.
    let built_in = install.lb.as_ref().is_some_and(|l| l.built_in.is_some());
    let lb_width = match (install.wide_log, area.width >= 120 || built_in) {
        (true, _) => 0,
        (false, true) => LB_WIDTH,
        (false, false) => LB_WIDTH_NARROW,
    };
    let [log_area, lb_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(lb_width)]).areas(bottom);

    let at = kept
        .iter()
        .position(|&i| i == install.selected)
        .unwrap_or(0);
    let shown = visible(at, kept.len(), usize::from(table_height.saturating_sub(3)));
    let rows = kept[shown]
        .iter()
        .map(|&i| (&install.nodes[i], i))
        .map(|(n, i)| {
            let s = n.state();
            let step = match (&n.running, &n.failed, s) {
                // The running step's own clock (with its usual time and timeout once late).
                (Some(step), ..) => match install.step_clock(i) {
                    Some(clock) => format!("{step} {clock}"),
                    None => step.clone(),
                },
                // The row says why too; the log pane has it whole.
                (_, Some((step, why)), _) => format!("{step}: {why}"),
                (.., NodeState::Done) => "all done".into(),
                _ => n.steps.get(n.done).cloned().unwrap_or_default(),
            };
            let total = n.steps.len();
            let row = Row::new(vec![
                // The selected row is marked in a symbol too (NO_COLOR shows no highlight).
                Line::raw(if i == install.selected { "▶" } else { " " }),
                Line::styled(s.label(), state_style(s, theme)),
                Line::raw(n.name.clone()),
                Line::raw(short_roles(&n.roles)),
                Line::raw(step),
                Line::raw(format!("{}/{total}", n.done)),
                Line::raw(bar(n.done, total, 8)),
                Line::raw(format!("{:.1}s", n.elapsed_ms as f64 / 1000.0)),
            ]);
            if i == install.selected {
                row.style(theme.selected)
            } else {
                row
            }
        });
    let widths = [
        Constraint::Length(1),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(ROLES_WIDTH as u16),
        Constraint::Min(12),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(7),
    ];
    let header = vec!["", "state", "node", "roles", "step", "done", "", "time"];
    let mut title = match install.filter {
        // An operation's table leaves out the nodes without a step of it: say how many take part.
        Filter::All if kept.len() < install.nodes.len() => format!(
            "Nodes taking part: {} of {}",
            kept.len(),
            install.nodes.len()
        ),
        Filter::All => "Nodes".to_string(),
        f => format!(
            "Nodes: {} {} of {}",
            f.label(),
            kept.len(),
            install.nodes.len()
        ),
    };
    // The install's clock and ETA ride on the table's title: the overall line is full.
    let time = install.time_line();
    if !time.is_empty() {
        title = format!("{title} · {time}");
    }
    frame.render_widget(table(rows, &widths, header, &title, theme), nodes_area);
    frame.render_widget(Paragraph::new(overall(install, theme)), overall_area);

    let node = install.nodes.get(install.selected);
    let height = usize::from(log_area.height.saturating_sub(2));
    let width = usize::from(log_area.width.saturating_sub(2)).max(1);
    let query = install.search.as_ref().and_then(|s| s.active());
    let log: Vec<Line> = match node {
        Some(n) if !n.log.is_empty() => {
            // The pane stays full: scrolling back stops at the first page. Long lines wrap (a
            // failure's reason is read whole), wrapped here so the newest stays at the bottom.
            let end = n.log.len() - install.log_scroll.min(n.log.len());
            let start = end.saturating_sub(height);
            let rows: Vec<Line> = n
                .log
                .range(start..end.max((start + height).min(n.log.len())))
                .flat_map(|l| super::log_view::wrapped(l, width, query, theme))
                .collect();
            let keep = rows.len().saturating_sub(height);
            rows.into_iter().skip(keep).collect()
        }
        _ => vec![Line::styled("no output yet", theme.dim)],
    };
    let name = node.map_or("", |n| n.name.as_str());
    let title = match install.log_scroll {
        0 => format!(" Log: {name} "),
        _ => format!(" Log: {name}, scrolled back "),
    };
    let mut block = Block::bordered().title(title);
    if let Some(t) = super::log_view::search_title(install) {
        block = block.title_bottom(t);
    }
    frame.render_widget(Paragraph::new(log).block(block), log_area);
    if lb_width > 0 {
        let mut lines = lb_lines(install.lb.as_ref(), theme);
        // The console listener is the LB's too; without it the console is the Done screen's.
        if install.cluster.settings.console_lb {
            lines.push(Line::raw(""));
            lines.extend(console_lines(&install.cluster, install.lb.as_ref(), theme));
        }
        frame.render_widget(crate::tui::widgets::panel(lines, "Load balancer"), lb_area);
    }
}

/// The roles column's width: "master,etcd" whole; longer lists in short words.
const ROLES_WIDTH: usize = 12;

/// "master,worker,etcd" does not fit the column: "mst,wrk,etcd" does, and is never cut.
fn short_roles(roles: &str) -> String {
    if roles.len() <= ROLES_WIDTH {
        return roles.to_string();
    }
    roles
        .split(',')
        .map(|r| match r {
            "master" => "mst",
            "worker" => "wrk",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// "Overall ████░░░░ 12 of 36 steps", with failures and running steps counted after it.
fn overall(install: &Install, theme: &Theme) -> Line<'static> {
    let (done, total) = install.totals();
    let count = |s: NodeState| install.nodes.iter().filter(|n| n.state() == s).count();
    let mut spans = vec![
        Span::styled(" Overall ", theme.key),
        Span::raw(format!("{} {done} of {total} steps", bar(done, total, 20))),
    ];
    if install.already_done > 0 {
        spans.push(Span::raw(format!(
            " ({} already done)",
            install.already_done
        )));
    }
    let failed = count(NodeState::Failed);
    if failed > 0 {
        spans.push(Span::styled(
            format!("  {SYM_ERROR} {failed} node{} failed", plural(failed)),
            theme.error,
        ));
    }
    let running = count(NodeState::Running);
    if running > 0 {
        spans.push(Span::raw(format!("  » {running} running")));
    }
    Line::from(spans)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The LB as last probed: the frontend and each master's apiserver by HTTPS `/readyz`, in symbol
/// and word; with the built-in LB also which master holds the VIP and how many backends each
/// master's haproxy sees up.
pub fn lb_lines(lb: Option<&LbStatus>, theme: &Theme) -> Vec<Line<'static>> {
    let Some(lb) = lb else {
        return vec![Line::styled("· probing…", theme.dim)];
    };
    let mark = |up: bool| {
        if up {
            (SYM_OK, theme.ok)
        } else {
            (SYM_ERROR, theme.error)
        }
    };
    let mut lines = vec![match &lb.frontend {
        Some(f) => {
            let (sym, style) = mark(f.up);
            Line::from(vec![
                Span::styled(format!("{sym} frontend "), style),
                Span::raw(short(f, true)),
            ])
        }
        None => Line::styled("· no load balancer configured", theme.dim),
    }];
    let built_in = lb.built_in.as_ref();
    if built_in.is_some() {
        lines.push(Line::styled(
            format!("  {:<8} {:<15} VIP haproxy", "master", "apiserver"),
            theme.dim,
        ));
    }
    for b in &lb.backends {
        let (sym, style) = mark(b.up);
        let mut spans = vec![
            Span::styled(format!("{sym} {:<8} ", b.name), style),
            Span::raw(format!("{:<15}", short(b, false))),
        ];
        if let Some(view) = built_in.and_then(|v| v.masters.iter().find(|m| m.name == b.name)) {
            let vip = match view.holds_vip {
                Some(true) => "yes",
                Some(false) => "",
                None => "?",
            };
            let haproxy = if view.error.is_some() {
                "?".to_string()
            } else {
                let up = view.haproxy.iter().filter(|s| s.up).count();
                format!("{up}/{} up", view.haproxy.len())
            };
            spans.push(Span::raw(format!(" {vip:<3} {haproxy}")));
        }
        lines.push(Line::from(spans));
    }
    if let Some(v) = built_in {
        let style = if v.holders.len() == 1 {
            theme.ok
        } else {
            theme.error
        };
        lines.push(Line::styled(short_vip(v), style));
        if v.masters.iter().any(|m| m.error.is_some()) {
            lines.push(Line::styled(
                "? not asked: see kswizard lb status",
                theme.dim,
            ));
        }
    }
    if lb
        .backends
        .iter()
        .any(|b| b.state == ProbeState::NotListening)
    {
        lines.push(Line::styled(
            "Not listening: apiserver not started.",
            theme.dim,
        ));
    }
    lines
}

/// The `KubeSphere` console: its URL on any node, and with `console_lb` the LB's console listener
/// (its URL and last probe), how many nodes' `NodePort`s answer, and with the built-in LB how many
/// console backends each master's haproxy sees up.
pub fn console_lines(c: &Cluster, lb: Option<&LbStatus>, theme: &Theme) -> Vec<Line<'static>> {
    let Some(on_node) = c.console_url() else {
        return Vec::new();
    };
    let mut lines = vec![Line::raw(format!("console {on_node}"))];
    if !c.settings.console_lb {
        return lines;
    }
    let Some(url) = c.console_lb_url() else {
        lines.push(Line::styled(
            "✗ console_lb set, but no LB configured",
            theme.error,
        ));
        return lines;
    };
    let Some(console) = lb.and_then(|l| l.console.as_ref()) else {
        lines.push(Line::raw(format!("· via LB {url}")));
        return lines;
    };
    let (sym, style) = if console.listener.as_ref().is_some_and(|l| l.up) {
        (SYM_OK, theme.ok)
    } else {
        (SYM_ERROR, theme.error)
    };
    lines.push(Line::styled(format!("{sym} via LB {url}"), style));
    let up = console.nodes.iter().filter(|n| n.up).count();
    let (sym, style) = if up == console.nodes.len() {
        (SYM_OK, theme.ok)
    } else {
        (SYM_ERROR, theme.error)
    };
    lines.push(Line::styled(
        format!(
            "{sym} backends: {up}/{} nodes :{CONSOLE_PORT}",
            console.nodes.len()
        ),
        style,
    ));
    if let Some(b) = lb.and_then(|l| l.built_in.as_ref()) {
        let views: Vec<String> = b
            .masters
            .iter()
            .map(|m| {
                if m.error.is_some() {
                    format!("{} ?", m.name)
                } else {
                    let up = m.console.iter().filter(|s| s.up).count();
                    format!("{} {up}/{}", m.name, m.console.len())
                }
            })
            .collect();
        lines.push(Line::raw(format!("haproxy: {}", views.join(", "))));
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn roles_are_never_cut() {
        assert_eq!(super::short_roles("master,etcd"), "master,etcd");
        assert_eq!(super::short_roles("master,worker,etcd"), "mst,wrk,etcd");
        assert!(super::short_roles("master,worker,etcd").len() <= super::ROLES_WIDTH);
    }
}
