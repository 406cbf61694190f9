//! Two consumers of the event stream for the command line: readable text, and JSON lines.

use super::events::{Event, Status, Summary};
use super::preflight::{self, Report};
use super::progress::{NodeProgress, NodeState};

/// One JSON object per event, one per line.
pub fn json_line(e: &Event) -> String {
    serde_json::to_string(e).expect("events always serialise")
}

/// Text: a line per finished step, then a table per node and the failures with their log tails.
#[derive(Default)]
pub struct TextReport {
    /// In plan order.
    nodes: Vec<NodeProgress>,
    /// Preflight reports not yet shown: they are shown as one table once all are in (the next
    /// other event, or the end).
    preflight: Vec<Report>,
    /// `kubectl get nodes` as the verify step printed it last.
    nodes_table: super::reach::NodesTable,
    /// The taskbox's dir of the steps' logs, from the plan event.
    logs: Option<std::path::PathBuf>,
    /// The plan installs `KubeSphere`: the end names its console.
    kubesphere: bool,
    /// What resumes this run after a failure, for a day-2 operation (`kswizard etcd restore
    /// FILE`); `None`: `kswizard install --resume`.
    resume_with: Option<String>,
}

/// A node's state in the closing table.
fn state_text(n: &NodeProgress) -> String {
    let step = |s: &Option<String>| s.clone().unwrap_or_default();
    match n.state() {
        NodeState::Done => "done".into(),
        NodeState::Failed => format!(
            "failed at {}",
            n.failed.as_ref().map_or("", |(s, _)| s.as_str())
        ),
        NodeState::Skipped => format!("stopped before {}", step(&n.first_skipped)),
        NodeState::Running => format!("running {}", step(&n.running)),
        NodeState::Waiting => "pending".into(),
    }
}

impl TextReport {
    /// The report of a day-2 operation that `command` resumes after a failure.
    pub fn resumed_by(command: String) -> TextReport {
        TextReport {
            resume_with: Some(command),
            ..TextReport::default()
        }
    }

    /// The text for one event, if it shows.
    pub fn line(&mut self, e: &Event) -> Option<String> {
        if let Event::Preflight {
            node,
            checks,
            facts,
            ..
        } = e
        {
            self.preflight.push(Report {
                node: node.clone(),
                checks: checks.clone(),
                facts: facts.clone(),
            });
            return None;
        }
        let table = self.finish();
        let line = self.event_line(e);
        match (table, line) {
            (Some(t), Some(l)) => Some(format!("{t}\n{l}")),
            (t, l) => t.or(l),
        }
    }

    /// What is still held back (the preflight table), at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        if self.preflight.is_empty() {
            return None;
        }
        let t = preflight::table(&self.preflight);
        self.preflight.clear();
        Some(t.trim_end().to_string())
    }

    fn event_line(&mut self, e: &Event) -> Option<String> {
        match e {
            Event::Plan {
                nodes,
                done,
                changed,
                left,
                logs,
                ..
            } => {
                self.logs = Some(logs.clone());
                self.kubesphere = nodes
                    .iter()
                    .any(|n| n.steps.iter().any(|s| s == "kubesphere"));
                for np in nodes {
                    let mut n = NodeProgress::new(&np.node, String::new());
                    let before = done.iter().filter(|(n, _)| *n == np.node).count();
                    n.planned(np.steps.clone(), before);
                    self.nodes.push(n);
                }
                let total: usize = nodes.iter().map(|n| n.steps.len()).sum();
                let mut s = format!("plan: {} steps on {} nodes", total, nodes.len());
                if !done.is_empty() {
                    s.push_str(&format!(", {} already done (resumed)", done.len()));
                }
                if !changed.is_empty() {
                    let list: Vec<String> =
                        changed.iter().map(|(n, s)| format!("{s}@{n}")).collect();
                    s.push_str(&format!(
                        "\nconfiguration changed since the last run; these run again: {}",
                        list.join(", ")
                    ));
                }
                if !left.is_empty() {
                    let list: Vec<String> = left.iter().map(|(n, s)| format!("{s}@{n}")).collect();
                    s.push_str(&format!(
                        "\nno longer in the conf or the plan, so no longer part of this install: {}",
                        list.join(", ")
                    ));
                }
                Some(s)
            }
            Event::Facts { node, facts } => Some(format!(
                "facts   {node:<14} {}, {} CPUs, {} MiB memory, {} MiB free on /",
                facts.os, facts.cpus, facts.memory_mb, facts.disk_free_mb
            )),
            Event::Started {
                node,
                step,
                reattached: true,
                already_done: false,
                ..
            } => Some(format!(
                "attach  {node:<14} {step} (started by an earlier run)"
            )),
            Event::Started {
                node,
                step,
                already_done: true,
                ..
            } => Some(format!(
                "found   {node:<14} {step} (finished by an earlier run: not run again)"
            )),
            Event::Delivered {
                node,
                files,
                bytes,
                unchanged,
                elapsed_ms,
                ..
            } => Some(if *files == 0 {
                format!("deliver {node:<14} nothing to send: all {unchanged} files already there")
            } else {
                format!(
                    "deliver {node:<14} {files} files, {}; {unchanged} already there",
                    crate::bundle::deliver::rate(*bytes, *elapsed_ms as f64 / 1000.0)
                )
            }),
            Event::Output { step, line, .. } => {
                if step == "verify" {
                    self.nodes_table.feed(line);
                }
                None
            }
            // Preflight events are taken (as a table) in `line`.
            Event::Started { .. } | Event::Preflight { .. } => None,
            Event::Finished {
                node,
                step,
                status,
                elapsed_ms,
                reason,
            } => {
                // A node's skipped steps are announced once: the line says the rest follow.
                let mut announced = false;
                if let Some(n) = self.nodes.iter_mut().find(|n| n.name == *node) {
                    announced = n.skipped > 0;
                    n.finished(step.clone(), *status, *elapsed_ms, reason.clone());
                }
                if *status == Status::Skipped && announced {
                    return None;
                }
                let word = match status {
                    Status::Ok => "ok",
                    Status::Failed => "FAILED",
                    Status::Skipped => "skipped",
                };
                let mut s = format!(
                    "{word:<7} {node:<14} {step:<22} {:>6.1}s",
                    *elapsed_ms as f64 / 1000.0
                );
                if let Some(r) = reason {
                    s.push_str("  ");
                    s.push_str(r);
                }
                if *status == Status::Skipped {
                    s.push_str(" (with every later step on this node)");
                }
                Some(s)
            }
            Event::Awaiting {
                node,
                step,
                skippable,
            } => Some(format!(
                "waiting {node:<14} {step}: retry{}, or abort the node or the install",
                if *skippable { ", skip" } else { "" }
            )),
            Event::Summary(sum) => Some(self.table(sum)),
        }
    }

    /// How to reach the installed `cluster` (`engine::reach`), for the end of a successful install.
    pub fn reach(&self, cluster: &crate::model::Cluster) -> String {
        let lines = super::reach::lines(
            cluster,
            self.kubesphere,
            &self.nodes_table.lines,
            self.logs.as_deref(),
        );
        format!(
            "\nHow to reach the cluster:\n{}",
            super::reach::text(&lines)
        )
    }

    fn table(&self, sum: &Summary) -> String {
        let mut out = String::new();
        out.push_str(&format!("\n{:<14} {:>9}  state\n", "node", "steps"));
        for n in &self.nodes {
            out.push_str(&format!(
                "{:<14} {:>4}/{:<4}  {}\n",
                n.name,
                n.done,
                n.steps.len(),
                state_text(n)
            ));
        }
        out.push_str(&format!(
            "\n{} ok, {} re-attached, {} failed, {} skipped, {} already done, in {:.1}s{}\n",
            sum.ok,
            sum.reattached,
            sum.failed,
            sum.skipped,
            sum.already_done,
            sum.elapsed_ms as f64 / 1000.0,
            // A resumed install: how long it has been going, every run included.
            if sum.install_elapsed_s > sum.elapsed_ms / 1000 + 1 {
                format!(
                    " ({}m {:02}s since the install began)",
                    sum.install_elapsed_s / 60,
                    sum.install_elapsed_s % 60
                )
            } else {
                String::new()
            }
        ));
        for w in &sum.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        for f in &sum.failures {
            out.push_str(&format!(
                "\n{} failed at step '{}': {}\n",
                f.node, f.step, f.reason
            ));
            for l in &f.log_tail {
                out.push_str(&format!("  | {l}\n"));
            }
        }
        if let Some(dir) = &self.logs {
            out.push_str(&format!(
                "\nEvery step's whole log: {}/<node>/<step>.log\n",
                dir.display()
            ));
        }
        if sum.failed > 0 {
            let command = self
                .resume_with
                .as_deref()
                .unwrap_or("kswizard install --resume");
            out.push_str(&format!(
                "\nFix the cause, then run `{command}`: finished steps are not run again.\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::NodePlan;

    fn finished(node: &str, step: &str, status: Status, reason: Option<&str>) -> Event {
        Event::Finished {
            node: node.into(),
            step: step.into(),
            status,
            elapsed_ms: 1500,
            reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn a_line_per_step_skips_announced_once_and_a_closing_table() {
        let mut r = TextReport::default();
        let plan = Event::Plan {
            install_id: "i".into(),
            nodes: vec![
                NodePlan {
                    node: "a".into(),
                    steps: vec!["s1".into(), "s2".into(), "s3".into()],
                },
                NodePlan {
                    node: "b".into(),
                    steps: vec!["s1".into(), "s2".into()],
                },
            ],
            done: vec![],
            changed: vec![],
            left: vec![],
            logs: "/s/logs/i".into(),
        };
        assert_eq!(r.line(&plan).unwrap(), "plan: 5 steps on 2 nodes");
        let lines: Vec<Option<String>> = [
            finished("a", "s1", Status::Ok, None),
            finished("a", "s2", Status::Failed, Some("exit code 2")),
            finished(
                "a",
                "s3",
                Status::Skipped,
                Some("step 's2' failed on this node"),
            ),
            finished(
                "b",
                "s1",
                Status::Skipped,
                Some("waits for step 's2', which failed on a"),
            ),
            finished(
                "b",
                "s2",
                Status::Skipped,
                Some("waits for step 's2', which failed on a"),
            ),
        ]
        .iter()
        .map(|e| r.line(e))
        .collect();
        assert_eq!(
            lines[0].as_deref(),
            Some("ok      a              s1                        1.5s")
        );
        assert_eq!(
            lines[1].as_deref(),
            Some("FAILED  a              s2                        1.5s  exit code 2")
        );
        assert!(
            lines[3]
                .as_deref()
                .unwrap()
                .ends_with("(with every later step on this node)")
        );
        assert_eq!(lines[4], None);
        let table = r
            .line(&Event::Summary(Summary {
                ok: 1,
                failed: 1,
                skipped: 3,
                ..Summary::default()
            }))
            .unwrap();
        assert!(
            table.contains("a                 1/3     failed at s2\n"),
            "{table}"
        );
        assert!(
            table.contains("b                 0/2     stopped before s1\n"),
            "{table}"
        );
        assert!(table.contains("kswizard install --resume"), "{table}");
        // A day-2 operation names its own command, never the install's.
        let mut op = TextReport::resumed_by("kswizard etcd restore F".into());
        let failed = Event::Summary(Summary {
            failed: 1,
            ..Summary::default()
        });
        let end = op.line(&failed).unwrap();
        assert!(end.contains("run `kswizard etcd restore F`"), "{end}");
        assert!(!end.contains("install"), "{end}");
    }

    #[test]
    fn preflight_reports_show_as_one_table_before_the_next_line_or_at_the_end() {
        use crate::engine::preflight::{Check, Level};
        let pf = |node: &str, level: Level| Event::Preflight {
            node: node.into(),
            status: level,
            checks: vec![
                Check::new("swap", Level::Ok, "off", ""),
                Check::new("ports", level, "6443", "stop it"),
            ],
            facts: std::collections::BTreeMap::new(),
        };
        let mut r = TextReport::default();
        assert_eq!(r.line(&pf("a", Level::Ok)), None);
        assert_eq!(r.line(&pf("b", Level::Fail)), None);
        let line = r.line(&finished("a", "s1", Status::Ok, None)).unwrap();
        assert!(
            line.starts_with("preflight ports\na         ✓\nb         ✗\npreflight ok on all 2 nodes: swap\nfailed:\n  b ports: 6443 (fix: stop it)\nok      a"),
            "{line}"
        );
        assert_eq!(r.finish(), None);
        assert_eq!(r.line(&pf("a", Level::Warn)), None);
        assert!(
            r.finish()
                .unwrap()
                .ends_with("warnings:\n  a ports: 6443 (fix: stop it)")
        );
    }
}
