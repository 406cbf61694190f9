//! What frames every screen: the title bar with the screens, the line saying what the screen is
//! for, the status line, and the footer of key hints.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::install::Operation;
use crate::tui::state::{Screen, State, StatusKind};
use crate::tui::theme::{SYM_ERROR, SYM_OK, SYM_WARNING};

/// A key and what it does, for footers and the help overlay.
pub type Hint = (&'static str, &'static str);

pub fn title_bar(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    // Install and Done have no digit: they are reached by installing, and shown only then.
    // A day-2 operation names itself there instead ("Remove node3").
    let extra =
        (!Screen::ALL.contains(&state.screen)).then(|| match (&state.install, state.screen) {
            (Some(i), Screen::Install | Screen::Preflight) => i
                .operation
                .as_ref()
                .map_or_else(|| state.screen.title().to_string(), Operation::title),
            _ => state.screen.title().to_string(),
        });
    let tabs: usize = Screen::ALL.iter().map(|s| s.title().len() + 5).sum();
    let needed = 10 + tabs + extra.as_ref().map_or(0, |t| t.chars().count() + 3);
    // Too wide for the terminal: the other tabs lose their padding.
    let pad = if needed > usize::from(area.width) {
        ""
    } else {
        " "
    };
    let mut spans = vec![Span::styled(" kswizard ", theme.title)];
    for (i, screen) in Screen::ALL.iter().enumerate() {
        let label = format!("{} {}", i + 1, screen.title());
        spans.push(Span::raw(" "));
        if *screen == state.screen {
            spans.push(Span::styled(format!("[{label}]"), theme.selected));
        } else {
            spans.push(Span::styled(format!("{pad}{label}{pad}"), theme.dim));
        }
    }
    if let Some(title) = extra {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!("[{title}]"), theme.selected));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn purpose(frame: &mut Frame, area: Rect, text: &str, state: &State) {
    frame.render_widget(
        Paragraph::new(Line::styled(format!(" {text}"), state.theme.purpose)),
        area,
    );
}

/// The last status message on the left; where the files are, unsaved changes and the count of
/// findings on the right. The directory gives way first when the message needs the room.
pub fn status_line(frame: &mut Frame, area: Rect, state: &State) {
    let theme = &state.theme;
    let mut state_spans = Vec::new();
    if state.opened {
        // "saved" only when the files on disk say exactly what a write would: the same
        // comparison that lets `i` install.
        state_spans.push(if state.dirty() {
            Span::styled("● unsaved", theme.warning)
        } else if !state.written() {
            Span::styled("● files differ", theme.warning)
        } else {
            Span::styled("saved", theme.dim)
        });
        let errors = state.errors();
        let warnings = state.findings().len() - errors;
        state_spans.push(Span::raw(" · "));
        state_spans.push(match (errors, warnings) {
            (0, 0) => Span::styled(format!("{SYM_OK} no findings"), theme.ok),
            (0, w) => Span::styled(format!("{SYM_WARNING} {w} warn"), theme.warning),
            (e, w) => Span::styled(format!("{SYM_ERROR} {e} err {w} warn"), theme.error),
        });
        state_spans.push(Span::raw(" "));
    }
    let left = state.status.as_ref().map(|status| {
        let (sym, style) = match status.kind {
            StatusKind::Info => ("·", theme.purpose),
            StatusKind::Ok => (SYM_OK, theme.ok),
            StatusKind::Error => (SYM_ERROR, theme.error),
        };
        Line::styled(format!(" {sym} {}", status.text), style)
    });
    let left_width = left.as_ref().map_or(0, Line::width);
    let mut full = vec![Span::styled(
        format!("conf: {}", state.conf_dir.display()),
        theme.dim,
    )];
    if state.opened {
        full.push(Span::raw(" · "));
    }
    full.extend(state_spans.iter().cloned());
    let full = Line::from(full);
    let right = if left_width + full.width() < usize::from(area.width) {
        full
    } else {
        Line::from(state_spans)
    };
    let right_width = right.width() as u16;
    frame.render_widget(Paragraph::new(right).alignment(Alignment::Right), area);
    if let Some(left) = left {
        let left_area = Rect {
            width: area.width.saturating_sub(right_width + 1),
            ..area
        };
        frame.render_widget(Paragraph::new(left), left_area);
    }
}

pub fn footer(frame: &mut Frame, area: Rect, hints: &[Hint], state: &State) {
    // Too many for the width: the screen's last hints go, never the last two (help, quit);
    // the help overlay lists them all.
    let width = |h: &[Hint]| {
        1 + h
            .iter()
            .map(|(k, w)| k.chars().count() + w.chars().count() + 3)
            .sum::<usize>()
    };
    let mut hints = hints.to_vec();
    while hints.len() > 2 && width(&hints) > usize::from(area.width) + 2 {
        hints.remove(hints.len() - 3);
    }
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in &hints {
        spans.push(Span::styled(*key, state.theme.key));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
