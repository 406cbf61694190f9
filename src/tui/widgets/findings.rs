//! Findings as lines: severity as a symbol and a word (never colour alone), the code, the message,
//! and the fix.

use ratatui::text::{Line, Span};

use crate::tui::theme::{SYM_ERROR, SYM_WARNING, Theme};
use crate::validate::{Finding, Severity};

pub fn severity_span(severity: Severity, theme: &Theme) -> Span<'static> {
    match severity {
        Severity::Error => Span::styled(format!("{SYM_ERROR} error"), theme.error),
        Severity::Warning => Span::styled(format!("{SYM_WARNING} warning"), theme.warning),
    }
}

/// Two lines a finding: what is wrong, then the fix.
pub fn lines<'a>(
    findings: impl IntoIterator<Item = &'a Finding>,
    theme: &Theme,
) -> Vec<Line<'static>> {
    findings
        .into_iter()
        .flat_map(|f| {
            [
                Line::from(vec![
                    severity_span(f.severity, theme),
                    Span::styled(format!(" [{}] ", f.code), theme.key),
                    Span::raw(f.message.clone()),
                ]),
                Line::styled(format!("    fix: {}", f.hint), theme.dim),
            ]
        })
        .collect()
}

/// The findings that name `host`, as a short cell: the worst severity's symbol and the codes.
pub fn host_note(findings: &[Finding], host: &str, theme: &Theme) -> Span<'static> {
    let mine: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.hosts.iter().any(|h| h == host))
        .collect();
    let Some(worst) = mine.iter().map(|f| f.severity).min() else {
        return Span::raw("");
    };
    let codes: Vec<&str> = mine.iter().map(|f| f.code).collect();
    let (sym, style) = match worst {
        Severity::Error => (SYM_ERROR, theme.error),
        Severity::Warning => (SYM_WARNING, theme.warning),
    };
    Span::styled(format!("{sym} {}", codes.join(", ")), style)
}
