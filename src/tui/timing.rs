//! The Install screen's clocks, pure: the whole install's elapsed time and an ETA
//! (`engine::eta`, from the journal's earlier runs and this run's finished steps), and the
//! running step's own clock, with its usual time and its timeout once it runs longer than usual.
//! Time comes in as `Action::Tick` (seconds since the epoch, once a second while installing).

use crate::engine::eta::{self, Eta, NodeLeft};

use super::install::Install;

impl Install {
    /// A second went by: `now` is the time (seconds since the epoch).
    pub fn tick(&mut self, now: u64) {
        self.now = now;
        self.begun.get_or_insert(now);
    }

    /// Seconds the node's running step has run, as the clock last said.
    pub fn running_for(&self, node: usize) -> Option<u64> {
        let since = (*self.since.get(node)?)?;
        self.nodes[node].running.as_ref()?;
        Some(self.now.saturating_sub(since))
    }

    /// The step column's clock of a running step: its time, and once past its usual time that
    /// and its timeout.
    pub fn step_clock(&self, node: usize) -> Option<String> {
        let step = self.nodes[node].running.as_deref()?;
        let ran = self.running_for(node)?;
        let timeout = self
            .timeouts
            .get(step)
            .map_or(String::new(), |t| format!(", timeout {}", eta::clock(*t)));
        Some(match self.history.usual(step) {
            Some(u) if ran > u => format!("{} (usual {}{timeout})", eta::clock(ran), eta::clock(u)),
            _ => eta::clock(ran),
        })
    }

    /// "elapsed 3m 05s  ETA about 4m" for the overall line.
    pub fn time_line(&self) -> String {
        let elapsed = self
            .begun
            .map(|b| format!("elapsed {}  ", eta::clock(self.now.saturating_sub(b))))
            .unwrap_or_default();
        if !self.running {
            return elapsed;
        }
        let left: Vec<NodeLeft> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let next = n.done + n.skipped + usize::from(n.running.is_some());
                NodeLeft {
                    to_run: if n.failed.is_some() {
                        &[]
                    } else {
                        n.steps.get(next.min(n.steps.len())..).unwrap_or(&[])
                    },
                    running: n
                        .running
                        .as_deref()
                        .map(|s| (s, self.running_for(i).unwrap_or(0))),
                }
            })
            .collect();
        match eta::estimate(&left, &self.history) {
            Eta::NoHistory => format!("{elapsed}ETA: no history yet"),
            Eta::About { secs, unknown: 0 } => format!("{elapsed}ETA about {}", eta::clock(secs)),
            // Steps never timed count as nothing: the ETA is a floor then, and says so.
            Eta::About { secs, unknown } => format!(
                "{elapsed}ETA at least {} ({unknown} step{} not timed yet)",
                eta::clock(secs),
                if unknown == 1 { "" } else { "s" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tui::action::Action;
    use crate::tui::tests::{engine, planned, send, started};

    #[test]
    fn without_history_the_eta_says_so_and_the_clock_runs() {
        let mut s = planned();
        send(&mut s, [Action::Tick(1000)]);
        engine(&mut s, [started("master1", "os-prep")]);
        send(&mut s, [Action::Tick(1065)]);
        let i = s.install.as_ref().unwrap();
        assert_eq!(i.time_line(), "elapsed 1m 05s  ETA: no history yet");
        assert_eq!(i.step_clock(0).as_deref(), Some("1m 05s"));
    }
}
