//! Done: what the install built and how to reach it: hosts by role, then `engine::reach` (the
//! admin kubeconfig and how to copy it, `kubectl get nodes` as the verify step saw it, the LB and
//! its backends, the etcd endpoints and the files that reach them, the `KubeSphere` console when
//! the plan installs it, where the steps' logs are), the console listener and the LB as last
//! probed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::Host;
use crate::tui::state::State;
use crate::tui::theme::SYM_OK;
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::wrap_words;

pub const PURPOSE: &str = "The cluster is installed: what was built and where to find it.";

pub fn hints(state: &State) -> Vec<Hint> {
    let mut hints = vec![("↑↓", "scroll"), ("Esc", "Review")];
    hints.extend(super::ops::hint(state));
    hints
}

fn names<'a>(hosts: impl Iterator<Item = &'a Host>) -> String {
    let names: Vec<&str> = hosts.map(|h| h.name.as_str()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The label column's width.
const LABEL: usize = 16;

fn field(label: &str, value: String, state: &State) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("  {label:<LABEL$} "), state.theme.key),
        Span::raw(value),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let Some(install) = &state.install else {
        return;
    };
    let c = &install.cluster;
    let theme = &state.theme;
    let mut lines = vec![Line::raw("")];
    if let Some(s) = &install.summary {
        lines.push(Line::styled(
            format!(
                "  {SYM_OK} Installed on {} hosts: {} steps ran, {} were already done, in {:.1}s.",
                c.hosts.len(),
                s.ok,
                s.already_done,
                s.elapsed_ms as f64 / 1000.0
            ),
            theme.ok,
        ));
        // A resumed install took longer than its last run: say so.
        if s.install_elapsed_s > s.elapsed_ms / 1000 + 1 {
            lines.push(Line::raw(format!("    {}", crate::tui::update::took(s))));
        }
        lines.push(Line::raw(""));
    }
    lines.push(field("masters", names(c.masters()), state));
    lines.push(field("workers", names(c.workers()), state));
    lines.push(field("etcd hosts", names(c.etcd()), state));
    lines.push(Line::raw(""));
    lines.push(Line::styled("  How to reach the cluster", theme.key));
    let reach = crate::engine::reach::lines(
        c,
        install.kubesphere,
        &install.nodes_table.lines,
        install.logs.as_deref(),
    );
    // Values wrap under themselves, the label column kept clear.
    let room = usize::from(area.width).saturating_sub(LABEL + 3).max(20);
    for (label, value) in reach {
        for (i, piece) in wrap_words(&value, room).into_iter().enumerate() {
            lines.push(field(if i == 0 { &label } else { "" }, piece, state));
        }
    }
    let indent = |l: Line<'static>| {
        let mut spans = vec![Span::raw("    ")];
        spans.extend(l.spans);
        Line::from(spans).style(l.style)
    };
    // The console listener as last probed (its URL is above).
    if install.kubesphere && c.settings.console_lb {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "  KubeSphere console through the LB",
            theme.key,
        ));
        lines.extend(
            super::install::console_lines(c, install.lb.as_ref(), theme)
                .into_iter()
                .skip(1)
                .map(indent),
        );
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("  Load balancer, last probe", theme.key));
    lines.extend(
        super::install::lb_lines(install.lb.as_ref(), theme)
            .into_iter()
            .map(indent),
    );
    // Longer than the screen with many nodes: ↑↓ scroll it.
    let top = install
        .done_top
        .min(lines.len().saturating_sub(usize::from(area.height)));
    let top = u16::try_from(top).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((top, 0)),
        area,
    );
}
