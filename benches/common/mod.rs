//! What the screen benchmarks share.

use kswizard::model::Host;
use kswizard::tui::state::State;
use kswizard::tui::theme::Theme;

/// A wizard state with `n` hosts `node1..` on 10.0.X.Y, the preset's roles, opened.
pub fn opened_with_hosts(n: usize) -> State {
    let mut state = State::new("conf".into(), Theme::color());
    state.cluster.hosts = (0..n)
        .map(|i| {
            Host::new(
                format!("node{}", i + 1),
                format!("10.0.{}.{}", i / 250, i % 250 + 1),
            )
        })
        .collect();
    state.cluster.apply_preset();
    state.opened = true;
    state
}
