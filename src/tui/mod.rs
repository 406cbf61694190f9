//! The wizard (`kswizard [--conf DIR]`): terminal setup and restore, the event loop, and the
//! effect runner. Everything else in `tui` is pure and tested without a terminal.
//!
//! Flow: key → `keymap::map_key` → `Action` → `update::update` (changes `State`, returns
//! `Effect`s) → `view::render`. Effects run as tokio tasks (file and SSH work on the blocking
//! pool) and come back as actions through the same bounded channel as the keys.

pub mod action;
pub mod bulk;
pub mod decision;
pub mod diff;
pub mod effects;
pub mod form;
pub mod input;
pub mod install;
pub mod keymap;
pub mod log_view;
pub mod ops;
pub mod preflight;
pub mod screens;
pub mod state;
pub mod theme;
pub mod timing;
pub mod update;
pub mod view;
pub mod widgets;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::Result;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use action::{Action, Effect};
use state::State;
use theme::Theme;

/// Messages into the loop: terminal events from the input thread, results from effects.
pub(crate) enum Msg {
    Term(Event),
    Action(Action),
}

/// Room for a burst of pasted keys; the input thread waits when the loop falls behind.
const CHANNEL_SIZE: usize = 256;
/// How often the input thread checks whether the loop is gone.
const POLL: Duration = Duration::from_millis(200);

/// Run the wizard on `conf_dir`. `cli::main` has installed color-eyre's hooks already, before
/// anything else could (the lab's errors are eyre reports too).
pub fn run(conf_dir: &Path) -> Result<()> {
    run_opening(conf_dir, None)
}

/// The wizard on `conf_dir`, opened at `opening`'s screen once the files are read (the demo).
pub fn run_opening(conf_dir: &Path, opening: Option<state::Opening>) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // ratatui::init installs a panic hook that restores the terminal before the report.
        let mut terminal = ratatui::init();
        let result = event_loop(&mut terminal, conf_dir, opening).await;
        ratatui::restore();
        result
    })
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    conf_dir: &Path,
    opening: Option<state::Opening>,
) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_SIZE);
    spawn_input(tx.clone());
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let mut state = State::new(conf_dir.to_path_buf(), Theme::from_env());
    state.opening = opening;
    spawn_effect(Effect::Load(conf_dir.to_path_buf()), tx.clone());
    if let Ok(size) = terminal.size() {
        update::update(&mut state, Action::Resized(size.width, size.height));
    }
    terminal.draw(|f| view::render(f, &state))?;

    while !state.quit {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            // SIGTERM / SIGHUP: leave like a quit, so the terminal is restored.
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
        };
        let Some(msg) = msg else { break };
        let mut changed = handle(&mut state, msg, &tx);
        // An install sends its output in bursts: take what is already waiting before drawing,
        // so a chatty step costs one draw per burst and keys behind it are not held up.
        for _ in 1..CHANNEL_SIZE {
            if state.quit {
                break;
            }
            let Ok(msg) = rx.try_recv() else { break };
            changed |= handle(&mut state, msg, &tx);
        }
        // Drawn only after a change; ratatui writes only the cells that differ, so no flicker.
        if changed {
            terminal.draw(|f| view::render(f, &state))?;
        }
    }
    Ok(())
}

/// Take one message into the state; true when the screen must be drawn again.
fn handle(state: &mut State, msg: Msg, tx: &mpsc::Sender<Msg>) -> bool {
    let action = match msg {
        Msg::Action(a) => a,
        Msg::Term(Event::Key(key)) => match keymap::map_key(state, key) {
            Some(a) => a,
            // A key with no meaning here changes nothing: no redraw.
            None => return false,
        },
        // The draw resizes to the new size; the state knows it for the keys.
        Msg::Term(Event::Resize(w, h)) => Action::Resized(w, h),
        Msg::Term(_) => return false,
    };
    for effect in update::update(state, action) {
        spawn_effect(effect, tx.clone());
    }
    true
}

/// Terminal events come from a thread: crossterm's reader blocks, and the event-stream feature
/// would be another dependency for the same result.
fn spawn_input(tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match event::poll(POLL) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if tx.blocking_send(Msg::Term(ev)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
}

/// Effects are tasks, so the loop never waits for one (an install runs for minutes); the
/// blocking ones move to the blocking pool inside `effects::run`.
fn spawn_effect(effect: Effect, tx: mpsc::Sender<Msg>) {
    tokio::spawn(effects::run(effect, tx));
}
