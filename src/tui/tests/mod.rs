//! Tests of the pure parts: `update` along the key paths, and snapshots of every screen.

mod day2;
mod day2_lab;
mod decisions;
mod ops;
mod preflight;
mod snapshots;
mod update;

use std::path::Path;

use super::action::{Action, Effect};
use super::effects;
use super::input::Edit;
use super::state::State;
use super::theme::Theme;
use super::update::update;
use crate::engine::decide::Mode;
use crate::engine::events::{Event, Status};
use crate::engine::executor::Preview;
use crate::engine::paths::{BUNDLED, load_plan};
use crate::lb_status::{
    BuiltIn, ConsoleStatus, HaproxyServer, LbStatus, MasterView, Probe, ProbeState,
    console_wording, wording,
};
use crate::model::LbMode;

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

/// What the preview effect reports for an install of `steps` steps on 6 nodes: a new one, or
/// one that goes on (`done` steps finished before). Boxed as the action carries it.
#[allow(clippy::unnecessary_box_returns)]
pub fn preview(mode: Mode, steps: usize, done: usize) -> Box<Preview> {
    Box::new(Preview {
        mode,
        complete: false,
        steps,
        nodes: 6,
        done,
        changed: Vec::new(),
        day2: Vec::new(),
    })
}

/// `i`, the preview's answer (a new install of 44 steps), and yes.
pub fn install_yes(s: &mut State) -> Vec<Effect> {
    send(s, [Action::Install]);
    send(
        s,
        [Action::InstallPreviewed(Ok(preview(Mode::Fresh, 44, 0)))],
    );
    send(s, [Action::Answer(true)])
}

/// The repository's conf/ opened, `i` pressed on Review and the question answered yes: the
/// Install screen, and the effects that asked for.
pub fn installing() -> (State, Vec<Effect>) {
    let mut s = opened();
    send(&mut s, [Action::GoTo(super::state::Screen::Review)]);
    let effects = install_yes(&mut s);
    (s, effects)
}

/// `installing()`, with the engine's plan event taken in: every node knows its steps.
pub fn planned() -> State {
    let (mut s, _) = installing();
    let plan = plan_event(&s);
    engine(&mut s, [plan]);
    s
}

pub fn engine(s: &mut State, events: impl IntoIterator<Item = Event>) {
    send(s, events.into_iter().map(|e| Action::Engine(Box::new(e))));
}

/// The bundled plan expanded over the cluster being installed, as the engine announces it.
pub fn plan_event(s: &State) -> Event {
    let plan = load_plan(Path::new(BUNDLED)).unwrap();
    Event::Plan {
        install_id: "20261123-020521-4f2a".into(),
        nodes: plan.expand(&s.install.as_ref().unwrap().cluster),
        done: Vec::new(),
        changed: Vec::new(),
        left: Vec::new(),
        logs: "/home/op/.kswizard/logs/20261123-020521-4f2a".into(),
    }
}

pub fn started(node: &str, step: &str) -> Event {
    Event::Started {
        node: node.into(),
        step: step.into(),
        attempt: 1,
        reattached: false,
        already_done: false,
    }
}

pub fn output(node: &str, step: &str, line: &str) -> Event {
    Event::Output {
        node: node.into(),
        step: step.into(),
        line: line.into(),
    }
}

pub fn finished(node: &str, step: &str, status: Status, elapsed_ms: u64) -> Event {
    Event::Finished {
        node: node.into(),
        step: step.into(),
        status,
        elapsed_ms,
        reason: (status == Status::Failed).then(|| "exit code 1".to_string()),
    }
}

/// The LB as probed before the apiservers start (the frontend accepts connections, a TCP LB with
/// no backend, and the masters do not listen yet) or, `up`, after.
pub fn lb(up: bool) -> LbStatus {
    let probe = |name: &str, address: &str, state: ProbeState| Probe {
        name: name.into(),
        address: address.into(),
        state,
        up: state.up(),
        http_status: state.up().then_some(200),
        latency_ms: (state != ProbeState::NotListening).then_some(2),
        detail: wording(state, name == "frontend", None, ""),
    };
    let (frontend, backend) = if up {
        (ProbeState::Ready, ProbeState::Ready)
    } else {
        (ProbeState::NoTls, ProbeState::NotListening)
    };
    LbStatus {
        mode: LbMode::External,
        frontend: Some(probe("frontend", "192.168.0.253:6443", frontend)),
        backends: ["master1", "master2", "master3"]
            .iter()
            .enumerate()
            .map(|(i, m)| probe(m, &format!("192.168.0.{}:6443", i + 1), backend))
            .collect(),
        built_in: None,
        console: None,
    }
}

/// The built-in LB mid-install: master1 holds the VIP and its apiserver is ready, master2's
/// apiserver is starting (not ready yet), master3 could not be asked over SSH.
pub fn lb_built_in() -> LbStatus {
    let mut s = lb(true);
    s.mode = LbMode::BuiltIn;
    let b = &mut s.backends[1];
    b.state = ProbeState::NotReady;
    b.up = false;
    b.http_status = Some(500);
    b.detail = wording(ProbeState::NotReady, false, Some(500), "[-]etcd failed");
    s.backends[2].state = ProbeState::NotListening;
    s.backends[2].up = false;
    let server = |name: &str, up: bool| HaproxyServer {
        name: name.into(),
        address: String::new(),
        status: if up { "UP" } else { "DOWN" }.into(),
        up,
        check: if up { "L7OK" } else { "L7STS" }.into(),
        check_code: Some(if up { 200 } else { 500 }),
    };
    let servers = vec![
        server("master1", true),
        server("master2", false),
        server("master3", false),
    ];
    let view = |name: &str, holds: Option<bool>| MasterView {
        name: name.into(),
        holds_vip: holds,
        vip_interface: holds.filter(|h| *h).map(|_| "eth0".into()),
        haproxy: if holds.is_some() {
            servers.clone()
        } else {
            Vec::new()
        },
        console: Vec::new(),
        error: holds
            .is_none()
            .then(|| "master3: cannot connect (Connection timed out)".into()),
    };
    s.built_in = Some(BuiltIn {
        vip: "192.168.0.253".into(),
        holders: vec!["master1".into()],
        detail: "VIP 192.168.0.253 on master1 (master3 could not be asked)".into(),
        masters: vec![
            view("master1", Some(true)),
            view("master2", Some(false)),
            view("master3", None),
        ],
    });
    s
}

pub fn type_text(s: &mut State, text: &str) {
    send(s, text.chars().map(|c| Action::Text(Edit::Insert(c))));
}

/// What an SSH test of a Debian host reports.
pub fn facts() -> crate::engine::events::Facts {
    crate::engine::events::Facts {
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        cpus: 4,
        memory_mb: 8192,
        disk_free_mb: 51200,
    }
}

/// `s` with the console probed (`console_lb`): the listener answers, and of the six nodes' `NodePort`s
/// (192.168.0.1-6) the first `up` answer; each master's haproxy that could be asked sees the same.
pub fn with_console(mut s: LbStatus, up: usize) -> LbStatus {
    let names = ["master1", "master2", "master3", "node1", "node2", "node3"];
    let probe = |name: &str, address: String, ok: bool, listener: bool| {
        let state = if ok {
            ProbeState::Ready
        } else {
            ProbeState::NotListening
        };
        Probe {
            name: name.into(),
            address,
            state,
            up: ok,
            http_status: ok.then_some(200),
            latency_ms: ok.then_some(1),
            detail: console_wording(state, listener, ok.then_some(200), ""),
        }
    };
    s.console = Some(Box::new(ConsoleStatus {
        listener: Some(probe(
            "console LB",
            "192.168.0.253:30880".into(),
            up > 0,
            true,
        )),
        nodes: names
            .iter()
            .enumerate()
            .map(|(i, n)| probe(n, format!("192.168.0.{}:30880", i + 1), i < up, false))
            .collect(),
    }));
    if let Some(b) = &mut s.built_in {
        for m in b.masters.iter_mut().filter(|m| m.error.is_none()) {
            m.console = names
                .iter()
                .enumerate()
                .map(|(i, n)| HaproxyServer {
                    name: (*n).into(),
                    address: format!("192.168.0.{}:30880", i + 1),
                    status: if i < up { "UP" } else { "DOWN" }.into(),
                    up: i < up,
                    check: if i < up { "L7OK" } else { "L4CON" }.into(),
                    check_code: (i < up).then_some(200),
                })
                .collect();
        }
    }
    s
}
