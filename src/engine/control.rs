//! The operator's decisions about failed nodes while an install runs (DESIGN §4.6): retry the
//! failed step, skip it when the plan marks it `skippable`, abort the node, abort the install.
//! A node whose step failed waits for one when the install is run with a command channel
//! (`executor::install_with`); without one it stops as before. Which command a waiting node takes
//! is decided here, purely (`Waiting::take`); the node task only waits and carries it out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What the operator asks of the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Run the node's failed step again (a later attempt); the node's later steps then go on and
    /// barriers that waited for it open when it succeeds.
    Retry { node: String, step: String },
    /// Go on without the failed step (only a `skippable` one): counted as skipped.
    Skip { node: String, step: String },
    /// Stop the node: its failed and later steps stay as they are, steps waiting for them skip.
    AbortNode { node: String },
    /// Stop the install: every waiting node stops, running steps finish and are recorded, no
    /// node starts another step.
    AbortInstall,
}

/// What a waiting node does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry,
    Skip,
    Abort,
    /// Nobody can answer any more (the command channel closed): as without one.
    Stop,
}

impl Decision {
    /// The word the journal and the log use.
    pub fn word(self) -> &'static str {
        match self {
            Decision::Retry => "retry",
            Decision::Skip => "skip",
            Decision::Abort => "abort",
            Decision::Stop => "stop",
        }
    }
}

/// A node stopped at a failed step, waiting for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub step: String,
    pub skippable: bool,
}

impl Waiting {
    /// What `cmd` means for `node`, waiting here; `Err` says why it does not apply.
    pub fn take(&self, node: &str, cmd: &Command) -> Result<Decision, String> {
        let step_is = |step: &str| {
            if step == self.step {
                Ok(())
            } else {
                Err(format!(
                    "{node}: step '{step}' did not fail there ('{}' did)",
                    self.step
                ))
            }
        };
        match cmd {
            Command::Retry { step, .. } => step_is(step).map(|()| Decision::Retry),
            Command::Skip { step, .. } => {
                step_is(step)?;
                if self.skippable {
                    Ok(Decision::Skip)
                } else {
                    Err(format!(
                        "{node}: step '{step}' cannot be skipped (the plan does not mark it skippable: later steps build on it)"
                    ))
                }
            }
            Command::AbortNode { .. } | Command::AbortInstall => Ok(Decision::Abort),
        }
    }
}

/// The node a command is about; `None`: every node.
pub fn target(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Retry { node, .. } | Command::Skip { node, .. } | Command::AbortNode { node } => {
            Some(node)
        }
        Command::AbortInstall => None,
    }
}

/// Where node tasks wait for decisions and the command reader leaves them.
#[derive(Default)]
pub(super) struct Control {
    /// Commands can come (an operator is there): a failed node waits instead of stopping.
    pub(super) interactive: bool,
    waiting: Mutex<HashMap<String, Waiting>>,
    decided: Mutex<HashMap<String, Decision>>,
    changed: Notify,
    aborted: AtomicBool,
    closed: AtomicBool,
}

impl Control {
    pub(super) fn new(interactive: bool) -> Control {
        Control {
            interactive,
            ..Control::default()
        }
    }

    /// The install was aborted: no node starts another step.
    pub(super) fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Take `cmd`: the decision of each waiting node it applies to, or why it applies to none.
    pub(super) fn apply(&self, cmd: &Command) -> Result<(), String> {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut decided = self
            .decided
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match target(cmd) {
            None => {
                self.aborted.store(true, Ordering::SeqCst);
                for node in waiting.keys() {
                    decided.insert(node.clone(), Decision::Abort);
                }
            }
            Some(node) => {
                let w = waiting.get(node).ok_or_else(|| {
                    format!("{node}: no failed step waits for a decision on this node")
                })?;
                decided.insert(node.to_string(), w.take(node, cmd)?);
            }
        }
        drop((waiting, decided));
        self.changed.notify_waiters();
        Ok(())
    }

    /// No more commands will come.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// `node` is stopped at `w` and will wait: commands about it are taken from now on (before
    /// anyone is told, so an answer cannot come too early).
    pub(super) fn stopped(&self, node: &str, w: Waiting) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_string(), w);
    }

    /// Wait for the decision about `node` (`stopped` first).
    pub(super) async fn wait(&self, node: &str) -> Decision {
        if !self.interactive {
            return Decision::Stop;
        }
        let d = loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(d) = self
                .decided
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(node)
            {
                break d;
            }
            if self.aborted() {
                break Decision::Abort;
            }
            if self.closed.load(Ordering::SeqCst) {
                break Decision::Stop;
            }
            notified.await;
        };
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(node);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(skippable: bool) -> Waiting {
        Waiting {
            step: "verify".into(),
            skippable,
        }
    }

    fn retry(step: &str) -> Command {
        Command::Retry {
            node: "n1".into(),
            step: step.into(),
        }
    }

    fn skip(step: &str) -> Command {
        Command::Skip {
            node: "n1".into(),
            step: step.into(),
        }
    }

    #[test]
    fn a_waiting_node_takes_commands_about_its_failed_step_only() {
        assert_eq!(w(false).take("n1", &retry("verify")), Ok(Decision::Retry));
        let e = w(false).take("n1", &retry("cni")).unwrap_err();
        assert!(e.contains("'cni' did not fail there ('verify' did)"), "{e}");
        assert_eq!(w(true).take("n1", &skip("verify")), Ok(Decision::Skip));
        let e = w(false).take("n1", &skip("verify")).unwrap_err();
        assert!(e.contains("cannot be skipped"), "{e}");
        let abort = Command::AbortNode { node: "n1".into() };
        assert_eq!(w(false).take("n1", &abort), Ok(Decision::Abort));
        assert_eq!(
            w(false).take("n1", &Command::AbortInstall),
            Ok(Decision::Abort)
        );
    }

    #[test]
    fn commands_reach_waiting_nodes_and_abort_install_reaches_all() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = std::sync::Arc::new(Control::new(true));
            let e = c.apply(&retry("verify")).unwrap_err();
            assert!(e.contains("no failed step waits"), "{e}");
            c.stopped("n1", w(false));
            c.stopped("n2", w(true));
            // An answer that comes before the node waits is kept for it.
            c.apply(&retry("verify")).unwrap();
            let c1 = c.clone();
            let n1 = tokio::spawn(async move { c1.wait("n1").await });
            let c2 = c.clone();
            let n2 = tokio::spawn(async move { c2.wait("n2").await });
            assert_eq!(n1.await.unwrap(), Decision::Retry);
            assert!(!c.aborted());
            c.apply(&Command::AbortInstall).unwrap();
            assert_eq!(n2.await.unwrap(), Decision::Abort);
            assert!(c.aborted());
            // After an abort, a node that fails later stops at once.
            c.stopped("n3", w(true));
            assert_eq!(c.wait("n3").await, Decision::Abort);
        });
    }

    #[test]
    fn without_an_operator_a_failed_node_stops_and_a_closed_channel_releases_waiters() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(Control::new(false).wait("n1").await, Decision::Stop);
            let c = Control::new(true);
            c.stopped("n1", w(true));
            c.close();
            assert_eq!(c.wait("n1").await, Decision::Stop);
        });
    }
}
