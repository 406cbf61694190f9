//! Keys to actions: a pure function of the key and of which context has the keyboard (help,
//! a question, a form, a field being typed into, or a screen). What an action means on a given
//! screen is decided by `update`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::{Action, Rerun};
use super::decision;
use super::form::Value;
use super::input::Edit;
use super::ops::Dialog;
use super::state::{Confirm, Modal, Screen, State};

pub fn map_key(state: &State, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Interrupt);
    }
    if state.too_small() {
        // Nobody can see what a key would do: only quitting (and answering its question).
        return match (&state.modal, key.code) {
            (Some(Modal::Confirm(Confirm::Quit { .. } | Confirm::StopInstall)), _) => {
                answer_key(key)
            }
            (_, KeyCode::Char('q')) => Some(Action::Quit),
            _ => None,
        };
    }
    if state.help {
        // Any key closes the help overlay.
        return Some(Action::Help);
    }
    match &state.modal {
        Some(Modal::Confirm(Confirm::Install(p))) if p.complete => {
            return match key.code {
                KeyCode::Char('r') => Some(Action::Rerun(Rerun::All)),
                KeyCode::Char('c') if !p.changed.is_empty() => Some(Action::Rerun(Rerun::Changed)),
                KeyCode::Char('n') | KeyCode::Esc => Some(Action::Answer(false)),
                _ => None,
            };
        }
        Some(Modal::Confirm(_)) => return answer_key(key),
        Some(Modal::Form(form)) => return form_key(&form.focused().value, key),
        Some(Modal::Ops(dialog)) => return ops_key(dialog, key),
        None => {}
    }
    if state.lb_edit.is_some() || state.searching() {
        return text_key(key);
    }
    if ctrl {
        return match key.code {
            KeyCode::Char('s') => Some(Action::Save),
            _ => None,
        };
    }
    Some(match key.code {
        // The Install screen's decisions about a failed node take r, s, a and A there.
        KeyCode::Char(c) if state.screen == Screen::Install && decision::of_key(c).is_some() => {
            Action::Decide(decision::of_key(c)?)
        }
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Tab => Action::NextField,
        KeyCode::BackTab => Action::PrevField,
        KeyCode::Enter => Action::Confirm,
        KeyCode::Esc => Action::Back,
        KeyCode::Char(' ') => Action::Toggle,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('a') => Action::Add,
        KeyCode::Char('r') => Action::AddRange,
        // `i` installs where an install can start; on Hosts it pastes inventory lines.
        KeyCode::Char('i')
            if matches!(
                state.screen,
                Screen::Review | Screen::Install | Screen::Preflight
            ) =>
        {
            Action::Install
        }
        KeyCode::Char('i') => Action::AddPaste,
        KeyCode::Char('d') => Action::Delete,
        KeyCode::Char('e') => Action::Edit,
        KeyCode::Char('p') => Action::Preset,
        KeyCode::Char('f') if state.screen == Screen::Install => Action::WideLog,
        KeyCode::Char('n') if state.screen == Screen::Install => Action::NextFailed,
        KeyCode::Char('c') if state.screen == Screen::Preflight => Action::ContinueAnyway,
        KeyCode::Char('/') if state.screen == Screen::Install => Action::SearchLog,
        KeyCode::Char('[') if state.screen == Screen::Install => Action::NextMatch(true),
        KeyCode::Char(']') if state.screen == Screen::Install => Action::NextMatch(false),
        KeyCode::Char('L') if state.screen == Screen::Install => Action::FullLog,
        KeyCode::Char('F') if state.screen == Screen::Install => Action::FilterNodes,
        KeyCode::Char('o')
            if matches!(state.screen, Screen::Hosts | Screen::Review | Screen::Done) =>
        {
            Action::Operations
        }
        KeyCode::Char('t') if state.screen == Screen::Roles => Action::EtcdTopology,
        KeyCode::Char('t') => Action::TestSsh,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char(c @ '1'..='5') => Action::GoTo(Screen::ALL[c as usize - '1' as usize]),
        _ => return None,
    })
}

fn answer_key(key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Char('y' | 'Y') => Some(Action::Answer(true)),
        KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Action::Answer(false)),
        _ => None,
    }
}

/// In the operations dialog: the reset's name is typed; the restore's question takes y / n and
/// F (force, only offered while etcd has quorum); the lists move and choose.
fn ops_key(dialog: &Dialog, key: KeyEvent) -> Option<Action> {
    match (dialog, key.code) {
        (Dialog::Reset { .. }, _) => text_key(key),
        (Dialog::Restore { .. }, KeyCode::Char('F')) => Some(Action::ForceRestore),
        (Dialog::Restore { .. }, _) => answer_key(key),
        (_, KeyCode::Up | KeyCode::Char('k')) => Some(Action::Up),
        (_, KeyCode::Down | KeyCode::Char('j')) => Some(Action::Down),
        (_, KeyCode::Enter) => Some(Action::Confirm),
        (_, KeyCode::Esc) => Some(Action::Back),
        _ => None,
    }
}

/// Typing into a text field: Enter keeps it, Esc drops it, Ctrl-U empties it.
fn text_key(key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Enter => Action::Confirm,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('u') if ctrl => Action::Text(Edit::Clear),
        KeyCode::Char(c) if !ctrl => Action::Text(Edit::Insert(c)),
        KeyCode::Backspace => Action::Text(Edit::Backspace),
        KeyCode::Delete => Action::Text(Edit::Delete),
        KeyCode::Left => Action::Text(Edit::Left),
        KeyCode::Right => Action::Text(Edit::Right),
        KeyCode::Home => Action::Text(Edit::Home),
        KeyCode::End => Action::Text(Edit::End),
        _ => return None,
    })
}

/// In a form: Tab / ↑↓ move between fields, space and ←→ change a choice, Enter submits (in a
/// multi-line field it starts a new line and Ctrl-S submits).
fn form_key(focused: &Value, key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let choice = matches!(focused, Value::Choice { .. });
    let lines = matches!(focused, Value::Lines(_));
    Some(match key.code {
        // Pasted inventory lines may separate fields with tabs.
        KeyCode::Tab if lines => Action::Text(Edit::Insert(' ')),
        KeyCode::Tab | KeyCode::Down => Action::NextField,
        KeyCode::BackTab | KeyCode::Up => Action::PrevField,
        KeyCode::Char('s') if ctrl => Action::Confirm,
        KeyCode::Enter if lines => Action::Text(Edit::Insert('\n')),
        KeyCode::Char(' ') if choice => Action::Toggle,
        KeyCode::Left if choice => Action::Left,
        KeyCode::Right if choice => Action::Right,
        _ => return text_key(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::form::Form;
    use crate::tui::theme::Theme;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn behind_terminal_too_small_only_quitting_acts() {
        let mut s = State::new("conf".into(), Theme::color());
        crate::tui::update::update(&mut s, Action::Resized(60, 20));
        s.screen = Screen::Review;
        for c in ['i', 'y', 'a', 'd', ' '] {
            assert!(map_key(&s, key(KeyCode::Char(c))).is_none(), "{c}");
        }
        assert!(map_key(&s, key(KeyCode::Enter)).is_none());
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        ));
        s.modal = Some(Modal::Confirm(Confirm::StopInstall));
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('y'))),
            Some(Action::Answer(true))
        ));
        // Big enough again: keys act.
        crate::tui::update::update(&mut s, Action::Resized(80, 24));
        s.modal = None;
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('i'))),
            Some(Action::Install)
        ));
    }

    #[test]
    fn letters_are_commands_on_screens_and_text_in_forms() {
        let mut s = State::new("conf".into(), Theme::color());
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        ));
        s.modal = Some(Modal::Form(Form::range(&crate::model::Host::new("", ""))));
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('q'))),
            Some(Action::Text(Edit::Insert('q')))
        ));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(matches!(map_key(&s, ctrl_c), Some(Action::Interrupt)));
    }

    #[test]
    fn o_opens_the_operations_and_their_dialog_has_the_keyboard() {
        use crate::tui::ops::Dialog;
        let mut s = State::new("conf".into(), Theme::color());
        s.screen = Screen::Review;
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('o'))),
            Some(Action::Operations)
        ));
        s.screen = Screen::Roles;
        assert!(map_key(&s, key(KeyCode::Char('o'))).is_none());
        // The restore's question: F forces, f is nothing, y answers.
        s.modal = Some(Modal::Ops(Dialog::Restore {
            backup: "b".into(),
            check: None,
            forced: false,
        }));
        let shift_f = KeyEvent::new(KeyCode::Char('F'), KeyModifiers::SHIFT);
        assert!(matches!(map_key(&s, shift_f), Some(Action::ForceRestore)));
        assert!(map_key(&s, key(KeyCode::Char('f'))).is_none());
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('y'))),
            Some(Action::Answer(true))
        ));
        // The reset's field: q is a letter.
        s.modal = Some(Modal::Ops(Dialog::Reset {
            hosts: std::collections::BTreeSet::new(),
            input: crate::tui::input::Input::default(),
        }));
        assert!(matches!(
            map_key(&s, key(KeyCode::Char('q'))),
            Some(Action::Text(Edit::Insert('q')))
        ));
    }

    #[test]
    fn i_installs_on_review_and_pastes_on_hosts() {
        let mut s = State::new("conf".into(), Theme::color());
        s.screen = Screen::Review;
        let i = key(KeyCode::Char('i'));
        assert!(matches!(map_key(&s, i), Some(Action::Install)));
        s.screen = Screen::Hosts;
        assert!(matches!(map_key(&s, i), Some(Action::AddPaste)));
    }
}
