//! A form in a popup: one row a field, the focused one marked, secrets as dots, the refusal reason.

use ratatui::Frame;
use ratatui::layout::Position;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::popup::popup;
use crate::tui::form::{Form, Value};
use crate::tui::theme::{SYM_ERROR, SYM_SELECTED, Theme};

const LABEL_WIDTH: usize = 28;

pub fn render(frame: &mut Frame, form: &Form, theme: &Theme) {
    let lines_field = form
        .fields
        .iter()
        .any(|f| matches!(f.value, Value::Lines(_)));
    let height = if lines_field {
        16
    } else {
        form.fields.len() as u16 + 4
    };
    let inner = popup(frame, form.title(), 76, height, theme);
    let mut lines = Vec::new();
    let mut cursor = None;
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let marker = if focused { SYM_SELECTED } else { " " };
        let label = format!("{marker} {:<LABEL_WIDTH$}", field.label);
        let label_style = if focused {
            theme.selected
        } else {
            theme.purpose
        };
        let value_x = inner.x + label.chars().count() as u16 + 1;
        match &field.value {
            Value::Text(input) | Value::Secret(input) => {
                let shown = match field.value {
                    Value::Secret(_) => "•".repeat(input.text().chars().count()),
                    _ => input.text().to_string(),
                };
                if focused {
                    cursor = Some((
                        value_x + input.cursor() as u16,
                        inner.y + lines.len() as u16,
                    ));
                }
                lines.push(Line::from(vec![
                    Span::styled(label, label_style),
                    Span::raw(" "),
                    Span::raw(shown),
                ]));
            }
            Value::Choice { options, index } => {
                let mut spans = vec![Span::styled(label, label_style), Span::raw(" ")];
                for (j, option) in options.iter().enumerate() {
                    spans.push(if j == *index {
                        Span::styled(format!("(•) {option}  "), theme.key)
                    } else {
                        Span::raw(format!("( ) {option}  "))
                    });
                }
                lines.push(Line::from(spans));
            }
            Value::Lines(input) => {
                lines.push(Line::styled(label, label_style));
                lines.push(Line::styled(
                    "  e.g. node7 ansible_host=192.168.0.7 ip=192.168.0.7 ansible_user=ubuntu",
                    theme.dim,
                ));
                let text = input.text();
                let rows: Vec<&str> = text.split('\n').collect();
                if focused {
                    let last = rows.last().map_or(0, |r| r.chars().count());
                    cursor = Some((
                        inner.x + 2 + last as u16,
                        inner.y + (lines.len() + rows.len() - 1) as u16,
                    ));
                }
                lines.extend(rows.into_iter().map(|r| Line::raw(format!("  {r}"))));
            }
        }
    }
    lines.push(Line::raw(""));
    if let Some(error) = &form.error {
        lines.push(Line::styled(format!("{SYM_ERROR} {error}"), theme.error));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if let Some((x, y)) = cursor
        && y < inner.bottom()
    {
        frame.set_cursor_position(Position::new(x.min(inner.right() - 1), y));
    }
}
