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
    /// The step that failed on this node, if one did.
    #[serde(skip)]
    pub failed_at: Option<String>,
}

pub fn rows(cluster: &Cluster, plan: &Plan, replay: &Replay) -> Vec<NodeRow> {
    plan.expand(cluster)
        .into_iter()
        .map(|np| {
            let mut done = 0;
            let mut state = None;
            let mut failed_at = None;
            for s in &np.steps {
                match replay.steps.get(&(np.node.clone(), s.clone())) {
                    Some(st) if st.status == Some(Status::Ok) => done += 1,
                    Some(st) if state.is_none() => {
                        state = Some(match st.status {
                            None => format!("running {s} (or interrupted there)"),
                            Some(Status::Failed) => {
                                failed_at = Some(s.clone());
                                format!("failed at {s}: {}", st.reason.as_deref().unwrap_or(""))
                            }
                            Some(_) => format!("stopped before {s}"),
                        });
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
                failed_at,
            }
        })
        .collect()
}

/// "12 of 36 steps done, node2 failed at etcd": one line for the Start screen.
pub fn one_line(rows: &[NodeRow]) -> String {
    let done: usize = rows.iter().map(|r| r.done).sum();
    let total: usize = rows.iter().map(|r| r.total).sum();
    let mut s = format!("{done} of {total} steps done");
    for r in rows {
        if let Some(step) = &r.failed_at {
            s.push_str(&format!(", {} failed at {step}", r.node));
        }
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
    // What an install started from here would do: go on with this one, or start anew.
    let goes_on = super::decide::mode(&replay, false, false) == Ok(super::decide::Mode::Resume);
    Some((goes_on, one_line(&rows(cluster, &plan, &replay))))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::journal::replay_bytes;
    use crate::model::Host;

    #[test]
    fn rows_and_the_start_screen_line_from_a_journal() {
        let mut cluster = Cluster {
            hosts: vec![Host::new("m1", "10.0.0.1"), Host::new("w1", "10.0.0.2")],
            ..Cluster::default()
        };
        cluster.apply_preset();
        let plan = crate::engine::plan::parse(
            "steps:\n- {id: a, roles: [all], run: x}\n- {id: b, roles: [all], run: x}\n",
            Path::new("p.yaml"),
            |_| unreachable!(),
        )
        .unwrap();
        let journal = [
            r#"{"t":"begin","install_id":"i","config":"c","ts":0}"#,
            r#"{"t":"start","node":"m1","step":"a","attempt":1,"fp":"f","ts":0}"#,
            r#"{"t":"end","node":"m1","step":"a","status":"ok","ts":0}"#,
            r#"{"t":"start","node":"w1","step":"a","attempt":1,"fp":"f","ts":0}"#,
            r#"{"t":"end","node":"w1","step":"a","status":"failed","reason":"exit code 2","ts":0}"#,
            r#"{"t":"start","node":"m1","step":"b","attempt":1,"fp":"f","ts":0}"#,
        ]
        .join("\n");
        let replay = replay_bytes(journal.as_bytes(), Path::new("j")).unwrap();
        let r = rows(&cluster, &plan, &replay);
        assert_eq!(r[0].state, "running b (or interrupted there)");
        assert_eq!(r[1].state, "failed at a: exit code 2");
        assert_eq!(one_line(&r), "1 of 4 steps done, w1 failed at a");
    }
}
