//! What an install still has to do: pure decisions from the plan, the journal and the board.
//!
//! Whether to resume or start over, which steps each node runs with which attempt number (and
//! why), which barriers a step waits at, how many steps go to a node in one command, and which
//! published values a step sees. No I/O: the executor and `node.rs` carry the decisions out, and
//! the node's own record of attempts (the runner) has the last word on what already ran there.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::events::Status;
use super::journal::Replay;
use super::plan::{NodePlan, Plan, Step};

/// Start a new install, or go on with the one in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Fresh,
    Resume,
}

/// Why an install does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `--resume` on a journal that holds no install (missing, empty, or truncated to nothing).
    NothingToResume,
}

/// `restart` starts over; an unfinished install goes on; `resume` goes on with a finished one
/// (which runs nothing) and refuses when there is none.
pub fn mode(replay: &Replay, resume: bool, restart: bool) -> Result<Mode, Refusal> {
    if restart {
        return Ok(Mode::Fresh);
    }
    match (&replay.install_id, resume) {
        (None, true) => Err(Refusal::NothingToResume),
        (Some(_), true) => Ok(Mode::Resume),
        (Some(_), false) if replay.unfinished() => Ok(Mode::Resume),
        _ => Ok(Mode::Fresh),
    }
}

/// Why a step runs in this install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It never started.
    New,
    /// It failed or was skipped: a new attempt.
    Again,
    /// It finished, but its content or the node's configuration changed since: a new attempt.
    Changed,
    /// It started and its end was not recorded (running, interrupted, or contact lost): the same
    /// attempt, which the node re-attaches to or reports; never a second copy beside it.
    Unfinished,
    /// It finished, and its secret outputs stayed on the node: the same attempt, which the node
    /// reports with its outputs, without running it.
    Recall,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub step: String,
    pub attempt: u32,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTodo {
    pub node: String,
    pub steps: Vec<Todo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// Per node of the cluster, in host order, what it runs.
    pub nodes: Vec<NodeTodo>,
    /// (node, step) pairs an earlier run finished: not run again.
    pub done: Vec<(String, String)>,
    /// (node, step) pairs an earlier run finished that changed since: run again.
    pub changed: Vec<(String, String)>,
    /// Steps some node runs only to read its secret outputs back.
    pub recalled: HashSet<String>,
    /// Steps some node runs (or reads back) in this install: their values are not there yet.
    pub scheduled: HashSet<String>,
    /// For each step, how many nodes still have to finish it (its barrier opens at 0).
    pub remaining: HashMap<String, usize>,
    /// (node, step) pairs of the journal that the cluster and plan no longer have (a host left
    /// the conf, a step left the plan): they leave the install's accounting.
    pub left: Vec<(String, String)>,
    /// (node, step) pairs the operator skipped: not run, their barriers open.
    pub skipped: Vec<(String, String)>,
    /// (node, step) pairs of aborted nodes: not run, and steps waiting for them are skipped.
    pub aborted: Vec<(String, String)>,
}

/// Decide, for every node and step, whether it runs and as which attempt. `fps[i]` are the
/// fingerprints (`Step::fingerprint`) of node `i`'s steps.
pub fn schedule(
    node_plans: &[NodePlan],
    fps: &[HashMap<String, String>],
    replay: &Replay,
) -> Schedule {
    let mut s = Schedule::default();
    for (np, fps) in node_plans.iter().zip(fps) {
        let mut todo = Vec::new();
        for sid in &np.steps {
            let key = (np.node.clone(), sid.clone());
            let fp = fps.get(sid).map_or("", String::as_str);
            let recall = replay.redacted.contains(&key);
            let done = replay.is_done(&np.node, sid);
            if replay.aborted.contains(&np.node) && !done {
                s.aborted.push(key);
                continue;
            }
            // A step that never started on its node (attempt 0: it could not be reached) has no
            // content that could have changed since the operator chose to skip it.
            let unchanged = replay
                .steps
                .get(&key)
                .is_some_and(|p| p.fp == fp || p.attempt == 0);
            if replay.skipped.contains(&key) && unchanged {
                // Not run again, like a finished step.
                s.skipped.push(key.clone());
                s.done.push(key);
                continue;
            }
            let run = match replay.steps.get(&key) {
                None => Some((1, Why::New)),
                // Started, end unknown: whatever changed, the node may still run it.
                Some(p) if p.status.is_none() => Some((p.attempt.max(1), Why::Unfinished)),
                Some(p) if p.fp != fp => {
                    if p.status == Some(Status::Ok) {
                        s.changed.push(key.clone());
                    }
                    Some((p.attempt + 1, Why::Changed))
                }
                Some(p) if p.status == Some(Status::Ok) && recall => {
                    s.recalled.insert(sid.clone());
                    Some((p.attempt, Why::Recall))
                }
                Some(p) if p.status == Some(Status::Ok) => None,
                Some(p) => Some((p.attempt + 1, Why::Again)),
            };
            match run {
                None => s.done.push(key),
                Some((attempt, why)) => {
                    *s.remaining.entry(sid.clone()).or_default() += 1;
                    todo.push(Todo {
                        step: sid.clone(),
                        attempt,
                        why,
                    });
                }
            }
        }
        s.nodes.push(NodeTodo {
            node: np.node.clone(),
            steps: todo,
        });
    }
    let here: HashSet<(&str, &str)> = node_plans
        .iter()
        .flat_map(|np| np.steps.iter().map(|s| (np.node.as_str(), s.as_str())))
        .collect();
    s.left = replay
        .steps
        .keys()
        .filter(|(n, st)| !here.contains(&(n.as_str(), st.as_str())))
        .cloned()
        .collect();
    s.left.sort();
    s.scheduled = s.remaining.keys().cloned().collect();
    s
}

/// The barriers step `step` waits at: its `after`, and every earlier step that this install runs
/// (or reads secrets back from: `scheduled`) and that publishes a value it needs — whatever the
/// plan's `after` says, a value is never read before the step that makes it has ended.
pub fn waits_for(plan: &Plan, step: &Step, scheduled: &HashSet<String>) -> Vec<String> {
    let mut w = step.after.clone();
    for s in &plan.steps {
        if s.id == step.id {
            break;
        }
        if scheduled.contains(&s.id)
            && !w.contains(&s.id)
            && s.outputs.iter().any(|o| step.needs.contains(o))
        {
            w.push(s.id.clone());
        }
    }
    w
}

/// Whether the node's facts go to it on their own before its first batch: when that batch has to
/// wait at a barrier (or runs as another user, or there is none), so that a node that cannot be
/// used says so at once; otherwise they ride along with the first batch.
pub fn facts_first(
    plan: &Plan,
    first: Option<&Step>,
    scheduled: &HashSet<String>,
    passed: impl Fn(&str) -> bool,
) -> bool {
    first.is_none_or(|s| !s.become_root || !waits_for(plan, s, scheduled).iter().all(|a| passed(a)))
}

/// How many of `todo[from..]` go to the node in one command: the first, then each next one with
/// the same `become` whose barriers are open (`passed`) and whose needed values are known
/// (`known`): a value published by a step of the same batch is not known when the batch is sent.
/// A `serial` step goes alone: the node holds the step's turn only while it runs.
pub fn batch_len(
    plan: &Plan,
    todo: &[&Step],
    scheduled: &HashSet<String>,
    passed: impl Fn(&str) -> bool,
    known: impl Fn(&str) -> bool,
) -> usize {
    let Some(first) = todo.first() else {
        return 0;
    };
    if first.serial {
        return 1;
    }
    let mut n = 1;
    for s in &todo[1..] {
        let ready = !s.serial
            && s.become_root == first.become_root
            && waits_for(plan, s, scheduled).iter().all(|a| passed(a))
            && s.needs.iter().all(|k| known(k))
            && !todo[..n]
                .iter()
                .any(|e| e.outputs.iter().any(|o| s.needs.contains(o)));
        if !ready {
            break;
        }
        n += 1;
    }
    n
}

/// The environment of `step` on a node: the node's `KSW_*` values and the published values it
/// declared it needs, nothing else. `Err` names the needed values nobody published.
pub fn env_for(
    step: &Step,
    base: &[(String, String)],
    published: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, Vec<String>> {
    let mut env = base.to_vec();
    let mut missing = Vec::new();
    for k in &step.needs {
        match published.get(k) {
            Some(v) => env.push((k.clone(), v.clone())),
            None => missing.push(k.clone()),
        }
    }
    if missing.is_empty() {
        Ok(env)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests;
