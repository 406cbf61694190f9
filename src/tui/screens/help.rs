//! The `?` overlay: every key, then the keys of the current screen.

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::state::State;
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::popup::popup;

const GLOBAL: &[Hint] = &[
    ("↑↓ j k", "move"),
    ("Tab S-Tab", "next / previous field (column on Roles)"),
    ("Enter", "choose, or go to the next screen"),
    ("Esc", "back to the previous screen, or cancel"),
    ("1-5", "go to a screen"),
    ("space", "toggle"),
    ("Ctrl-s", "write the files (refused while errors remain)"),
    ("?", "this help"),
    ("q", "quit (asks when changes are unsaved)"),
    ("Ctrl-c", "quit (asks first)"),
];

pub fn render(frame: &mut Frame, state: &State, screen_hints: &[Hint]) {
    let theme = &state.theme;
    let height = (GLOBAL.len() + screen_hints.len() + 5) as u16;
    let inner = popup(frame, "Help — any key closes", 66, height, theme);
    let row = |(key, what): &Hint| {
        Line::from(vec![
            Span::styled(format!("  {key:<12}"), theme.key),
            Span::raw(*what),
        ])
    };
    let mut lines = vec![Line::styled("Everywhere", theme.purpose)];
    lines.extend(GLOBAL.iter().map(row));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("On {}", state.screen.title()),
        theme.purpose,
    ));
    lines.extend(screen_hints.iter().map(row));
    frame.render_widget(Paragraph::new(lines), inner);
}
