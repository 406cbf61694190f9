//! `kswizard reset [NODE...]`: undo the install on the hosts (all by default) with
//! `assets/reset.yaml` (issue 12, item 5). The operator types the cluster's name first
//! (`ops::reset::question`); the conf stays; the install journal records the reset (the next
//! install runs those hosts' steps again, or starts fresh when every host was reset) and the
//! installed record drops the hosts.

use std::io::IsTerminal;

use super::install_cmd::{load_cluster, outcome, run_operation};
use super::{OpArgs, Outcome};
use crate::engine::paths::state_dir;
use crate::ops::{self, reset, reset_io};

pub fn run(nodes: &[String], a: &OpArgs) -> Outcome {
    let (cluster, _) = match load_cluster(&a.conf, a.json, crate::ops::TOLERATED) {
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
    let op = match ops::prepare(
        &a.conf,
        a.state.as_deref(),
        &cluster,
        reset_io::RESET,
        &names,
    ) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let state = state_dir(&a.conf, a.state.as_deref());
    let resume_hint = op.resume_command(Some(&a.conf));
    let ran = run_operation(op, a.json, &resume_hint);

    // What was reset, as the operation's journal says (also after a failure on some hosts).
    let done = match reset_io::record(&state, &cluster, &hosts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    if !done.is_empty() {
        if a.json {
            println!(
                "{}",
                serde_json::json!({ "event": "reset", "hosts": done, "all": done.len() == cluster.hosts.len() })
            );
        } else {
            println!("{}", reset::outcome(&cluster, &done));
        }
    }
    outcome(ran, a.json, &resume_hint)
}
