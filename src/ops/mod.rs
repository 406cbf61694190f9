//! Day-2 operations (issue 12): each is a plan under `assets/` (`remove.yaml`, `reset.yaml`,
//! `etcd-backup.yaml`, `etcd-restore.yaml`) run by the same engine as the install, with a
//! journal of its own (`executor::journal_for`), the same resume, events and screens. This
//! module prepares one: the plan, the cluster with the hosts it takes out (`Cluster::leaving`),
//! and the engine's options; what each operation decides before it runs is in its own module.

pub mod etcd;
pub mod etcd_io;
pub mod quorum;
pub mod remove;
pub mod reset;
pub mod reset_io;
pub mod unfinished;

use std::path::Path;

use crate::conf::ConfError;
use crate::engine::executor::Options;
use crate::engine::paths;
use crate::engine::plan::Plan;
use crate::model::Cluster;

/// Conf errors a day-2 operation goes on with: removing a master of three (stacked etcd, or etcd
/// on the masters) leaves two members, an even count that install refuses until a host is added
/// or removed; removing, resetting, backing up and restoring must still be possible then.
pub const TOLERATED: &[&str] = &["etcd-count-even"];

/// A day-2 operation ready to run: `executor::install_with(&op.cluster, &op.plan, &op.options, ..)`.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Its name: the plan's file name and its journal's (`<state>/ops/<name>.jsonl`).
    pub name: String,
    pub plan: Plan,
    pub cluster: Cluster,
    pub options: Options,
}

impl Operation {
    /// The command that runs it again (`resume_command`): its hosts are those it takes out, a
    /// restore's snapshot the one it was given.
    pub fn resume_command(&self, conf: Option<&Path>) -> String {
        let hosts: Vec<String> = self.cluster.leaving.iter().cloned().collect();
        let snapshot = self
            .options
            .snapshot
            .as_ref()
            .map(|f| f.display().to_string());
        resume_command(&self.name, &hosts, snapshot.as_deref(), conf)
    }
}

/// Why an operation cannot be prepared.
#[derive(Debug)]
pub enum OpError {
    /// Its plan file is missing or bad.
    Plan(ConfError),
    /// A host named on the command line (or picked in the wizard) is not in the conf.
    UnknownHost(String),
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Plan(e) => write!(f, "{e}"),
            OpError::UnknownHost(h) => write!(
                f,
                "{h}: no host of that name in hosts.ini; name hosts as the conf does (`kswizard status` lists them)"
            ),
        }
    }
}

impl std::error::Error for OpError {}

/// The command that runs operation `operation` again on `hosts` (a restore: with `snapshot`, the
/// file it began with), which goes on where it stopped: for the commands' own "run this again",
/// `status`, and the wizard (which leaves out the conf it runs on). Pure.
pub fn resume_command(
    operation: &str,
    hosts: &[String],
    snapshot: Option<&str>,
    conf: Option<&Path>,
) -> String {
    let mut words = vec!["kswizard".to_string()];
    match operation {
        "etcd-restore" => words.extend(["etcd restore".into(), snapshot.unwrap_or("FILE").into()]),
        "etcd-backup" => words.push("etcd backup".into()),
        other => {
            words.push(other.into());
            words.extend(hosts.iter().cloned());
        }
    }
    if let Some(conf) = conf {
        words.push(format!("--conf {}", conf.display()));
    }
    words.join(" ")
}

/// Prepare operation `name` on `cluster` (as read from `conf_dir`), taking `leaving` out of it;
/// the state directory is `state` (`--state`) or the conf's.
pub fn prepare(
    conf_dir: &Path,
    state: Option<&Path>,
    cluster: &Cluster,
    name: &str,
    leaving: &[String],
) -> Result<Operation, OpError> {
    let mut cluster = cluster.clone();
    for h in leaving {
        if cluster.host(h).is_none() {
            return Err(OpError::UnknownHost(h.clone()));
        }
        cluster.leaving.insert(h.clone());
    }
    let plan = paths::load_plan(&paths::op_plan(conf_dir, name)).map_err(OpError::Plan)?;
    let options = Options {
        operation: Some(name.to_string()),
        bundle: paths::bundle_dir(conf_dir, &cluster),
        ..Options::new(paths::state_dir(conf_dir, state))
    };
    Ok(Operation {
        name: name.to_string(),
        plan,
        cluster,
        options,
    })
}
