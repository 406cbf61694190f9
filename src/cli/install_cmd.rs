//! `kswizard plan`, `kswizard install` and `kswizard status`: the engine from the command line.

use std::io::IsTerminal;
use std::path::Path;

use super::{Format, Outcome, findings};
use crate::conf::{self, ConfError};
use crate::engine::control::Command;
use crate::engine::decide;
use crate::engine::events::{Event, Status, Summary};
use crate::engine::executor::{self, Options};
use crate::engine::journal;
use crate::engine::paths::{load_plan, plan_path, state_dir};
use crate::engine::plan::Plan;
use crate::engine::report::{self, TextReport};
use crate::model::Cluster;
use crate::validate::validate;

pub(super) fn report_error(e: &ConfError, json: bool) -> Outcome {
    if json {
        println!("{}", findings::error_json(e));
    } else {
        eprintln!("kswizard: {e}");
    }
    Outcome::BadInput
}

/// Conf and plan, validated. Err is the outcome to exit with (already reported).
fn load(conf_dir: &Path, plan_flag: Option<&Path>, json: bool) -> Result<(Cluster, Plan), Outcome> {
    let (cluster, _) = load_cluster(conf_dir, json, &[])?;
    let path = plan_path(conf_dir, &cluster, plan_flag);
    let plan = load_plan(&path).map_err(|e| report_error(&e, json))?;
    Ok((cluster, plan))
}

/// The conf, validated (errors reported, Err is the outcome to exit with), and its source.
/// Errors whose code is in `tolerated` do not stop it: they are said on stderr.
pub(super) fn load_cluster(
    conf_dir: &Path,
    json: bool,
    tolerated: &[&str],
) -> Result<(Cluster, conf::Source), Outcome> {
    let (cluster, source) = conf::load(conf_dir).map_err(|e| report_error(&e, json))?;
    let found = validate(&cluster);
    if !crate::validate::has_errors_but(&found, tolerated) {
        if crate::validate::has_errors(&found) {
            eprint!("{}", findings::text(&found));
        }
        return Ok((cluster, source));
    }
    if json {
        println!("{}", findings::json(&found));
    } else {
        eprint!("{}", findings::text(&found));
        eprintln!("kswizard: {}", findings::summary(&cluster, &found));
    }
    Err(Outcome::Failed)
}

pub fn plan(conf_dir: &Path, plan_flag: Option<&Path>, format: Format) -> Outcome {
    let json = format == Format::Json;
    let (cluster, plan) = match load(conf_dir, plan_flag, json) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let nodes = plan.expand(&cluster);
    if json {
        let v = serde_json::json!({ "plan": plan.file.display().to_string(), "preflight": plan.preflight.is_some(), "steps": plan.steps, "nodes": nodes });
        println!("{v}");
        return Outcome::Ok;
    }
    println!("plan {}: {} steps", plan.file.display(), plan.steps.len());
    if plan.preflight.is_some() {
        println!(
            "  preflight (a stage: on every node with steps to run, before any step; reads only)"
        );
    }
    for s in &plan.steps {
        let roles: Vec<&str> = s.roles.iter().map(|r| r.name()).collect();
        let on: Vec<&str> = nodes
            .iter()
            .filter(|n| n.steps.contains(&s.id))
            .map(|n| n.node.as_str())
            .collect();
        let after = if s.after.is_empty() {
            String::new()
        } else {
            format!("  after {}", s.after.join(", "))
        };
        println!(
            "  {:<22} {:<22} on {}{after}",
            s.id,
            roles.join(","),
            if on.is_empty() {
                "no node".to_string()
            } else {
                on.join(", ")
            }
        );
    }
    Outcome::Ok
}

/// Ask on the terminal; an empty answer takes `default`.
pub(super) fn ask(question: &str, default: bool) -> bool {
    use std::io::Write;
    eprint!("{question} {} ", if default { "[Y/n]" } else { "[y/N]" });
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    match answer.trim() {
        "" => default,
        a => matches!(a, "y" | "Y" | "yes"),
    }
}

pub struct InstallArgs<'a> {
    pub conf: &'a Path,
    pub plan: Option<&'a Path>,
    pub state: Option<&'a Path>,
    pub yes: bool,
    pub resume: bool,
    pub restart: bool,
    pub reconnect_for: std::time::Duration,
    /// `--retry NODE[:STEP]` and `--skip NODE:STEP`, as typed.
    pub retry: &'a [String],
    pub skip: &'a [String],
    pub json: bool,
}

/// The command line's `--retry` / `--skip` as the engine's commands; `Err` names the bad one.
pub(super) fn decisions(retry: &[String], skip: &[String]) -> Result<Vec<Command>, String> {
    let mut out = Vec::new();
    for r in retry {
        let (node, step) = r
            .split_once(':')
            .unwrap_or((r, crate::engine::journal::ANY_STEP));
        if node.is_empty() || step.is_empty() {
            return Err(format!("--retry {r}: expected NODE or NODE:STEP"));
        }
        out.push(Command::Retry {
            node: node.into(),
            step: step.into(),
        });
    }
    for s in skip {
        match s.split_once(':') {
            Some((node, step)) if !node.is_empty() && !step.is_empty() => out.push(Command::Skip {
                node: node.into(),
                step: step.into(),
            }),
            _ => return Err(format!("--skip {s}: expected NODE:STEP")),
        }
    }
    Ok(out)
}

pub fn install(a: InstallArgs) -> Outcome {
    let decided = match decisions(a.retry, a.skip) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let (cluster, plan) = match load(a.conf, a.plan, a.json) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let state = state_dir(a.conf, a.state);
    let previous = match journal::replay(&executor::journal_path(&state)) {
        Ok(r) => r,
        Err(_) if a.restart => journal::Replay::default(),
        Err(mut e) => {
            e.message
                .push_str("; `kswizard install --restart` starts over");
            return report_error(&e, a.json);
        }
    };
    // Day 2: hosts added to an installed cluster are what this install does; other changes
    // are refused here, before any question.
    let record = match crate::engine::installed::Installed::load(&state) {
        Ok(r) => r,
        Err(e) => return report_error(&e, a.json),
    };
    let added: Vec<crate::engine::installed::Change> =
        match executor::day2(&cluster, record.as_ref()) {
            Ok(_) => record
                .as_ref()
                .map(|r| crate::engine::installed::diff(r, &cluster))
                .unwrap_or_default(),
            Err(changes) => {
                eprintln!("kswizard: {}", executor::EngineError::Membership(changes));
                return Outcome::BadInput;
            }
        };
    if !added.is_empty() && !a.json {
        println!("Adding to the installed cluster:");
        for c in &added {
            println!("  {}: {}", c.what(), c.what_it_does());
        }
    }
    let mut restart = a.restart;
    let mut resuming = a.resume;
    let goes_on = decide::mode(&previous, false, a.restart) == Ok(decide::Mode::Resume);
    if goes_on && !a.resume {
        let done = previous
            .steps
            .values()
            .filter(|s| s.status == Some(crate::engine::events::Status::Ok))
            .count();
        let q = format!(
            "An unfinished install exists ({done} steps done). Resume it (no: start over)?"
        );
        if a.yes {
            // --yes takes the question's default: resume.
            resuming = true;
        } else if std::io::stdin().is_terminal() {
            resuming = ask(&q, true);
            restart = !resuming;
        } else {
            eprintln!("kswizard: {q} Pass --resume to go on or --restart to start over.");
            return Outcome::BadInput;
        }
    }
    if !a.yes && !resuming {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "kswizard: install changes {} hosts; pass --yes to confirm without a terminal",
                cluster.hosts.len()
            );
            return Outcome::BadInput;
        }
        let q = if added.is_empty() {
            format!(
                "Install on {} hosts with plan {}?",
                cluster.hosts.len(),
                plan.file.display()
            )
        } else {
            format!(
                "Add {} host(s) to the installed cluster (their steps, and the re-wiring steps on the others)?",
                added.len()
            )
        };
        if !ask(&q, false) {
            return Outcome::Failed;
        }
    }
    // The end says how to reach the cluster; the engine takes `cluster` itself.
    let installed = cluster.clone();
    // Preflight warnings ask "continue anyway?" on a terminal; with --yes, or without a terminal
    // (a resume: a new install needs --yes there), they are printed and the install goes on.
    let ask_warnings = !a.yes && std::io::stdin().is_terminal();
    let opts = Options {
        restart,
        resume: a.resume,
        reconnect_for: a.reconnect_for,
        bundle: crate::engine::paths::bundle_dir(a.conf, &cluster),
        decisions: decided,
        ..Options::new(state)
    };
    let resume_hint = format!("kswizard install --resume --conf {}", a.conf.display());
    match run_reported(cluster, plan, opts, a.json, ask_warnings, None) {
        Ok((Some(Ok(s)), _, text)) if s.failed == 0 && s.skipped == 0 => {
            if !a.json {
                print(&text.reach(&installed));
            }
            Outcome::Ok
        }
        other => outcome(other, a.json, &resume_hint),
    }
}

/// How a run of the engine ended (`None` when Ctrl-C stopped it), what its events showed until
/// then (the summary of an interrupted run), and the text report of its events.
pub(super) type Ran = (
    Option<Result<Summary, executor::EngineError>>,
    Summary,
    TextReport,
);

/// Run day-2 operation `op` as `run_reported` runs the install; `again` is the command that goes
/// on with it after a failure (`Operation::resume_command`).
pub(super) fn run_operation(
    op: crate::ops::Operation,
    json: bool,
    again: &str,
) -> Result<Ran, Outcome> {
    run_reported(
        op.cluster,
        op.plan,
        op.options,
        json,
        false,
        Some(again.to_string()),
    )
}

/// Run the engine (the install or a day-2 operation: `opts.operation`) with its report printed
/// as it goes, text or JSON lines; Ctrl-C stops kswizard, not the steps. `ask_warnings`: preflight
/// warnings ask "continue anyway?" on the terminal. `resumed_by`: the command that goes on with
/// an operation after a failure (`None`: the install's). `Err` is the outcome to exit with.
pub(super) fn run_reported(
    cluster: Cluster,
    plan: Plan,
    mut opts: Options,
    json: bool,
    ask_warnings: bool,
    resumed_by: Option<String>,
) -> Result<Ran, Outcome> {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kswizard: cannot start the runtime: {e}");
            return Err(Outcome::BadInput);
        }
    };
    let started = std::time::Instant::now();
    Ok(rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(1024);
        let (confirm, mut asks) =
            tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<bool>>(1);
        let printer = tokio::spawn(async move {
            let mut text = resumed_by.map_or_else(TextReport::default, TextReport::resumed_by);
            // What the steps did so far, for a summary of an interrupted run.
            let mut seen = Summary::default();
            // A closed stdout (`| head`, a reader that went away) must not stop the run:
            // the events are still drained, just no longer printed.
            let mut open = true;
            loop {
                // Events first: every preflight event was sent before the question.
                let e = tokio::select! {
                    biased;
                    e = rx.recv() => match e {
                        Some(e) => e,
                        None => break,
                    },
                    Some(answer) = asks.recv() => {
                        if let (true, false, Some(t)) = (open, json, text.finish()) {
                            open = print(&t);
                        }
                        let yes = tokio::task::spawn_blocking(|| {
                            ask("Preflight found warnings (above). Continue anyway?", false)
                        })
                        .await
                        .unwrap_or(false);
                        let _ = answer.send(yes);
                        continue;
                    }
                };
                if let Event::Finished { status, .. } = &e {
                    match status {
                        Status::Ok => seen.ok += 1,
                        Status::Failed => seen.failed += 1,
                        Status::Skipped => seen.skipped += 1,
                    }
                }
                let line = if json {
                    Some(report::json_line(&e))
                } else {
                    text.line(&e)
                };
                if let (true, Some(l)) = (open, line) {
                    open = print(&l);
                }
            }
            if let (true, Some(l)) = (open && !json, text.finish()) {
                print(&l);
            }
            (seen, text)
        });
        opts.confirm_warnings = ask_warnings.then_some(confirm);
        let run = executor::install(&cluster, &plan, &opts, tx);
        // Steps already started go on, detached, on their nodes, and the journal has what it
        // needs for a resume to pick them up.
        let r = tokio::select! {
            r = run => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        };
        let (seen, text) = printer.await.unwrap_or_default();
        let seen = Summary {
            interrupted: true,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..seen
        };
        (r, seen, text)
    }))
}

/// The exit of a run that did not end well (or was stopped): the reasons on stderr, the summary
/// of an interrupted run as a JSON line, and how to go on (`resume_hint`, a command line).
pub(super) fn outcome(ran: Result<Ran, Outcome>, json: bool, resume_hint: &str) -> Outcome {
    match ran {
        Err(o) => o,
        Ok((Some(Ok(s)), ..)) if s.failed == 0 && s.skipped == 0 => Outcome::Ok,
        Ok((Some(Ok(_)), ..)) => Outcome::Failed,
        // The table is in the report already (text) or in its events (JSON): the first line.
        Ok((
            Some(Err(
                e @ (executor::EngineError::Preflight { .. }
                | executor::EngineError::PreflightDeclined { .. }),
            )),
            ..,
        )) => {
            eprintln!("kswizard: {}", e.to_string().lines().next().unwrap_or(""));
            Outcome::Failed
        }
        Ok((Some(Err(e)), ..)) => {
            eprintln!("kswizard: {e}");
            Outcome::BadInput
        }
        Ok((None, seen, _)) => {
            if json {
                print(&report::json_line(&Event::Summary(seen)));
            }
            eprintln!(
                "kswizard: interrupted. Steps already started go on on their nodes; `{resume_hint}` picks them up and runs the rest."
            );
            Outcome::Interrupted
        }
    }
}

/// Print a line of the report; false once stdout is gone.
fn print(line: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

pub fn status(conf_dir: &Path, state: Option<&Path>, format: Format) -> Outcome {
    let json = format == Format::Json;
    let (cluster, _) = match conf::load(conf_dir) {
        Ok(c) => c,
        Err(e) => return report_error(&e, json),
    };
    let state = state_dir(conf_dir, state);
    let replay = match journal::replay(&executor::journal_path(&state)) {
        Ok(r) => r,
        Err(e) => return report_error(&e, json),
    };
    let recorded = replay
        .plan
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(Path::new);
    let plan = match load_plan(&plan_path(conf_dir, &cluster, recorded)) {
        Ok(p) => p,
        Err(e) => return report_error(&e, json),
    };
    let rows = crate::engine::status::rows(&cluster, &plan, &replay);
    let day2: Vec<crate::engine::installed::Change> =
        match crate::engine::installed::Installed::load(&state) {
            Ok(r) => r
                .map(|r| crate::engine::installed::diff(&r, &cluster))
                .unwrap_or_default(),
            Err(e) => return report_error(&e, json),
        };
    // What status shows otherwise stands without it: an unreadable operation journal is said.
    let unfinished = crate::ops::unfinished::find(&state, conf_dir).unwrap_or_else(|e| {
        eprintln!("kswizard: {e} (day-2 operations left out)");
        Vec::new()
    });
    if json {
        let v = serde_json::json!({
            "install_id": replay.install_id,
            "complete": replay.install_id.is_some() && !replay.unfinished(),
            "nodes": rows,
            "unfinished_operations": unfinished,
            "conf_vs_installed": day2.iter().map(|c| serde_json::json!({"change": c.what(), "does": c.what_it_does()})).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else if replay.install_id.is_none() {
        println!("no install has been started from {}", state.display());
    } else {
        println!("install {}", replay.install_id.as_deref().unwrap_or(""));
        println!("{:<14} {:>9}  state", "node", "steps");
        for r in &rows {
            println!("{:<14} {:>4}/{:<4}  {}", r.node, r.done, r.total, r.state);
        }
    }
    if !json {
        for u in &unfinished {
            println!(
                "\nunfinished: {}: `{}` goes on where it stopped",
                u.what(),
                u.resume
            );
        }
    }
    if !json && !day2.is_empty() {
        println!("\nthe conf differs from the installed cluster:");
        for c in &day2 {
            println!("  {}\n      {}", c.what(), c.what_it_does());
        }
    }
    Outcome::Ok
}
