//! One node's progress through an install, built from the engine's events: what the text report
//! and the wizard's Install screen both show.

use std::collections::VecDeque;

use super::events::Status;
use super::preflight::{Check, Level};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

impl NodeState {
    /// Symbol and word: state is never shown by colour alone.
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Waiting => "· waiting",
            // Not ▶: that marks the selected row.
            NodeState::Running => "» running",
            NodeState::Done => "✓ done",
            NodeState::Failed => "✗ failed",
            NodeState::Skipped => "- skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeProgress {
    pub name: String,
    pub roles: String,
    /// The node's steps in plan order (empty until the engine sends its plan).
    pub steps: Vec<String>,
    /// Steps finished ok, in this run or an earlier one.
    pub done: usize,
    pub skipped: usize,
    /// The first step skipped: where the node stopped.
    pub first_skipped: Option<String>,
    pub running: Option<String>,
    /// The step it started last (running or not).
    pub last: Option<String>,
    /// The step that failed and why.
    pub failed: Option<(String, String)>,
    /// Time the node's finished steps took in this run.
    pub elapsed_ms: u64,
    /// The last lines of its output, for a screen that shows them (the text report does not).
    pub log: VecDeque<String>,
}

impl NodeProgress {
    pub fn new(name: &str, roles: String) -> Self {
        NodeProgress {
            name: name.to_string(),
            roles,
            steps: Vec::new(),
            done: 0,
            skipped: 0,
            first_skipped: None,
            running: None,
            last: None,
            failed: None,
            elapsed_ms: 0,
            log: VecDeque::new(),
        }
    }

    /// The engine's plan for the node: its steps, `done_before` of them finished by an earlier run.
    pub fn planned(&mut self, steps: Vec<String>, done_before: usize) {
        self.steps = steps;
        self.done = done_before;
    }

    pub fn started(&mut self, step: String) {
        // The operator retries the failed step: the node is no longer failed.
        if self.failed.as_ref().is_some_and(|(f, _)| *f == step) {
            self.failed = None;
        }
        self.last = Some(step.clone());
        self.running = Some(step);
    }

    pub fn finished(
        &mut self,
        step: String,
        status: Status,
        elapsed_ms: u64,
        reason: Option<String>,
    ) {
        if self.running.as_deref() == Some(step.as_str()) {
            self.running = None;
        }
        self.elapsed_ms += elapsed_ms;
        match status {
            Status::Ok => self.done += 1,
            Status::Failed => self.failed = Some((step, reason.unwrap_or_default())),
            Status::Skipped => {
                // The operator skipped the failed step: the node goes on.
                if self.failed.as_ref().is_some_and(|(f, _)| *f == step) {
                    self.failed = None;
                }
                self.skipped += 1;
                self.first_skipped.get_or_insert(step);
            }
        }
    }

    /// The node's preflight: a failed one is where the node stopped, with every failed check
    /// (reason and fix) as the reason.
    pub fn preflight(&mut self, checks: &[Check]) {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c.level == Level::Fail)
            .map(Check::line)
            .collect();
        if !failed.is_empty() {
            self.failed = Some(("preflight".to_string(), failed.join("; ")));
        }
    }

    pub fn state(&self) -> NodeState {
        if self.failed.is_some() {
            NodeState::Failed
        } else if self.running.is_some() {
            NodeState::Running
        } else if !self.steps.is_empty() && self.done == self.steps.len() {
            NodeState::Done
        } else if self.skipped > 0 {
            NodeState::Skipped
        } else {
            NodeState::Waiting
        }
    }
}
