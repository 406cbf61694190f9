//! One node's part of an install: connect, gather facts, run its steps in batches, re-attach
//! through lost connections, and report every transition to the shared board and journal.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use super::events::{Event, Facts, Status};
use super::executor::step_fp;
use super::journal::{self, Record};
use super::plan::Plan;
use super::runner::{self, Launch, Line};
use super::shared::{Shared, StepEnd, end_record, fail_rest, skip_rest};
use super::transport::{self, Conn};
use crate::model::Host;

/// How many times a lost connection is re-established within one step before it counts as failed.
const RECONNECTS: usize = 3;
const LOG_TAIL: usize = 10;

/// Facts from the runner's `KSW-FACT` lines, and the uid commands ran as.
#[derive(Default)]
struct FactLines {
    facts: Facts,
    uid: Option<u32>,
    seen: bool,
}

impl FactLines {
    fn take(&mut self, k: &str, v: &str) {
        self.seen = true;
        match k {
            "os" => self.facts.os = v.to_string(),
            "cpus" => self.facts.cpus = v.trim().parse().unwrap_or(0),
            "mem" => self.facts.memory_mb = v.trim().parse().unwrap_or(0),
            "disk" => self.facts.disk_free_mb = v.trim().parse().unwrap_or(0),
            "uid" => self.uid = v.trim().parse().ok(),
            _ => {}
        }
    }
}

/// Why a command that should have run as root did not start: sudo's complaint, made plain.
fn sudo_refused(host: &Host, conn: &Conn, stderr: &str) -> String {
    let err = conn.redact(stderr.trim());
    let why = if err.contains("incorrect password") || err.contains("Sorry, try again") {
        "the sudo password (ansible_become_pass) is wrong"
    } else if err.contains("password is required") {
        "sudo asks for a password: set ansible_become_pass for this host"
    } else {
        "commands cannot become root with sudo"
    };
    format!(
        "{}: {why} ({})",
        host.name,
        err.lines().last().unwrap_or("")
    )
}

/// Connect to `host`, gather its facts as root and disconnect: the Hosts screen's SSH test.
/// Host keys are pinned in `known_hosts` as for an install.
pub async fn probe(host: &Host, known_hosts: &Path) -> Result<Facts, String> {
    let ctl = transport::control_dir().map_err(|e| format!("control directory: {e}"))?;
    let conn = transport::connect(host, known_hosts, ctl.path(), 0)
        .await
        .map_err(|e| e.to_string())?;
    let facts = check_facts(host, &conn).await;
    conn.close().await;
    facts
}

/// Gather the node's facts as root, which proves sudo works; the reason when not.
async fn check_facts(host: &Host, conn: &Conn) -> Result<Facts, String> {
    match conn.run(runner::FACTS, true).await {
        Ok((0, out, _)) => {
            let mut f = FactLines::default();
            for l in out.lines() {
                if let Line::Fact(k, v) = runner::parse_line(l) {
                    f.take(&k, &v);
                }
            }
            match f.uid {
                Some(0) => Ok(f.facts),
                _ => Err(format!(
                    "{}: commands do not run as root through sudo",
                    host.name
                )),
            }
        }
        Ok((_, _, err)) => Err(sudo_refused(host, conn, &err)),
        Err(l) => Err(format!(
            "{}: connection lost while gathering facts: {}",
            host.name, l.0
        )),
    }
}

/// One node's share of the install: its connection and where it stands.
pub(super) struct NodeRun<'a> {
    pub(super) host: &'a Host,
    pub(super) plan: &'a Plan,
    pub(super) shared: &'a Shared,
    pub(super) known_hosts: &'a Path,
    pub(super) ctl_dir: &'a Path,
    /// Distinguishes this node's control sockets from the others'.
    pub(super) n: usize,
    pub(super) conn: Option<Conn>,
    /// Connections made so far (each gets its own control socket).
    pub(super) conns: usize,
    /// The node's facts are still to come, with the next batch.
    pub(super) facts_pending: bool,
    pub(super) env: Vec<(String, String)>,
    /// The attempt each step is at, and the retries it has left.
    pub(super) attempts: HashMap<String, (u32, u32)>,
}

/// How a batch ended.
enum BatchEnd {
    /// Every step of the batch succeeded.
    AllOk,
    /// A step failed (its attempt is recorded); `retry` when it gets another attempt.
    Failed { retry: bool },
}

impl NodeRun<'_> {
    fn node(&self) -> &str {
        &self.host.name
    }

    async fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close().await;
        }
    }

    /// Consecutive steps from `todo[i]` that can go to the node in one command: same `become`,
    /// and every barrier of the later ones already passed.
    fn batch_end(&self, todo: &[String], i: usize) -> usize {
        let first = self.plan.step(&todo[i]).expect("from the plan");
        let mut j = i + 1;
        while j < todo.len() {
            let s = self.plan.step(&todo[j]).expect("from the plan");
            if s.become_root != first.become_root
                || !self
                    .waits_for(&todo[j])
                    .iter()
                    .all(|a| self.shared.passed(a))
            {
                break;
            }
            j += 1;
        }
        j
    }

    /// The barriers before step `sid`: its `after`, and every step above it in the plan whose
    /// secret outputs are being read back from a node (any later step may need them).
    fn waits_for(&self, sid: &str) -> Vec<String> {
        let step = self.plan.step(sid).expect("from the plan");
        let at = self
            .plan
            .steps
            .iter()
            .position(|s| s.id == sid)
            .unwrap_or(0);
        let recalled = self.plan.steps[..at]
            .iter()
            .filter(|s| self.shared.recalled.contains(&s.id) && !step.after.contains(&s.id))
            .map(|s| s.id.clone());
        step.after.iter().cloned().chain(recalled).collect()
    }

    pub(super) async fn run(mut self, todo: &[String]) {
        let node = self.node().to_string();
        if let Err(e) = self.connect().await {
            return fail_rest(self.shared, &node, todo, e.to_string()).await;
        }
        // Facts ride along with the first batch, unless that has to wait at a barrier (or there is
        // none): then they go first on their own, so a node that cannot be used says so at once.
        let first_waits = todo.first().is_none_or(|sid| {
            let s = self.plan.step(sid).expect("from the plan");
            !s.become_root || !self.waits_for(sid).iter().all(|a| self.shared.passed(a))
        });
        self.facts_pending = !first_waits;
        if first_waits {
            match check_facts(self.host, self.conn.as_ref().expect("connected")).await {
                Ok(facts) => {
                    self.shared
                        .emit(Event::Facts {
                            node: node.clone(),
                            facts,
                        })
                        .await
                }
                Err(reason) => {
                    self.close().await;
                    return fail_rest(self.shared, &node, todo, reason).await;
                }
            }
        }
        for sid in todo {
            let prev = self.shared.replay.steps.get(&(node.clone(), sid.clone()));
            let step = self.plan.step(sid).expect("from the plan");
            let recall = self
                .shared
                .replay
                .redacted
                .contains(&(node.clone(), sid.clone()));
            let attempt = match prev {
                // Changed since: a new attempt, whatever the old one did.
                Some(p) if p.fp != step_fp(step, &self.env) => p.attempt + 1,
                // Left running or unrecorded, or done with its secrets on the node: the same
                // attempt, which the node re-attaches to or reports, without running it again.
                Some(p) if p.status.is_none() || (recall && p.status == Some(Status::Ok)) => {
                    p.attempt.max(1)
                }
                Some(p) => p.attempt + 1,
                None => 1,
            };
            let retries = step.retries;
            self.attempts.insert(sid.clone(), (attempt, retries));
        }
        let mut i = 0;
        while i < todo.len() {
            if let Some(e) = self.shared.journal.broken() {
                let reason = format!(
                    "the journal cannot be written ({e}); no step starts that a resume could not account for"
                );
                skip_rest(self.shared, &node, &todo[i..], &reason).await;
                return self.close().await;
            }
            for a in &self.waits_for(&todo[i]) {
                if let Err(on) = self.shared.barrier(a).await {
                    let reason = format!("waits for step '{a}', which {on}");
                    skip_rest(self.shared, &node, &todo[i..], &reason).await;
                    return self.close().await;
                }
            }
            let j = self.batch_end(todo, i);
            let (done, end) = self.run_batch(&todo[i..j]).await;
            i += done;
            if let BatchEnd::Failed { retry } = end {
                let sid = &todo[i];
                let (attempt, left) = self.attempts[sid];
                if !retry {
                    let reason = format!("step '{sid}' failed on this node");
                    skip_rest(self.shared, &node, &todo[i + 1..], &reason).await;
                    return self.close().await;
                }
                self.attempts.insert(sid.clone(), (attempt + 1, left - 1));
                // Back off a little longer each time: 1 s, 2 s, 3 s ...
                let retries = self.plan.step(sid).expect("from the plan").retries;
                tokio::time::sleep(Duration::from_secs(u64::from(retries - left + 1))).await;
            }
        }
        self.close().await;
    }

    /// Connect (again) to the node; every connection gets control paths of its own.
    async fn connect(&mut self) -> Result<(), transport::ConnectError> {
        self.conns += 1;
        let id = self.n * 1000 + self.conns;
        let c = transport::connect(self.host, self.known_hosts, self.ctl_dir, id).await?;
        self.conn = Some(c);
        Ok(())
    }

    /// Run `steps` as one command on the node, re-attaching through lost connections. Returns
    /// how many steps succeeded, and how the batch ended.
    async fn run_batch(&mut self, steps: &[String]) -> (usize, BatchEnd) {
        let node = self.node().to_string();
        let mut ok = 0;
        let mut reconnects = 0;
        loop {
            let rest = &steps[ok..];
            // Taken anew on every try: steps that ended before a reconnect published values too.
            let mut env_now = self.env.clone();
            env_now.extend(
                self.shared
                    .board
                    .lock()
                    .expect("board lock")
                    .outputs
                    .clone(),
            );
            let script = {
                let launches: Vec<Launch> = rest
                    .iter()
                    .map(|sid| {
                        let s = self.plan.step(sid).expect("from the plan");
                        Launch {
                            step: &s.id,
                            attempt: self.attempts[sid].0,
                            timeout: s.timeout,
                            body: &s.body,
                            env: &env_now,
                        }
                    })
                    .collect();
                runner::launcher(&self.shared.install_id, &launches, self.facts_pending)
            };
            let become_root = self.plan.step(&rest[0]).expect("from the plan").become_root;
            if self.conn.is_none()
                && let Err(e) = self.connect().await
            {
                let reason = format!(
                    "lost contact with {node} during step '{}' and could not reconnect; the step may still be running there, and `kswizard install --resume` re-attaches to it ({e})",
                    rest[0]
                );
                return (
                    ok,
                    self.end_step(StepRun::new(&rest[0]), Ending::Lost(reason))
                        .await,
                );
            }
            let conn = self.conn.as_ref().expect("connected above");
            // The step the node reports on; its lines only count once the node said it began.
            let mut current: Option<StepRun> = None;
            let mut facts = FactLines::default();
            // Whether the node said anything: a runner that fails silently never started.
            let mut heard = false;
            let lost = match conn.exec(&script, become_root).await {
                Ok(mut running) => {
                    let mut ended: Option<BatchEnd> = None;
                    while let Some(line) = running.next_line().await {
                        heard = true;
                        if let Line::Fact(k, v) = runner::parse_line(&line) {
                            facts.take(&k, &v);
                            continue;
                        }
                        if facts.seen && self.facts_pending {
                            self.facts_pending = false;
                            let f = std::mem::take(&mut facts.facts);
                            self.shared
                                .emit(Event::Facts {
                                    node: node.clone(),
                                    facts: f,
                                })
                                .await;
                        }
                        let line = match runner::parse_line(&line) {
                            // Only the step expected next may begin; anything else is a log line.
                            runner::Line::Begin(sid)
                                if current.is_none() && steps.get(ok) == Some(&sid) =>
                            {
                                current = Some(self.begin(&sid).await);
                                continue;
                            }
                            runner::Line::Begin(_) => runner::Line::Log(line),
                            other => other,
                        };
                        let Some(c) = current.as_mut() else {
                            // The runner could not set the batch up: the next step fails with why.
                            if let Line::Failed(why) = line {
                                let run = StepRun::new(&steps[ok]);
                                ended = Some(self.end_step(run, Ending::NodeSaid(why)).await);
                                break;
                            }
                            continue;
                        };
                        match line {
                            Line::Log(l) => {
                                c.push_log(&l);
                                let step = c.step.clone();
                                self.shared
                                    .emit(Event::Output {
                                        node: node.clone(),
                                        step,
                                        line: l,
                                    })
                                    .await;
                            }
                            Line::Output(k, v) => c.output(k, v),
                            Line::Exit(rc) => {
                                let mut done = current.take().expect("a step is current");
                                done.rc = Some(rc);
                                if let BatchEnd::Failed { retry } =
                                    self.end_step(done, Ending::Exit).await
                                {
                                    ended = Some(BatchEnd::Failed { retry });
                                    break;
                                }
                                ok += 1;
                            }
                            // The node says why the step has no exit code: that is the step's end.
                            Line::Vanished(why) | Line::Failed(why) => {
                                let done = current.take().expect("a step is current");
                                let why = conn.redact(&why);
                                ended = Some(self.end_step(done, Ending::NodeSaid(why)).await);
                                break;
                            }
                            Line::Begin(_)
                            | Line::Attached
                            | Line::AlreadyDone
                            | Line::Fact(..) => {}
                        }
                    }
                    if let Some(end) = ended {
                        return (ok, end);
                    }
                    if ok == steps.len() {
                        let _ = running.finish().await;
                        return (ok, BatchEnd::AllOk);
                    }
                    match running.finish().await {
                        // The shell never ran (sudo refused, no sh): no reconnect helps.
                        // 255 is ssh's own code: the connection, not the shell, failed.
                        Ok((code, err)) if !heard && code != 0 && code != 255 => {
                            let reason = if become_root {
                                sudo_refused(self.host, conn, &err)
                            } else {
                                conn.redact(&format!(
                                    "{node}: the runner could not start: {}",
                                    err.trim()
                                ))
                            };
                            let run = StepRun::new(&steps[ok]);
                            return (ok, self.end_step(run, Ending::NodeSaid(reason)).await);
                        }
                        Ok((code, err)) => Some(conn.redact(&format!(
                            "the runner ended with code {code} before the step did: {}",
                            err.trim().lines().last().unwrap_or("")
                        ))),
                        Err(l) => Some(l.0),
                    }
                }
                Err(l) => Some(l.0),
            };
            let why = lost.unwrap_or_default();
            if reconnects >= RECONNECTS {
                let reason = format!(
                    "lost contact with {node} during step '{}': {why}",
                    steps[ok]
                );
                let run = StepRun::new(&steps[ok]);
                return (ok, self.end_step(run, Ending::Lost(reason)).await);
            }
            reconnects += 1;
            self.close().await;
            tokio::time::sleep(Duration::from_millis(500 << reconnects)).await;
        }
    }

    /// A step of the batch begins on the node: journaled and announced.
    async fn begin(&self, sid: &str) -> StepRun {
        let node = self.node().to_string();
        let step = self.plan.step(sid).expect("from the plan");
        let attempt = self.attempts[sid].0;
        self.shared.journal.log(Record::Start {
            node: node.clone(),
            step: sid.to_string(),
            attempt,
            fp: step_fp(step, &self.env),
            ts: journal::now(),
        });
        let reattached = self
            .shared
            .replay
            .steps
            .get(&(node.clone(), sid.to_string()))
            .is_some_and(|p| p.attempt == attempt);
        self.shared
            .emit(Event::Started {
                node,
                step: sid.to_string(),
                attempt,
                reattached,
            })
            .await;
        StepRun::new(sid)
    }

    /// A step ended: its exit code (or why it has none) decides ok, retry or failure.
    async fn end_step(&self, run: StepRun, ending: Ending) -> BatchEnd {
        let node = self.node().to_string();
        let step = self.plan.step(&run.step).expect("from the plan");
        // Only a step that ended with an exit code gets another attempt: a lost node may still be
        // running this one, and one the node could not start would fail the same way again.
        let retryable = matches!(ending, Ending::Exit);
        let lost = matches!(ending, Ending::Lost(_));
        let reason = match (ending, run.rc) {
            (Ending::Lost(why) | Ending::NodeSaid(why), _) => Some(why),
            (Ending::Exit, Some(0)) => None,
            (Ending::Exit, Some(124)) => Some(format!("timed out after {} s", step.timeout)),
            (Ending::Exit, Some(rc)) => Some(format!("exit code {rc}")),
            (Ending::Exit, None) => Some("the step ended without an exit code".to_string()),
        };
        let elapsed_ms = run.started.elapsed().as_millis() as u64;
        let Some(reason) = reason else {
            if !run.outputs.is_empty() {
                let (redacted, values): (Vec<_>, Vec<_>) = run
                    .outputs
                    .iter()
                    .partition(|(k, _)| runner::is_secret_name(k));
                self.shared.journal.log(Record::Outputs {
                    node: node.clone(),
                    step: run.step.clone(),
                    values: values
                        .into_iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    redacted: redacted.into_iter().map(|(k, _)| k.clone()).collect(),
                });
            }
            self.shared
                .step_done(&run.step, &node, Status::Ok, &run.outputs);
            self.shared
                .finish(
                    &node,
                    &run.step,
                    StepEnd {
                        status: Status::Ok,
                        reason: None,
                        elapsed_ms,
                        tail: Vec::new(),
                        lost: false,
                    },
                )
                .await;
            return BatchEnd::AllOk;
        };
        let (attempt, left) = self.attempts[&run.step];
        let retry = left > 0 && retryable;
        if retry {
            // Not the end of the step: record the attempt, say so in its log; the caller retries.
            self.shared.journal.log(end_record(
                &node,
                &run.step,
                Status::Failed,
                Some(reason.clone()),
                false,
            ));
            let line = format!("kswizard: attempt {attempt} failed ({reason}); trying again");
            self.shared
                .emit(Event::Output {
                    node,
                    step: run.step,
                    line,
                })
                .await;
        } else {
            self.shared
                .finish(
                    &node,
                    &run.step,
                    StepEnd {
                        status: Status::Failed,
                        reason: Some(reason.clone()),
                        elapsed_ms,
                        tail: run.tail,
                        lost,
                    },
                )
                .await;
        }
        BatchEnd::Failed { retry }
    }
}

/// How a step's run on the node ended.
enum Ending {
    /// With an exit code (in the `StepRun`).
    Exit,
    /// The node said why it has none (the step vanished, the runner could not start it).
    NodeSaid(String),
    /// Contact was lost: the step may still be running there; a resume re-attaches to it.
    Lost(String),
}

/// A step in progress on the node, as the runner's output tells it.
struct StepRun {
    step: String,
    started: Instant,
    rc: Option<i32>,
    outputs: BTreeMap<String, String>,
    tail: Vec<String>,
}

impl StepRun {
    fn new(step: &str) -> StepRun {
        StepRun {
            step: step.to_string(),
            started: Instant::now(),
            rc: None,
            outputs: BTreeMap::new(),
            tail: Vec::new(),
        }
    }

    fn push_log(&mut self, line: &str) {
        if self.tail.len() == LOG_TAIL {
            self.tail.remove(0);
        }
        self.tail.push(line.to_string());
    }

    fn output(&mut self, k: String, v: String) {
        if runner::is_env_name(&k) && !k.starts_with("KSW_") {
            self.outputs.insert(k, v);
        } else {
            // Not echoed: a mangled line of a secret value must not reach the log.
            self.push_log(
                "kswizard: ignored a line of $KSW_OUTPUT: expected NAME=value, NAME in upper case and not starting with KSW_",
            );
        }
    }
}
