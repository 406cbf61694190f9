//! The install as the Install and Done screens show it: per-node progress built from the engine's
//! events, the last lines of each node's log, and the last LB probe. Pure: `update` feeds it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::log_view::{Filter, FullLog, Search};
use crate::engine::control::Waiting;
use crate::engine::events::{Event, Status, Summary};
use crate::engine::preflight;
pub use crate::engine::progress::{NodeProgress, NodeState};
use crate::engine::reach::NodesTable;
use crate::lb_status::LbStatus;
use crate::model::Cluster;
use crate::tui::preflight::Preflight;

/// Log lines kept per node; older ones are dropped (the node keeps the full log of each step).
pub const LOG_LINES: usize = 500;

/// A day-2 operation the Install screen runs instead of the install (issue 12): same engine,
/// same screen, its own plan and journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Take this installed node out of the cluster, then write the conf without it (the Hosts
    /// screen deletes one host at a time).
    Remove(String),
    /// Snapshot etcd and keep it on the taskbox (`kswizard etcd backup`).
    Backup,
    /// Restore etcd from this backup directory (`kswizard etcd restore DIR`).
    Restore(PathBuf),
    /// Undo the install on these hosts (`all`: every host of the conf).
    Reset { hosts: BTreeSet<String>, all: bool },
}

impl Operation {
    /// The title bar's name for the screen: "Remove node3".
    pub fn title(&self) -> String {
        match self {
            Operation::Remove(node) => format!("Remove {node}"),
            Operation::Backup => "Back up etcd".into(),
            Operation::Restore(_) => "Restore etcd".into(),
            Operation::Reset { all: true, .. } => "Reset the cluster".into(),
            Operation::Reset { hosts, .. } => format!("Reset {}", names(hosts)),
        }
    }

    /// What the status line calls it: "the removal of node3".
    pub fn what(&self) -> String {
        match self {
            Operation::Remove(node) => format!("the removal of {node}"),
            Operation::Backup => "the etcd backup".into(),
            Operation::Restore(_) => "the etcd restore".into(),
            Operation::Reset { hosts, .. } => format!("the reset of {}", names(hosts)),
        }
    }

    /// The command that resumes it from a shell (`ops::resume_command`, on the conf the wizard
    /// runs on).
    pub fn command(&self) -> String {
        let (name, hosts, snapshot) = match self {
            Operation::Remove(node) => ("remove", vec![node.clone()], None),
            Operation::Backup => ("etcd-backup", Vec::new(), None),
            Operation::Restore(dir) => {
                ("etcd-restore", Vec::new(), Some(dir.display().to_string()))
            }
            Operation::Reset { all: true, .. } => ("reset", Vec::new(), None),
            Operation::Reset { hosts, .. } => ("reset", hosts.iter().cloned().collect(), None),
        };
        crate::ops::resume_command(name, &hosts, snapshot.as_deref(), None)
    }
}

/// Whether a run of the install or `operation` ended well: nothing failed, nor skipped, but for
/// a removal, whose host leaves all the same when the operator chose to skip a step (a dead
/// host's reset, as `kswizard remove --skip`).
pub fn ended_well(operation: Option<&Operation>, summary: &Summary) -> bool {
    match operation {
        Some(Operation::Remove(_)) => summary.ended_as_chosen(),
        _ => summary.failed == 0 && summary.skipped == 0,
    }
}

fn names(hosts: &BTreeSet<String>) -> String {
    hosts.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Install {
    /// The cluster being installed, as it was when the install was confirmed.
    pub cluster: Cluster,
    /// None: the install; else the day-2 operation this screen runs.
    pub operation: Option<Operation>,
    pub running: bool,
    pub install_id: Option<String>,
    /// Steps an earlier run finished (a resume skips them).
    pub already_done: usize,
    pub nodes: Vec<NodeProgress>,
    /// The node whose log is shown.
    pub selected: usize,
    /// How many lines above the newest the log view ends: 0 follows the log as it grows.
    pub log_scroll: usize,
    pub summary: Option<Summary>,
    pub lb: Option<LbStatus>,
    /// A probe is under way or scheduled: entering the screen again must not start a second loop.
    pub probing: bool,
    /// The log pane takes the full width (`f`), the LB panel hidden.
    pub wide_log: bool,
    /// The preflight stage, for the Preflight screen.
    pub preflight: Preflight,
    /// The log search (`/`), its text kept between searches.
    pub search: Option<Search>,
    /// One step's whole log on the full screen (`L`).
    pub full: Option<FullLog>,
    /// Which nodes the table shows (`F`).
    pub filter: Filter,
    /// The taskbox's dir of the steps' logs (from the engine's plan).
    pub logs: Option<std::path::PathBuf>,
    /// The plan installs `KubeSphere`: Done names its console.
    pub kubesphere: bool,
    /// `kubectl get nodes` as the verify step printed it last.
    pub nodes_table: NodesTable,
    /// The first row Done shows (↑↓ scroll it).
    pub done_top: usize,
    /// The clock (seconds since the epoch) as last ticked, and when this run was first ticked.
    pub now: u64,
    pub begun: Option<u64>,
    /// Per node: when its running step started (by the clock then).
    pub since: Vec<Option<u64>>,
    /// The steps' recorded durations: the journal's, then this run's.
    pub history: crate::engine::eta::History,
    /// Each plan step's timeout (seconds).
    pub timeouts: std::collections::HashMap<String, u64>,
    /// A clock tick is asked for: a resume must not start a second.
    pub ticking: bool,
    /// Nodes stopped at a failed step, waiting for the operator's decision (`Event::Awaiting`).
    pub awaiting: std::collections::BTreeMap<String, Waiting>,
    /// The backup operation's snapshot as kept on the taskbox.
    pub kept: Option<super::ops::Kept>,
}

impl Install {
    /// A running install of `cluster`; its nodes are known from the start, their steps once the
    /// engine sends the plan.
    pub fn new(cluster: Cluster) -> Self {
        let nodes: Vec<NodeProgress> = cluster
            .hosts
            .iter()
            .map(|h| NodeProgress::new(&h.name, h.roles.names().join(",")))
            .collect();
        let count = nodes.len();
        Install {
            cluster,
            operation: None,
            running: true,
            install_id: None,
            already_done: 0,
            nodes,
            selected: 0,
            log_scroll: 0,
            summary: None,
            lb: None,
            probing: false,
            wide_log: false,
            preflight: Preflight::default(),
            search: None,
            full: None,
            filter: Filter::All,
            logs: None,
            kubesphere: false,
            nodes_table: NodesTable::default(),
            done_top: 0,
            now: 0,
            begun: None,
            since: vec![None; count],
            history: crate::engine::eta::History::default(),
            timeouts: std::collections::HashMap::new(),
            ticking: false,
            awaiting: std::collections::BTreeMap::new(),
            kept: None,
        }
    }

    /// The next run of the same install (a resume, a retry): what the operator was reading stays —
    /// the selected node, each node's log and the time its steps took so far — and the log says
    /// where the new run begins.
    pub fn next_run(previous: Install, cluster: Cluster) -> Self {
        let mut next = Install::new(cluster);
        next.lb = previous.lb;
        next.probing = previous.probing;
        next.wide_log = previous.wide_log;
        next.search = previous.search;
        next.ticking = previous.ticking;
        next.now = previous.now;
        next.history = previous.history;
        next.filter = previous.filter;
        if previous.cluster.hosts.iter().map(|h| &h.name).eq(next
            .cluster
            .hosts
            .iter()
            .map(|h| &h.name))
        {
            next.selected = previous.selected;
            for (n, old) in next.nodes.iter_mut().zip(previous.nodes) {
                n.log = old.log;
                n.elapsed_ms = old.elapsed_ms;
                if !n.log.is_empty() {
                    n.log
                        .push_back("kswizard: — the install goes on here —".to_string());
                }
            }
        }
        next
    }

    /// Steps done and steps in all, over every node.
    pub fn totals(&self) -> (usize, usize) {
        self.nodes.iter().fold((0, 0), |(done, total), n| {
            (done + n.done, total + n.steps.len())
        })
    }

    fn node(&mut self, name: &str) -> Option<&mut NodeProgress> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// A line at the end of `node`'s log; a scrolled view stays on the lines being read.
    fn log(&mut self, node: &str, line: String) {
        if let Some(n) = self.node(node) {
            if n.log.len() == LOG_LINES {
                n.log.pop_front();
            }
            n.log.push_back(line);
        }
        let shown = self.nodes.get(self.selected).map(|n| n.name.as_str());
        if self.log_scroll > 0 && shown == Some(node) {
            let len = self.nodes[self.selected].log.len();
            self.log_scroll = (self.log_scroll + 1).min(len.saturating_sub(1));
        }
    }

    /// A step an earlier run started is re-attached to: the runner sends its log again from the
    /// first line, so the lines of it this log holds already go, and a line says why.
    fn reattached(&mut self, node: &str, step: &str) {
        let prefix = format!("{step}: ");
        let selected = self.selected;
        let Some(i) = self.nodes.iter().position(|n| n.name == node) else {
            return;
        };
        let log = &mut self.nodes[i].log;
        let before = log.len();
        log.retain(|l| !l.starts_with(&prefix));
        if i == selected {
            self.log_scroll = self.log_scroll.saturating_sub(before - log.len());
        }
        self.log(
            node,
            format!("{step}: (re-attached: its log again from its first line)"),
        );
    }

    /// The backup was kept: where and what, in the log of the node that took it, selected.
    pub fn backed_up(&mut self, kept: super::ops::Kept) {
        for line in super::ops::kept_lines(&kept) {
            self.log(&kept.meta.node, line);
        }
        if let Some(i) = self.nodes.iter().position(|n| n.name == kept.meta.node) {
            self.selected = i;
            self.log_scroll = 0;
        }
        self.kept = Some(kept);
    }

    /// A restore from `backup` ended well (operation `id`): each member's log says where its old
    /// data is kept (the status line has no room for it).
    pub fn restored(&mut self, backup: &std::path::Path, id: &str) {
        let members: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !n.steps.is_empty())
            .map(|n| n.name.clone())
            .collect();
        for m in members {
            self.log(
                &m,
                format!(
                    "kswizard: etcd restored from {}; this member's old data is kept in /var/lib/kswizard-restore/{id}/member.old",
                    backup.display()
                ),
            );
        }
    }

    /// `node` left the cluster: whether its reset was skipped (a dead host), said in its log,
    /// which then shows (the status line has no room for it).
    pub fn left_unreset(&mut self, node: &str) -> bool {
        let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.name == node && n.skipped > 0)
        else {
            return false;
        };
        self.log(
            node,
            format!(
                "kswizard: {node} left the cluster without its reset: it still holds its kubelet's credentials and etcd data; wipe it before it is used again"
            ),
        );
        self.selected = i;
        self.log_scroll = 0;
        true
    }

    /// Whether node `i` takes part in the run: during an operation, once its plan is known, a
    /// node without a step of it does not (the table leaves it out).
    pub fn involved(&self, i: usize) -> bool {
        self.operation.is_none() || self.logs.is_none() || !self.nodes[i].steps.is_empty()
    }

    /// Take one engine event into the progress.
    pub fn apply(&mut self, event: Event) {
        self.preflight.see(&event);
        match event {
            Event::Plan {
                install_id,
                nodes,
                done,
                logs,
                ..
            } => {
                self.install_id = Some(install_id);
                self.logs = Some(logs);
                self.kubesphere = nodes
                    .iter()
                    .any(|n| n.steps.iter().any(|s| s == "kubesphere"));
                self.already_done = done.len();
                for plan in nodes {
                    if let Some(n) = self.node(&plan.node) {
                        let before = done.iter().filter(|(node, _)| *node == n.name).count();
                        n.planned(plan.steps, before);
                    }
                }
                // The selected node may have no step of an operation: the first that has one.
                if !self.involved(self.selected)
                    && let Some(i) = (0..self.nodes.len()).find(|&i| self.involved(i))
                {
                    self.selected = i;
                    self.log_scroll = 0;
                }
            }
            Event::Started {
                node,
                step,
                reattached,
                ..
            } => {
                self.awaiting.remove(&node);
                if reattached {
                    self.reattached(&node, &step);
                }
                let now = self.now;
                if let Some(i) = self.nodes.iter().position(|n| n.name == node) {
                    self.nodes[i].started(step);
                    self.since[i] = Some(now);
                }
            }
            Event::Output { node, step, line } => {
                if step == "verify" {
                    self.nodes_table.feed(&line);
                }
                self.log(&node, format!("{step}: {line}"));
            }
            Event::Finished {
                node,
                step,
                status,
                elapsed_ms,
                reason,
            } => {
                // Why a step failed is shown where the operator reads the node: in its log too
                // (a node that could not be reached has no other line there).
                if let (Status::Failed, Some(why)) = (status, &reason) {
                    self.log(&node, format!("{step}: ✗ failed: {why}"));
                }
                // A decision was carried out (skip, or abort: the later steps skip).
                if status == Status::Skipped {
                    self.awaiting.remove(&node);
                }
                if status == Status::Ok {
                    self.history.add(&step, elapsed_ms / 1000);
                }
                if let Some(n) = self.node(&node) {
                    n.finished(step, status, elapsed_ms, reason);
                }
            }
            Event::Preflight { node, checks, .. } => {
                // Failures and warnings with their fixes go to the node's log; passed checks
                // are counted.
                let passed = checks
                    .iter()
                    .filter(|c| c.level == preflight::Level::Ok)
                    .count();
                let total = checks.len();
                self.log(
                    &node,
                    format!("preflight: ✓ {passed} of {total} checks passed"),
                );
                for c in checks.iter().filter(|c| c.level != preflight::Level::Ok) {
                    self.log(
                        &node,
                        format!("preflight: {} {}", c.level.symbol(), c.line()),
                    );
                }
                if let Some(n) = self.node(&node) {
                    n.preflight(&checks);
                }
            }
            Event::Awaiting {
                node,
                step,
                skippable,
            } => {
                self.log(
                    &node,
                    format!("{step}: kswizard: waiting for your decision (see the keys below)"),
                );
                self.awaiting.insert(node, Waiting { step, skippable });
            }
            Event::Summary(s) => {
                self.awaiting.clear();
                self.summary = Some(s);
            }
            // The Hosts screen's SSH test shows facts; here they add nothing to the progress. A
            // delivery's figures are in the step's log already, a line per file and a total.
            Event::Facts { .. } | Event::Delivered { .. } => {}
        }
    }
}
