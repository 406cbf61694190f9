//! `kswizard reset [NODE...]`: undo the install on the hosts (all by default) with
//! `assets/reset.yaml` (issue 12, item 5). The operator types the cluster's name first
//! (`ops::reset::question`); the conf stays; the install journal records the reset (the next
//! install runs those hosts' steps again, or starts fresh when every host was reset) and the
//! installed record drops the hosts.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;

use super::install_cmd::{load_cluster, outcome, report_error, run_reported};
use super::{OpArgs, Outcome};
use crate::engine::executor;
use crate::engine::installed::Installed;
use crate::engine::journal::{self, Journal};
use crate::engine::paths::state_dir;
use crate::ops::{self, reset};

pub fn run(nodes: &[String], a: &OpArgs) -> Outcome {
    let (cluster, _) = match load_cluster(&a.conf, a.json, super::remove_cmd::TOLERATED) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let hosts = match reset::targets(&cluster, nodes) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "kswizard: reset undoes the install; without a terminal to type the cluster's name ({}) on, pass --yes",
                reset::cluster_name(&cluster)
            );
            return Outcome::BadInput;
        }
        eprint!("{} ", reset::question(&cluster, &hosts));
        let mut typed = String::new();
        if std::io::stdin().read_line(&mut typed).is_err() || !reset::confirmed(&cluster, &typed) {
            eprintln!("kswizard: not the cluster's name: nothing was reset");
            return Outcome::Failed;
        }
    }
    let names: Vec<String> = hosts.iter().cloned().collect();
    let op = match ops::prepare(&a.conf, a.state.as_deref(), &cluster, "reset", &names) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let state = state_dir(&a.conf, a.state.as_deref());
    let resume_hint = format!(
        "kswizard reset --yes --conf {} {}",
        a.conf.display(),
        names.join(" ")
    );
    let ran = run_reported(
        op.cluster,
        op.plan,
        op.options,
        a.json,
        false,
        Some(resume_hint.clone()),
    );

    // What was reset, as the operation's journal says (also after a failure on some hosts).
    let replay = match journal::replay(&executor::journal_for(&state, "reset")) {
        Ok(r) => r,
        Err(e) => return report_error(&e, a.json),
    };
    let done: BTreeSet<String> = hosts
        .iter()
        .filter(|h| replay.is_done(h, "node-reset"))
        .cloned()
        .collect();
    if !done.is_empty() {
        if let Err(e) = record(&state, &cluster, &done) {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
        if a.json {
            println!(
                "{}",
                serde_json::json!({ "event": "reset", "hosts": done, "all": done.len() == cluster.hosts.len() })
            );
        } else {
            println!(
                "reset {}: the next `kswizard install` {}; the conf is unchanged",
                done.iter().cloned().collect::<Vec<_>>().join(", "),
                if done.len() == cluster.hosts.len() {
                    "starts fresh"
                } else {
                    "installs them again"
                }
            );
        }
    }
    outcome(ran, a.json, &resume_hint)
}

/// The reset in the install journal and the installed record.
fn record(
    state: &Path,
    cluster: &crate::model::Cluster,
    done: &BTreeSet<String>,
) -> Result<(), String> {
    let jpath = executor::journal_path(state);
    if jpath.exists() {
        Journal::open(&jpath, false)
            .and_then(|mut j| j.append(&reset::record(cluster, done)))
            .map_err(|e| format!("{}: {e}", jpath.display()))?;
    }
    let names: Vec<String> = done.iter().cloned().collect();
    match Installed::load(state) {
        Ok(Some(rec)) => rec
            .without(&names)
            .save(state)
            .map_err(|e| format!("{}: {e}", crate::engine::installed::path(state).display())),
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
