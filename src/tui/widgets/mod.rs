//! Pieces every screen uses: the frame around a screen, popups, findings lists, scrolling.

pub mod changes;
pub mod chrome;
pub mod findings;
pub mod form;
pub mod popup;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};

use super::theme::Theme;

/// A bordered box titled ` title ` holding wrapped text: the panels of every screen.
pub fn panel<'a>(lines: Vec<Line<'a>>, title: &str) -> Paragraph<'a> {
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(format!(" {title} ")))
}

/// A table in a titled box, its header row in the key style.
pub fn table<'a>(
    rows: impl IntoIterator<Item = Row<'a>>,
    widths: &[Constraint],
    header: Vec<&'a str>,
    title: &str,
    theme: &Theme,
) -> Table<'a> {
    Table::new(rows, widths.to_vec())
        .header(Row::new(header).style(theme.key))
        .block(Block::bordered().title(format!(" {title} ")))
}

/// Rows `lines` take wrapped in a bordered box `width` wide, borders included. Word wrapping can
/// need more rows than the characters alone, so the estimate leaves some room.
pub fn boxed_height(lines: &[Line], width: u16) -> u16 {
    let room = usize::from(width.saturating_sub(8)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(room).max(1)).sum();
    rows as u16 + 2
}

/// A table of `rows` rows above a box of `notes`: the notes get the rows they need, but the
/// table keeps all its rows or at least half of `area`.
pub fn table_and_notes(area: Rect, rows: usize, notes: &[Line]) -> [Rect; 2] {
    let table_min = (rows as u16 + 3).min(area.height / 2);
    let notes_height = if notes.is_empty() {
        0
    } else {
        boxed_height(notes, area.width).min(area.height.saturating_sub(table_min))
    };
    Layout::vertical([Constraint::Min(0), Constraint::Length(notes_height)]).areas(area)
}

/// The rows of a list of `len` that fit in `height` with `selected` in view: the window scrolls
/// only as far as the selection needs, and only those rows are built (500 hosts stay cheap).
pub fn visible(selected: usize, len: usize, height: usize) -> std::ops::Range<usize> {
    let height = height.max(1);
    let start = selected
        .saturating_sub(height - 1)
        .min(len.saturating_sub(height));
    start..(start + height).min(len)
}

/// A text gauge `width` cells wide: filled cells for `done` of `total`. Text, not colour, so it
/// shows under `NO_COLOR` too.
pub fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

/// `text` in lines of at most `width` chars, broken after a space or a comma where it can.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > width {
        let cut = rest[..width]
            .iter()
            .rposition(|&c| c == ' ' || c == ',')
            .map_or(width, |i| i + 1);
        out.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest.drain(..cut);
    }
    out.push(rest.into_iter().collect());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_wrap_after_spaces_and_commas() {
        assert_eq!(super::wrap_words("a,b,c", 4), ["a,b,", "c"]);
        assert_eq!(super::wrap_words("ab cd ef", 5), ["ab", "cd ef"]);
        assert_eq!(super::wrap_words("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(super::wrap_words("", 3), [""]);
    }

    #[test]
    fn window_follows_the_selection() {
        assert_eq!(super::visible(0, 100, 10), 0..10);
        assert_eq!(super::visible(15, 100, 10), 6..16);
        assert_eq!(super::visible(3, 2, 10), 0..2);
    }

    #[test]
    fn bar_fills_in_proportion() {
        assert_eq!(super::bar(0, 0, 4), "░░░░");
        assert_eq!(super::bar(1, 2, 4), "██░░");
        assert_eq!(super::bar(3, 3, 4), "████");
    }
}
