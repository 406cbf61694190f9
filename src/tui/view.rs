//! Drawing a frame from the state: the chrome, the current screen, then any overlay. Reads the
//! state only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::form::Value;
use super::screens::{
    done, help, hosts, install, load_balancer, ops, preflight, review, roles, start,
};
use super::state::{Confirm, Modal, Screen, State};
use super::widgets::chrome::{self, Hint};
use super::widgets::{form, popup::popup};

/// The smallest terminal the screens are laid out for (DESIGN §4).
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn render(frame: &mut Frame, state: &State) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Terminal too small: {}×{}. kswizard needs at least {MIN_WIDTH}×{MIN_HEIGHT}; enlarge the window (q quits).",
            area.width, area.height
        );
        let y = area.height / 2;
        let line_area = ratatui::layout::Rect {
            y: area.y + y.saturating_sub(1),
            height: area.height - y.saturating_sub(1),
            ..area
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, state.theme.error).centered())
                .wrap(Wrap { trim: true }),
            line_area,
        );
        return;
    }
    let [title, purpose, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    let (text, screen_hints): (&str, Vec<Hint>) = match state.screen {
        Screen::Start => (start::PURPOSE, start::hints(state)),
        Screen::Hosts => (hosts::PURPOSE, hosts::hints(state)),
        Screen::Roles => (roles::PURPOSE, roles::hints(state)),
        Screen::LoadBalancer => (load_balancer::PURPOSE, load_balancer::hints(state)),
        Screen::Review => (review::PURPOSE, review::hints(state)),
        Screen::Install => (install::purpose(state), install::hints(state)),
        Screen::Preflight => (preflight::PURPOSE, preflight::hints(state)),
        Screen::Done => (done::PURPOSE, done::hints(state)),
    };
    chrome::title_bar(frame, title, state);
    chrome::purpose(frame, purpose, text, state);
    match state.screen {
        Screen::Start => start::render(frame, body, state),
        Screen::Hosts => hosts::render(frame, body, state),
        Screen::Roles => roles::render(frame, body, state),
        Screen::LoadBalancer => load_balancer::render(frame, body, state),
        Screen::Review => review::render(frame, body, state),
        Screen::Install => install::render(frame, body, state),
        Screen::Preflight => preflight::render(frame, body, state),
        Screen::Done => done::render(frame, body, state),
    }
    chrome::status_line(frame, status, state);

    let footer_hints: Vec<Hint> = if state.help {
        help::render(frame, state, &screen_hints);
        vec![("any key", "close help")]
    } else {
        match &state.modal {
            Some(Modal::Confirm(question)) => {
                confirm(frame, question, state);
                answers(question)
            }
            Some(Modal::Ops(dialog)) => {
                ops::render(frame, dialog, state);
                ops::answers(dialog)
            }
            Some(Modal::Form(f)) => {
                form::render(frame, f, &state.theme);
                match f.focused().value {
                    Value::Lines(_) => vec![
                        ("Enter", "new line"),
                        ("Ctrl-s", "add hosts"),
                        ("Esc", "cancel"),
                    ],
                    Value::Choice { .. } => vec![
                        ("Tab ↑↓", "field"),
                        ("space ←→", "choose"),
                        ("Enter", "save"),
                        ("Esc", "cancel"),
                    ],
                    _ => vec![
                        ("Tab ↑↓", "field"),
                        ("Ctrl-u", "clear"),
                        ("Enter", "save"),
                        ("Esc", "cancel"),
                    ],
                }
            }
            None if state.searching() => vec![("Enter", "search"), ("Esc", "cancel")],
            None if state.lb_edit.is_some() => {
                vec![("Enter", "keep"), ("Esc", "undo"), ("Ctrl-u", "clear")]
            }
            None => {
                let mut hints = screen_hints;
                hints.extend([("?", "help"), ("q", "quit")]);
                hints
            }
        }
    };
    chrome::footer(frame, footer, &footer_hints, state);
}

/// The keys that answer `question`, for its box and the footer.
fn answers(question: &Confirm) -> Vec<Hint> {
    match question {
        Confirm::Install(p) if p.complete && !p.changed.is_empty() => vec![
            ("c", "only what changed"),
            ("r", "all again"),
            ("n Esc", "nothing"),
        ],
        Confirm::Install(p) if p.complete => vec![("r", "all again"), ("n Esc", "nothing")],
        Confirm::RemoveNode { check: Err(_), .. } => vec![("Esc", "close")],
        _ => vec![("y", "yes"), ("n Esc", "no")],
    }
}

/// The install question says what will run: how many steps on how many nodes, and for a complete
/// install what changed since, never running it all again silently.
fn install_question(p: &crate::engine::executor::Preview) -> String {
    use crate::engine::decide::Mode;
    if p.complete {
        let changed = match p.changed.as_slice() {
            [] => "Nothing changed since.".to_string(),
            [one] => format!("Changed since: {}@{}. c: run only it.", one.1, one.0),
            many => format!(
                "{} steps changed since ({}@{}, …). c: run only those.",
                many.len(),
                many[0].1,
                many[0].0
            ),
        };
        return format!(
            "The last install is complete. {changed} r: run all {} steps again from the start. n: nothing.",
            p.steps
        );
    }
    match p.mode {
        Mode::Resume => format!(
            "Resume the unfinished install? {} steps on {} nodes will run; {} done are not run again.",
            p.steps, p.nodes, p.done
        ),
        Mode::Fresh => format!("Install? {} steps on {} nodes will run.", p.steps, p.nodes),
    }
}

fn confirm(frame: &mut Frame, question: &Confirm, state: &State) {
    let text = match question {
        Confirm::Quit { unsaved: true } => "Quit? Your unsaved changes will be lost.".to_string(),
        Confirm::Quit { unsaved: false } => "Quit kswizard?".to_string(),
        Confirm::DeleteHost(i) => format!(
            "Delete host {}?",
            state.cluster.hosts.get(*i).map_or("?", |h| h.name.as_str())
        ),
        Confirm::RemoveNode { node, check: Ok(_) } => format!(
            "Remove {node} from the cluster? (cordon, drain, kubeadm reset, etcd member \
             removed, backends re-wired; then the conf)"
        ),
        Confirm::RemoveNode {
            node,
            check: Err(_),
        } => {
            format!("{node} cannot be removed; the conf keeps it.")
        }
        Confirm::WriteWithWarnings(n) => format!(
            "{n} warning{} remain{} (see Review). Write the files anyway?",
            if *n == 1 { "" } else { "s" },
            if *n == 1 { "s" } else { "" }
        ),
        Confirm::Replace(_) => "Drop your unsaved changes and start again?".to_string(),
        Confirm::Install(p) => install_question(p),
        Confirm::AddHosts { nodes, preview } => format!(
            "Add {} to the installed cluster? Only {} steps and the re-wiring steps run: {} \
             steps on {} nodes; {} done are not run again.",
            nodes.join(", "),
            if nodes.len() == 1 { "its" } else { "their" },
            preview.steps,
            preview.nodes,
            preview.done
        ),
        // An operation names itself and the command that goes on with it.
        Confirm::StopInstall => match state.install.as_ref().and_then(|i| i.operation.as_ref()) {
            Some(op) => format!(
                "Quit and stop {}? Steps already running keep running on the nodes; `{}` or the \
                 wizard (the same operation again) picks them up.",
                op.what(),
                op.command()
            ),
            None => "Quit and stop the install? Steps already running keep running on the nodes; \
                `kswizard install --resume` or the wizard (i on Review) picks them up."
                .to_string(),
        },
        Confirm::AbortInstall => "Abort the install? Steps running on other nodes finish and \
            are recorded; no node starts another. i resumes it later."
            .to_string(),
    };
    let keys = answers(question)
        .iter()
        .map(|(k, what)| format!("{k} {what}"))
        .collect::<Vec<_>>()
        .join("    ");
    // The pre-check's findings (the etcd arithmetic), line by line under the question.
    let detail: Vec<&str> = match question {
        Confirm::RemoveNode {
            check: Ok(d) | Err(d),
            ..
        } => d.lines().collect(),
        _ => Vec::new(),
    };
    // The install questions need more lines of text.
    let (width, height) = match question {
        Confirm::Install(p) if p.complete => (60, 8),
        // An operation's command may name a backup's path.
        Confirm::StopInstall
            if state
                .install
                .as_ref()
                .is_some_and(|i| i.operation.is_some()) =>
        {
            (72, 9)
        }
        Confirm::StopInstall | Confirm::AbortInstall | Confirm::Install(_) => (60, 7),
        Confirm::AddHosts { .. } => (60, 8),
        // Wide enough for the arithmetic's columns.
        Confirm::RemoveNode { .. } => (76, 8 + detail.len() as u16),
        _ => (60, 5),
    };
    let inner = popup(frame, "Confirm", width, height, &state.theme);
    // The arithmetic's columns keep their indent: not trimmed.
    let trim = detail.is_empty();
    let mut lines = vec![Line::raw(text)];
    if !detail.is_empty() {
        lines.push(Line::raw(""));
        lines.extend(detail.into_iter().map(Line::raw));
    }
    lines.extend([Line::raw(""), Line::styled(keys, state.theme.key)]);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim }), inner);
}
