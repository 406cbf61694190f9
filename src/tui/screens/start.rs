//! Start: open the files found in the conf directory, or start a new cluster. An install started
//! from there is shown with its progress; `i` on Review (or `kswizard install --resume`) resumes
//! it. Once a cluster is installed, how the conf differs from it and what each difference does,
//! and any day-2 operation that did not end, with how to go on with it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::engine::installed;
use crate::tui::state::{Disk, StartChoice, State};
use crate::tui::theme::{SYM_ERROR, SYM_SELECTED, SYM_WARNING, Theme};
use crate::tui::widgets::changes;
use crate::tui::widgets::chrome::Hint;

pub const PURPOSE: &str = "Open the cluster described in the conf directory, or start a new one.";

pub fn hints(_: &State) -> Vec<Hint> {
    vec![("↑↓", "choose"), ("Enter", "open")]
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let dir = state.conf_dir.display();
    let mut lines = vec![Line::raw(""), Line::raw(format!("  Conf directory: {dir}"))];
    let found = match &state.disk {
        None => Line::styled("  Reading…", theme.dim),
        Some(Err(e)) => Line::styled(format!("  {SYM_ERROR} {e}"), theme.error),
        Some(Ok(disk)) => {
            let mut names: Vec<String> = Vec::new();
            if let Some(c) = &disk.cluster {
                names.push(format!(
                    "hosts.ini ({} host{})",
                    c.hosts.len(),
                    if c.hosts.len() == 1 { "" } else { "s" }
                ));
            }
            names.extend(
                disk.files
                    .iter()
                    .filter(|(n, _)| n != crate::conf::HOSTS_INI)
                    .map(|(n, _)| n.clone()),
            );
            if names.is_empty() {
                Line::raw("  No files there yet: kswizard will create them.")
            } else {
                Line::raw(format!("  Found: {}", names.join(", ")))
            }
        }
    };
    lines.push(found);
    if let Some(Ok(disk)) = &state.disk
        && let Some((unfinished, progress)) = &disk.install
    {
        if *unfinished {
            lines.push(Line::styled(
                format!("  {SYM_WARNING} Unfinished install: {progress}"),
                theme.warning,
            ));
            lines.push(Line::raw("    go on with Open, then i on Review, or"));
            lines.push(Line::raw(format!(
                "    `kswizard install --resume --conf {dir}`"
            )));
        } else {
            lines.push(Line::raw(format!("  Last install: {progress}")));
        }
    }
    if let Some(Ok(disk)) = &state.disk {
        lines.extend(unfinished(disk, theme));
    }
    lines.push(Line::raw(""));
    for (i, choice) in state.start_choices().into_iter().enumerate() {
        let selected = i == state.start_selected;
        let (title, detail) = match choice {
            StartChoice::Open => (
                format!("Open {dir}"),
                "edit the hosts, roles and load balancer found there (import)".to_string(),
            ),
            StartChoice::New => (
                "New cluster".to_string(),
                "start with no hosts; common.yaml keeps all but its LB lines".to_string(),
            ),
        };
        let marker = if selected { SYM_SELECTED } else { " " };
        let style = if selected { theme.selected } else { theme.key };
        lines.push(Line::from(vec![
            Span::raw(format!("  {marker} ")),
            Span::styled(title, style),
        ]));
        lines.push(Line::styled(format!("      {detail}"), theme.dim));
    }
    if let Some(Ok(disk)) = &state.disk {
        lines.extend(installed(disk, usize::from(area.width), theme));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// Day-2 operations that did not end: each goes on where it stopped, from the wizard or its
/// command.
fn unfinished(disk: &Disk, theme: &Theme) -> Vec<Line<'static>> {
    let found = match &disk.unfinished {
        Ok(found) => found,
        Err(e) => return vec![Line::styled(format!("  {SYM_ERROR} {e}"), theme.error)],
    };
    let mut lines = Vec::new();
    for u in found {
        lines.push(Line::styled(
            format!("  {SYM_WARNING} Unfinished {}", u.what()),
            theme.warning,
        ));
        // A removal goes on from its host's `d`; the others from their command (a reset of
        // some hosts is not one the Operations menu offers).
        lines.push(Line::raw(if u.operation == "remove" {
            "    go on with Open, then d on the host in Hosts, or"
        } else {
            "    go on with its command:"
        }));
        lines.push(Line::raw(format!("    `{}`", u.resume)));
    }
    lines
}

/// The installed cluster against the conf on disk: each difference and what it will do.
fn installed(disk: &Disk, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let record = match &disk.installed {
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![
                Line::raw(""),
                Line::styled(format!("  {SYM_ERROR} {e}"), theme.error),
            ];
        }
        Ok(Some(record)) => record,
    };
    let conf = disk.cluster.clone().unwrap_or_default();
    let diff = installed::diff(record, &conf);
    let mut lines = vec![
        Line::raw(""),
        Line::raw(format!("  {}", changes::title(&record.install_id, &diff))),
    ];
    lines.extend(
        changes::lines(&diff, width.saturating_sub(4), theme)
            .into_iter()
            .map(|mut l| {
                l.spans.insert(0, Span::raw("    "));
                l
            }),
    );
    lines
}
