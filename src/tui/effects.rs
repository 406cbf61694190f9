//! The I/O behind `Effect`s. Reading and writing the conf directory run on tokio's blocking pool
//! and give back one action; the SSH test, the install and the LB probe are async tasks (the
//! install sends its actions through the loop's channel itself).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Msg;
use super::action::{Action, Effect};
use super::state::Disk;
use crate::conf::{self, Source};
use crate::engine::control::Command;
use crate::engine::events::Event;
use crate::engine::executor::{self, Options};
use crate::engine::installed::Installed;
use crate::engine::paths::{bundle_dir, load_plan, plan_path, state_dir};
use crate::lb_status::Prober;
use crate::model::Cluster;
use crate::ops::etcd_io::{self, BACKUP, RESTORE};
use crate::ops::remove;
use crate::ops::reset_io::{self, RESET};
use crate::tui::install::Operation;
use crate::tui::ops::{Kept, RestoreCheck};

/// How long the Hosts screen's SSH test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The engine's own event channel; the UI channel behind it is the one that bounds the flow.
const EVENTS: usize = 64;

/// Decisions in flight to the engine: a few keys at most.
const COMMANDS_QUEUE: usize = 8;

/// Do `effect` and send its action(s) into the loop's channel. A send fails only once the loop
/// has ended (quit); nothing is waiting for the result then.
pub(crate) async fn run(effect: Effect, tx: mpsc::Sender<Msg>) {
    let action = match effect {
        Effect::Command(cmd) => return command(cmd).await,
        Effect::Install {
            cluster,
            dir,
            restart,
            resume,
        } => return install(*cluster, dir, restart, resume, tx).await,
        Effect::Remove {
            cluster,
            source,
            dir,
            node,
        } => return remove(*cluster, *source, dir, node, tx).await,
        Effect::RunOp {
            cluster,
            dir,
            op,
            force,
        } => return run_op(*cluster, dir, op, force, tx).await,
        Effect::ListBackups(dir) => {
            let list =
                blocking(move || etcd_io::list(&etcd_io::backups_dir(&state_dir(&dir, None))))
                    .await;
            Action::BackupsListed {
                now: crate::engine::journal::now(),
                list,
            }
        }
        Effect::CheckRestore {
            cluster,
            dir,
            backup,
        } => Action::RestoreChecked {
            check: check_restore(&cluster, &dir, &backup).await,
            backup,
        },
        Effect::PrepareRemove { cluster, dir, node } => {
            let name = node.clone();
            Action::RemovePrepared {
                node,
                check: prepare_remove(&cluster, &dir, &name).await,
            }
        }
        Effect::AnswerPreflight(yes) => {
            let asked = running().asked.take();
            // No question waiting (the install ended meanwhile): nothing to answer.
            if let Some(answer) = asked {
                let _ = answer.send(yes);
            }
            return;
        }
        Effect::PreviewInstall { cluster, dir } => {
            Action::InstallPreviewed(blocking(move || preview(&cluster, &dir)).await)
        }
        Effect::ProbeLb {
            cluster,
            dir,
            after,
        } => probe_lb(*cluster, &dir, after).await,
        Effect::Tick(after) => {
            tokio::time::sleep(after).await;
            Action::Tick(crate::engine::journal::now())
        }
        Effect::ReadLog(path) => {
            let p = path.clone();
            Action::LogRead {
                path,
                lines: blocking(move || read_log(&p)).await,
            }
        }
        Effect::Load(dir) => Action::Loaded(Box::new(blocking(move || load(&dir)).await)),
        Effect::TestSsh { host, dir } => Action::Tested {
            host: host.name.clone(),
            result: test_ssh(&host, &dir).await,
        },
        Effect::Save {
            cluster,
            source,
            dir,
        } => {
            let written = cluster.clone();
            Action::Saved {
                outcome: Box::new(blocking(move || save(&cluster, &source, &dir)).await),
                written,
            }
        }
    };
    let _ = tx.send(Msg::Action(action)).await;
}

/// File work that blocks runs on tokio's blocking pool, off the loop's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("the task stopped: {e}")))
}

/// Run (or resume: the engine goes on with an unfinished install by itself) the install of
/// `cluster` from the conf directory `dir`. Every engine event is forwarded as it comes, with
/// `send().await`, so a UI that falls behind slows the engine down instead of losing events or
/// growing a queue; `InstallEnded` comes last.
async fn install(
    cluster: Cluster,
    dir: PathBuf,
    restart: bool,
    resume: bool,
    tx: mpsc::Sender<Msg>,
) {
    let sender = tx.clone();
    drive(tx, |events, confirm, commands| async move {
        let plan = load_plan(&plan_path(&dir, &cluster, None)).map_err(|e| e.to_string())?;
        let journal = executor::journal_path(&state_dir(&dir, None));
        let _ = sender
            .send(Msg::Action(history(&plan, &[journal]).await))
            .await;
        // Neither flag: an unfinished install is resumed, a finished one starts over.
        let opts = Options {
            restart,
            resume,
            bundle: bundle_dir(&dir, &cluster),
            confirm_warnings: Some(confirm),
            ..Options::new(state_dir(&dir, None))
        };
        executor::install_with(&cluster, &plan, &opts, events, Some(commands))
            .await
            .map_err(|e| e.to_string())
    })
    .await;
}

/// The ETA's start: the durations in `journals` (read again by the engine; a missing or
/// unreadable one is no history) and the plan's timeouts.
async fn history(plan: &crate::engine::plan::Plan, journals: &[PathBuf]) -> Action {
    let mut text = String::new();
    for j in journals {
        text.push_str(&tokio::fs::read_to_string(j).await.unwrap_or_default());
    }
    let timeouts = plan
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.timeout))
        .collect();
    Action::History {
        history: crate::engine::eta::History::from_journal(&text),
        timeouts,
    }
}

/// An operation's ETA start: its earlier runs' durations, and the install's for the steps they
/// share (the re-wiring steps).
async fn op_history(op: &crate::ops::Operation) -> Action {
    let journals = [
        executor::journal_path(&op.options.state_dir),
        executor::journal_of(&op.options),
    ];
    history(&op.plan, &journals).await
}

/// Take `node` out of the cluster of the conf directory `dir`: the remove operation
/// (`ops::prepare`, its plan and journal), run by the install's engine, its events forwarded.
/// When it ends well, as `kswizard remove` does: the conf without the node (reported as `Saved`,
/// so the wizard's files are those on disk), then the installed record without it.
async fn remove(
    cluster: Cluster,
    source: Source,
    dir: PathBuf,
    node: String,
    tx: mpsc::Sender<Msg>,
) {
    let sender = tx.clone();
    drive(tx, |events, confirm, commands| async move {
        let names = [node.clone()];
        let op = crate::ops::prepare(&dir, None, &cluster, "remove", &names)
            .map_err(|e| e.to_string())?;
        // As `kswizard remove`: until it ends well, only this remove can go on.
        let state = state_dir(&dir, None);
        remove::write_pending(&state, &names)
            .map_err(|e| format!("{}: {e}", remove::pending_path(&state).display()))?;
        let _ = sender.send(Msg::Action(op_history(&op).await)).await;
        let opts = Options {
            confirm_warnings: Some(confirm),
            ..op.options
        };
        let summary = executor::install_with(&op.cluster, &op.plan, &opts, events, Some(commands))
            .await
            .map_err(|e| e.to_string())?;
        // As `kswizard remove`: the host leaves also when the operator skipped a step (`s`, only
        // skippable ones: a dead host's reset), never after an abort.
        if !summary.ended_as_chosen() {
            return Ok(summary);
        }
        let mut kept = cluster.clone();
        kept.hosts.retain(|h| h.name != node);
        let written = Box::new(kept);
        let outcome = blocking(move || {
            remove::write_removed(&cluster, &source, &dir, &state, &names)
                .map_err(|e| e.to_string())?;
            // Read back: Review compares with the files and the record as they are now.
            load(&dir)
        })
        .await;
        let failed = outcome.as_ref().err().cloned();
        let _ = sender
            .send(Msg::Action(Action::Saved {
                outcome: Box::new(outcome),
                written,
            }))
            .await;
        match failed {
            None => Ok(summary),
            Some(e) => Err(format!(
                "{node} left the cluster, but {e}; `kswizard remove {node}` finishes it"
            )),
        }
    })
    .await;
}

/// Before a restore from `backup`: the snapshot opened (its sha256 checked against the file
/// beside it) and `etcd_io::check_restore` without `--force`, as `kswizard etcd restore` does;
/// nothing is changed.
async fn check_restore(
    cluster: &Cluster,
    dir: &Path,
    backup: &Path,
) -> Result<RestoreCheck, String> {
    let given = backup.to_path_buf();
    let snapshot = blocking(move || etcd_io::open_snapshot(&given)).await?;
    let op = crate::ops::prepare(dir, None, cluster, RESTORE, &[]).map_err(|e| e.to_string())?;
    let check = etcd_io::check_restore(&op, &snapshot, false).await?;
    Ok(RestoreCheck {
        loss: check.loss,
        refused: check.refused,
        resuming: check.resuming,
    })
}

/// Run the day-2 operation `op` on the cluster of the conf directory `dir` as its command does
/// (`ops::prepare`, its plan and journal, the install's engine, its events forwarded), with
/// what the command does around it: a restore checked again and its snapshot recorded first
/// (`force`: although etcd has quorum); after a backup that ended well the snapshot kept
/// (`BackedUp`, the command's default dir and no `--keep`); after a reset, also one that failed
/// on some hosts, the hosts it reset recorded.
async fn run_op(cluster: Cluster, dir: PathBuf, op: Operation, force: bool, tx: mpsc::Sender<Msg>) {
    let sender = tx.clone();
    drive(tx, |events, confirm, commands| async move {
        let (name, leaving): (&str, Vec<String>) = match &op {
            Operation::Backup => (BACKUP, Vec::new()),
            Operation::Restore(_) => (RESTORE, Vec::new()),
            Operation::Reset { hosts, .. } => (RESET, hosts.iter().cloned().collect()),
            Operation::Remove(node) => {
                return Err(format!("the removal of {node} is Effect::Remove's"));
            }
        };
        let mut prepared =
            crate::ops::prepare(&dir, None, &cluster, name, &leaving).map_err(|e| e.to_string())?;
        let state = prepared.options.state_dir.clone();
        let _ = sender.send(Msg::Action(op_history(&prepared).await)).await;
        if let Operation::Restore(backup) = &op {
            let given = backup.clone();
            let snapshot = blocking(move || etcd_io::open_snapshot(&given)).await?;
            let check = etcd_io::check_restore(&prepared, &snapshot, force).await?;
            if let Some(why) = check.refused {
                return Err(why);
            }
            etcd_io::begin_restore(&mut prepared, &snapshot)?;
        }
        let opts = Options {
            confirm_warnings: Some(confirm),
            ..prepared.options
        };
        let summary = executor::install_with(
            &prepared.cluster,
            &prepared.plan,
            &opts,
            events,
            Some(commands),
        )
        .await
        .map_err(|e| e.to_string())?;
        let ended_well = summary.failed == 0 && summary.skipped == 0;
        match op {
            Operation::Reset { hosts, .. } => {
                blocking(move || reset_io::record(&state, &cluster, &hosts))
                    .await
                    .map_err(|e| format!("the reset ran, but {e}"))?;
            }
            Operation::Backup if ended_well => {
                let stored =
                    etcd_io::store(&cluster, &dir, &state, &etcd_io::backups_dir(&state), None)
                        .await?;
                let kept = Kept {
                    dir: stored.dir,
                    meta: stored.meta,
                };
                let _ = sender
                    .send(Msg::Action(Action::BackedUp(Box::new(kept))))
                    .await;
            }
            _ => {}
        }
        Ok(summary)
    })
    .await;
}

/// Whether `node` may leave the cluster of `dir`: the installed record read and the remove
/// pre-check (`ops::remove::precheck`: the hosts, then etcd's members over SSH and the quorum
/// arithmetic), which the question shows either way.
async fn prepare_remove(cluster: &Cluster, dir: &Path, node: &str) -> Result<String, String> {
    let state = state_dir(dir, None);
    let record = Installed::load(&state)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{node}: nothing was installed from this conf"))?;
    let asked = std::collections::BTreeSet::from([node.to_string()]);
    if let Some(why) = remove::read_pending(&state).and_then(|p| remove::other_pending(&p, &asked))
    {
        return Err(why);
    }
    let checked = remove::precheck(cluster, &record, &[node.to_string()], &state)
        .await
        .map_err(|e| e.to_string())?;
    let mut text = format!(
        "{}\n  (etcd asked on {})",
        checked.arithmetic, checked.asked_on
    );
    if let Some(note) = checked.arithmetic.even_note() {
        text.push_str(&format!("\n{note}"));
    }
    Ok(text)
}

/// Run the engine (`run`: the install or an operation, given its event, "continue anyway?" and
/// command channels) while forwarding what it says to the loop; `InstallEnded` comes last.
async fn drive<F, R>(tx: mpsc::Sender<Msg>, run: F)
where
    F: FnOnce(
        mpsc::Sender<Event>,
        mpsc::Sender<oneshot::Sender<bool>>,
        mpsc::Receiver<Command>,
    ) -> R,
    R: std::future::Future<Output = Result<crate::engine::events::Summary, String>>,
{
    let (events, mut rx) = mpsc::channel::<Event>(EVENTS);
    let (confirm, mut asks) = mpsc::channel(1);
    // A failed node waits for the operator's decision (the Install screen's keys).
    let (commands, commands_rx) = mpsc::channel(COMMANDS_QUEUE);
    running().commands = Some(commands);
    let run = async {
        let r = run(events, confirm, commands_rx).await;
        running().commands = None;
        r
    };
    let forward = async {
        loop {
            // Events first: the question comes after every preflight event, and the screen must
            // have them all when it asks.
            let action = tokio::select! {
                biased;
                e = rx.recv() => match e {
                    Some(e) => Action::Engine(Box::new(e)),
                    None => break,
                },
                Some(answer) = asks.recv() => {
                    running().asked = Some(answer);
                    Action::PreflightAsked
                }
            };
            // The UI is gone (quit): keep draining so the engine never waits on a dead reader.
            let _ = tx.send(Msg::Action(action)).await;
        }
    };
    let (result, ()) = tokio::join!(run, forward);
    let _ = tx.send(Msg::Action(Action::InstallEnded(result))).await;
}

/// The running install's ways in, set while `install` runs. Not in the state: `update` stays
/// plain data and only names what to send; one install runs at a time.
struct Running {
    /// Its "continue anyway?" waiting for the operator's answer (`Effect::AnswerPreflight`).
    asked: Option<oneshot::Sender<bool>>,
    /// Where it takes the operator's decisions about failed nodes (`Effect::Command`).
    commands: Option<mpsc::Sender<Command>>,
}

static RUNNING: std::sync::Mutex<Running> = std::sync::Mutex::new(Running {
    asked: None,
    commands: None,
});

fn running() -> std::sync::MutexGuard<'static, Running> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bytes of a step's log the full view reads at most: the end of a longer one, saying so.
const LOG_READ_MAX: u64 = 16 << 20;

/// A step's log file as lines (its end, when it is very long).
fn read_log(path: &Path) -> Result<Vec<String>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let why = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(why)?;
    let size = f.metadata().map_err(why)?.len();
    let mut lines = Vec::new();
    if size > LOG_READ_MAX {
        f.seek(SeekFrom::Start(size - LOG_READ_MAX)).map_err(why)?;
        lines.push(format!(
            "kswizard: the log's first {} MiB are not shown; the file has them",
            (size - LOG_READ_MAX) >> 20
        ));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(why)?;
    lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
    Ok(lines)
}

/// Hand `cmd` to the running install; none runs any more: nothing to do.
async fn command(cmd: Command) {
    let tx = running().commands.clone();
    if let Some(tx) = tx {
        let _ = tx.send(cmd).await;
    }
}

/// What an install of `cluster` from `dir` would run: the plan and the journal read, nothing run.
fn preview(cluster: &Cluster, dir: &Path) -> Result<Box<executor::Preview>, String> {
    let plan = load_plan(&plan_path(dir, cluster, None)).map_err(|e| e.to_string())?;
    let replay = crate::engine::journal::replay(&executor::journal_path(&state_dir(dir, None)))
        .map_err(|e| e.to_string())?;
    // A bundle that cannot be read changes no preview: the install refuses it, saying why.
    let bundle = bundle_dir(dir, cluster).and_then(|b| crate::bundle::Manifest::load(&b).ok());
    let record = crate::engine::installed::Installed::load(&state_dir(dir, None))
        .map_err(|e| e.to_string())?;
    Ok(Box::new(executor::preview(
        cluster,
        &plan,
        &replay,
        bundle.as_ref(),
        record.as_ref(),
    )))
}

/// The LB prober of the last probe: kept between probes so that the built-in LB's SSH connections
/// to the masters are made once, not every 2 s. Replaced when the cluster or its directory changes.
static PROBER: std::sync::Mutex<Option<Arc<Prober>>> = std::sync::Mutex::new(None);

/// Probe the LB after `after`: its frontend and each master's apiserver, and with the built-in
/// LB the VIP and each master's haproxy.
async fn probe_lb(cluster: Cluster, dir: &Path, after: Duration) -> Action {
    tokio::time::sleep(after).await;
    let state = state_dir(dir, None);
    let prober = {
        let mut kept = PROBER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match kept.as_ref() {
            Some(p) if p.is_for(&cluster, &state) => p.clone(),
            _ => {
                let p = Arc::new(Prober::new(cluster, &state));
                *kept = Some(p.clone());
                p
            }
        }
    };
    Action::LbProbed(Box::new(prober.check().await))
}

/// Read `dir`: the cluster (none without a hosts.ini) and the text of each file kswizard writes.
pub fn load(dir: &Path) -> Result<Disk, String> {
    if !dir.exists() {
        // A new cluster: the directory is made when the files are first written.
        return Ok(Disk {
            cluster: None,
            source: Source {
                dir: dir.to_path_buf(),
                ..Source::default()
            },
            files: Vec::new(),
            install: None,
            installed: installed(dir),
            unfinished: unfinished(dir),
        });
    }
    let (cluster, source) = conf::load(dir).map_err(|e| e.to_string())?;
    let names = [
        conf::HOSTS_INI,
        source.common_name.as_str(),
        conf::SETTINGS_YAML,
    ];
    let files = names
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            Some((name.to_string(), text))
        })
        .collect();
    let install = crate::engine::status::of_conf(dir, &cluster);
    Ok(Disk {
        install,
        installed: installed(dir),
        unfinished: unfinished(dir),
        cluster: source.hosts_exists.then_some(cluster),
        source,
        files,
    })
}

/// The day-2 operations of the state dir found from the conf directory `dir` that did not end.
fn unfinished(dir: &Path) -> Result<Vec<crate::ops::unfinished::Unfinished>, String> {
    crate::ops::unfinished::find(&state_dir(dir, None), dir).map_err(|e| e.to_string())
}

/// The installed record of the state dir found from the conf directory `dir`.
fn installed(dir: &Path) -> Result<Option<Installed>, String> {
    Installed::load(&state_dir(dir, None)).map_err(|e| e.to_string())
}

/// Write the files, then read them back so the Review diff compares against what is on disk now.
fn save(cluster: &Cluster, source: &Source, dir: &Path) -> Result<Disk, String> {
    conf::save(cluster, source, dir).map_err(|e| e.to_string())?;
    load(dir)
}

/// The SSH test: the engine's own connect and facts, bounded in time so that neither the
/// screen nor quitting waits on a host that does not answer. Host keys are pinned in the state
/// dir found from the conf directory `dir`, as the install does.
async fn test_ssh(
    host: &crate::model::Host,
    dir: &Path,
) -> Result<crate::engine::events::Facts, String> {
    let state = state_dir(dir, None);
    executor::ensure_state_dir(&state).map_err(|e| e.to_string())?;
    let known_hosts = state.join("known_hosts");
    match tokio::time::timeout(TEST_TIMEOUT, crate::engine::probe(host, &known_hosts)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{}: no answer within {} s (SSH and the sudo check)",
            host.name,
            TEST_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb_status::ProbeState;
    use crate::model::{Host, LbMode};

    #[test]
    fn a_step_log_reads_as_lines_and_a_missing_one_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("verify.log");
        std::fs::write(&p, "one\ntwo \u{fffd}\n").unwrap();
        assert_eq!(read_log(&p).unwrap(), ["one", "two \u{fffd}"]);
        let missing = read_log(&dir.path().join("none.log")).unwrap_err();
        assert!(missing.contains("none.log"), "{missing}");
    }

    async fn next_action(rx: &mut mpsc::Receiver<Msg>) -> Action {
        match rx.recv().await {
            Some(Msg::Action(a)) => a,
            _ => panic!("no action"),
        }
    }

    #[tokio::test]
    async fn an_install_that_cannot_start_still_ends_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster::default();
        cluster.settings.plan = Some("no-such-plan.yaml".into());
        let (tx, mut rx) = mpsc::channel(4);
        run(
            Effect::Install {
                cluster: Box::new(cluster),
                dir: dir.path().join("conf"),
                restart: false,
                resume: false,
            },
            tx,
        )
        .await;
        match next_action(&mut rx).await {
            Action::InstallEnded(Err(e)) => assert!(e.contains("no-such-plan.yaml"), "{e}"),
            a => panic!("{a:?}"),
        }
    }

    #[tokio::test]
    async fn the_remove_pre_check_needs_a_record_and_no_other_remove_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        let mut cluster = Cluster::default();
        cluster.hosts.push(Host::new("w1", "127.0.99.2"));
        let nothing = prepare_remove(&cluster, &conf, "w1").await.unwrap_err();
        assert_eq!(nothing, "w1: nothing was installed from this conf");
        let state = state_dir(&conf, None);
        executor::ensure_state_dir(&state).unwrap();
        Installed::of(&cluster, "id").save(&state).unwrap();
        remove::write_pending(&state, &["m9".to_string()]).unwrap();
        let other = prepare_remove(&cluster, &conf, "w1").await.unwrap_err();
        assert!(
            other.contains("`kswizard remove m9` has not ended"),
            "{other}"
        );
    }

    #[tokio::test]
    async fn the_answer_to_continue_anyway_reaches_the_waiting_install() {
        let (tx, mut rx) = mpsc::channel(4);
        // Nothing asked: the answer goes nowhere and nothing is reported.
        run(Effect::AnswerPreflight(true), tx.clone()).await;
        let (answer, asked) = oneshot::channel();
        running().asked = Some(answer);
        run(Effect::AnswerPreflight(false), tx).await;
        assert_eq!(asked.await, Ok(false));
        assert!(running().asked.is_none());
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_lb_probe_reports_back() {
        // Loopback only: a listener of this test as the frontend (it accepts, then closes: no
        // TLS, as a TCP LB without backends), a closed port as a master.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster::default();
        let mut master = Host::new("m1", "127.0.99.3");
        master.roles.master = true;
        cluster.hosts.push(master);
        cluster.lb.mode = LbMode::External;
        cluster.lb.address = Some("127.0.0.1".into());
        cluster.lb.port = i64::from(listener.local_addr().unwrap().port());
        let (tx, mut rx) = mpsc::channel(4);
        let accept = std::thread::spawn(move || drop(listener.accept()));
        let effect = Effect::ProbeLb {
            cluster: Box::new(cluster),
            dir: dir.path().join("conf"),
            after: Duration::ZERO,
        };
        run(effect, tx).await;
        accept.join().unwrap();
        match next_action(&mut rx).await {
            Action::LbProbed(s) => {
                assert_eq!(s.frontend.unwrap().state, ProbeState::NoTls);
                assert_eq!(s.backends[0].state, ProbeState::NotListening);
            }
            a => panic!("{a:?}"),
        }
    }
}
