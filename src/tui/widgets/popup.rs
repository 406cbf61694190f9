//! A bordered box centred over the screen, clearing what is under it (forms, questions, help).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Clear};

use crate::tui::theme::Theme;

/// Draw the box and return the area inside its border.
pub fn popup(frame: &mut Frame, title: &str, width: u16, height: u16, theme: &Theme) -> Rect {
    let area = frame.area().centered(
        Constraint::Length(width.min(frame.area().width)),
        Constraint::Length(height.min(frame.area().height)),
    );
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(format!(" {title} "))
        .title_style(theme.key);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}
