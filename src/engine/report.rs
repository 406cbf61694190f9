//! Two consumers of the event stream for the command line: readable text, and JSON lines.

use std::collections::BTreeMap;

use super::events::{Event, Status, Summary};

/// One JSON object per event, one per line.
pub fn json_line(e: &Event) -> String {
    serde_json::to_string(e).expect("events always serialise")
}

/// Text: a line per finished step, then a table per node and the failures with their log tails.
#[derive(Default)]
pub struct TextReport {
    /// node -> (done, total, state)
    nodes: BTreeMap<String, (usize, usize, String)>,
    order: Vec<String>,
    /// Nodes whose skipped steps were already announced: one line says it for the rest.
    skipped: std::collections::HashSet<String>,
}

impl TextReport {
    pub fn line(&mut self, e: &Event) -> Option<String> {
        match e {
            Event::Plan {
                nodes,
                done,
                changed,
                ..
            } => {
                for np in nodes {
                    let already = done.iter().filter(|(n, _)| *n == np.node).count();
                    self.order.push(np.node.clone());
                    self.nodes
                        .insert(np.node.clone(), (already, np.steps.len(), "pending".into()));
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
                ..
            } => Some(format!(
                "attach  {node:<14} {step} (started by an earlier run)"
            )),
            Event::Started { .. } | Event::Output { .. } => None,
            Event::Finished {
                node,
                step,
                status,
                elapsed_ms,
                reason,
            } => {
                if let Some(n) = self.nodes.get_mut(node) {
                    match status {
                        Status::Ok => {
                            n.0 += 1;
                            if n.0 == n.1 {
                                n.2 = "done".into();
                            }
                        }
                        Status::Failed => n.2 = format!("failed at {step}"),
                        Status::Skipped => {
                            if !n.2.starts_with("failed") {
                                n.2 = format!("stopped before {step}");
                            }
                        }
                    }
                }
                if *status == Status::Skipped && !self.skipped.insert(node.clone()) {
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
            Event::Summary(sum) => Some(self.table(sum)),
        }
    }

    fn table(&self, sum: &Summary) -> String {
        let mut out = String::new();
        out.push_str(&format!("\n{:<14} {:>9}  state\n", "node", "steps"));
        for n in &self.order {
            let (done, total, state) = &self.nodes[n];
            out.push_str(&format!("{n:<14} {:>4}/{:<4}  {state}\n", done, total));
        }
        out.push_str(&format!(
            "\n{} ok, {} failed, {} skipped, {} already done, in {:.1}s\n",
            sum.ok,
            sum.failed,
            sum.skipped,
            sum.already_done,
            sum.elapsed_ms as f64 / 1000.0
        ));
        for f in &sum.failures {
            out.push_str(&format!(
                "\n{} failed at step '{}': {}\n",
                f.node, f.step, f.reason
            ));
            for l in &f.log_tail {
                out.push_str(&format!("  | {l}\n"));
            }
        }
        if sum.failed > 0 {
            out.push_str("\nFix the cause, then run `kswizard install --resume`: finished steps are not run again.\n");
        }
        out
    }
}
