//! The one stream of typed events an install produces. The TUI, the text reporter and the
//! JSON-lines reporter are consumers of it; the journal records the transitions among them.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// What will run where. `done` lists the (node, step) pairs an earlier run finished, which
    /// are not run again; `changed` those it finished whose content or environment changed since,
    /// which run again.
    Plan {
        install_id: String,
        nodes: Vec<super::plan::NodePlan>,
        done: Vec<(String, String)>,
        changed: Vec<(String, String)>,
        /// (node, step) pairs of the journal that the conf or plan no longer has: they leave
        /// the install's accounting.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        left: Vec<(String, String)>,
        /// The taskbox's dir of this install's step logs (`engine::step_logs`).
        logs: std::path::PathBuf,
    },
    /// A node's preflight (before any step runs anywhere): every check with its level, reason
    /// and fix (the cross-node ones included), and what the node said it is. `status` is the
    /// worst level: any `fail` stops the install before it changes anything.
    Preflight {
        node: String,
        status: super::preflight::Level,
        checks: Vec<super::preflight::Check>,
        facts: std::collections::BTreeMap<String, String>,
    },
    /// Facts about a node, gathered before the plan runs.
    Facts {
        node: String,
        facts: Facts,
    },
    Started {
        node: String,
        step: String,
        attempt: u32,
        /// True when kswizard re-attached to a step an earlier run had started.
        reattached: bool,
        /// True when the node reported the step finished by an earlier run: not run again.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        already_done: bool,
    },
    Output {
        node: String,
        step: String,
        line: String,
    },
    /// A `deliver` step's transfer to a node: the files and bytes it sent, and the files the node
    /// already had.
    Delivered {
        node: String,
        step: String,
        files: usize,
        bytes: u64,
        unchanged: usize,
        elapsed_ms: u64,
    },
    Finished {
        node: String,
        step: String,
        status: Status,
        elapsed_ms: u64,
        /// Why it failed or was skipped.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A step failed on the node and it waits for the operator's decision (retry, skip when
    /// `skippable`, abort): only when the install takes commands (`executor::install_with`).
    Awaiting {
        node: String,
        step: String,
        skippable: bool,
    },
    Summary(Summary),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Facts {
    pub os: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub disk_free_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Steps this run started and that succeeded.
    pub ok: usize,
    /// Steps an earlier run started, that this run re-attached to and saw succeed.
    pub reattached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Of the skipped steps, those the operator chose to skip in this run (`s` on a failed
    /// skippable step); the others were skipped for a failure, an abort or a broken journal.
    #[serde(default)]
    pub skipped_by_operator: usize,
    /// Steps an earlier run finished (as the journal or the node says), not run again.
    pub already_done: usize,
    pub elapsed_ms: u64,
    /// Seconds since the install began, over every run of it (resumes included).
    #[serde(default)]
    pub install_elapsed_s: u64,
    pub failures: Vec<Failure>,
    /// The install was stopped (Ctrl-C) before it ended: the counts are what it saw until then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What went wrong outside the steps without failing any (the installed record unwritten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Summary {
    /// Nothing failed, the run was not interrupted, and every step skipped was skipped by the
    /// operator's choice: a removal ends with its host out even when its reset was skipped (a
    /// dead host), never after an abort or a broken journal, whose steps are skipped too.
    pub fn ended_as_chosen(&self) -> bool {
        self.failed == 0 && !self.interrupted && self.skipped == self.skipped_by_operator
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub node: String,
    pub step: String,
    pub reason: String,
    /// The last lines of the step's log.
    pub log_tail: Vec<String>,
}

impl Event {
    pub fn node(&self) -> Option<&str> {
        match self {
            Event::Facts { node, .. }
            | Event::Preflight { node, .. }
            | Event::Started { node, .. }
            | Event::Output { node, .. }
            | Event::Delivered { node, .. }
            | Event::Finished { node, .. }
            | Event::Awaiting { node, .. } => Some(node),
            Event::Plan { .. } | Event::Summary(_) => None,
        }
    }
}
