//! Per-node progress of an install, from its journal: for `kswizard status` and the Start screen.

use serde::Serialize;

use super::events::Status;
use super::journal::Replay;
use super::plan::Plan;
use crate::model::Cluster;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    pub node: String,
    pub done: usize,
    pub total: usize,
    /// "done", "pending", "running STEP" (or interrupted there), "failed at STEP: reason",
    /// "stopped before STEP".
    pub state: String,
}

pub fn rows(cluster: &Cluster, plan: &Plan, replay: &Replay) -> Vec<NodeRow> {
    plan.expand(cluster)
        .into_iter()
        .map(|np| {
            let mut done = 0;
            let mut state = None;
            for s in &np.steps {
                match replay.steps.get(&(np.node.clone(), s.clone())) {
                    Some(st) if st.status == Some(Status::Ok) => done += 1,
                    Some(st) if state.is_none() => {
                        state = Some(match st.status {
                            None => format!("running {s} (or interrupted there)"),
                            Some(Status::Failed) => {
                                format!("failed at {s}: {}", st.reason.as_deref().unwrap_or(""))
                            }
                            Some(_) => format!("stopped before {s}"),
                        })
                    }
                    _ => {}
                }
            }
            let total = np.steps.len();
            let state = state.unwrap_or_else(|| {
                if done == total {
                    "done".into()
                } else {
                    "pending".into()
                }
            });
            NodeRow {
                node: np.node,
                done,
                total,
                state,
            }
        })
        .collect()
}

/// "12 of 36 steps done, node2 failed at etcd": one line for the Start screen.
pub fn one_line(rows: &[NodeRow]) -> String {
    let done: usize = rows.iter().map(|r| r.done).sum();
    let total: usize = rows.iter().map(|r| r.total).sum();
    let mut s = format!("{done} of {total} steps done");
    for r in rows.iter().filter(|r| r.state.starts_with("failed")) {
        let step = r
            .state
            .trim_start_matches("failed at ")
            .split(':')
            .next()
            .unwrap_or("");
        s.push_str(&format!(", {} failed at {step}", r.node));
    }
    s
}

/// The last install of the cluster in `conf_dir`, in one line, and whether it is unfinished;
/// `None` when no install was started from there.
pub fn of_conf(conf_dir: &std::path::Path, cluster: &Cluster) -> Option<(bool, String)> {
    let state = super::paths::state_dir(conf_dir, None);
    let replay = super::journal::replay(&super::executor::journal_path(&state)).ok()?;
    replay.install_id.as_ref()?;
    let recorded = replay
        .plan
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(std::path::Path::new);
    let plan =
        super::paths::load_plan(&super::paths::plan_path(conf_dir, cluster, recorded)).ok()?;
    Some((
        replay.unfinished(),
        one_line(&rows(cluster, &plan, &replay)),
    ))
}
