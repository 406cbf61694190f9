//! What every node's task of an install shares: the board (cross-node progress and published
//! values), the journal writer, the event channel and the summary being built.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};

use super::control::{Control, Decision, Waiting};
use super::events::{Event, Failure, Status, Summary};
use super::journal::{self, Journal, Record};
use super::runner::How;

/// Journal writes from every node task go through one thread, which fsyncs after each batch it
/// takes; a task never waits for the disk. Losing the newest records to a crash is safe: the
/// nodes keep each attempt's state, and a resume re-attaches to it by attempt number.
pub(super) struct JournalWriter {
    tx: std::sync::mpsc::Sender<Record>,
    handle: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// Set when a write failed: the install stops starting steps (a resume could not know them).
    broken: Arc<Mutex<Option<String>>>,
}

impl JournalWriter {
    pub(super) fn start(mut j: Journal, path: PathBuf) -> JournalWriter {
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

    pub(super) fn log(&self, r: Record) {
        let _ = self.tx.send(r);
    }

    /// Why the journal cannot be written, once a write failed.
    pub(super) fn broken(&self) -> Option<String> {
        self.broken.lock().expect("journal flag").clone()
    }

    /// Wait until every record logged so far is on disk; the first write error, if any.
    pub(super) fn finish(&mut self) -> std::io::Result<()> {
        let (closed, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.tx, closed));
        match self.handle.take().map(std::thread::JoinHandle::join) {
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

/// How a step ended on a node, for `Shared::finish`.
pub(super) struct StepEnd {
    pub(super) status: Status,
    pub(super) reason: Option<String>,
    pub(super) elapsed_ms: u64,
    /// The last lines of its log.
    pub(super) tail: Vec<String>,
    /// Contact was lost: a resume treats the step as still running on the node.
    pub(super) lost: bool,
    /// How the node took it: an ok step that an earlier run started or finished is not counted
    /// as run by this one.
    pub(super) how: How,
    /// Leave the board as it is: the node waits for the operator's decision, which then tells
    /// the board (`Shared::decide`), so steps waiting at its barrier wait too.
    pub(super) hold: bool,
}

impl StepEnd {
    /// An end without timing or log: a step that failed before it ran, or was skipped.
    pub(super) fn plain(status: Status, reason: impl Into<String>) -> StepEnd {
        StepEnd {
            status,
            reason: Some(reason.into()),
            elapsed_ms: 0,
            tail: Vec::new(),
            lost: false,
            how: How::Start,
            hold: false,
        }
    }
}

/// Cross-node progress: how many nodes each step still has to finish on, what failed, and the
/// values steps published.
#[derive(Default)]
pub(super) struct Board {
    pub(super) remaining: HashMap<String, usize>,
    /// Steps that will not finish everywhere: "failed on NODE" or "was skipped on NODE".
    pub(super) failed: HashMap<String, String>,
    pub(super) outputs: BTreeMap<String, String>,
}

/// Text that is never shown: what any log line, reason or tail goes through before it reaches an
/// event, the screen or the journal.
#[derive(Default)]
pub(super) struct Secrets(Mutex<Vec<String>>);

impl Secrets {
    /// `text` with every secret replaced by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let secrets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
    }

    /// Values that must never be shown from now on.
    pub(super) fn add(&self, values: impl IntoIterator<Item = String>) {
        let mut secrets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for v in values {
            // Shorter ones would hide ordinary text, and are no real secret.
            if v.len() >= 4 && !secrets.contains(&v) {
                secrets.push(v);
            }
        }
        // Longest first: a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

impl Board {
    pub(super) fn passed(&self, step: &str) -> bool {
        !self.failed.contains_key(step) && self.remaining.get(step).copied().unwrap_or(0) == 0
    }

    /// `step` will not finish on `node` (`what`: "failed", "was skipped"): its barrier never opens.
    pub(super) fn fail(&mut self, step: &str, node: &str, what: &str) {
        self.failed
            .entry(step.to_string())
            .or_insert_with(|| format!("{what} on {node}"));
    }

    /// The operator chose to go on without `step` on one node: its barrier counts it as finished.
    pub(super) fn skip_chosen(&mut self, step: &str) {
        if let Some(n) = self.remaining.get_mut(step) {
            *n = n.saturating_sub(1);
        }
    }
}

pub(super) struct Shared {
    pub(super) board: Mutex<Board>,
    pub(super) changed: Notify,
    pub(super) journal: JournalWriter,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) install_id: String,
    /// Where steps live on the nodes (`runner::STATE_ROOT`, a temp dir in tests).
    pub(super) state_root: String,
    /// Steps this install runs or reads back: a step needing their values waits for them.
    pub(super) scheduled: std::collections::HashSet<String>,
    /// Text never shown: every host's passwords and the secret values steps published.
    pub(super) secrets: Secrets,
    /// The operator's decisions about failed nodes.
    pub(super) control: Control,
    pub(super) failures: Mutex<Vec<Failure>>,
    /// (node, step) pairs this run ended, whatever the status.
    pub(super) ended: Mutex<std::collections::HashSet<(String, String)>>,
    pub(super) counts: Mutex<Summary>,
    /// The bundle the plan's `deliver` steps copy, verified before the install began.
    pub(super) bundle: Option<super::deliver::Bundle>,
    /// Every step's whole log on the taskbox.
    pub(super) step_logs: super::step_logs::StepLogs,
    /// A turn for each `serial` step: the node running it holds the step's lock.
    pub(super) turns: HashMap<String, tokio::sync::Mutex<()>>,
}

impl Shared {
    /// Send an event. Every text in it that a step or ssh wrote goes through `secrets` here, the
    /// one place: no caller has to remember.
    pub(super) async fn emit(&self, e: Event) {
        let e = match e {
            Event::Output { node, step, line } => Event::Output {
                node,
                step,
                line: self.secrets.scrub(&line),
            },
            other => other,
        };
        self.step_logs.take(&e);
        let _ = self.events.send(e).await;
    }

    /// Wait until `step` has finished on every node it targets; Err says where it did not.
    pub(super) async fn barrier(&self, step: &str) -> Result<(), String> {
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
    pub(super) fn passed(&self, step: &str) -> bool {
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .passed(step)
    }

    pub(super) fn step_done(
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
                b.outputs.insert(k.clone(), v.clone());
            }
        } else {
            let what = if status == Status::Failed {
                "failed"
            } else {
                "was skipped"
            };
            b.fail(step, node, what);
        }
        drop(b);
        self.changed.notify_waiters();
    }

    /// The end of a step on a node: journaled, counted, on the board, and announced.
    pub(super) async fn finish(&self, node: &str, step: &str, end: StepEnd) {
        let StepEnd {
            status,
            reason,
            elapsed_ms,
            tail,
            lost,
            how,
            hold,
        } = end;
        // Reasons carry ssh's and sudo's words, tails a step's lines: neither reaches the journal,
        // an event or the summary with a secret in it.
        let reason = reason.map(|r| self.secrets.scrub(&r));
        let tail: Vec<String> = tail.iter().map(|l| self.secrets.scrub(l)).collect();
        self.journal
            .log(end_record(node, step, status, reason.clone(), lost));
        self.ended
            .lock()
            .expect("ended lock")
            .insert((node.to_string(), step.to_string()));
        {
            let mut c = self.counts.lock().expect("counts lock");
            match (status, how) {
                (Status::Ok, How::Start) => c.ok += 1,
                (Status::Ok, How::Attach) => c.reattached += 1,
                (Status::Ok, How::Done) => c.already_done += 1,
                (Status::Failed, _) => c.failed += 1,
                (Status::Skipped, _) => c.skipped += 1,
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
        if status != Status::Ok && !hold {
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

impl Shared {
    /// `step` failed on `node` (held: see `StepEnd::hold`): wait for the operator's decision,
    /// journal it and tell the board. A retry takes the failure back (the step runs again); a
    /// skip ends the step as skipped and opens its barrier; an abort, or no operator, lets the
    /// steps waiting for it skip.
    pub(super) async fn decide(&self, node: &str, step: &str, skippable: bool) -> Decision {
        if !self.control.interactive {
            return Decision::Stop;
        }
        let w = Waiting {
            step: step.into(),
            skippable,
        };
        self.control.stopped(node, w);
        self.emit(Event::Awaiting {
            node: node.into(),
            step: step.into(),
            skippable,
        })
        .await;
        let d = self.control.wait(node).await;
        self.journal.log(Record::Decision {
            node: node.into(),
            step: step.into(),
            decision: d.word().into(),
            ts: journal::now(),
        });
        if matches!(d, Decision::Retry | Decision::Skip) {
            self.failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|f| f.node != node || f.step != step);
            let mut c = self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.failed = c.failed.saturating_sub(1);
        }
        match d {
            Decision::Retry => {}
            Decision::Skip => {
                let end = StepEnd {
                    hold: true,
                    ..StepEnd::plain(Status::Skipped, "skipped by the operator")
                };
                self.finish(node, step, end).await;
                self.counts.lock().expect("counts lock").skipped_by_operator += 1;
                self.board.lock().expect("board lock").skip_chosen(step);
                self.changed.notify_waiters();
            }
            Decision::Abort | Decision::Stop => {
                self.board
                    .lock()
                    .expect("board lock")
                    .fail(step, node, "failed");
                self.changed.notify_waiters();
            }
        }
        d
    }
}

/// `lost`: kswizard lost contact during the step; a resume treats it as still running there.
pub(super) fn end_record(
    node: &str,
    step: &str,
    status: Status,
    reason: Option<String>,
    lost: bool,
) -> Record {
    Record::End {
        node: node.into(),
        step: step.into(),
        status,
        reason,
        lost,
        ts: journal::now(),
    }
}

/// The node could not be reached: its first step fails with the reason, the rest are skipped.
pub(super) async fn fail_rest(shared: &Shared, node: &str, steps: &[String], reason: String) {
    if let Some((first, rest)) = steps.split_first() {
        shared
            .finish(node, first, StepEnd::plain(Status::Failed, reason))
            .await;
        skip_rest(shared, node, rest, "the node could not be reached").await;
    }
}

pub(super) async fn skip_rest(shared: &Shared, node: &str, steps: &[String], reason: &str) {
    for s in steps {
        shared
            .finish(node, s, StepEnd::plain(Status::Skipped, reason))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_whole_and_short_values_are_not_taken() {
        let s = Secrets::default();
        s.add(["abcd".to_string(), "abcdefgh".to_string(), "ab".to_string()]);
        assert_eq!(s.scrub("x abcdefgh y abcd z ab"), "x *** y *** z ab");
        assert_eq!(s.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn a_barrier_opens_when_every_node_finished_and_never_after_a_failure() {
        let mut b = Board::default();
        b.remaining.insert("s".into(), 2);
        assert!(!b.passed("s"));
        b.remaining.insert("s".into(), 0);
        assert!(b.passed("s") && b.passed("not-in-this-install"));
        b.failed.insert("s".into(), "failed on n1".into());
        assert!(!b.passed("s"));
    }

    #[test]
    fn a_step_skipped_by_the_operator_opens_its_barrier_and_an_aborted_one_never_does() {
        let mut b = Board::default();
        b.remaining.insert("s".into(), 1);
        b.remaining.insert("t".into(), 1);
        b.skip_chosen("s");
        assert!(b.passed("s"));
        b.fail("t", "n2", "failed");
        b.fail("t", "n3", "was skipped");
        assert!(!b.passed("t"));
        assert_eq!(b.failed["t"], "failed on n2", "the first reason stays");
    }
}
