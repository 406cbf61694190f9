//! Day-2 operations that did not end, for `kswizard status`: each goes on where it stopped when
//! its command runs again, so the operator is told which command that is.

use std::collections::BTreeSet;
use std::path::Path;

use crate::engine::events::Status;
use crate::engine::executor::journal_for;
use crate::engine::journal::{self, Replay};

/// The operations with a journal of their own, in the order they are listed.
const OPERATIONS: [&str; 4] = [
    "remove",
    "reset",
    super::etcd_io::RESTORE,
    super::etcd_io::BACKUP,
];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unfinished {
    /// The operation's name: `remove`, `reset`, `etcd-restore`, `etcd-backup`.
    pub operation: String,
    /// The hosts it concerns (a remove's leaving hosts; the hosts with steps in its journal).
    pub hosts: Vec<String>,
    /// Steps that ended ok (its journal does not know the steps that never started).
    pub done: usize,
    /// The command that goes on with it.
    pub resume: String,
}

impl Unfinished {
    /// "remove of worker3 (4 steps done)".
    pub fn what(&self) -> String {
        let s = if self.done == 1 { "" } else { "s" };
        format!(
            "{} of {} ({} step{s} done)",
            self.operation,
            self.hosts.join(", "),
            self.done
        )
    }
}

/// What one operation's journal (and, for a remove, its pending hosts) says. Pure.
pub fn of(
    operation: &str,
    replay: &Replay,
    pending: Option<&BTreeSet<String>>,
    snapshot: Option<&str>,
    conf: &Path,
) -> Option<Unfinished> {
    // A remove is unfinished until the conf is written without its hosts (the pending file goes
    // then), even once its journal is complete.
    if !replay.unfinished() && pending.is_none() {
        return None;
    }
    let hosts: Vec<String> = pending.map_or_else(
        || {
            let nodes: BTreeSet<&String> = replay.steps.keys().map(|(n, _)| n).collect();
            nodes.into_iter().cloned().collect()
        },
        |p| p.iter().cloned().collect(),
    );
    let done = replay
        .steps
        .values()
        .filter(|s| s.status == Some(Status::Ok))
        .count();
    Some(Unfinished {
        operation: operation.to_string(),
        resume: super::resume_command(operation, &hosts, snapshot, Some(conf)),
        hosts,
        done,
    })
}

/// Every unfinished operation of the state dir `state`, whose conf is `conf`. `Err` names the
/// journal that could not be read.
pub fn find(state: &Path, conf: &Path) -> Result<Vec<Unfinished>, crate::conf::ConfError> {
    let mut found = Vec::new();
    for op in OPERATIONS {
        let replay = journal::replay(&journal_for(state, op))?;
        let pending = match op {
            "remove" => super::remove::read_pending(state),
            _ => None,
        };
        let snapshot = match op {
            super::etcd_io::RESTORE => super::etcd_io::restoring(state),
            _ => None,
        };
        found.extend(of(op, &replay, pending.as_ref(), snapshot.as_deref(), conf));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::StepState;

    fn replay(steps: &[(&str, &str, Option<Status>)]) -> Replay {
        Replay {
            install_id: Some("op-1".into()),
            steps: steps
                .iter()
                .map(|(n, s, status)| {
                    (
                        ((*n).to_string(), (*s).to_string()),
                        StepState {
                            attempt: 1,
                            fp: String::new(),
                            status: *status,
                            reason: None,
                        },
                    )
                })
                .collect(),
            ..Replay::default()
        }
    }

    #[test]
    fn an_unfinished_operation_names_the_command_that_goes_on_with_it() {
        let conf = Path::new("conf");
        let cut = replay(&[
            ("master2", "drain", Some(Status::Ok)),
            ("worker3", "node-reset", None),
        ]);
        let pending: BTreeSet<String> = ["worker3".to_string()].into();
        let u = of("remove", &cut, Some(&pending), None, conf).unwrap();
        assert_eq!(u.resume, "kswizard remove worker3 --conf conf");
        assert_eq!(u.done, 1);
        assert_eq!(u.hosts, ["worker3"]);
        // A reset's hosts are those its journal has steps on.
        let u = of("reset", &cut, None, None, conf).unwrap();
        assert_eq!(u.resume, "kswizard reset master2 worker3 --conf conf");
        let u = of(
            "etcd-restore",
            &cut,
            None,
            Some("/b/etcd-20261201T000000Z"),
            conf,
        )
        .unwrap();
        assert_eq!(
            u.resume,
            "kswizard etcd restore /b/etcd-20261201T000000Z --conf conf"
        );
    }

    #[test]
    fn a_finished_operation_is_not_listed_but_a_remove_whose_conf_is_unwritten_is() {
        let conf = Path::new("conf");
        let mut done = replay(&[("master2", "drain", Some(Status::Ok))]);
        done.complete = true;
        assert_eq!(of("reset", &done, None, None, conf), None);
        assert_eq!(of("remove", &Replay::default(), None, None, conf), None);
        let pending: BTreeSet<String> = ["worker3".to_string()].into();
        let u = of("remove", &done, Some(&pending), None, conf).unwrap();
        assert_eq!(u.done, 1);
    }
}
