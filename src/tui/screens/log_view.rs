//! The Install screen's log reading drawn: a log line with the search's matches highlighted
//! (reversed, so `NO_COLOR` shows them too), the search prompt and its count, and the full view
//! of one step's whole log (`L`), which scrolls sideways instead of wrapping.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::tui::install::Install;
use crate::tui::log_view::{FullLog, counted, ranges};
use crate::tui::theme::Theme;
use crate::tui::widgets::chrome::Hint;

/// A search match; reversed on top of the theme so it shows without colour.
fn hit(theme: &Theme) -> Style {
    theme.key.add_modifier(Modifier::REVERSED)
}

/// The chars `from..to` of `line`, the matches of `query` in them highlighted.
fn piece(line: &str, from: usize, to: usize, query: Option<&str>, theme: &Theme) -> Line<'static> {
    let chars: Vec<char> = line
        .chars()
        .skip(from)
        .take(to.saturating_sub(from))
        .collect();
    let Some(q) = query else {
        return Line::raw(chars.into_iter().collect::<String>());
    };
    let mut spans = Vec::new();
    let mut at = from;
    for (a, b) in ranges(line, q) {
        let (a, b) = (a.clamp(from, to), b.clamp(from, to));
        if a >= b {
            continue;
        }
        spans.push(Span::raw(
            chars[at - from..a - from].iter().collect::<String>(),
        ));
        spans.push(Span::styled(
            chars[a - from..b - from].iter().collect::<String>(),
            hit(theme),
        ));
        at = b;
    }
    spans.push(Span::raw(chars[at - from..].iter().collect::<String>()));
    Line::from(spans)
}

/// `line` in rows of at most `width` characters (at least one), matches highlighted.
pub fn wrapped(line: &str, width: usize, query: Option<&str>, theme: &Theme) -> Vec<Line<'static>> {
    let len = line.chars().count();
    if len == 0 {
        return vec![Line::raw("")];
    }
    (0..len)
        .step_by(width.max(1))
        .map(|from| piece(line, from, (from + width).min(len), query, theme))
        .collect()
}

/// The log pane's bottom title: the prompt being typed, or the search and where it is.
pub fn search_title(install: &Install) -> Option<Line<'static>> {
    let s = install.search.as_ref()?;
    if s.editing {
        return Some(Line::raw(format!(
            " /{}█  Enter search  Esc cancel ",
            s.query.text()
        )));
    }
    let q = s.active()?;
    let (nth, all) = match (&install.full, install.nodes.get(install.selected)) {
        (Some(f), _) => match &f.lines {
            Some(Ok(lines)) => counted(lines.len(), |i| lines[i].as_str(), q, f.top),
            _ => (0, 0),
        },
        (None, Some(n)) => counted(n.log.len(), |i| n.log[i].as_str(), q, install.log_at()),
        (None, None) => (0, 0),
    };
    Some(Line::raw(format!(
        " /{q}: match {nth} of {all}  [ older  ] newer "
    )))
}

/// The full view of one step's whole log, over the Install screen's body.
pub fn render_full(
    frame: &mut Frame,
    area: Rect,
    install: &Install,
    full: &FullLog,
    theme: &Theme,
) {
    let height = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2));
    let query = install.search.as_ref().and_then(|s| s.active());
    let (lines, count) = match &full.lines {
        None => (vec![Line::styled("reading…", theme.dim)], String::new()),
        Some(Err(e)) => (
            vec![
                Line::styled(format!("✗ cannot read it: {e}"), theme.error),
                Line::styled(
                    "The node keeps every step's log too: /var/lib/kswizard/<install-id>/<step>/log",
                    theme.dim,
                ),
            ],
            String::new(),
        ),
        Some(Ok(l)) => (
            l.iter()
                .skip(full.top)
                .take(height)
                .map(|line| piece(line, full.left, full.left + width, query, theme))
                .collect(),
            format!(
                ", lines {}-{} of {}",
                (full.top + 1).min(l.len()),
                (full.top + height).min(l.len()),
                l.len()
            ),
        ),
    };
    let mut block = Block::bordered().title(format!(
        " {} on {}: whole log{count}{} ",
        full.step,
        full.node,
        if full.left > 0 {
            format!(", from column {}", full.left + 1)
        } else {
            String::new()
        }
    ));
    block = block.title_bottom(match search_title(install) {
        Some(t) => t,
        None => Line::raw(format!(" {} ", full.path.display())),
    });
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The footer while the full view is open.
pub fn full_hints() -> Vec<Hint> {
    vec![
        ("↑↓ PgUp/PgDn", "scroll"),
        ("←→", "sideways"),
        ("/", "search"),
        ("[ ]", "match"),
        ("L/Esc", "close"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line) -> Vec<(String, bool)> {
        l.spans
            .iter()
            .filter(|s| !s.content.is_empty())
            .map(|s| {
                (
                    s.content.to_string(),
                    s.style.add_modifier.contains(Modifier::REVERSED),
                )
            })
            .collect()
    }

    #[test]
    fn matches_are_highlighted_across_wrapped_rows() {
        let theme = Theme::monochrome();
        let rows = wrapped("abc etcd etc", 6, Some("ETCD"), &theme);
        assert_eq!(
            text(&rows[0]),
            [("abc ".to_string(), false), ("et".to_string(), true)]
        );
        assert_eq!(
            text(&rows[1]),
            [("cd".to_string(), true), (" etc".to_string(), false)]
        );
        assert_eq!(wrapped("", 6, None, &theme).len(), 1);
        // Sideways: only the columns shown.
        assert_eq!(
            text(&piece("xxetcdxx", 3, 6, Some("etcd"), &theme)),
            [("tcd".to_string(), true)]
        );
    }
}
