//! `kswizard etcd backup` and `kswizard etcd restore FILE` (issue 12 item 4): each runs its op
//! plan (`assets/etcd-backup.yaml`, `assets/etcd-restore.yaml`) with the install's engine, its own
//! journal, resume and events; around it the taskbox's part: the fetched snapshot and its backup
//! directory, the health check before a restore and what it will lose (`ops::etcd`, pure).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;

use super::Outcome;
use super::install_cmd::{ask, load_cluster, outcome, run_operation};
use crate::engine::executor;
use crate::engine::journal;
use crate::ops::Operation;
use crate::ops::etcd as decide;
use crate::ops::etcd_io::{self, BACKUP, RESTORE};

#[derive(Subcommand, Debug)]
pub enum EtcdAction {
    /// Take a snapshot from a healthy etcd member over SSH and keep it on this machine with the
    /// conf, journal and installed record of this moment (`<state>/backups/etcd-<UTC time>/`).
    Backup {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// Where the journals and `known_hosts` live (default: .kswizard next to the conf directory).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Where the backup directories go (default: `<state>/backups`).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Keep only the newest N backups in the backup directory (this one included).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep: Option<u32>,
        /// JSON lines: the engine's events, then a `backup` object.
        #[arg(long)]
        json: bool,
    },
    /// Restore the whole etcd cluster from a snapshot: stop the apiservers, restore every member
    /// with the install's names and cluster token, start it, check health, start the apiservers.
    /// Refused while etcd has quorum unless --force; what will be lost is shown first.
    Restore {
        /// A backup directory (`etcd-<time>/`) or a snapshot file.
        file: PathBuf,
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// Where the journals and `known_hosts` live (default: .kswizard next to the conf directory).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Restore even though etcd has quorum (a majority of members healthy; its newer data is lost).
        #[arg(long)]
        force: bool,
        /// Do not ask before restoring.
        #[arg(long)]
        yes: bool,
        /// JSON lines: a `restore` object (the check), then the engine's events.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(action: EtcdAction) -> Outcome {
    match action {
        EtcdAction::Backup {
            conf,
            state,
            out,
            keep,
            json,
        } => backup(&conf, state.as_deref(), out, keep, json),
        EtcdAction::Restore {
            file,
            conf,
            state,
            force,
            yes,
            json,
        } => restore(&file, &conf, state.as_deref(), force, yes, json),
    }
}

/// The conf, validated (as remove and reset: an even etcd count goes), and the operation `op`
/// prepared on it.
fn load(conf_dir: &Path, state: Option<&Path>, op: &str, json: bool) -> Result<Operation, Outcome> {
    let (cluster, _) = load_cluster(conf_dir, json, crate::ops::TOLERATED)?;
    crate::ops::prepare(conf_dir, state, &cluster, op, &[]).map_err(|e| {
        eprintln!("kswizard: {e}");
        Outcome::BadInput
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Outcome> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("kswizard: cannot start the runtime: {e}");
        Outcome::BadInput
    })
}

/// Run the operation with the engine, its events printed as `kswizard install` prints them;
/// `again` is the command that resumes it.
fn run_op(op: &Operation, again: &str, json: bool) -> Outcome {
    outcome(run_operation(op.clone(), json, again), json, again)
}

fn backup(
    conf_dir: &Path,
    state: Option<&Path>,
    out: Option<PathBuf>,
    keep: Option<u32>,
    json: bool,
) -> Outcome {
    let started = Instant::now();
    let op = match load(conf_dir, state, BACKUP, json) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let (cluster, state) = (&op.cluster, op.options.state_dir.clone());
    let out = out.unwrap_or_else(|| etcd_io::backups_dir(&state));
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(o) => return o,
    };
    let again = op.resume_command(Some(conf_dir));
    let o = run_op(&op, &again, json);
    if o != Outcome::Ok {
        return o;
    }
    let stored = rt.block_on(etcd_io::store(
        cluster,
        conf_dir,
        &state,
        &out,
        keep.map(|k| k as usize),
    ));
    let etcd_io::Stored {
        dir,
        meta,
        copies,
        pruned,
        fetch_s,
    } = match stored {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::Failed;
        }
    };
    let total_s = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "backup", "dir": dir, "meta": meta, "copies": copies,
                "pruned": pruned, "fetch_s": fetch_s, "total_s": total_s})
        );
        return Outcome::Ok;
    }
    println!("\nbackup  {}", dir.display());
    println!("  {}  {}", decide::SNAPSHOT, decide::holds(&meta));
    println!("  beside it    {}", copies.join(", "));
    println!("  fetched in {fetch_s:.1} s; the backup took {total_s:.1} s");
    if !pruned.is_empty() {
        println!(
            "  --keep {}: removed {}",
            keep.unwrap_or(0),
            pruned.join(", ")
        );
    }
    println!(
        "  restore it   kswizard etcd restore {} --conf {}",
        dir.display(),
        conf_dir.display()
    );
    Outcome::Ok
}

fn restore(
    given: &Path,
    conf_dir: &Path,
    state: Option<&Path>,
    force: bool,
    yes: bool,
    json: bool,
) -> Outcome {
    let refuse = |msg: String| {
        eprintln!("kswizard: {msg}");
        Outcome::Failed
    };
    let snapshot = match etcd_io::open_snapshot(given) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let mut op = match load(conf_dir, state, RESTORE, json) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let state = op.options.state_dir.clone();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(o) => return o,
    };
    let etcd_io::Check {
        live,
        loss,
        resuming,
        refused,
    } = match rt.block_on(etcd_io::check_restore(&op, &snapshot, force)) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "restore", "file": snapshot.file, "sha256": snapshot.sha256,
                "meta": snapshot.meta, "live": live, "loss": loss, "resuming": resuming})
        );
    } else {
        if resuming {
            println!(
                "Resuming the unfinished restore from {}.",
                snapshot.file.display()
            );
        }
        for l in &loss {
            println!("{l}");
        }
    }
    if let Some(why) = refused {
        return refuse(why);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return refuse(
                "a restore replaces etcd's data on every member; pass --yes to confirm without a terminal".into(),
            );
        }
        if !ask(
            &format!("Restore etcd from {}?", snapshot.file.display()),
            false,
        ) {
            return Outcome::Failed;
        }
    }
    if let Err(e) = etcd_io::begin_restore(&mut op, &snapshot) {
        return refuse(e);
    }
    let started = Instant::now();
    let again = op.resume_command(Some(conf_dir));
    let o = run_op(&op, &again, json);
    if o == Outcome::Ok && !json {
        let id = journal::replay(&executor::journal_for(&state, RESTORE))
            .ok()
            .and_then(|r| r.install_id)
            .unwrap_or_else(|| "<restore id>".into());
        println!(
            "\netcd restored from {} in {:.1} s; each member's old data is kept in /var/lib/kswizard-restore/{id}/member.old",
            snapshot.file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    o
}
