//! Review: a summary per section (Enter jumps there), every finding, how the cluster differs
//! from the installed one (when one is) and what each difference will do, and the exact diff of
//! the files Ctrl-S would write.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use crate::model::{Auth, LbMode};
use crate::tui::diff::Kind;
use crate::tui::state::{REVIEW_SECTIONS, Screen, State};
use crate::tui::theme::{SYM_ERROR, SYM_OK, SYM_SELECTED, SYM_WARNING};
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::{boxed_height, changes, findings, panel};
use crate::validate::Severity;

pub const PURPOSE: &str =
    "Check the findings and the diff, write the files with Ctrl-s, then install (i).";

pub fn hints(state: &State) -> Vec<Hint> {
    let mut hints = vec![
        ("↑↓", "section"),
        ("Enter", "open"),
        ("PgUp/PgDn", "diff"),
        ("Ctrl-s", "write"),
        ("i", "install"),
    ];
    hints.extend(super::ops::hint(state));
    hints
}

fn summary(state: &State, screen: Screen) -> String {
    let c = &state.cluster;
    match screen {
        Screen::Hosts => {
            let count = |pick: fn(&Auth) -> bool| c.hosts.iter().filter(|h| pick(&h.auth)).count();
            format!(
                "{} hosts: {} local, {} key, {} password",
                c.hosts.len(),
                count(|a| *a == Auth::Local),
                count(|a| matches!(a, Auth::Key { .. })),
                count(|a| matches!(a, Auth::Password(_))),
            )
        }
        Screen::Roles => format!(
            "{} masters, {} workers, {} etcd",
            c.masters().count(),
            c.workers().count(),
            c.etcd().count()
        ),
        _ => match (&c.lb.address, c.lb.mode) {
            (_, LbMode::None) => "none".to_string(),
            (Some(a), m) => format!("{} {a}:{} {}", m.label(), c.lb.port, c.lb.domain),
            (None, m) => format!("{}, no address", m.label()),
        },
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let finding_lines = if state.findings().is_empty() {
        vec![Line::styled(format!("{SYM_OK} no findings"), theme.ok)]
    } else {
        findings::lines(state.findings(), theme)
    };
    let findings_height = boxed_height(&finding_lines, area.width).min(area.height / 3);
    // Against the installed cluster, when there is one: what differs and what each will do.
    let installed = state.installed().map(|i| {
        let lines = changes::lines(state.changes(), usize::from(area.width) - 2, theme);
        (changes::title(&i.install_id, state.changes()), lines)
    });
    let changes_height = installed
        .as_ref()
        .map_or(0, |(_, l)| boxed_height(l, area.width).min(area.height / 3));
    let [sections_area, findings_area, changes_area, diff_area] = Layout::vertical([
        Constraint::Length(REVIEW_SECTIONS.len() as u16 + 2),
        Constraint::Length(findings_height),
        Constraint::Length(changes_height),
        Constraint::Min(3),
    ])
    .areas(area);

    let sections: Vec<Line> = REVIEW_SECTIONS
        .iter()
        .enumerate()
        .map(|(i, &screen)| {
            let selected = i == state.review_selected;
            let mine: Vec<_> = state.findings_for(screen).collect();
            let errors = mine
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let verdict = match (errors, mine.len() - errors) {
                (0, 0) => Span::styled(format!("{SYM_OK} ok"), theme.ok),
                (0, w) => Span::styled(format!("{SYM_WARNING} {w} warning"), theme.warning),
                (e, _) => Span::styled(format!("{SYM_ERROR} {e} error"), theme.error),
            };
            Line::from(vec![
                Span::raw(if selected {
                    format!(" {SYM_SELECTED} ")
                } else {
                    "   ".into()
                }),
                Span::styled(
                    format!("{:<14}", screen.title()),
                    if selected { theme.selected } else { theme.key },
                ),
                verdict,
                Span::raw(format!("  {}", summary(state, screen))),
            ])
        })
        .collect();
    frame.render_widget(panel(sections, "Sections"), sections_area);
    let title = format!("Findings ({})", state.findings().len());
    frame.render_widget(panel(finding_lines, &title), findings_area);
    if let Some((title, lines)) = installed {
        frame.render_widget(panel(lines, &title), changes_area);
    }

    let diff_lines: Vec<Line> = match (&state.disk, state.diffs()) {
        // No diff against a file kswizard could not read: it would look like a new file.
        (Some(Err(e)), _) => vec![
            Line::styled(format!("{SYM_ERROR} {e}"), theme.error),
            Line::raw(
                "kswizard writes nothing over a file it cannot read: fix it (or move it away), then start kswizard again.",
            ),
        ],
        (_, Err(e)) => vec![Line::styled(
            format!("{SYM_ERROR} cannot render the files: {e}"),
            theme.error,
        )],
        (_, Ok(files)) if files.iter().all(|f| f.lines.is_empty()) => vec![Line::styled(
            format!("{SYM_OK} no changes: the files on disk already say this"),
            theme.ok,
        )],
        (_, Ok(files)) => files
            .iter()
            .flat_map(|f| f.lines.iter())
            .skip(state.diff_scroll)
            .take(diff_area.height as usize)
            .map(|l| {
                let style = match l.kind {
                    Kind::Header => theme.header,
                    Kind::Added => theme.added,
                    Kind::Removed => theme.removed,
                    Kind::Context => theme.dim,
                };
                Line::styled(l.text.clone(), style)
            })
            .collect(),
    };
    frame.render_widget(panel(diff_lines, "Changes to write"), diff_area);
}
