//! One node's part of an install, as a thin async shell: connect, send batches of steps, feed
//! the runner's lines to the batch machine (`batch.rs`) and carry its transitions out — journal,
//! events, board, reconnects. Every decision is made in `decide.rs` and `batch.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use super::batch::{self, Batch, Closed, Ended, Expected, Transition, Verdict};
use super::control::Decision;
use super::decide::{self, Todo};
use super::deliver;
use super::events::{Event, Facts, Status};
use super::journal::{self, Record};
use super::plan::{Plan, Step};
use super::preflight;
use super::runner::{self, How, Launch};
use super::shared::{Shared, StepEnd, end_record, fail_rest, skip_rest};
use super::transport::{self, Conn, ConnectError, Lost};
use crate::model::Host;

/// Why a node cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    Connect(ConnectError),
    /// Commands do not become root with sudo; the text says why, plainly.
    Sudo {
        host: String,
        why: String,
    },
    /// Contact was lost while gathering facts.
    Lost {
        host: String,
        why: String,
    },
    /// The local directory for control sockets could not be made.
    ControlDir(String),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Connect(e) => write!(f, "{e}"),
            NodeError::Sudo { host, why } => write!(f, "{host}: {why}"),
            NodeError::Lost { host, why } => {
                write!(f, "{host}: connection lost while gathering facts: {why}")
            }
            NodeError::ControlDir(e) => write!(f, "control directory: {e}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Why a command that should have run as root did not start: sudo's complaint, made plain.
fn sudo_refused(host: &Host, conn: &Conn, stderr: &str) -> NodeError {
    let err = conn.redact(stderr.trim());
    let why = if err.contains("incorrect password") || err.contains("Sorry, try again") {
        "the sudo password (ansible_become_pass) is wrong"
    } else if err.contains("password is required") {
        "sudo asks for a password: set ansible_become_pass for this host"
    } else {
        "commands cannot become root with sudo"
    };
    NodeError::Sudo {
        host: host.name.clone(),
        why: format!("{why} ({})", err.lines().last().unwrap_or("")),
    }
}

/// Connect to `host`, gather its facts as root and disconnect: the Hosts screen's SSH test.
/// Host keys are pinned in `known_hosts` as for an install.
pub async fn probe(host: &Host, known_hosts: &Path) -> Result<Facts, NodeError> {
    let state = known_hosts.parent().unwrap_or(Path::new("."));
    let ctl = transport::control_dir_in(state).map_err(|e| NodeError::ControlDir(e.to_string()))?;
    let conn = transport::connect(host, known_hosts, ctl.path(), 0)
        .await
        .map_err(NodeError::Connect)?;
    let facts = check_facts(host, &conn, true).await;
    conn.close().await;
    facts
}

/// Gather the node's facts, as root when `root` (which proves sudo works); the reason when not.
async fn check_facts(host: &Host, conn: &Conn, root: bool) -> Result<Facts, NodeError> {
    match conn.run(runner::FACTS, root).await {
        Ok((0, out, _)) => match batch::facts_of(&out) {
            (facts, Some(0)) => Ok(facts),
            (facts, _) if !root => Ok(facts),
            _ => Err(NodeError::Sudo {
                host: host.name.clone(),
                why: "commands do not run as root through sudo".into(),
            }),
        },
        Ok((_, _, err)) => Err(sudo_refused(host, conn, &err)),
        Err(l) => Err(NodeError::Lost {
            host: host.name.clone(),
            why: l.0,
        }),
    }
}

/// How long a node's preflight may take, connecting included.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(60);

/// Run the preflight `script` (plain text, `bash`) on `host` with `env`, as root when `root`: its report and
/// the taskbox's times around it (`preflight::compare` judges those), and the connection, kept
/// for the install. A node not reached, or whose script does not answer in time, is a report
/// with one failed check saying so.
pub(super) async fn preflight(
    host: &Host,
    env: &[(String, String)],
    script: &str,
    root: bool,
    known_hosts: &Path,
    ctl_dir: &Path,
    n: usize,
) -> (preflight::Report, Option<preflight::Window>, Option<Conn>) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let run = async {
        // The connection's id is the one `NodeRun::connect` would give it first.
        let conn = transport::connect(host, known_hosts, ctl_dir, n * 1000 + 1)
            .await
            .map_err(|e| e.to_string())?;
        let exports: String = env
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", runner::sh_quote(v)))
            .collect();
        let command = format!("{exports}bash -c {}\n", runner::sh_quote(script));
        let sent = now();
        let result = conn.run(&command, root).await;
        let window = preflight::Window {
            sent,
            received: now(),
        };
        match result {
            Ok((code, out, err)) => Ok((
                preflight::parse(&host.name, &out, code, &conn.redact(&err)),
                window,
                conn,
            )),
            Err(l) => {
                conn.close().await;
                Err(format!("connection lost during preflight: {}", l.0))
            }
        }
    };
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, run).await {
        Ok(Ok((report, window, conn))) => (report, Some(window), Some(conn)),
        Ok(Err(why)) => (preflight::Report::unreachable(&host.name, &why), None, None),
        Err(_) => (
            preflight::Report::unreachable(
                &host.name,
                &format!(
                    "no preflight report within {} s",
                    PREFLIGHT_TIMEOUT.as_secs()
                ),
            ),
            None,
            None,
        ),
    }
}

/// One node's share of the install: its connection and where it stands.
pub(super) struct NodeRun<'a> {
    pub(super) host: &'a Host,
    pub(super) plan: &'a Plan,
    pub(super) shared: &'a Shared,
    pub(super) known_hosts: &'a Path,
    pub(super) ctl_dir: &'a Path,
    /// How long to keep trying a node that went away mid-step.
    pub(super) reconnect_for: Duration,
    /// Distinguishes this node's control sockets from the others'.
    pub(super) n: usize,
    pub(super) conn: Option<Conn>,
    /// Connections made so far (each gets its own control socket).
    pub(super) conns: usize,
    /// The node's facts are still to come, with the next batch.
    pub(super) facts_pending: bool,
    /// The node's `KSW_*` environment.
    pub(super) env: Vec<(String, String)>,
    /// Each step's fingerprint on this node.
    pub(super) fps: HashMap<String, String>,
    /// The bundle's files this node gets, when the plan delivers a bundle.
    pub(super) files: Vec<crate::bundle::Entry>,
}

/// A step of the node's list, as this run goes.
struct Pending {
    todo: Todo,
    /// Retries of the step this run has not used.
    retries_left: u32,
}

/// How a batch ended, for the node's loop.
enum BatchEnd {
    /// Every step of the batch ended ok.
    AllOk,
    /// The `usize`-th step of the batch is to run again (its attempt is updated), after a pause.
    Retry(usize, Duration),
    /// This step failed for good (it is finished as failed): the node stops.
    Stop(String),
}

impl NodeRun<'_> {
    fn node(&self) -> &str {
        &self.host.name
    }

    fn step(&self, sid: &str) -> Option<&Step> {
        self.plan.step(sid)
    }

    async fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close().await;
        }
    }

    fn waits_for(&self, step: &Step) -> Vec<String> {
        decide::waits_for(self.plan, step, &self.shared.scheduled)
    }

    pub(super) async fn run(mut self, todo: Vec<Todo>) {
        // Nothing to run, nothing to ask: a host an operation leaves alone (down, even) is not
        // contacted, and a resume does not wait for nodes that are done.
        if todo.is_empty() {
            return;
        }
        let node = self.node().to_string();
        let ids: Vec<String> = todo.iter().map(|t| t.step.clone()).collect();
        let mut pending: Vec<Pending> = todo
            .into_iter()
            .map(|t| Pending {
                retries_left: self.step(&t.step).map_or(0, |s| s.retries),
                todo: t,
            })
            .collect();
        // A plan whose steps on this node all run as the login user needs no sudo.
        let root = ids
            .iter()
            .any(|s| self.step(s).is_some_and(|s| s.become_root));
        let mut i = 0;
        // The preflight stage hands over the connection it made. A node that cannot be reached
        // fails its next step at that step's turn (after its barriers: a skip must not open a
        // barrier early), and the operator decides as for any failure: retry connects again,
        // skip (a skippable step: a dead host's reset in `remove`) goes on to the next one.
        while self.conn.is_none() && i < pending.len() {
            let Err(e) = self.connect().await else { break };
            if let Some(step) = self.step(&ids[i]) {
                for a in &self.waits_for(step) {
                    if let Err(on) = self.shared.barrier(a).await {
                        let reason = format!("waits for step '{a}', which {on}");
                        return skip_rest(self.shared, &node, &ids[i..], &reason).await;
                    }
                }
            }
            let end = StepEnd {
                hold: self.shared.control.interactive,
                ..StepEnd::plain(Status::Failed, e.to_string())
            };
            self.shared.finish(&node, &ids[i], end).await;
            match self.after_failure(&ids[i], &ids, &mut pending).await {
                Some(next) => i = next,
                None => return,
            }
        }
        let first_waits = decide::facts_first(
            self.plan,
            pending.get(i).and_then(|p| self.step(&p.todo.step)),
            &self.shared.scheduled,
            |a| self.shared.passed(a),
        );
        self.facts_pending = !first_waits;
        if first_waits && let Some(conn) = self.conn.as_ref() {
            match check_facts(self.host, conn, root).await {
                Ok(facts) => {
                    self.shared
                        .emit(Event::Facts {
                            node: node.clone(),
                            facts,
                        })
                        .await;
                }
                Err(e) => {
                    self.close().await;
                    return fail_rest(self.shared, &node, &ids[i..], e.to_string()).await;
                }
            }
        }
        while i < pending.len() {
            if let Some(e) = self.shared.journal.broken() {
                let reason = format!(
                    "the journal cannot be written ({e}); no step starts that a resume could not account for"
                );
                skip_rest(self.shared, &node, &ids[i..], &reason).await;
                return self.close().await;
            }
            if self.shared.control.aborted() {
                skip_rest(
                    self.shared,
                    &node,
                    &ids[i..],
                    "the operator aborted the install",
                )
                .await;
                return self.close().await;
            }
            let Some(step) = self.step(&ids[i]) else {
                break;
            };
            for a in &self.waits_for(step) {
                if let Err(on) = self.shared.barrier(a).await {
                    let reason = format!("waits for step '{a}', which {on}");
                    skip_rest(self.shared, &node, &ids[i..], &reason).await;
                    return self.close().await;
                }
            }
            if step.deliver.is_some() {
                match self.deliver(&mut pending[i]).await {
                    BatchEnd::AllOk => i += 1,
                    BatchEnd::Retry(_, after) => tokio::time::sleep(after).await,
                    BatchEnd::Stop(failed) => {
                        match self.after_failure(&failed, &ids, &mut pending).await {
                            Some(next) => i = next,
                            None => return self.close().await,
                        }
                    }
                }
                continue;
            }
            let steps: Vec<&Step> = ids[i..].iter().filter_map(|s| self.step(s)).collect();
            let n = {
                let board = self
                    .shared
                    .board
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                decide::batch_len(
                    self.plan,
                    &steps,
                    &self.shared.scheduled,
                    |a| board.passed(a),
                    |k| board.outputs.contains_key(k),
                )
            };
            // A serial step waits for its turn (tokio's lock is fair: first come, first served).
            let turn = match self.shared.turns.get(&step.id) {
                Some(lock) => Some(lock.lock().await),
                None => None,
            };
            let end = self.run_batch(&mut pending[i..i + n]).await;
            drop(turn);
            match end {
                BatchEnd::AllOk => i += n,
                BatchEnd::Retry(k, after) => {
                    i += k;
                    tokio::time::sleep(after).await;
                }
                BatchEnd::Stop(failed) => {
                    match self.after_failure(&failed, &ids, &mut pending).await {
                        Some(next) => i = next,
                        None => return self.close().await,
                    }
                }
            }
        }
        self.close().await;
    }

    /// Step `failed` failed: what the operator decides (`Shared::decide`; without an operator,
    /// the node stops). `Some(i)`: go on from `pending[i]` (the failed step again, as a later
    /// attempt, or the one after it); `None`: the node's later steps were skipped, it stops.
    async fn after_failure(
        &self,
        failed: &str,
        ids: &[String],
        pending: &mut [Pending],
    ) -> Option<usize> {
        let node = self.node().to_string();
        let at = ids.iter().position(|s| s == failed)?;
        let skippable = self.step(failed).is_some_and(|s| s.skippable);
        let d = self.shared.decide(&node, failed, skippable).await;
        match d {
            Decision::Retry => {
                let p = &mut pending[at];
                p.todo.attempt += 1;
                p.retries_left = self.step(failed).map_or(0, |s| s.retries);
                self.say(
                    failed,
                    format!(
                        "kswizard: the operator retries step '{failed}' (attempt {})",
                        p.todo.attempt
                    ),
                )
                .await;
                Some(at)
            }
            Decision::Skip => Some(at + 1),
            Decision::Abort | Decision::Stop => {
                let reason = if d == Decision::Abort {
                    format!("step '{failed}' failed on this node and the operator aborted it")
                } else {
                    format!("step '{failed}' failed on this node")
                };
                skip_rest(self.shared, &node, &ids[at + 1..], &reason).await;
                None
            }
        }
    }

    /// Connect (again) to the node; every connection gets control paths of its own.
    async fn connect(&mut self) -> Result<(), ConnectError> {
        self.conns += 1;
        let id = self.n * 1000 + self.conns;
        let c = transport::connect(self.host, self.known_hosts, self.ctl_dir, id).await?;
        self.conn = Some(c);
        Ok(())
    }

    /// Reconnect after contact was lost during `step`, with backoff, for at most
    /// `reconnect_for`; each try is shown in the step's log. `Err` is the last reason it failed.
    async fn reconnect(&mut self, step: &str, why: &str) -> Result<(), ConnectError> {
        self.close().await;
        let started = Instant::now();
        let mut tries = 0;
        let mut last: Option<ConnectError> = None;
        while let Some(pause) = batch::reconnect_delay(tries, started.elapsed(), self.reconnect_for)
        {
            let left = self
                .reconnect_for
                .saturating_sub(started.elapsed())
                .as_secs();
            let reason = last
                .as_ref()
                .map_or_else(|| why.to_string(), ToString::to_string);
            self.say(
                step,
                format!(
                    "kswizard: lost contact with {} ({reason}); reconnecting (try {}, giving up in {left} s)",
                    self.node(),
                    tries + 1
                ),
            )
            .await;
            tokio::time::sleep(pause).await;
            tries += 1;
            match self.connect().await {
                Ok(()) => return Ok(()),
                // A host key that changed or cannot be pinned is not a network blip: stop at once.
                Err(
                    e @ (ConnectError::HostKeyChanged { .. }
                    | ConnectError::HostKeyNotPinned { .. }),
                ) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ConnectError::Unreachable {
            host: self.node().to_string(),
            detail: why.to_string(),
        }))
    }

    /// A `deliver` step: kswizard copies the bundle's files for this node itself. A lost
    /// connection is reconnected and the delivery done again (what arrived is not sent twice).
    async fn deliver(&mut self, p: &mut Pending) -> BatchEnd {
        let sid = p.todo.step.clone();
        let node = self.node().to_string();
        let started = Instant::now();
        self.shared.journal.log(Record::Start {
            node: node.clone(),
            step: sid.clone(),
            attempt: p.todo.attempt,
            fp: self.fps.get(&sid).cloned().unwrap_or_default(),
            ts: journal::now(),
        });
        self.shared
            .emit(Event::Started {
                node: node.clone(),
                step: sid.clone(),
                attempt: p.todo.attempt,
                reattached: false,
                already_done: false,
            })
            .await;
        let Some(bundle) = self.shared.bundle.as_ref() else {
            let reason = "the plan delivers a bundle, but the conf names none".to_string();
            self.finish_failed(&sid, reason, Vec::new(), started).await;
            return BatchEnd::Stop(sid);
        };
        let files = self.files.clone();
        let entries: Vec<&crate::bundle::Entry> = files.iter().collect();
        let (root, timeout) = self
            .step(&sid)
            .map_or((true, 600), |s| (s.become_root, s.timeout));
        let state_root = self.shared.state_root.replace("{node}", &node);
        loop {
            let result = match self.conn.as_ref() {
                Some(conn) => tokio::time::timeout(
                    Duration::from_secs(timeout),
                    deliver::deliver(
                        conn,
                        bundle,
                        &entries,
                        self.shared,
                        (&node, &sid),
                        root,
                        &state_root,
                    ),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(deliver::Failed::Error(format!(
                        "timed out after {timeout} s"
                    )))
                }),
                None => Err(deliver::Failed::Lost(Lost("not connected".into()))),
            };
            match result {
                Ok(d) => {
                    if d.files > 0 {
                        let rate =
                            crate::bundle::deliver::rate(d.bytes, d.elapsed_ms as f64 / 1000.0);
                        self.say(&sid, format!("delivered {} files, {rate}", d.files))
                            .await;
                    }
                    self.shared
                        .emit(Event::Delivered {
                            node: node.clone(),
                            step: sid.clone(),
                            files: d.files,
                            bytes: d.bytes,
                            unchanged: d.unchanged,
                            elapsed_ms: d.elapsed_ms,
                        })
                        .await;
                    let ended = Ended {
                        step: sid.clone(),
                        attempt: p.todo.attempt,
                        how: How::Start,
                        ending: batch::Ending::Exit(0),
                        outputs: BTreeMap::new(),
                        tail: Vec::new(),
                    };
                    if let Some(step) = self.step(&sid) {
                        self.finish_ok(step, &ended, started).await;
                    }
                    return BatchEnd::AllOk;
                }
                Err(deliver::Failed::Lost(l)) => {
                    if let Err(e) = self.reconnect(&sid, &l.0).await {
                        self.finish_failed(&sid, e.to_string(), Vec::new(), started)
                            .await;
                        return BatchEnd::Stop(sid);
                    }
                }
                Err(deliver::Failed::Error(reason)) if p.retries_left > 0 => {
                    p.retries_left -= 1;
                    self.say(&sid, format!("kswizard: {reason}; trying again"))
                        .await;
                    return BatchEnd::Retry(0, std::time::Duration::from_secs(2));
                }
                Err(deliver::Failed::Error(reason)) => {
                    self.finish_failed(&sid, reason, Vec::new(), started).await;
                    return BatchEnd::Stop(sid);
                }
            }
        }
    }

    /// A line of kswizard's own in a step's log.
    async fn say(&self, step: &str, line: String) {
        self.shared
            .emit(Event::Output {
                node: self.node().to_string(),
                step: step.to_string(),
                line,
            })
            .await;
    }

    /// Run `batch` as one command on the node, re-attaching through lost connections.
    async fn run_batch(&mut self, batch: &mut [Pending]) -> BatchEnd {
        let node = self.node().to_string();
        // Steps of the batch that ended ok, over reconnects.
        let mut ok = 0;
        loop {
            let base = ok;
            let rest = &batch[base..];
            let Some(first) = self.step(&rest[0].todo.step) else {
                return BatchEnd::Stop(rest[0].todo.step.clone());
            };
            let become_root = first.become_root;
            // Taken anew on every try: steps that ended before a reconnect published values too.
            let published = self
                .shared
                .board
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .outputs
                .clone();
            let mut envs = Vec::new();
            for p in rest {
                let Some(s) = self.step(&p.todo.step) else {
                    return BatchEnd::Stop(p.todo.step.clone());
                };
                match decide::env_for(s, &self.env, &published) {
                    Ok(env) => envs.push(env),
                    Err(missing) => {
                        let reason = format!(
                            "needs {}, which no step published (the step that publishes it did not finish anywhere)",
                            missing.join(", ")
                        );
                        self.finish_failed(&p.todo.step, reason, Vec::new(), Instant::now())
                            .await;
                        return BatchEnd::Stop(p.todo.step.clone());
                    }
                }
            }
            let launches: Vec<Launch> = rest
                .iter()
                .zip(&envs)
                .filter_map(|(p, env)| {
                    let s = self.step(&p.todo.step)?;
                    Some(Launch {
                        step: &s.id,
                        attempt: p.todo.attempt,
                        fp: self.fps.get(&s.id).map_or("", String::as_str),
                        timeout: s.timeout,
                        body: &s.body,
                        env,
                    })
                })
                .collect();
            let root = self.shared.state_root.replace("{node}", &node);
            let script = runner::launcher(
                &root,
                &self.shared.install_id,
                &launches,
                self.facts_pending,
            );
            let expected: Vec<Expected> = rest
                .iter()
                .filter_map(|p| {
                    let s = self.step(&p.todo.step)?;
                    Some(Expected {
                        step: s.id.clone(),
                        attempt: p.todo.attempt,
                        outputs: s.outputs.clone(),
                    })
                })
                .collect();
            let mut machine = Batch::new(expected, self.facts_pending);
            let closed = match self.conn.as_ref() {
                None => Closed::Lost {
                    step: rest[0].todo.step.clone(),
                    why: "not connected".into(),
                },
                Some(conn) => match conn.exec(&script, become_root).await {
                    Err(l) => Closed::Lost {
                        step: rest[0].todo.step.clone(),
                        why: l.0,
                    },
                    Ok(mut running) => {
                        let mut started = Instant::now();
                        while let Some(line) = running.next_line().await {
                            machine.feed(&line);
                            while let Some(t) = machine.poll() {
                                if let Some(end) =
                                    self.carry_out(t, &mut batch[base..], &mut started).await
                                {
                                    let _ = running.finish().await;
                                    return match end {
                                        BatchEnd::Retry(k, after) => {
                                            BatchEnd::Retry(base + k, after)
                                        }
                                        other => other,
                                    };
                                }
                            }
                            ok = base + machine.ended_ok();
                        }
                        let end = running.finish().await.map_err(|l| l.0);
                        let closed = machine.close(end);
                        // Facts completed by the end of the stream; no step ends here.
                        while let Some(t) = machine.poll() {
                            let _ = self.carry_out(t, &mut batch[base..], &mut started).await;
                        }
                        closed
                    }
                },
            };
            match closed {
                Closed::Over => return BatchEnd::AllOk,
                Closed::NeverStarted { step, code, stderr } => {
                    let reason = match (&self.conn, become_root) {
                        (Some(conn), true) => sudo_refused(self.host, conn, &stderr).to_string(),
                        _ => format!(
                            "{node}: the runner could not start (exit code {code}): {}",
                            stderr.trim()
                        ),
                    };
                    self.finish_failed(&step, reason, Vec::new(), Instant::now())
                        .await;
                    return BatchEnd::Stop(step);
                }
                Closed::Lost { step, why } => {
                    if let Err(last) = self.reconnect(&step, &why).await {
                        let reason = format!(
                            "lost contact with {node} during step '{step}' and could not reconnect within {} s ({last}); the step may still be running there, and `kswizard install --resume` re-attaches to it",
                            self.reconnect_for.as_secs()
                        );
                        self.shared
                            .finish(
                                &node,
                                &step,
                                StepEnd {
                                    lost: true,
                                    hold: self.shared.control.interactive,
                                    ..StepEnd::plain(Status::Failed, reason)
                                },
                            )
                            .await;
                        return BatchEnd::Stop(step);
                    }
                }
            }
        }
    }

    /// Carry one transition out. `Some` when the batch ends here (a retry or a failure);
    /// `started` is when the current step began, for its elapsed time.
    async fn carry_out(
        &mut self,
        t: Transition,
        batch: &mut [Pending],
        started: &mut Instant,
    ) -> Option<BatchEnd> {
        let node = self.node().to_string();
        match t {
            Transition::Facts { facts, .. } => {
                self.facts_pending = false;
                self.shared.emit(Event::Facts { node, facts }).await;
                None
            }
            Transition::Began { step, attempt, how } => {
                *started = Instant::now();
                self.shared.journal.log(Record::Start {
                    node: node.clone(),
                    step: step.clone(),
                    attempt,
                    fp: self.fps.get(&step).cloned().unwrap_or_default(),
                    ts: journal::now(),
                });
                self.shared
                    .emit(Event::Started {
                        node,
                        step,
                        attempt,
                        reattached: how != How::Start,
                        already_done: how == How::Done,
                    })
                    .await;
                None
            }
            Transition::Output { step, line } => {
                self.shared.emit(Event::Output { node, step, line }).await;
                None
            }
            Transition::Ended(ended) => {
                let k = batch.iter().position(|p| p.todo.step == ended.step)?;
                let step = self.step(&ended.step)?;
                let v = batch::verdict(step, &ended, batch[k].retries_left);
                match v {
                    Verdict::Ok => {
                        self.finish_ok(step, &ended, *started).await;
                        None
                    }
                    Verdict::Retry {
                        attempt,
                        after,
                        reason,
                        counted,
                    } => {
                        // Not the end of the step: the attempt is recorded and said in its log.
                        self.shared.journal.log(end_record(
                            &node,
                            &ended.step,
                            Status::Failed,
                            Some(self.shared.secrets.scrub(&reason)),
                            false,
                        ));
                        self.say(
                            &ended.step,
                            format!(
                                "kswizard: attempt {} failed ({reason}); trying again",
                                ended.attempt
                            ),
                        )
                        .await;
                        batch[k].todo.attempt = attempt;
                        if counted {
                            batch[k].retries_left -= 1;
                        }
                        Some(BatchEnd::Retry(k, after))
                    }
                    Verdict::Fail(reason) => {
                        let failed = ended.step.clone();
                        self.finish_failed(&failed, reason, ended.tail, *started)
                            .await;
                        Some(BatchEnd::Stop(failed))
                    }
                }
            }
        }
    }

    /// A step ended ok: its outputs journaled (secret ones only by name) and on the board.
    async fn finish_ok(&self, step: &Step, ended: &Ended, started: Instant) {
        let node = self.node().to_string();
        let (secret, plain): (BTreeMap<_, _>, BTreeMap<_, _>) = ended
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| step.is_secret(k));
        self.shared.secrets.add(secret.values().cloned());
        if !ended.outputs.is_empty() {
            self.shared.journal.log(Record::Outputs {
                node: node.clone(),
                step: ended.step.clone(),
                values: plain,
                redacted: secret.keys().cloned().collect(),
            });
        }
        self.shared
            .step_done(&ended.step, &node, Status::Ok, &ended.outputs);
        self.shared
            .finish(
                &node,
                &ended.step,
                StepEnd {
                    status: Status::Ok,
                    reason: None,
                    elapsed_ms: elapsed_ms(started),
                    tail: Vec::new(),
                    lost: false,
                    how: ended.how,
                    hold: false,
                },
            )
            .await;
    }

    async fn finish_failed(&self, step: &str, reason: String, tail: Vec<String>, started: Instant) {
        let node = self.node().to_string();
        self.shared
            .finish(
                &node,
                step,
                StepEnd {
                    status: Status::Failed,
                    reason: Some(reason),
                    elapsed_ms: elapsed_ms(started),
                    tail,
                    lost: false,
                    how: How::Start,
                    hold: self.shared.control.interactive,
                },
            )
            .await;
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
