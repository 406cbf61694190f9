//! The day-2 operations dialog (`o`): the menu, the backups to restore from (newest first, with
//! time, age, revision and keys), the restore's question with what it loses and, while etcd has
//! quorum, its refusal until F, and the reset's question with the field the cluster's name is
//! typed into. Drawn over the screen; reads the state only.

use ratatui::Frame;
use ratatui::layout::Position;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::Cluster;
use crate::ops::reset;
use crate::tui::ops::{self, Dialog};
use crate::tui::state::State;
use crate::tui::theme::{SYM_ERROR, SYM_SELECTED, SYM_WARNING, Theme};
use crate::tui::widgets::chrome::Hint;
use crate::tui::widgets::popup::popup;
use crate::tui::widgets::wrap_words;

/// The box's width: the backups' columns fit it.
const WIDTH: u16 = 78;

/// The `o` key's hint on Hosts, Review and Done, once a cluster is installed from this conf.
pub fn hint(state: &State) -> Option<Hint> {
    state
        .installed()
        .is_some()
        .then_some(("o", "backup/restore/reset"))
}

/// The keys of the dialog as it is, for its box and the footer.
pub fn answers(dialog: &Dialog) -> Vec<Hint> {
    match dialog {
        Dialog::Menu { .. } => vec![("↑↓", "choose"), ("Enter", "run"), ("Esc", "close")],
        Dialog::Backups {
            list: Some(Ok(l)), ..
        } if !l.is_empty() => vec![
            ("↑↓", "choose"),
            ("Enter", "check it, show what is lost"),
            ("Esc", "close"),
        ],
        Dialog::Restore {
            check: Some(Ok(c)),
            forced,
            ..
        } => {
            if c.refused.is_some() && !forced {
                vec![("F", "force (etcd has quorum)"), ("n Esc", "cancel")]
            } else {
                vec![("y", "restore"), ("n Esc", "cancel")]
            }
        }
        Dialog::Reset { .. } => vec![("Enter", "reset"), ("Esc", "cancel")],
        _ => vec![("Esc", "close")],
    }
}

/// `text` wrapped to `width`, each line indented by `indent`, in `style`.
fn wrapped(
    text: &str,
    width: usize,
    indent: &str,
    style: ratatui::style::Style,
) -> Vec<Line<'static>> {
    wrap_words(text, width.saturating_sub(indent.len()))
        .into_iter()
        .map(|l| Line::styled(format!("{indent}{l}"), style))
        .collect()
}

pub fn render(frame: &mut Frame, dialog: &Dialog, state: &State) {
    let theme = &state.theme;
    let width = usize::from(WIDTH.min(frame.area().width).saturating_sub(2));
    let (title, mut lines, cursor) = body(dialog, &state.cluster, width, theme);
    let keys = answers(dialog)
        .iter()
        .map(|(k, what)| format!("{k} {what}"))
        .collect::<Vec<_>>()
        .join("    ");
    lines.extend([Line::raw(""), Line::styled(keys, theme.key)]);
    let height = lines.len() as u16 + 2;
    let inner = popup(frame, &title, WIDTH, height, theme);
    // The cursor in the reset's field: its row from the end of the box, its column after "> ".
    if let Some(col) = cursor {
        let y = inner.bottom().saturating_sub(3);
        let x = (inner.x + 2 + col).min(inner.right().saturating_sub(1));
        frame.set_cursor_position(Position::new(x, y));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The box's title, its lines (the keys come after), and the cursor's column in a text field.
fn body(
    dialog: &Dialog,
    cluster: &Cluster,
    width: usize,
    theme: &Theme,
) -> (String, Vec<Line<'static>>, Option<u16>) {
    match dialog {
        Dialog::Menu { choices, selected } => {
            let mut lines = vec![Line::raw(
                "On the installed cluster, with the conf on disk (as the commands do):",
            )];
            for (i, c) in choices.iter().enumerate() {
                let (name, what) = c.label(cluster);
                let (marker, style) = if i == *selected {
                    (SYM_SELECTED, theme.selected)
                } else {
                    (" ", theme.key)
                };
                lines.push(Line::from(vec![
                    Span::raw(format!("{marker} ")),
                    Span::styled(name, style),
                ]));
                lines.push(Line::styled(format!("    {what}"), theme.dim));
            }
            ("Operations".into(), lines, None)
        }
        Dialog::Backups {
            list,
            now,
            selected,
        } => {
            let lines = match list {
                None => vec![Line::styled("Reading the backups…", theme.dim)],
                Some(Err(e)) => wrapped(&format!("{SYM_ERROR} {e}"), width, "", theme.error),
                Some(Ok(l)) if l.is_empty() => wrapped(
                    "No backups under the state dir's backups/ yet: Back up etcd (o) makes one.",
                    width,
                    "",
                    theme.warning,
                ),
                Some(Ok(l)) => {
                    let mut lines = vec![Line::styled(
                        format!(
                            "  {:<21} {:<23} {:>12} {:>8} {:>6}",
                            "backup", "taken", "age", "revision", "keys"
                        ),
                        theme.header,
                    )];
                    // The rows around the selected one that fit a 24-row terminal.
                    let shown = crate::tui::widgets::visible(*selected, l.len(), 8);
                    for (i, b) in l.iter().enumerate().take(shown.end).skip(shown.start) {
                        let [name, taken, age, rev, keys] = ops::row(b, *now);
                        let text = format!("{name:<21} {taken:<23} {age:>12} {rev:>8} {keys:>6}");
                        lines.push(if i == *selected {
                            Line::styled(format!("{SYM_SELECTED} {text}"), theme.selected)
                        } else {
                            Line::raw(format!("  {text}"))
                        });
                    }
                    lines
                }
            };
            (
                "Restore etcd: choose a backup (newest first)".into(),
                lines,
                None,
            )
        }
        Dialog::Restore {
            backup,
            check,
            forced,
        } => {
            let name = backup
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let title = format!("Restore etcd from {name}");
            let lines = match check {
                None => vec![Line::styled(
                    "Asking etcd how it is, and reading the snapshot… (up to 20 s while members are down)",
                    theme.dim,
                )],
                Some(Err(e)) => wrapped(&format!("{SYM_ERROR} {e}"), width, "", theme.error),
                Some(Ok(c)) => {
                    let mut lines = Vec::new();
                    if c.resuming {
                        lines.extend(wrapped(
                            "An unfinished restore of this snapshot goes on.",
                            width,
                            "",
                            theme.warning,
                        ));
                    }
                    for l in &c.loss {
                        lines.extend(wrapped(l, width, "", ratatui::style::Style::default()));
                    }
                    lines.push(Line::raw(""));
                    match (&c.refused, forced) {
                        (Some(why), false) => {
                            lines.extend(wrapped(
                                &format!("{SYM_ERROR} Refused: {why}"),
                                width,
                                "",
                                theme.error,
                            ));
                            lines.extend(wrapped(
                                "Here F forces it, then y restores.",
                                width,
                                "",
                                theme.error,
                            ));
                        }
                        (Some(_), true) => lines.extend(wrapped(
                            &format!(
                                "{SYM_WARNING} Forced: etcd has quorum, and what it holds since the snapshot is lost. Restore from {name}?"
                            ),
                            width,
                            "",
                            theme.warning,
                        )),
                        (None, _) => lines.extend(wrapped(
                            "Restore? The apiservers stop, every member's data is replaced by the snapshot's, then they start again.",
                            width,
                            "",
                            ratatui::style::Style::default(),
                        )),
                    }
                    lines
                }
            };
            (title, lines, None)
        }
        Dialog::Refused { title, why } => (
            title.clone(),
            wrapped(&format!("{SYM_ERROR} {why}"), width, "", theme.error),
            None,
        ),
        Dialog::Reset { hosts, input } => {
            let mut lines: Vec<Line> = reset::question(cluster, hosts)
                .lines()
                .flat_map(|l| wrapped(l, width, "", ratatui::style::Style::default()))
                .collect();
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled("> ", theme.key),
                Span::raw(input.text().to_string()),
            ]));
            let title = if hosts.len() == cluster.hosts.len() {
                "Reset the cluster".to_string()
            } else {
                format!(
                    "Reset {}",
                    hosts.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            (title, lines, Some(input.cursor() as u16))
        }
    }
}
