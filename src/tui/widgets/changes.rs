//! The differences between the installed cluster and a conf (`engine::installed::diff`) as
//! lines: what differs, then what it will do. Start (the conf on disk) and Review (the conf being
//! edited) show them.

use ratatui::text::Line;

use crate::engine::installed::Change;
use crate::tui::theme::{SYM_OK, Theme};
use crate::tui::widgets::wrap_words;

/// Each difference, then what it will do under it (wrapped to `width` columns with a hanging
/// indent, so the sentence reads as one block); one line saying so when there is none.
pub fn lines(changes: &[Change], width: usize, theme: &Theme) -> Vec<Line<'static>> {
    if changes.is_empty() {
        return vec![Line::styled(
            format!("{SYM_OK} the conf says what is installed"),
            theme.ok,
        )];
    }
    let room = width.saturating_sub(INDENT.len() + 2).max(20);
    changes
        .iter()
        .flat_map(|c| {
            let style = match c {
                Change::Added { .. } => theme.added,
                Change::Removed { .. } => theme.removed,
                _ => theme.warning,
            };
            let does = wrap_words(&c.what_it_does(), room)
                .into_iter()
                .enumerate()
                .map(|(i, piece)| {
                    let lead = if i == 0 { "  → " } else { INDENT };
                    Line::styled(format!("{lead}{piece}"), theme.dim)
                })
                .collect::<Vec<_>>();
            std::iter::once(Line::styled(c.what(), style)).chain(does)
        })
        .collect()
}

/// Where the sentence's wrapped lines start.
const INDENT: &str = "    ";

/// The panel's title: against which install, and how many differences.
pub fn title(install_id: &str, changes: &[Change]) -> String {
    format!("Installed ({install_id}) → this conf: {}", changes.len())
}
