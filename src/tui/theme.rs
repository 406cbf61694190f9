//! Styles and state symbols. With `NO_COLOR` every colour is `Color::Reset` (crossterm 0.29 drops all
//! attributes on a colour change under `NO_COLOR`, DESIGN §10), so state is always also spelled out
//! with a symbol and a word, never shown by colour alone.

use ratatui::style::{Color, Modifier, Style};

/// Symbols that carry state in both themes.
pub const SYM_ERROR: &str = "✗";
pub const SYM_WARNING: &str = "!";
pub const SYM_OK: &str = "✓";
pub const SYM_SELECTED: &str = "▶";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub title: Style,
    pub purpose: Style,
    pub selected: Style,
    pub error: Style,
    pub warning: Style,
    pub ok: Style,
    pub dim: Style,
    pub key: Style,
    pub added: Style,
    pub removed: Style,
    pub header: Style,
}

impl Theme {
    pub fn color() -> Self {
        Theme {
            title: Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            purpose: Style::new().fg(Color::Gray).add_modifier(Modifier::ITALIC),
            selected: Style::new().fg(Color::Black).bg(Color::LightCyan),
            error: Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
            warning: Style::new().fg(Color::Yellow),
            ok: Style::new().fg(Color::LightGreen),
            dim: Style::new().fg(Color::DarkGray),
            key: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            added: Style::new().fg(Color::Green),
            removed: Style::new().fg(Color::Red),
            header: Style::new().fg(Color::Magenta),
        }
    }

    /// Every colour `Reset`; only reverse video marks the selection, and the `▶` symbol does too.
    pub fn monochrome() -> Self {
        let plain = Style::new().fg(Color::Reset).bg(Color::Reset);
        Theme {
            title: plain.add_modifier(Modifier::REVERSED),
            purpose: plain,
            selected: plain.add_modifier(Modifier::REVERSED),
            error: plain,
            warning: plain,
            ok: plain,
            dim: plain,
            key: plain,
            added: plain,
            removed: plain,
            header: plain,
        }
    }

    /// `NO_COLOR` set to anything non-empty means monochrome (<https://no-color.org>).
    pub fn from_env() -> Self {
        match std::env::var_os("NO_COLOR") {
            Some(v) if !v.is_empty() => Theme::monochrome(),
            _ => Theme::color(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monochrome_uses_no_colour() {
        let t = Theme::monochrome();
        for s in [
            t.title, t.purpose, t.selected, t.error, t.warning, t.ok, t.dim, t.key, t.added,
            t.removed, t.header,
        ] {
            assert_eq!((s.fg, s.bg), (Some(Color::Reset), Some(Color::Reset)));
        }
    }
}
