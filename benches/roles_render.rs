//! Mean time to render the Roles screen with 500 hosts into a `TestBackend` (target: under 2 ms a
//! frame). `cargo bench --bench roles_render`.
// A benchmark fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use kswizard::tui::state::Screen;
use kswizard::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const HOSTS: usize = 500;
const FRAMES: u32 = 2000;

fn main() {
    let mut state = common::opened_with_hosts(HOSTS);
    // A fourth etcd host: findings that name hosts, and the quorum line in its error form.
    state.cluster.hosts[HOSTS / 2].roles.etcd = true;
    state.screen = Screen::Roles;
    state.refresh();

    for (w, h) in [(120, 40), (80, 24)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        let start = Instant::now();
        for frame in 0..FRAMES {
            // Move the selection so every frame differs, as while scrolling.
            state.role_row = (frame as usize * 7) % HOSTS;
            terminal
                .draw(|f| view::render(f, black_box(&state)))
                .unwrap();
        }
        let mean = start.elapsed() / FRAMES;
        println!(
            "roles_render: {HOSTS} hosts at {w}x{h}: mean {:.3} ms per frame over {FRAMES} frames (target < 2 ms)",
            mean.as_secs_f64() * 1000.0
        );
    }
}
