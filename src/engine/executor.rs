//! Running a plan on a cluster: every node in its own task, steps in file order on a node,
//! `after` barriers across nodes, outputs handed forward, every transition journaled, events out
//! through a bounded channel.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use super::events::{Event, Facts, Failure, Status, Summary};
use super::journal::{self, Journal, Record, Replay};
use super::plan::{Plan, fingerprint};
use super::runner::{self, Launch, Line};
use super::transport::{self, Conn};
use crate::model::{Cluster, Host};

/// How many times a lost connection is re-established within one step before it counts as failed.
const RECONNECTS: usize = 3;
const LOG_TAIL: usize = 10;

#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    /// Start over even if the journal holds an unfinished install.
    pub restart: bool,
    /// Go on with the last install even if it finished (nothing is run again then).
    pub resume: bool,
}

#[derive(Debug)]
pub enum EngineError {
    /// Another kswizard holds the state directory.
    Busy(PathBuf),
    Io(PathBuf, std::io::Error),
    Journal(crate::conf::ConfError),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Busy(p) => write!(
                f,
                "{}: another kswizard is installing from this state directory; wait for it or stop it",
                p.display()
            ),
            EngineError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            EngineError::Journal(e) => write!(f, "{e}"),
        }
    }
}

pub fn journal_path(state_dir: &Path) -> PathBuf {
    state_dir.join("journal.jsonl")
}

/// The state directory: created 0700 when it does not exist; an existing one is used as it is
/// (`--state /tmp` must not change /tmp).
pub fn ensure_state_dir(dir: &Path) -> Result<(), EngineError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| EngineError::Io(dir.into(), e))
}

/// The fingerprint of what an install is made of: hosts, roles, LB and the plan's steps.
pub fn config_fingerprint(cluster: &Cluster, plan: &Plan) -> String {
    let mut parts: Vec<String> = cluster
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{} {} {} {:?}",
                h.name,
                h.connect_address(),
                h.node_ip(),
                h.roles
            )
        })
        .collect();
    parts.push(format!(
        "{:?} {:?} {} {}",
        cluster.lb.mode, cluster.lb.address, cluster.lb.port, cluster.lb.domain
    ));
    for s in &plan.steps {
        parts.push(format!(
            "{} {:?} {:?} {} {} {}",
            s.id, s.roles, s.after, s.timeout, s.become_root, s.body
        ));
    }
    fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The `KSW_*` environment of DESIGN §6 for one node.
pub fn base_env(cluster: &Cluster, host: &Host, install_id: &str) -> Vec<(String, String)> {
    let ips = |pick: fn(&crate::model::Roles) -> bool| {
        cluster
            .with_role(pick)
            .map(|h| h.node_ip().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let first_master = cluster
        .masters()
        .next()
        .map(|h| h.node_ip().to_string())
        .unwrap_or_default();
    let lb = &cluster.lb;
    let (lb_address, lb_port) = if lb.is_configured() {
        (lb.address.clone().unwrap_or_default(), lb.port.to_string())
    } else {
        (
            first_master.clone(),
            crate::model::APISERVER_PORT.to_string(),
        )
    };
    vec![
        ("KSW_INSTALL_ID".into(), install_id.into()),
        ("KSW_NODE".into(), host.name.clone()),
        ("KSW_IP".into(), host.node_ip().into()),
        ("KSW_ROLES".into(), host.roles.names().join(",")),
        ("KSW_MASTERS".into(), ips(|r| r.master)),
        ("KSW_ETCD".into(), ips(|r| r.etcd)),
        ("KSW_WORKERS".into(), ips(|r| r.worker)),
        ("KSW_FIRST_MASTER".into(), first_master),
        ("KSW_LB_ADDRESS".into(), lb_address),
        ("KSW_LB_PORT".into(), lb_port),
        ("KSW_LB_DOMAIN".into(), lb.domain.clone()),
    ]
}

fn step_fp(step: &super::plan::Step, env: &[(String, String)]) -> String {
    let env: Vec<String> = env
        .iter()
        .filter(|(k, _)| k != "KSW_INSTALL_ID")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut parts = vec![
        step.body.as_str(),
        if step.become_root { "root" } else { "user" },
    ];
    let timeout = step.timeout.to_string();
    parts.push(&timeout);
    parts.extend(env.iter().map(String::as_str));
    fingerprint(&parts)
}

/// Journal writes from every node task go through one thread, which fsyncs after each batch it
/// takes; a task never waits for the disk. Losing the newest records to a crash is safe: the
/// nodes keep each attempt's state, and a resume re-attaches to it by attempt number.
struct JournalWriter {
    tx: std::sync::mpsc::Sender<Record>,
    handle: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// Set when a write failed: the install stops starting steps (a resume could not know them).
    broken: Arc<Mutex<Option<String>>>,
}

impl JournalWriter {
    fn start(mut j: Journal, path: PathBuf) -> JournalWriter {
        let (tx, rx) = std::sync::mpsc::channel::<Record>();
        let broken = Arc::new(Mutex::new(None));
        let flag = broken.clone();
        let handle = std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                if let Err(e) = j.append_all(&batch) {
                    *flag.lock().expect("journal flag") = Some(format!("{}: {e}", path.display()));
                    return Err(e);
                }
            }
            Ok(())
        });
        JournalWriter {
            tx,
            handle: Some(handle),
            broken,
        }
    }

    fn log(&self, r: Record) {
        let _ = self.tx.send(r);
    }

    /// Why the journal cannot be written, once a write failed.
    fn broken(&self) -> Option<String> {
        self.broken.lock().expect("journal flag").clone()
    }

    /// Wait until every record logged so far is on disk; the first write error, if any.
    fn finish(&mut self) -> std::io::Result<()> {
        let (closed, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.tx, closed));
        match self.handle.take().map(|h| h.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(std::io::Error::other(
                "the journal writer stopped unexpectedly",
            )),
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Cross-node progress: how many nodes each step still has to finish on, what failed, and the
/// values steps published.
#[derive(Default)]
struct Board {
    remaining: HashMap<String, usize>,
    /// Steps that will not finish everywhere: "failed on NODE" or "was skipped on NODE".
    failed: HashMap<String, String>,
    outputs: Vec<(String, String)>,
}

struct Shared {
    board: Mutex<Board>,
    changed: Notify,
    journal: JournalWriter,
    events: mpsc::Sender<Event>,
    install_id: String,
    replay: Replay,
    failures: Mutex<Vec<Failure>>,
    counts: Mutex<Summary>,
}

impl Shared {
    async fn emit(&self, e: Event) {
        let _ = self.events.send(e).await;
    }

    /// Wait until `step` has finished on every node it targets; Err says where it did not.
    async fn barrier(&self, step: &str) -> Result<(), String> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let b = self.board.lock().expect("board lock");
                if let Some(node) = b.failed.get(step) {
                    return Err(node.clone());
                }
                if b.remaining.get(step).copied().unwrap_or(0) == 0 {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// The barrier on `step` is open now: it finished on every node it targets.
    fn passed(&self, step: &str) -> bool {
        let b = self.board.lock().expect("board lock");
        !b.failed.contains_key(step) && b.remaining.get(step).copied().unwrap_or(0) == 0
    }

    fn step_done(
        &self,
        step: &str,
        node: &str,
        status: Status,
        outputs: &BTreeMap<String, String>,
    ) {
        let mut b = self.board.lock().expect("board lock");
        if status == Status::Ok {
            if let Some(n) = b.remaining.get_mut(step) {
                *n = n.saturating_sub(1);
            }
            for (k, v) in outputs {
                b.outputs.retain(|(ek, _)| ek != k);
                b.outputs.push((k.clone(), v.clone()));
            }
        } else {
            let what = if status == Status::Failed {
                "failed"
            } else {
                "was skipped"
            };
            b.failed
                .entry(step.to_string())
                .or_insert_with(|| format!("{what} on {node}"));
        }
        drop(b);
        self.changed.notify_waiters();
    }

    /// The end of a step on a node: journaled, counted, on the board, and announced.
    async fn finish(
        &self,
        node: &str,
        step: &str,
        status: Status,
        reason: Option<String>,
        elapsed_ms: u64,
        tail: Vec<String>,
    ) {
        self.journal
            .log(end_record(node, step, status, reason.clone()));
        {
            let mut c = self.counts.lock().expect("counts lock");
            match status {
                Status::Ok => c.ok += 1,
                Status::Failed => c.failed += 1,
                Status::Skipped => c.skipped += 1,
            }
        }
        if status == Status::Failed {
            self.failures.lock().expect("failures lock").push(Failure {
                node: node.into(),
                step: step.into(),
                reason: reason.clone().unwrap_or_default(),
                log_tail: tail,
            });
        }
        if status != Status::Ok {
            self.step_done(step, node, status, &BTreeMap::new());
        }
        self.emit(Event::Finished {
            node: node.into(),
            step: step.into(),
            status,
            elapsed_ms,
            reason,
        })
        .await;
    }
}

/// Run `plan` on `cluster`. Events go to `events`; the returned summary is also the last event.
pub async fn install(
    cluster: &Cluster,
    plan: &Plan,
    opts: &Options,
    events: mpsc::Sender<Event>,
) -> Result<Summary, EngineError> {
    let started = Instant::now();
    ensure_state_dir(&opts.state_dir)?;
    let lock_path = opts.state_dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| EngineError::Io(lock_path.clone(), e))?;
    if lock.try_lock().is_err() {
        return Err(EngineError::Busy(opts.state_dir.clone()));
    }

    let jpath = journal_path(&opts.state_dir);
    let previous = if opts.restart {
        Replay::default()
    } else {
        journal::replay(&jpath).map_err(|mut e| {
            e.message
                .push_str("; `kswizard install --restart` starts over");
            EngineError::Journal(e)
        })?
    };
    let config = config_fingerprint(cluster, plan);
    let resume =
        !opts.restart && (previous.unfinished() || (opts.resume && previous.install_id.is_some()));
    let (mut journal, replay, install_id) = if resume {
        let id = previous.install_id.clone().unwrap_or_default();
        let j = Journal::open(&jpath, false).map_err(|e| EngineError::Io(jpath.clone(), e))?;
        (j, previous, id)
    } else {
        let id = new_install_id();
        let mut j = Journal::open(&jpath, true).map_err(|e| EngineError::Io(jpath.clone(), e))?;
        j.append(&Record::Begin {
            install_id: id.clone(),
            config: config.clone(),
            // A file's path as an absolute one, so `status` finds it from anywhere; the
            // bundled plan by its name.
            plan: if plan.file.exists() {
                std::path::absolute(&plan.file).unwrap_or_else(|_| plan.file.clone())
            } else {
                plan.file.clone()
            }
            .display()
            .to_string(),
            ts: journal::now(),
        })
        .map_err(|e| EngineError::Io(jpath.clone(), e))?;
        (j, Replay::default(), id)
    };
    if resume && replay.config.as_deref() != Some(&config) {
        // Later resumes and `status` compare against what runs now.
        journal
            .append(&Record::Reconfigured {
                config: config.clone(),
                ts: journal::now(),
            })
            .map_err(|e| EngineError::Io(jpath.clone(), e))?;
    }

    let node_plans = plan.expand(cluster);
    let envs: Vec<Vec<(String, String)>> = cluster
        .hosts
        .iter()
        .map(|h| base_env(cluster, h, &install_id))
        .collect();
    let mut board = Board::default();
    let mut done = Vec::new();
    let mut changed = Vec::new();
    for (np, env) in node_plans.iter().zip(&envs) {
        for sid in &np.steps {
            let step = plan.step(sid).expect("expanded from the plan");
            let key = (np.node.clone(), sid.clone());
            let same = replay
                .steps
                .get(&key)
                .is_some_and(|s| s.fp == step_fp(step, env));
            // A step whose secret outputs stayed on its node runs again as the same attempt: the
            // node reports it done and hands the values back, without running it.
            let recall = replay.redacted.contains(&key);
            if replay.is_done(&np.node, sid) && same && !recall {
                done.push(key);
            } else {
                if replay.is_done(&np.node, sid) && !same {
                    changed.push(key);
                }
                *board.remaining.entry(sid.clone()).or_default() += 1;
            }
        }
    }
    board.outputs = replay.outputs.clone();
    let shared = Arc::new(Shared {
        board: Mutex::new(board),
        changed: Notify::new(),
        journal: JournalWriter::start(journal, jpath.clone()),
        events,
        install_id: install_id.clone(),
        replay,
        failures: Mutex::new(Vec::new()),
        counts: Mutex::new(Summary {
            already_done: done.len(),
            ..Summary::default()
        }),
    });
    shared
        .emit(Event::Plan {
            install_id: install_id.clone(),
            nodes: node_plans.clone(),
            done: done.clone(),
            changed,
        })
        .await;

    let ctl = transport::control_dir().map_err(|e| EngineError::Io("/tmp".into(), e))?;
    let known_hosts = opts.state_dir.join("known_hosts");
    let done: HashSet<(String, String)> = done.into_iter().collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut by_task = HashMap::new();
    for (i, (np, env)) in node_plans.into_iter().zip(envs).enumerate() {
        let host = cluster.hosts[i].clone();
        let plan = plan.clone();
        let shared = shared.clone();
        let known_hosts = known_hosts.clone();
        let ctl_dir = ctl.path().to_path_buf();
        let todo: Vec<String> = np
            .steps
            .iter()
            .filter(|s| !done.contains(&(np.node.clone(), (*s).clone())))
            .cloned()
            .collect();
        let node_steps = (np.node.clone(), todo.clone());
        let id = tasks
            .spawn(async move {
                let run = NodeRun {
                    host: &host,
                    plan: &plan,
                    shared: &shared,
                    known_hosts: &known_hosts,
                    ctl_dir: &ctl_dir,
                    n: i,
                    conn: None,
                    conns: 0,
                    facts_pending: false,
                    env,
                    attempts: HashMap::new(),
                };
                run.run(&todo).await;
            })
            .id();
        by_task.insert(id, node_steps);
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        // A node task that panicked (a bug) must not leave other nodes waiting at its barriers.
        if let Err(e) = joined {
            let (node, steps) = &by_task[&e.id()];
            let reason = format!(
                "kswizard stopped working on this node (a bug: {e}); the other nodes went on"
            );
            shared
                .failures
                .lock()
                .expect("failures lock")
                .push(Failure {
                    node: node.clone(),
                    step: steps.first().cloned().unwrap_or_default(),
                    reason,
                    log_tail: Vec::new(),
                });
            shared.counts.lock().expect("counts lock").failed += 1;
            for s in steps {
                shared.step_done(s, node, Status::Failed, &BTreeMap::new());
            }
        }
    }

    let mut summary = shared.counts.lock().expect("counts lock").clone();
    summary.failures = shared.failures.lock().expect("failures lock").clone();
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    shared.journal.log(Record::Complete { ts: journal::now() });
    shared.emit(Event::Summary(summary.clone())).await;
    drop(ctl);
    if let Ok(mut s) = Arc::try_unwrap(shared) {
        s.journal
            .finish()
            .map_err(|e| EngineError::Io(jpath.clone(), e))?;
    }
    drop(lock);
    Ok(summary)
}

fn new_install_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:04x}",
        t.as_secs(),
        (t.subsec_nanos() ^ std::process::id()) & 0xffff
    )
}

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
struct NodeRun<'a> {
    host: &'a Host,
    plan: &'a Plan,
    shared: &'a Shared,
    known_hosts: &'a Path,
    ctl_dir: &'a Path,
    /// Distinguishes this node's control sockets from the others'.
    n: usize,
    conn: Option<Conn>,
    /// Connections made so far (each gets its own control socket).
    conns: usize,
    /// The node's facts are still to come, with the next batch.
    facts_pending: bool,
    env: Vec<(String, String)>,
    /// The attempt each step is at, and the retries it has left.
    attempts: HashMap<String, (u32, u32)>,
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
            if s.become_root != first.become_root || !s.after.iter().all(|a| self.shared.passed(a))
            {
                break;
            }
            j += 1;
        }
        j
    }

    async fn run(mut self, todo: &[String]) {
        let node = self.node().to_string();
        if let Err(e) = self.connect().await {
            return fail_rest(self.shared, &node, todo, e.to_string()).await;
        }
        // Facts ride along with the first batch, unless that has to wait at a barrier (or there is
        // none): then they go first on their own, so a node that cannot be used says so at once.
        let first_waits = todo.first().is_none_or(|sid| {
            let s = self.plan.step(sid).expect("from the plan");
            !s.become_root || !s.after.iter().all(|a| self.shared.passed(a))
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
            let step = self.plan.step(&todo[i]).expect("from the plan");
            for a in &step.after {
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
        let mut env_now = self.env.clone();
        env_now.extend(
            self.shared
                .board
                .lock()
                .expect("board lock")
                .outputs
                .clone(),
        );
        let mut ok = 0;
        let mut reconnects = 0;
        loop {
            let rest = &steps[ok..];
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
                return (ok, self.end_step(StepRun::new(&rest[0]), Err(reason)).await);
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
                        let Some(c) = current.as_mut() else { continue };
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
                                    self.end_step(done, Ok(())).await
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
                                ended = Some(self.end_step(done, Err(why)).await);
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
                        Ok((code, err)) if !heard && code != 0 => {
                            let reason = if become_root {
                                sudo_refused(self.host, conn, &err)
                            } else {
                                conn.redact(&format!(
                                    "{node}: the runner could not start: {}",
                                    err.trim()
                                ))
                            };
                            return (
                                ok,
                                self.end_step(StepRun::new(&steps[ok]), Err(reason)).await,
                            );
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
                return (
                    ok,
                    self.end_step(StepRun::new(&steps[ok]), Err(reason)).await,
                );
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
    async fn end_step(&self, run: StepRun, lost: Result<(), String>) -> BatchEnd {
        let node = self.node().to_string();
        let step = self.plan.step(&run.step).expect("from the plan");
        // A lost node may still be running the attempt: never start another beside it.
        let retryable = lost.is_ok();
        let reason = match (lost, run.rc) {
            (Err(why), _) => Some(why),
            (Ok(()), Some(0)) => None,
            (Ok(()), Some(124)) => Some(format!("timed out after {} s", step.timeout)),
            (Ok(()), Some(rc)) => Some(format!("exit code {rc}")),
            (Ok(()), None) => Some("the step ended without an exit code".to_string()),
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
                .finish(&node, &run.step, Status::Ok, None, elapsed_ms, Vec::new())
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
                    Status::Failed,
                    Some(reason.clone()),
                    elapsed_ms,
                    run.tail,
                )
                .await;
        }
        BatchEnd::Failed { retry }
    }
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
            self.push_log(&format!(
                "kswizard: ignored output '{k}': expected an upper-case name not starting with KSW_"
            ));
        }
    }
}

fn end_record(node: &str, step: &str, status: Status, reason: Option<String>) -> Record {
    Record::End {
        node: node.into(),
        step: step.into(),
        status,
        reason,
        ts: journal::now(),
    }
}

/// The node could not be reached: its first step fails with the reason, the rest are skipped.
async fn fail_rest(shared: &Shared, node: &str, steps: &[String], reason: String) {
    if let Some((first, rest)) = steps.split_first() {
        shared
            .finish(node, first, Status::Failed, Some(reason), 0, Vec::new())
            .await;
        skip_rest(shared, node, rest, "the node could not be reached").await;
    }
}

async fn skip_rest(shared: &Shared, node: &str, steps: &[String], reason: &str) {
    for s in steps {
        shared
            .finish(node, s, Status::Skipped, Some(reason.into()), 0, Vec::new())
            .await;
    }
}
