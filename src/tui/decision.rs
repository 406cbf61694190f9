//! The operator's decision about the selected failed node on the Install screen (DESIGN §4.6):
//! `r` retry its failed step, `s` skip it (only a `skippable` one), `a` abort the node, `A` abort
//! the install (asked first). Pure: `choose` turns a key's choice into the command for the
//! engine (`Effect::Command`), or says why not.

use super::action::Effect;
use super::state::{Confirm, Modal, State, StatusKind};
use super::widgets::chrome::Hint;
use crate::engine::control::Command;

/// A decision key on the Install screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Retry,
    Skip,
    AbortNode,
    AbortInstall,
}

/// What the key `c` chooses on the Install screen, if it is a decision key.
pub fn of_key(c: char) -> Option<Choice> {
    Some(match c {
        'r' => Choice::Retry,
        's' => Choice::Skip,
        'a' => Choice::AbortNode,
        'A' => Choice::AbortInstall,
        _ => return None,
    })
}

/// Carry `choice` out for the selected node: the command to send, or a status line saying why
/// nothing is sent. Aborting the install is asked first (`Confirm::AbortInstall`).
pub fn choose(state: &mut State, choice: Choice) -> Vec<Effect> {
    let Some(install) = state.install.as_mut().filter(|i| i.running) else {
        state.set_status(
            StatusKind::Info,
            "No install is running: i resumes it (kswizard install --resume --retry / --skip from a shell).",
        );
        return Vec::new();
    };
    if choice == Choice::AbortInstall {
        state.modal = Some(Modal::Confirm(Confirm::AbortInstall));
        return Vec::new();
    }
    let Some(node) = install.nodes.get(install.selected).map(|n| n.name.clone()) else {
        return Vec::new();
    };
    let Some(w) = install.awaiting.get(&node).cloned() else {
        state.set_status(
            StatusKind::Info,
            format!("{node} is not waiting for a decision: only a failed node is (n selects it)."),
        );
        return Vec::new();
    };
    let (cmd, said) = match choice {
        Choice::Retry => (
            Command::Retry {
                node: node.clone(),
                step: w.step.clone(),
            },
            format!("Retrying {} on {node}.", w.step),
        ),
        Choice::Skip if !w.skippable => {
            state.set_status(
                StatusKind::Error,
                format!(
                    "{} cannot be skipped: later steps build on it (the plan does not mark it skippable). r retries, a aborts {node}.",
                    w.step
                ),
            );
            return Vec::new();
        }
        Choice::Skip => (
            Command::Skip {
                node: node.clone(),
                step: w.step.clone(),
            },
            format!("Skipped {} on {node}; it goes on.", w.step),
        ),
        Choice::AbortNode | Choice::AbortInstall => (
            Command::AbortNode { node: node.clone() },
            format!("Aborted {node}; steps waiting for it are skipped."),
        ),
    };
    install.awaiting.remove(&node);
    state.set_status(StatusKind::Info, said);
    vec![Effect::Command(cmd)]
}

/// The answer `y` to `Confirm::AbortInstall`.
pub fn abort_install(state: &mut State) -> Vec<Effect> {
    if let Some(i) = state.install.as_mut() {
        i.awaiting.clear();
    }
    state.set_status(
        StatusKind::Info,
        "Aborting the install: running steps finish and are recorded, no step starts.",
    );
    vec![Effect::Command(Command::AbortInstall)]
}

/// The footer's decision keys while the selected node waits for one.
pub fn hints(state: &State) -> Vec<Hint> {
    let Some(install) = &state.install else {
        return Vec::new();
    };
    let waiting = install
        .nodes
        .get(install.selected)
        .and_then(|n| install.awaiting.get(&n.name));
    let Some(w) = waiting else {
        return Vec::new();
    };
    let mut hints = vec![("r", "retry")];
    if w.skippable {
        hints.push(("s", "skip"));
    }
    hints.extend([("a", "abort node"), ("A", "abort install")]);
    hints
}
