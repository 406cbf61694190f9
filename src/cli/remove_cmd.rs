//! `kswizard remove NODE...`: take installed hosts out of the cluster (issue 12, item 3). The
//! hosts are checked (`ops::quorum::leaving`), the etcd quorum arithmetic is done on what a staying
//! master sees (`ops::remove::etcd_members`, then `ops::quorum::check`) and shown, the operator
//! confirms, then `assets/remove.yaml` runs with its own journal; when it ends well the hosts leave
//! the conf and the installed record. A killed remove goes on when the same command runs again.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;

use super::install_cmd::{ask, decisions, load_cluster, outcome, report_error, run_operation};
use super::{OpArgs, Outcome};
use crate::conf;
use crate::engine::installed::Installed;
use crate::engine::paths::state_dir;
use crate::ops::remove::{other_pending, pending_path, read_pending, write_pending};
use crate::ops::{self, quorum};

fn refuse(why: &str, json: bool) -> Outcome {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "refused", "reason": why })
        );
    }
    eprintln!("kswizard: {why}");
    Outcome::Failed
}

pub fn run(nodes: &[String], skip: &[String], a: &OpArgs) -> Outcome {
    let skips = match decisions(&[], skip) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let (cluster, source) = match load_cluster(&a.conf, a.json, ops::TOLERATED) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let state = state_dir(&a.conf, a.state.as_deref());
    let record = match Installed::load(&state) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return refuse(
                &format!(
                    "nothing was installed from this conf ({} is missing): remove hosts from the conf instead",
                    crate::engine::installed::path(&state).display()
                ),
                a.json,
            );
        }
        Err(e) => return report_error(&e, a.json),
    };
    let asked: BTreeSet<String> = nodes.iter().cloned().collect();
    if let Some(pending) = read_pending(&state) {
        if let Some(why) = other_pending(&pending, &asked) {
            return refuse(&why, a.json);
        }
        // Killed after the conf was written: only the installed record is left to update.
        if asked.iter().all(|n| cluster.host(n).is_none()) {
            return finish(&cluster, &source, &a.conf, &state, &asked, a.json);
        }
    }
    // The pre-check: the hosts, the etcd members as a staying master sees them, the arithmetic.
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kswizard: cannot start the runtime: {e}");
            return Outcome::BadInput;
        }
    };
    let checked = rt.block_on(ops::remove::precheck(&cluster, &record, nodes, &state));
    drop(rt);
    let ops::remove::Checked {
        leaving,
        arithmetic,
        asked_on: from,
    } = match checked {
        Ok(c) => c,
        Err(e) => {
            if let (
                true,
                ops::remove::NotRemoved::Etcd {
                    refusal: quorum::Refusal::Quorum(arith),
                    asked_on,
                },
            ) = (a.json, &e)
            {
                println!(
                    "{}",
                    serde_json::json!({ "event": "quorum", "asked": asked_on, "arithmetic": arith, "keeps_quorum": false })
                );
            }
            return refuse(&e.to_string(), a.json);
        }
    };
    let names: Vec<String> = leaving.iter().cloned().collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "event": "quorum", "asked": from, "arithmetic": arithmetic, "keeps_quorum": true })
        );
    }
    eprintln!(
        "kswizard: removing {} (drain, kubeadm reset, node object deleted, etcd member removed, backends and endpoint lists re-wired; then the conf)\n{arithmetic}\n  (etcd asked on {from})",
        names.join(", ")
    );
    if let Some(note) = arithmetic.even_note() {
        eprintln!("{note}");
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "kswizard: remove changes the cluster; pass --yes to confirm without a terminal"
            );
            return Outcome::BadInput;
        }
        if !ask(&format!("Remove {}?", names.join(", ")), false) {
            return Outcome::Failed;
        }
    }

    if let Err(e) = write_pending(&state, &names) {
        eprintln!("kswizard: {}: {e}", pending_path(&state).display());
        return Outcome::BadInput;
    }
    let mut op = match ops::prepare(&a.conf, a.state.as_deref(), &cluster, "remove", &names) {
        Ok(op) => op,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    // The operator's skips apply to the unfinished remove: the engine checks that each names a
    // skippable step that failed there.
    if !skips.is_empty() {
        op.options.resume = true;
        op.options.decisions = skips;
    }
    let resume_hint = op.resume_command(Some(&a.conf));
    match run_operation(op, a.json, &resume_hint) {
        // Steps skipped by the operator's choice (`--skip`, the wizard's `s`: only skippable
        // ones) do not keep the hosts in; a failure, an abort or a broken journal does.
        Ok((Some(Ok(s)), ..)) if s.ended_as_chosen() => {
            let outcome = finish(&cluster, &source, &a.conf, &state, &leaving, a.json);
            if (s.skipped > 0 || !skip.is_empty()) && outcome == Outcome::Ok {
                eprintln!(
                    "kswizard: a host whose reset was skipped still holds its kubelet and etcd data; wipe it before it is used again."
                );
            }
            outcome
        }
        Ok((Some(Ok(_)), ..)) => {
            eprintln!(
                "kswizard: the remove did not end; the hosts stay in the conf. Fix what failed (above) and run `{resume_hint}` again: it goes on where it stopped. A leaving host that cannot be reached: add --skip HOST:node-reset."
            );
            Outcome::Failed
        }
        other => outcome(other, a.json, &resume_hint),
    }
}

/// The plan ended well: the hosts leave the conf, then the installed record.
fn finish(
    cluster: &crate::model::Cluster,
    source: &conf::Source,
    conf_dir: &Path,
    state: &Path,
    leaving: &BTreeSet<String>,
    json: bool,
) -> Outcome {
    let names: Vec<String> = leaving.iter().cloned().collect();
    match crate::ops::remove::write_removed(cluster, source, conf_dir, state, &names) {
        Ok(()) => {}
        Err(crate::ops::remove::NotWritten::Conf(e)) => return report_error(&e, json),
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "removed", "hosts": names })
        );
    } else {
        println!(
            "removed {} from the cluster, from {} and from the installed record",
            names.join(", "),
            conf_dir.join("hosts.ini").display()
        );
    }
    Outcome::Ok
}
