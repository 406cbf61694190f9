//! Tests of the pure parts: `update` along the key paths, and snapshots of every screen.

mod snapshots;
mod update;

use std::path::Path;

use super::action::{Action, Effect};
use super::effects;
use super::input::Edit;
use super::state::State;
use super::theme::Theme;
use super::update::update;

/// The state after reading the repository's conf/ (the seeds' 6-host HA example), on Start.
pub fn loaded() -> State {
    let mut s = State::new("conf".into(), Theme::color());
    let disk = effects::load(Path::new("conf"));
    assert!(disk.is_ok(), "{disk:?}");
    update(&mut s, Action::Loaded(Box::new(disk)));
    s
}

/// The repository's conf/ opened on the Hosts screen.
pub fn opened() -> State {
    let mut s = loaded();
    update(&mut s, Action::Confirm);
    s
}

pub fn send(s: &mut State, actions: impl IntoIterator<Item = Action>) -> Vec<Effect> {
    actions.into_iter().flat_map(|a| update(s, a)).collect()
}

/// On the Load balancer screen, start editing the field `downs` rows below Mode, emptied, and
/// type `text` into it (not yet kept with Enter).
pub fn edit_lb_field(s: &mut State, downs: usize, text: &str) {
    send(s, [Action::GoTo(super::state::Screen::LoadBalancer)]);
    send(s, std::iter::repeat_n(Action::Down, downs));
    send(s, [Action::Edit, Action::Text(Edit::Clear)]);
    type_text(s, text);
}

pub fn type_text(s: &mut State, text: &str) {
    send(s, text.chars().map(|c| Action::Text(Edit::Insert(c))));
}
