//! The preflight stage as the Preflight screen shows it: every node's report from the engine's
//! `preflight` events, how many are still awaited, and whether the engine waits for "continue
//! anyway". Pure: `Install::apply` and `update` feed it.

use crate::engine::events::Event;
use crate::engine::preflight::{Check, Level, Report};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preflight {
    /// Nodes whose report is awaited: those with steps to run (from the plan event).
    pub expected: usize,
    /// In the order they came (the engine sends them in host order).
    pub reports: Vec<Report>,
    /// The engine found warnings only and waits for "continue anyway?".
    pub asked: bool,
    /// What the operator answered (c: true, Esc: false).
    pub answered: Option<bool>,
    /// The first node row shown (↑↓, page up / down).
    pub top: usize,
    /// The first check column shown (←→), among those not all ok first.
    pub left: usize,
}

/// One check's result on the nodes that share it.
#[derive(Debug, Clone, PartialEq)]
pub struct Note<'a> {
    pub check: &'a Check,
    pub nodes: Vec<&'a str>,
}

/// Where the stage stands, for the screen's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reports still coming in.
    Running,
    /// Every report is in, no failure or warning: the install goes on.
    Passed,
    /// Warnings only: the engine waits for c (continue anyway) or Esc.
    Waiting,
    /// Continue anyway was given.
    Continued,
    /// Esc to "continue anyway?": the install stops, nothing changed.
    Declined,
    /// A check failed: the install stops before changing anything.
    Failed,
}

impl Preflight {
    /// Take what concerns preflight from an engine event.
    pub fn see(&mut self, event: &Event) {
        match event {
            Event::Plan { nodes, done, .. } => {
                self.expected = nodes
                    .iter()
                    .filter(|n| {
                        n.steps
                            .iter()
                            .any(|s| !done.iter().any(|(d, ds)| *d == n.node && ds == s))
                    })
                    .count();
            }
            Event::Preflight {
                node,
                checks,
                facts,
                ..
            } => self.reports.push(Report {
                node: node.clone(),
                checks: checks.clone(),
                facts: facts.clone(),
            }),
            _ => {}
        }
    }

    pub fn started(&self) -> bool {
        !self.reports.is_empty()
    }

    /// How many nodes have each worst level: (ok, warned, failed).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.reports
            .iter()
            .fold((0, 0, 0), |(o, w, f), r| match r.level() {
                Level::Ok => (o + 1, w, f),
                Level::Warn => (o, w + 1, f),
                Level::Fail => (o, w, f + 1),
            })
    }

    pub fn stage(&self) -> Stage {
        let (_, warned, failed) = self.counts();
        match self.answered {
            _ if failed > 0 => Stage::Failed,
            Some(true) => Stage::Continued,
            Some(false) => Stage::Declined,
            None if self.asked => Stage::Waiting,
            // Warnings: the engine's question follows the last report.
            None if self.reports.len() < self.expected || warned > 0 => Stage::Running,
            None => Stage::Passed,
        }
    }

    /// The check ids as columns: those not ok somewhere first (worst first), then the rest, each
    /// group in the order the checks were made.
    pub fn columns(&self) -> Vec<(&str, Level)> {
        let mut cols: Vec<(&str, Level)> = Vec::new();
        for c in self.reports.iter().flat_map(|r| &r.checks) {
            match cols.iter_mut().find(|(id, _)| *id == c.id) {
                Some((_, worst)) => *worst = (*worst).max(c.level),
                None => cols.push((&c.id, c.level)),
            }
        }
        // Stable: the order of the checks within a level stays.
        cols.sort_by_key(|&(_, worst)| std::cmp::Reverse(worst));
        cols
    }

    /// Node rows: failed nodes first, then warned, then ok, each in host order.
    pub fn rows(&self) -> Vec<&Report> {
        let mut rows: Vec<&Report> = self.reports.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.level()));
        rows
    }

    /// How many nodes have a check at `level`.
    pub fn nodes_with(&self, level: Level) -> usize {
        self.reports
            .iter()
            .filter(|r| r.with(level).next().is_some())
            .count()
    }

    /// The checks at `level` of the rows from `from` on (in `rows` order), the same check with
    /// the same reason and fix said once with all its nodes: 500 nodes with one warning are one
    /// note, not 500.
    pub fn notes(&self, level: Level, from: usize) -> Vec<Note<'_>> {
        let mut notes: Vec<Note> = Vec::new();
        let mut index: std::collections::HashMap<(&str, &str, &str), usize> =
            std::collections::HashMap::new();
        for r in self.rows().into_iter().skip(from) {
            for c in r.with(level) {
                let key = (c.id.as_str(), c.reason.as_str(), c.fix.as_str());
                let i = *index.entry(key).or_insert_with(|| {
                    notes.push(Note {
                        check: c,
                        nodes: Vec::new(),
                    });
                    notes.len() - 1
                });
                notes[i].nodes.push(&r.node);
            }
        }
        notes
    }

    /// Move the first row shown by `by` (negative: up), within the rows.
    pub fn scroll(&mut self, by: isize) {
        let last = self.reports.len().saturating_sub(1);
        self.top = self.top.saturating_add_signed(by).min(last);
    }

    /// Move the first column shown by `by`, within the columns.
    pub fn shift(&mut self, by: isize) {
        let last = self.columns().len().saturating_sub(1);
        self.left = self.left.saturating_add_signed(by).min(last);
    }
}
