//! Done: what the install built and where to go next: hosts by role, the LB, the admin
//! kubeconfig on the first master, the `KubeSphere` console (any node's 30880, and with
//! `console_lb` the LB's console listener and its backends), and the LB as last probed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::{CONSOLE_PORT, Host};
use crate::tui::state::State;
use crate::tui::theme::SYM_OK;
use crate::tui::widgets::chrome::Hint;

pub const PURPOSE: &str = "The cluster is installed: what was built and where to find it.";

pub fn hints(_: &State) -> Vec<Hint> {
    vec![("Esc", "Review")]
}

fn names<'a>(hosts: impl Iterator<Item = &'a Host>) -> String {
    let names: Vec<&str> = hosts.map(|h| h.name.as_str()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn field(label: &str, value: String, state: &State) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("  {label:<18}"), state.theme.key),
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
    lines.push(field("etcd", names(c.etcd()), state));
    let lb = match (&c.lb.address, c.lb.is_configured()) {
        (Some(a), true) => format!(
            "{a}:{}  {}  ({})",
            c.lb.port,
            c.lb.domain,
            c.lb.mode.label()
        ),
        _ => "none".into(),
    };
    lines.push(field("load balancer", lb, state));
    if let Some(first) = c.masters().next() {
        lines.push(field(
            "admin kubeconfig",
            format!(
                "/etc/kubernetes/admin.conf on {} ({})",
                first.name,
                first.node_ip()
            ),
            state,
        ));
    }
    let indent = |l: Line<'static>| {
        let mut spans = vec![Span::raw("    ")];
        spans.extend(l.spans);
        Line::from(spans).style(l.style)
    };
    lines.push(Line::raw(""));
    lines.push(Line::styled("  KubeSphere console", theme.key));
    lines.extend(
        super::install::console_lines(c, install.lb.as_ref(), theme)
            .into_iter()
            .map(indent),
    );
    lines.push(Line::styled(
        format!("    (every node serves it on :{CONSOLE_PORT})"),
        theme.dim,
    ));
    lines.push(Line::raw(""));
    lines.push(Line::styled("  Load balancer, last probe", theme.key));
    lines.extend(
        super::install::lb_lines(install.lb.as_ref(), theme)
            .into_iter()
            .map(indent),
    );
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
