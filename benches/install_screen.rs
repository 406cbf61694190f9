//! The Install screen at scale (issue 11, item 7): 500 nodes × 10 steps of engine events and
//! 50,000 log lines, fed through `update` as the wizard feeds them, then the screen rendered at
//! 120×40. Reports the time per event, the mean frame time (target under 2 ms) and the process's
//! peak memory (target under 100 MB: every node's log is bounded). `cargo bench --bench
//! install_screen`.
// A benchmark fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use kswizard::engine::events::{Event, Status};
use kswizard::engine::plan::NodePlan;
use kswizard::tui::action::Action;
use kswizard::tui::install::Install;
use kswizard::tui::state::Screen;
use kswizard::tui::{update, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const NODES: usize = 500;
const STEPS: usize = 10;
const LINES: usize = 50_000;
const FRAMES: u32 = 500;

/// The process's peak resident memory (`VmHWM`), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

fn main() {
    let mut state = common::opened_with_hosts(NODES);
    state.install = Some(Install::new(state.cluster.clone()));
    state.screen = Screen::Install;
    let steps: Vec<String> = (0..STEPS).map(|s| format!("step-{s}")).collect();
    let names: Vec<String> = state.cluster.hosts.iter().map(|h| h.name.clone()).collect();
    let before = peak_mib();

    let mut events = vec![Event::Plan {
        install_id: "bench".into(),
        nodes: names
            .iter()
            .map(|n| NodePlan {
                node: n.clone(),
                steps: steps.clone(),
            })
            .collect(),
        done: Vec::new(),
        changed: Vec::new(),
        left: Vec::new(),
        logs: "/root/.kswizard/logs/bench".into(),
    }];
    let lines_per_step = LINES / (NODES * STEPS);
    for step in &steps {
        for node in &names {
            events.push(Event::Started {
                node: node.clone(),
                step: step.clone(),
                attempt: 1,
                reattached: false,
                already_done: false,
            });
            for l in 0..lines_per_step {
                events.push(Event::Output {
                    node: node.clone(),
                    step: step.clone(),
                    line: format!(
                        "{step}: line {l} of what the step prints, about sixty characters"
                    ),
                });
            }
            events.push(Event::Finished {
                node: node.clone(),
                step: step.clone(),
                status: Status::Ok,
                elapsed_ms: 1200,
                reason: None,
            });
        }
    }
    let count = events.len();
    let start = Instant::now();
    for e in events {
        update::update(&mut state, Action::Engine(Box::new(e)));
    }
    let per_event = start.elapsed() / u32::try_from(count).unwrap();
    let (done, total) = state.install.as_ref().unwrap().totals();
    assert_eq!((done, total), (NODES * STEPS, NODES * STEPS));

    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let start = Instant::now();
    for frame in 0..FRAMES {
        // Another node selected every frame, as while moving through the table.
        state.install.as_mut().unwrap().selected = (frame as usize * 7) % NODES;
        terminal
            .draw(|f| view::render(f, black_box(&state)))
            .unwrap();
    }
    let frame = start.elapsed() / FRAMES;
    println!(
        "install_screen: {NODES} nodes x {STEPS} steps, {count} events ({} log lines): {:.2} us per event through update",
        NODES * STEPS * lines_per_step,
        per_event.as_secs_f64() * 1e6
    );
    println!(
        "install_screen: 120x40 frame {:.3} ms mean over {FRAMES} frames (target < 2 ms); peak memory {:.1} MiB, {:.1} MiB before the events (target < 100 MB)",
        frame.as_secs_f64() * 1000.0,
        peak_mib(),
        before
    );
}
