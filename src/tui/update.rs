//! The state machine: `update(state, action)` changes the state and returns the I/O to do. No I/O
//! here, so every path is unit-tested without a terminal or a disk.

use super::action::{Action, Effect, Rerun};
use super::bulk;
use super::decision;
use super::form::{FieldId, Form, FormKind};
use super::input::Input;
use super::state::{
    Confirm, Disk, LbEdit, LbField, Modal, REVIEW_SECTIONS, Screen, StartChoice, State, StatusKind,
};
use std::time::Duration;

use super::install::{Install, Operation, ended_well};
use super::log_view::Reading;
use super::ops;
use crate::engine::events::{Event, Summary};
use crate::engine::installed::Change;
use crate::lb_status::LbStatus;
use crate::model::{Cluster, DEFAULT_LB_DOMAIN, EtcdTopology, LbMode};
use crate::validate::{has_errors, has_errors_but};

/// The longest failure reason the status line shows itself (with the node, the step and the
/// hint to resume, it still fits 80 columns).
const REASON_ON_STATUS: usize = 24;

/// How often the Install screen's clocks move.
const TICK: Duration = Duration::from_secs(1);

/// Rows a `PageUp` / `PageDown` moves.
const PAGE: usize = 10;
/// The roles of the Roles screen's columns.
pub const ROLE_COLUMNS: [&str; 3] = ["master", "worker", "etcd"];

/// Apply `action` to `state`; then bring what derives from the cluster up to date, here and
/// only here, so that no change can leave the findings or the diffs behind.
pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    // An install's output and the LB's probes never touch the cluster or the files: they skip the
    // comparison, which costs a pass over every host (thousands of events a second at 500 nodes).
    let derived_unchanged = matches!(
        action,
        Action::Engine(_)
            | Action::LbProbed(_)
            | Action::Resized(..)
            | Action::LogRead { .. }
            | Action::Tick(_)
            | Action::History { .. }
    );
    let effects = apply(state, action);
    if !derived_unchanged {
        state.refresh();
    }
    effects
}

fn apply(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Loaded(outcome) => {
            loaded(state, *outcome);
            return Vec::new();
        }
        Action::Tested { host, result } => {
            let status = match &result {
                Ok(f) => (
                    StatusKind::Ok,
                    format!("{host}: SSH and sudo work ({}).", f.os),
                ),
                Err(e) => (StatusKind::Error, e.clone()),
            };
            state.set_status(status.0, status.1);
            state.ssh_tests.insert(host, Some(result));
            return Vec::new();
        }
        Action::Saved { outcome, written } => {
            saved(state, *outcome, *written);
            return Vec::new();
        }
        Action::Engine(event) => {
            engine_event(state, *event);
            return Vec::new();
        }
        Action::Tick(now) => {
            let Some(install) = state.install.as_mut() else {
                return Vec::new();
            };
            install.tick(now);
            install.ticking = install.running;
            return if install.running {
                vec![Effect::Tick(TICK)]
            } else {
                Vec::new()
            };
        }
        Action::History { history, timeouts } => {
            if let Some(install) = state.install.as_mut() {
                // This run's finished steps, if any came first, stay counted.
                let run = std::mem::replace(&mut install.history, history);
                for (step, secs) in run.samples {
                    for s in secs {
                        install.history.add(&step, s);
                    }
                }
                install.timeouts = timeouts;
            }
            return Vec::new();
        }
        Action::LogRead { path, lines } => {
            if let Some(install) = state.install.as_mut() {
                install.log_read(&path, lines);
            }
            return Vec::new();
        }
        Action::InstallEnded(result) => return install_ended(state, result),
        Action::PreflightAsked => {
            preflight_asked(state);
            return Vec::new();
        }
        Action::LbProbed(lb) => return lb_probed(state, *lb),
        Action::InstallPreviewed(preview) => {
            install_previewed(state, preview);
            return Vec::new();
        }
        Action::BackupsListed { now, list } => {
            if let Some(Modal::Ops(d)) = state.modal.as_mut() {
                ops::listed(d, list, now);
            }
            return Vec::new();
        }
        Action::RestoreChecked { backup, check } => {
            if let Some(Modal::Ops(d)) = state.modal.as_mut() {
                ops::checked(d, &backup, check);
            }
            return Vec::new();
        }
        Action::BackedUp(kept) => {
            if let Some(install) = state.install.as_mut() {
                install.backed_up(*kept);
            }
            return Vec::new();
        }
        Action::RemovePrepared { node, check } => {
            remove_prepared(state, node, check);
            return Vec::new();
        }
        Action::Resized(w, h) => {
            state.size = Some((w, h));
            return Vec::new();
        }
        Action::Interrupt => {
            if matches!(
                state.modal,
                Some(Modal::Confirm(Confirm::Quit { .. } | Confirm::StopInstall))
            ) {
                state.quit = true;
            } else {
                state.help = false;
                state.modal = Some(Modal::Confirm(quit_question(state)));
            }
            return Vec::new();
        }
        _ => {}
    }
    if state.help {
        state.help = false;
        return Vec::new();
    }
    match state.modal.take() {
        Some(Modal::Confirm(question)) => return answer(state, question, action),
        Some(Modal::Form(form)) => {
            form_action(state, form, action);
            return Vec::new();
        }
        Some(Modal::Ops(dialog)) => {
            let step = ops::act(dialog, action, &state.conf_dir, &state.cluster);
            return ops_step(state, step);
        }
        None => {}
    }
    if state.lb_edit.is_some() {
        lb_edit_action(state, action);
        return Vec::new();
    }
    if state.screen == Screen::Install
        && !matches!(action, Action::Help | Action::Quit | Action::Save)
        && let Some(effects) = install_reading(state, &action)
    {
        return effects;
    }
    match action {
        Action::Help => state.help = true,
        Action::Quit if state.dirty() || state.installing() => {
            state.modal = Some(Modal::Confirm(quit_question(state)));
        }
        Action::Quit => state.quit = true,
        Action::Save => return save(state, false),
        Action::ContinueAnyway | Action::Back if waiting_for_answer(state) => {
            return answer_preflight(state, matches!(action, Action::ContinueAnyway));
        }
        Action::GoTo(_) | Action::Back if state.installing() => state.set_status(
            StatusKind::Info,
            "The install is running; the other screens open again when it ends.",
        ),
        Action::Back
            if matches!(
                state.screen,
                Screen::Install | Screen::Preflight | Screen::Done
            ) =>
        {
            go(state, Screen::Review);
        }
        Action::GoTo(screen) => go(state, screen),
        Action::Back => go(state, state.screen.prev()),
        Action::Install
            if matches!(state.screen, Screen::Install | Screen::Preflight)
                && state
                    .install
                    .as_ref()
                    .is_some_and(|i| i.operation.is_some()) =>
        {
            return again(state);
        }
        Action::Install
            if matches!(
                state.screen,
                Screen::Review | Screen::Install | Screen::Preflight
            ) =>
        {
            return ask_install(state);
        }
        Action::Operations
            if matches!(state.screen, Screen::Hosts | Screen::Review | Screen::Done) =>
        {
            ask_ops(state);
        }
        Action::Decide(choice) if state.screen == Screen::Install => {
            return decision::choose(state, choice);
        }
        action => match state.screen {
            Screen::Start => start_action(state, action),
            Screen::Hosts => return hosts_action(state, action),
            Screen::Roles => roles_action(state, action),
            Screen::LoadBalancer => lb_action(state, action),
            Screen::Review => review_action(state, action),
            Screen::Install => install_action(state, action),
            Screen::Preflight => preflight_action(state, &action),
            Screen::Done => {
                // ↑↓ scroll Done, which many nodes make longer than the screen.
                if let Some(i) = state.install.as_mut() {
                    let mut top = i.done_top;
                    move_in(&mut top, usize::from(u16::MAX), &action);
                    i.done_top = top;
                }
            }
        },
    }
    Vec::new()
}

fn go(state: &mut State, screen: Screen) {
    if screen != Screen::Start && !state.opened {
        state.set_status(StatusKind::Info, "Choose New or Open first.");
        return;
    }
    state.screen = screen;
}

/// Up / Down over `len` rows, by one or by a page.
fn move_in(selected: &mut usize, len: usize, action: &Action) {
    let last = len.saturating_sub(1);
    *selected = match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => (*selected + 1).min(last),
        Action::PageUp => selected.saturating_sub(PAGE),
        Action::PageDown => (*selected + PAGE).min(last),
        _ => *selected,
    };
}

fn loaded(state: &mut State, outcome: Result<Disk, String>) {
    if let Err(e) = &outcome {
        state.set_status(
            StatusKind::Error,
            format!("Cannot read the conf files: {e}"),
        );
    }
    state.disk = Some(outcome);
    state.start_selected = 0;
    // Opened where the caller asked only when there is a cluster to open; else the Start screen
    // says what was found.
    if matches!(&state.disk, Some(Ok(d)) if d.cluster.is_some())
        && let Some(opening) = state.opening.take()
    {
        open(state, StartChoice::Open);
        state.screen = opening.screen;
        state.set_status(StatusKind::Info, opening.message);
    }
}

fn start_action(state: &mut State, action: Action) {
    let choices = state.start_choices();
    match action {
        Action::Up | Action::Down => move_in(&mut state.start_selected, choices.len(), &action),
        Action::Confirm => {
            let Some(&choice) = choices.get(state.start_selected) else {
                return;
            };
            if state.dirty() {
                state.modal = Some(Modal::Confirm(Confirm::Replace(choice)));
            } else {
                open(state, choice);
            }
        }
        _ => {}
    }
}

/// Start editing the cluster on disk (Open) or an empty one (New, which still patches the
/// existing common.yaml rather than replacing it).
fn open(state: &mut State, choice: StartChoice) {
    let Some(Ok(disk)) = &state.disk else {
        state.source = crate::conf::Source {
            dir: state.conf_dir.clone(),
            ..Default::default()
        };
        state.cluster = Cluster::default();
        return finish_open(state, "New cluster.");
    };
    state.source = disk.source.clone();
    let (cluster, message) = match (choice, &disk.cluster) {
        (StartChoice::Open, Some(c)) => (c.clone(), format!("Opened {} hosts.", c.hosts.len())),
        _ => (Cluster::default(), "New cluster.".to_string()),
    };
    state.cluster = cluster;
    finish_open(state, message);
}

fn finish_open(state: &mut State, message: impl Into<String>) {
    state.saved = state.cluster.clone();
    state.opened = true;
    state.host_selected = 0;
    state.role_row = 0;
    state.screen = Screen::Hosts;
    state.set_status(StatusKind::Info, message);
}

fn answer(state: &mut State, question: Confirm, action: Action) -> Vec<Effect> {
    if let (Confirm::Install(p), Action::Rerun(rerun)) = (&question, &action)
        && p.complete
    {
        return start_install(state, p, Some(*rerun));
    }
    let Action::Answer(yes) = action else {
        // Anything but y / n leaves the question open.
        state.modal = Some(Modal::Confirm(question));
        return Vec::new();
    };
    if !yes {
        return Vec::new();
    }
    match question {
        Confirm::Quit { .. } | Confirm::StopInstall => state.quit = true,
        Confirm::AbortInstall => return decision::abort_install(state),
        Confirm::DeleteHost(i) if i < state.cluster.hosts.len() => {
            let host = state.cluster.hosts.remove(i);
            state.set_status(StatusKind::Info, format!("Deleted {}.", host.name));
        }
        // A refusal's box only closes.
        Confirm::DeleteHost(_) | Confirm::RemoveNode { check: Err(_), .. } => {}
        Confirm::RemoveNode { node, check: Ok(_) } => return start_remove(state, node),
        Confirm::WriteWithWarnings(_) => return save(state, true),
        Confirm::Replace(choice) => open(state, choice),
        // y runs what the question said: the unfinished install goes on, or a new one starts.
        // A complete install is never run again by y: that question offers r and c instead.
        Confirm::Install(p) if !p.complete => return start_install(state, &p, None),
        // The engine goes on with the installed cluster by itself when hosts are added.
        Confirm::AddHosts { nodes, preview } => {
            let effects = start_install(state, &preview, None);
            let text = format!(
                "Adding {}: {} steps on {} nodes…",
                nodes.join(", "),
                preview.steps,
                preview.nodes
            );
            state.set_status(StatusKind::Info, text);
            return effects;
        }
        Confirm::Install(p) => state.modal = Some(Modal::Confirm(Confirm::Install(p))),
    }
    Vec::new()
}

/// Ctrl-S: write the files unless an error remains; warnings need `accept_warnings`, which the
/// operator gives by answering the question.
fn save(state: &mut State, accept_warnings: bool) -> Vec<Effect> {
    if !state.opened {
        state.set_status(StatusKind::Info, "Choose New or Open first.");
        return Vec::new();
    }
    if state.saving {
        return Vec::new();
    }
    if let Some(Err(e)) = &state.disk {
        // The operator's file stays: what it held cannot be known, so it cannot be kept.
        state.set_status(
            StatusKind::Error,
            format!("Not written: {e}; fix that file (or move it away) and start kswizard again."),
        );
        return Vec::new();
    }
    if has_errors(state.findings()) {
        state.refuse_for_errors("Not written");
        return Vec::new();
    }
    if !state.findings().is_empty() && !accept_warnings {
        state.modal = Some(Modal::Confirm(Confirm::WriteWithWarnings(
            state.findings().len(),
        )));
        return Vec::new();
    }
    state.saving = true;
    state.set_status(StatusKind::Info, "Writing…");
    vec![Effect::Save {
        cluster: Box::new(state.cluster.clone()),
        source: Box::new(state.source.clone()),
        dir: state.conf_dir.clone(),
    }]
}

fn saved(state: &mut State, outcome: Result<Disk, String>, written: Cluster) {
    state.saving = false;
    match outcome {
        Ok(disk) => {
            let names: Vec<&str> = disk.files.iter().map(|(n, _)| n.as_str()).collect();
            // A .bak is made only of a file that was there before.
            let had = &state.source;
            let old = had.hosts_exists || had.common_text.is_some() || had.settings_text.is_some();
            let message = format!(
                "Wrote {} in {}{}",
                names.join(", "),
                state.conf_dir.display(),
                if old {
                    " (the old files are kept as .bak)."
                } else {
                    "."
                }
            );
            state.source = disk.source.clone();
            state.disk = Some(Ok(disk));
            state.saved = written;
            state.set_status(StatusKind::Ok, message);
        }
        Err(e) => state.set_status(StatusKind::Error, format!("Not written: {e}")),
    }
}

fn hosts_action(state: &mut State, action: Action) -> Vec<Effect> {
    let n = state.cluster.hosts.len();
    match action {
        Action::TestSsh if n > 0 => {
            let host = state.cluster.hosts[state.host_selected].clone();
            if matches!(state.ssh_tests.get(&host.name), Some(None)) {
                return Vec::new();
            }
            state.ssh_tests.insert(host.name.clone(), None);
            state.set_status(
                StatusKind::Info,
                format!("Testing SSH and sudo on {}…", host.name),
            );
            return vec![Effect::TestSsh {
                host: Box::new(host),
                dir: state.conf_dir.clone(),
            }];
        }
        Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
            move_in(&mut state.host_selected, n, &action);
        }
        Action::Add => {
            let template = bulk::common_access(&state.cluster.hosts);
            state.modal = Some(Modal::Form(Form::host(FormKind::AddHost, &template)));
        }
        Action::AddRange => {
            let template = bulk::common_access(&state.cluster.hosts);
            state.modal = Some(Modal::Form(Form::range(&template)));
        }
        Action::AddPaste => state.modal = Some(Modal::Form(Form::paste())),
        Action::Edit if n > 0 => {
            let i = state.host_selected;
            let form = Form::host(FormKind::EditHost(i), &state.cluster.hosts[i]);
            state.modal = Some(Modal::Form(form));
        }
        Action::Delete if n > 0 => {
            let name = state.cluster.hosts[state.host_selected].name.clone();
            if state.is_installed(&name) {
                return ask_remove(state, name);
            }
            state.modal = Some(Modal::Confirm(Confirm::DeleteHost(state.host_selected)));
        }
        Action::Confirm => go(state, Screen::Roles),
        _ => {}
    }
    Vec::new()
}

fn form_action(state: &mut State, mut form: Form, action: Action) {
    match action {
        Action::Back => return,
        Action::NextField => form.move_focus(true),
        Action::PrevField => form.move_focus(false),
        Action::Toggle | Action::Right => form.cycle(true),
        Action::Left => form.cycle(false),
        Action::Text(edit) => form.edit(edit),
        Action::Confirm => match submit(state, &form) {
            Ok(message) => {
                state.set_status(StatusKind::Info, message);
                return;
            }
            Err(e) => form.error = Some(e),
        },
        _ => {}
    }
    state.modal = Some(Modal::Form(form));
}

/// Apply a filled form to the cluster; the message says what changed.
fn submit(state: &mut State, form: &Form) -> Result<String, String> {
    let hosts = &mut state.cluster.hosts;
    let added = match form.kind {
        FormKind::EditHost(i) => {
            let host = form.to_host(hosts.get(i))?;
            let message = format!("Changed {}.", host.name);
            hosts[i] = host;
            return Ok(message);
        }
        FormKind::AddHost => vec![form.to_host(None)?],
        FormKind::Range => {
            let mut added = bulk::hosts_from_range(
                form.text(FieldId::Addresses),
                form.text(FieldId::NamePrefix),
                hosts,
            )?;
            for h in &mut added {
                form.apply_access(h)?;
            }
            added
        }
        FormKind::Paste => bulk::hosts_from_ini(form.text(FieldId::Lines))?,
    };
    let message = match added.as_slice() {
        [one] => format!("Added {}.", one.name),
        [first, .., last] => format!(
            "Added {} hosts: {} … {}.",
            added.len(),
            first.name,
            last.name
        ),
        [] => String::new(),
    };
    hosts.extend(added);
    state.host_selected = hosts.len().saturating_sub(1);
    Ok(message)
}

fn roles_action(state: &mut State, action: Action) {
    let n = state.cluster.hosts.len();
    match action {
        Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
            move_in(&mut state.role_row, n, &action);
        }
        Action::Left | Action::PrevField => state.role_col = (state.role_col + 2) % 3,
        Action::Right | Action::NextField => state.role_col = (state.role_col + 1) % 3,
        Action::Toggle if n > 0 => {
            let roles = &mut state.cluster.hosts[state.role_row].roles;
            let flag = match state.role_col {
                0 => &mut roles.master,
                1 => &mut roles.worker,
                _ => &mut roles.etcd,
            };
            *flag = !*flag;
        }
        Action::Preset => {
            state.cluster.apply_preset();
            state.set_status(
                StatusKind::Info,
                "Preset: the first three hosts are master + etcd, the rest workers.",
            );
        }
        Action::EtcdTopology => {
            let settings = &mut state.cluster.settings;
            settings.etcd_topology = match settings.etcd_topology {
                EtcdTopology::External => EtcdTopology::Stacked,
                EtcdTopology::Stacked => EtcdTopology::External,
            };
            let topology = settings.etcd_topology;
            state.set_status(
                StatusKind::Info,
                format!("etcd topology {}.", topology.trade_off()),
            );
        }
        Action::Confirm => go(state, Screen::LoadBalancer),
        _ => {}
    }
}

const MODES: [LbMode; 3] = [LbMode::External, LbMode::BuiltIn, LbMode::None];

fn lb_action(state: &mut State, action: Action) {
    let fields = LbField::ALL;
    let at = fields
        .iter()
        .position(|&f| f == state.lb_field)
        .unwrap_or(0);
    match action {
        Action::Up | Action::PrevField => state.lb_field = fields[(at + 3) % 4],
        Action::Down | Action::NextField => state.lb_field = fields[(at + 1) % 4],
        Action::Toggle | Action::Left | Action::Right if state.lb_field == LbField::Mode => {
            let m = MODES
                .iter()
                .position(|&m| m == state.cluster.lb.mode)
                .unwrap_or(0);
            let step = if matches!(action, Action::Left) { 2 } else { 1 };
            state.cluster.lb.mode = MODES[(m + step) % 3];
        }
        Action::Edit if state.lb_field != LbField::Mode => {
            let lb = &state.cluster.lb;
            let text = match state.lb_field {
                LbField::Address => lb.address.clone().unwrap_or_default(),
                LbField::Port => lb.port.to_string(),
                _ => lb.domain.clone(),
            };
            state.lb_edit = Some(LbEdit {
                input: Input::new(text),
                original: lb.clone(),
                error: None,
            });
        }
        Action::Confirm => go(state, Screen::Review),
        _ => {}
    }
}

/// Typing into a Load balancer field: every keystroke updates the cluster, so its findings show
/// while typing; Esc puts the old value back.
fn lb_edit_action(state: &mut State, action: Action) {
    let Some(mut edit) = state.lb_edit.take() else {
        return;
    };
    match action {
        Action::Back => {
            state.cluster.lb = edit.original;
            return;
        }
        Action::Confirm if edit.error.is_none() => {
            if state.cluster.lb.domain.is_empty() {
                state.cluster.lb.domain = DEFAULT_LB_DOMAIN.to_string();
            }
            return;
        }
        Action::Text(e) => {
            edit.input.apply(e);
            edit.error = apply_lb_text(state, edit.input.text());
        }
        _ => {}
    }
    state.lb_edit = Some(edit);
}

/// Put the typed text into the focused LB field; the error says why it cannot be.
fn apply_lb_text(state: &mut State, text: &str) -> Option<String> {
    let text = text.trim();
    let lb = &mut state.cluster.lb;
    match state.lb_field {
        LbField::Address => {
            lb.address = (!text.is_empty()).then(|| text.to_string());
            if lb.address.is_some() && lb.mode == LbMode::None {
                lb.mode = LbMode::External;
            }
        }
        LbField::Port => match text.parse::<i64>() {
            Ok(p) => lb.port = p,
            Err(_) => return Some(format!("'{text}' is not a number")),
        },
        LbField::Domain => lb.domain = text.to_string(),
        LbField::Mode => {}
    }
    None
}

fn review_action(state: &mut State, action: Action) {
    match action {
        Action::Up | Action::Down => {
            move_in(&mut state.review_selected, REVIEW_SECTIONS.len(), &action);
        }
        Action::PageUp => state.diff_scroll = state.diff_scroll.saturating_sub(PAGE),
        Action::PageDown => {
            let total = state
                .diffs()
                .as_ref()
                .map_or(0, |d| d.iter().map(|f| f.lines.len()).sum());
            state.diff_scroll = (state.diff_scroll + PAGE).min(total.saturating_sub(1));
        }
        Action::Confirm => go(state, REVIEW_SECTIONS[state.review_selected]),
        _ => {}
    }
}

/// How often the Install screen probes the LB.
pub const LB_PROBE_EVERY: Duration = Duration::from_secs(2);

/// q or Ctrl-C: while an install runs the question says what quitting does to it.
fn quit_question(state: &State) -> Confirm {
    if state.installing() {
        Confirm::StopInstall
    } else {
        Confirm::Quit {
            unsaved: state.dirty(),
        }
    }
}

/// `i`: ask before installing, but only what the files on disk say, and only without errors:
/// the engine reads the cluster the wizard shows, and the files must tell the same story to
/// `kswizard install --resume` later.
/// The question itself waits for a look at what would run (the plan and the journal on disk).
fn ask_install(state: &mut State) -> Vec<Effect> {
    if state.installing() {
        return Vec::new();
    }
    if has_errors(state.findings()) {
        state.refuse_for_errors("Not installing");
        return Vec::new();
    }
    if !state.written() {
        state.set_status(
            StatusKind::Error,
            "Not installing: the files on disk differ from this cluster; write them with Ctrl-s first.",
        );
        return Vec::new();
    }
    // The install adds hosts to an installed cluster, nothing else: what it would refuse is
    // refused here, with what to do instead (Review lists every difference).
    if let Some(c) = state.changes().iter().find(|c| !c.is_addition()) {
        let text = format!("Not installing: {}", c.what_it_does());
        state.set_status(StatusKind::Error, text);
        return Vec::new();
    }
    vec![Effect::PreviewInstall {
        cluster: Box::new(state.cluster.clone()),
        dir: state.conf_dir.clone(),
    }]
}

/// What an install would run is known: ask about exactly that.
fn install_previewed(
    state: &mut State,
    preview: Result<Box<crate::engine::executor::Preview>, String>,
) {
    match preview {
        // The files on disk against the installed record, as the install will see them.
        Ok(p) if p.day2.iter().any(|c| !c.is_addition()) => {
            if let Some(c) = p.day2.iter().find(|c| !c.is_addition()) {
                let text = format!("Not installing: {}", c.what_it_does());
                state.set_status(StatusKind::Error, text);
            }
        }
        Ok(p) if !state.installing() && state.modal.is_none() => {
            // The hosts the files add to the installed cluster.
            let added: Vec<String> = p
                .day2
                .iter()
                .filter_map(|c| match c {
                    Change::Added { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect();
            state.modal = Some(Modal::Confirm(if added.is_empty() {
                Confirm::Install(p)
            } else {
                Confirm::AddHosts {
                    nodes: added,
                    preview: p,
                }
            }));
        }
        Ok(_) => {}
        Err(e) => state.set_status(StatusKind::Error, format!("Not installing: {e}")),
    }
}

/// The install was confirmed: show its screen and start it; an LB probe loop starts unless one
/// is already going. `rerun` says what a complete install runs again.
fn start_install(
    state: &mut State,
    preview: &crate::engine::executor::Preview,
    rerun: Option<Rerun>,
) -> Vec<Effect> {
    let n = state.cluster.hosts.len();
    // Says "resuming" only when it resumes; the engine's plan event then counts what runs.
    let text = match (preview.mode, rerun) {
        (_, Some(Rerun::Changed)) => {
            format!("Running the {} changed steps again…", preview.changed.len())
        }
        (crate::engine::decide::Mode::Resume, None) => format!(
            "Resuming the unfinished install: {} steps on {} nodes…",
            preview.steps, preview.nodes
        ),
        _ => format!("Installing on {n} hosts…"),
    };
    let effect = Effect::Install {
        cluster: Box::new(state.cluster.clone()),
        dir: state.conf_dir.clone(),
        restart: rerun == Some(Rerun::All),
        resume: rerun == Some(Rerun::Changed),
    };
    begin(state, None, effect, text)
}

/// The removal of `node` was confirmed: the same Install screen, titled for it.
fn start_remove(state: &mut State, node: String) -> Vec<Effect> {
    let effect = Effect::Remove {
        cluster: Box::new(state.cluster.clone()),
        source: Box::new(state.source.clone()),
        dir: state.conf_dir.clone(),
        node: node.clone(),
    };
    let text = format!("Removing {node} from the cluster…");
    begin(state, Some(Operation::Remove(node)), effect, text)
}

/// Show the Install screen for a run of the engine (`effect`: the install, or `operation`), with
/// its clock and, unless one is already going, an LB probe loop.
fn begin(
    state: &mut State,
    operation: Option<Operation>,
    effect: Effect,
    text: String,
) -> Vec<Effect> {
    let mut install = match state.install.take() {
        // The same run again (a resume): what the operator was reading stays.
        Some(previous) if previous.operation == operation => {
            Install::next_run(previous, state.cluster.clone())
        }
        Some(previous) => {
            let mut next = Install::new(state.cluster.clone());
            (next.lb, next.probing, next.ticking) =
                (previous.lb, previous.probing, previous.ticking);
            next
        }
        None => Install::new(state.cluster.clone()),
    };
    // The log shown first is that of the node the operation is about.
    let about = match &operation {
        Some(Operation::Remove(node)) => Some(node),
        Some(Operation::Reset { hosts, all: false }) => hosts.first(),
        _ => None,
    };
    if let Some(node) = about
        && let Some(i) = install.nodes.iter().position(|n| &n.name == node)
    {
        install.selected = i;
    }
    install.operation = operation;
    let mut effects = vec![effect];
    if !install.ticking {
        install.ticking = true;
        effects.push(Effect::Tick(Duration::ZERO));
    }
    if !install.probing {
        install.probing = true;
        effects.push(Effect::ProbeLb {
            cluster: Box::new(state.cluster.clone()),
            dir: state.conf_dir.clone(),
            after: Duration::ZERO,
        });
    }
    state.set_status(StatusKind::Info, text);
    state.install = Some(install);
    state.screen = Screen::Install;
    effects
}

fn engine_event(state: &mut State, event: Event) {
    if let Event::Plan {
        install_id, done, ..
    } = &event
        && !done.is_empty()
        && state.install.is_some()
    {
        let what = state
            .install
            .as_ref()
            .and_then(|i| i.operation.as_ref())
            .map_or_else(|| format!("install {install_id}"), Operation::what);
        let text = format!(
            "Resuming {what}: {} steps an earlier run finished are not run again.",
            done.len()
        );
        state.set_status(StatusKind::Info, text);
    }
    if let Some(install) = state.install.as_mut() {
        // The Preflight screen while the stage runs; the Install screen once steps do.
        match (&event, state.screen) {
            (Event::Preflight { .. }, Screen::Install) if !install.preflight.started() => {
                state.screen = Screen::Preflight;
            }
            (
                Event::Started { .. }
                | Event::Output { .. }
                | Event::Finished { .. }
                | Event::Delivered { .. },
                Screen::Preflight,
            ) => state.screen = Screen::Install,
            _ => {}
        }
        install.apply(event);
    }
}

fn install_ended(state: &mut State, result: Result<Summary, String>) -> Vec<Effect> {
    let install = state
        .install
        .as_ref()
        .is_some_and(|i| matches!(i.operation, None | Some(Operation::Reset { .. })));
    let mut effects = ended(state, result);
    // An install that ended well wrote the installed record, and a reset dropped hosts from it:
    // Start, Review and the Hosts screen's delete compare with it as it is now.
    if install {
        effects.push(Effect::Load(state.conf_dir.clone()));
    }
    effects
}

/// The run ended: the status line, and the screen that follows.
fn ended(state: &mut State, result: Result<Summary, String>) -> Vec<Effect> {
    let Some(install) = state.install.as_mut() else {
        return Vec::new();
    };
    install.running = false;
    let operation = install.operation.clone();
    let (what, resume) = operation.as_ref().map_or_else(
        || {
            (
                "the install".to_string(),
                "kswizard install --resume".to_string(),
            )
        },
        |op| (op.what(), op.command()),
    );
    let summary = match result {
        Err(e) => {
            // A preflight's table follows its first line: the nodes' logs show it.
            let first = e.lines().next().unwrap_or_default();
            let text = format!("{} stopped: {first}. i tries again.", capital(&what));
            state.set_status(StatusKind::Error, text);
            return Vec::new();
        }
        Ok(s) => s,
    };
    let text = match summary.failures.first() {
        _ if ended_well(operation.as_ref(), &summary) => None,
        Some(f) => Some(format!(
            "{} failed at {}: {}{}.",
            f.node,
            f.step,
            // A long reason is never cut on the status line: the node's log shows it whole.
            if f.reason.chars().count() > REASON_ON_STATUS {
                "the reason is in its log"
            } else {
                f.reason.as_str()
            },
            match summary.failures.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        )),
        None => Some(format!("{} steps were skipped.", summary.skipped)),
    };
    // The Done screen says what ran; the status line only how long it took.
    let took = took(&summary);
    let run_s = summary.elapsed_ms as f64 / 1000.0;
    install.summary = Some(summary);
    match (text, operation) {
        (None, None) => {
            state.screen = Screen::Done;
            state.set_status(StatusKind::Ok, took);
        }
        // The node is out of the cluster, and the effect wrote the conf and the installed record
        // without it (`Saved` came first); the Install screen stays, showing what ran.
        (None, Some(Operation::Remove(node))) => {
            state.cluster.hosts.retain(|h| h.name != node);
            let skipped = if install.left_unreset(&node) {
                " Not reset: see its log."
            } else {
                ""
            };
            state.set_status(
                StatusKind::Ok,
                format!(
                    "{node} left the cluster, the conf and the installed record ({run_s:.1}s).{skipped}"
                ),
            );
        }
        (None, Some(Operation::Backup)) => {
            // The figures first: a narrow status line cuts the end; the log has the directory.
            let text = install.kept.as_ref().map_or_else(
                || format!("etcd backed up ({run_s:.1}s)."),
                |k| {
                    let or_unknown = |n: Option<u64>| n.map_or("?".into(), |n| n.to_string());
                    format!(
                        "etcd backed up: revision {}, {} keys, {}; the log says where it is.",
                        or_unknown(k.meta.revision),
                        or_unknown(k.meta.keys),
                        ops::size_text(k.meta.size)
                    )
                },
            );
            state.set_status(StatusKind::Ok, text);
        }
        (None, Some(Operation::Restore(backup))) => {
            let id = install
                .install_id
                .clone()
                .unwrap_or_else(|| "<restore id>".into());
            install.restored(&backup, &id);
            let name = backup
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            state.set_status(
                StatusKind::Ok,
                format!(
                    "etcd restored from {name} in {run_s:.1}s; each member's old data is in /var/lib/kswizard-restore/{id}/member.old."
                ),
            );
        }
        (None, Some(Operation::Reset { hosts, .. })) => {
            let text = capital(&crate::ops::reset::outcome(&state.cluster, &hosts));
            state.set_status(StatusKind::Ok, format!("{text} ({run_s:.1}s)."));
        }
        (Some(failed), _) => state.set_status(
            StatusKind::Error,
            format!("{failed} i resumes (or {resume})."),
        ),
    }
    Vec::new()
}

/// "the removal of node3" → "The removal of node3".
fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// Deleting an installed host: it leaves the cluster before the conf. Only from files that say
/// what the wizard shows (the operation reads the conf on disk as the CLI would), and never
/// while something runs; the pre-check comes first, the question after it.
fn ask_remove(state: &mut State, node: String) -> Vec<Effect> {
    if state.installing() {
        return Vec::new();
    }
    if !state.written() {
        state.set_status(
            StatusKind::Error,
            format!(
                "{node} is installed: removing it runs on the cluster, then writes the conf; \
                 write (Ctrl-s) or undo your other changes first."
            ),
        );
        return Vec::new();
    }
    state.set_status(
        StatusKind::Info,
        format!("Checking that {node} can leave the cluster…"),
    );
    vec![Effect::PrepareRemove {
        cluster: Box::new(state.cluster.clone()),
        dir: state.conf_dir.clone(),
        node,
    }]
}

/// The pre-check is in: ask, or say why not, in a box with the quorum arithmetic either way.
fn remove_prepared(state: &mut State, node: String, check: Result<String, String>) {
    if state.installing() || state.modal.is_some() {
        return;
    }
    match &check {
        Ok(_) => state.status = None,
        Err(_) => state.set_status(StatusKind::Error, format!("Not removing {node}.")),
    }
    state.modal = Some(Modal::Confirm(Confirm::RemoveNode { node, check }));
}

/// `o`: the operations menu, on the conf as the disk has it (the operations read it as the
/// commands do), of an installed cluster, never while something runs.
fn ask_ops(state: &mut State) {
    if state.installing() {
        return;
    }
    if state.installed().is_none() {
        state.set_status(
            StatusKind::Error,
            "No operation: nothing is installed from this conf yet.",
        );
        return;
    }
    if !state.written() {
        state.set_status(
            StatusKind::Error,
            "The operations run on the conf on disk: write (Ctrl-s) or undo your changes first.",
        );
        return;
    }
    // As the commands: an even etcd count (what removing a master of three leaves) goes.
    if has_errors_but(state.findings(), crate::ops::TOLERATED) {
        state.refuse_for_errors("No operation");
        return;
    }
    let host = (state.screen == Screen::Hosts)
        .then(|| state.cluster.hosts.get(state.host_selected))
        .flatten()
        .map(|h| h.name.clone());
    state.modal = Some(Modal::Ops(ops::menu(host.as_deref())));
}

/// Where a key in the operations dialog leads: the dialog again, closed, or the operation run.
fn ops_step(state: &mut State, step: ops::Step) -> Vec<Effect> {
    match step {
        ops::Step::Stay(dialog, effects) => {
            state.modal = Some(Modal::Ops(dialog));
            effects
        }
        ops::Step::Close => Vec::new(),
        ops::Step::Run(op, force) => {
            let text = match &op {
                Operation::Backup => "Backing up etcd…".to_string(),
                Operation::Restore(b) => format!(
                    "Restoring etcd from {}{}…",
                    b.file_name().unwrap_or(b.as_os_str()).to_string_lossy(),
                    if force { " (forced)" } else { "" }
                ),
                other => format!("{}…", capital(&other.what())),
            };
            let effect = Effect::RunOp {
                cluster: Box::new(state.cluster.clone()),
                dir: state.conf_dir.clone(),
                op: op.clone(),
                force,
            };
            begin(state, Some(op), effect, text)
        }
    }
}

/// `i` on the Install screen of an operation: the same operation again (the engine resumes its
/// journal), asked first; once it is done there is nothing to resume.
fn again(state: &mut State) -> Vec<Effect> {
    let Some(install) = state.install.as_ref().filter(|i| !i.running) else {
        return Vec::new();
    };
    match &install.operation {
        Some(Operation::Remove(node)) if state.cluster.host(node).is_some() => {
            let node = node.clone();
            ask_remove(state, node)
        }
        Some(Operation::Remove(node)) => {
            let text = format!("{node} is removed; Esc goes to Review.");
            state.set_status(StatusKind::Info, text);
            Vec::new()
        }
        Some(op)
            if install
                .summary
                .as_ref()
                .is_some_and(|s| s.failed == 0 && s.skipped == 0) =>
        {
            let text = format!("{} is done; Esc goes to Review.", capital(&op.what()));
            state.set_status(StatusKind::Info, text);
            Vec::new()
        }
        Some(op) => {
            let step = ops::again(op, &state.conf_dir, &state.cluster);
            ops_step(state, step)
        }
        None => Vec::new(),
    }
}

/// How long the install took: this run, and the whole install when it took several runs.
pub fn took(s: &Summary) -> String {
    let run = s.elapsed_ms as f64 / 1000.0;
    let whole = s.install_elapsed_s;
    if whole > s.elapsed_ms / 1000 + 1 {
        format!(
            "Installed: this run {run:.1}s; {}m {:02}s since the install began (every run and the time between).",
            whole / 60,
            whole % 60
        )
    } else {
        format!("Installed in {run:.1}s.")
    }
}

/// A probe ended: keep it for the LB panel, and ask for the next one while the install's screens
/// are shown — Preflight first, Done last, which shows the LB as last probed (the delay is the
/// effect's, so `update` never waits).
fn lb_probed(state: &mut State, lb: LbStatus) -> Vec<Effect> {
    let Some(install) = state.install.as_mut() else {
        return Vec::new();
    };
    install.lb = Some(lb);
    install.probing = matches!(
        state.screen,
        Screen::Preflight | Screen::Install | Screen::Done
    );
    if !install.probing {
        return Vec::new();
    }
    vec![Effect::ProbeLb {
        cluster: Box::new(install.cluster.clone()),
        dir: state.conf_dir.clone(),
        after: LB_PROBE_EVERY,
    }]
}

/// The install waits for "continue anyway?": the Preflight screen says so, with the keys.
fn preflight_asked(state: &mut State) {
    let Some(install) = state.install.as_mut() else {
        return;
    };
    install.preflight.asked = true;
    state.screen = Screen::Preflight;
    state.set_status(
        StatusKind::Info,
        "Preflight warned: c continues anyway, Esc stops.",
    );
}

fn waiting_for_answer(state: &State) -> bool {
    state.screen == Screen::Preflight
        && state.install.as_ref().is_some_and(|i| {
            i.running && i.preflight.stage() == crate::tui::preflight::Stage::Waiting
        })
}

/// c or Esc to "continue anyway?": the engine hears the answer; c shows the steps' progress.
fn answer_preflight(state: &mut State, yes: bool) -> Vec<Effect> {
    if let Some(install) = state.install.as_mut() {
        install.preflight.answered = Some(yes);
    }
    if yes {
        state.screen = Screen::Install;
        state.set_status(
            StatusKind::Info,
            "Continuing despite the preflight warnings…",
        );
    } else {
        state.set_status(
            StatusKind::Info,
            "Stopping before any step: this run changes nothing.",
        );
    }
    vec![Effect::AnswerPreflight(yes)]
}

/// ↑↓ and page up / down scroll the table's nodes, ←→ its checks.
fn preflight_action(state: &mut State, action: &Action) {
    let Some(install) = state.install.as_mut() else {
        return;
    };
    let p = &mut install.preflight;
    match action {
        Action::Up => p.scroll(-1),
        Action::Down => p.scroll(1),
        Action::PageUp => p.scroll(-PAGE.cast_signed()),
        Action::PageDown => p.scroll(PAGE.cast_signed()),
        Action::Left => p.shift(-1),
        Action::Right => p.shift(1),
        _ => {}
    }
}

/// The Install screen's keys of reading the logs (`log_view`), before its others: Esc closes
/// the full view or the search before it leaves the screen. None: not one of them.
fn install_reading(state: &mut State, action: &Action) -> Option<Vec<Effect>> {
    let install = state.install.as_mut()?;
    match install.read(action) {
        Reading::NotMine => None,
        Reading::Done => Some(Vec::new()),
        Reading::Say(text) => {
            state.set_status(StatusKind::Info, text);
            Some(Vec::new())
        }
        Reading::Effect(e) => Some(vec![e]),
    }
}

fn install_action(state: &mut State, action: Action) {
    let Some(install) = state.install.as_mut() else {
        return;
    };
    match action {
        Action::Up | Action::Down => {
            move_in(&mut install.selected, install.nodes.len(), &action);
            install.log_scroll = 0;
        }
        // PgUp goes back in the selected node's log; PgDn forward, down to following it.
        Action::PageUp => {
            let len = install
                .nodes
                .get(install.selected)
                .map_or(0, |n| n.log.len());
            install.log_scroll = (install.log_scroll + PAGE).min(len.saturating_sub(1));
        }
        Action::PageDown => install.log_scroll = install.log_scroll.saturating_sub(PAGE),
        Action::WideLog => install.wide_log = !install.wide_log,
        Action::NextFailed => {
            let n = install.nodes.len();
            if let Some(i) = (1..=n)
                .map(|k| (install.selected + k) % n)
                .find(|&i| install.nodes[i].state() == crate::tui::install::NodeState::Failed)
            {
                install.selected = i;
                install.log_scroll = 0;
            }
        }
        _ => {}
    }
}
