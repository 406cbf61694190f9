//! The install journal: append-only JSON lines, 0600. Records reach the disk in batches, each
//! fsynced (see `executor::JournalWriter`); a crash can lose the newest records, never corrupt the
//! older ones, and replay tolerates a torn last line. What the lost records said, the nodes keep:
//! each attempt's state lives in its directory there.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::events::Status;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Record {
    /// A new install: its id, and the fingerprint of the configuration and plan it was made for.
    Begin {
        install_id: String,
        config: String,
        /// The plan file the install runs, so that `status` reads the same one.
        #[serde(default)]
        plan: String,
        ts: u64,
    },
    /// A step started on a node; `fp` fingerprints the step's content and environment there.
    Start {
        node: String,
        step: String,
        attempt: u32,
        fp: String,
        ts: u64,
    },
    /// Values a finished step published for later steps (`KEY=VALUE` lines of `$KSW_OUTPUT`).
    /// Secret ones (`Step::is_secret`) are only named in `redacted`: they stay on the
    /// node, and a resume reads them back from there.
    Outputs {
        node: String,
        step: String,
        values: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        redacted: Vec<String>,
    },
    End {
        node: String,
        step: String,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Contact was lost during the step: it may have gone on running on the node.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lost: bool,
        ts: u64,
    },
    /// A resume found the configuration changed; steps whose fingerprint differs run again.
    Reconfigured { config: String, ts: u64 },
    /// The host left the conf, or the step left the plan: no longer part of the install.
    Left { node: String, step: String, ts: u64 },
    /// The operator's decision about a failed step (`retry`, `skip`, `abort`, or `stop`: no
    /// operator was there), before it is carried out.
    Decision {
        node: String,
        step: String,
        decision: String,
        ts: u64,
    },
    /// Every step finished (ok or not): nothing left to resume unless something failed.
    Complete { ts: u64 },
    /// `kswizard reset` undid the install on `nodes`: replay forgets their steps, so the next
    /// install runs them all again there; `all` (every host of the conf was reset) forgets the
    /// install itself, and the next one starts fresh.
    Reset {
        nodes: Vec<String>,
        #[serde(default)]
        all: bool,
        ts: u64,
    },
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Open for appending (created 0600). `fresh` empties it first: a new install.
    pub fn open(path: &Path, fresh: bool) -> io::Result<Journal> {
        let mut opts = OpenOptions::new();
        opts.create(true).mode(0o600);
        if fresh {
            opts.write(true).truncate(true);
        } else {
            opts.append(true);
        }
        let file = opts.open(path)?;
        let mut j = Journal {
            file,
            path: path.to_path_buf(),
        };
        if fresh {
            j.file.sync_all()?;
        } else {
            j.heal_torn_tail()?;
        }
        Ok(j)
    }

    /// A crash mid-write can leave a last line without its newline; end it so the next record
    /// starts on a line of its own (replay skips the torn one).
    fn heal_torn_tail(&mut self) -> io::Result<()> {
        let bytes = std::fs::read(&self.path)?;
        if bytes.last().is_some_and(|&b| b != b'\n') {
            self.file.write_all(b"\n")?;
            self.file.sync_data()?;
        }
        Ok(())
    }

    pub fn append(&mut self, r: &Record) -> io::Result<()> {
        self.append_all(std::slice::from_ref(r))
    }

    /// Append records with one write and one fsync.
    pub fn append_all(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }
}

/// What a journal says about an install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    pub install_id: Option<String>,
    pub config: Option<String>,
    pub plan: Option<String>,
    /// When the install began (its `begin` record's time, seconds since the epoch).
    pub begun: Option<u64>,
    pub complete: bool,
    /// The last state of each (node, step).
    pub steps: HashMap<(String, String), StepState>,
    /// Published values, in the order they were recorded.
    pub outputs: Vec<(String, String)>,
    /// Steps whose secret outputs were kept off the journal: a resume recalls them from the node.
    pub redacted: std::collections::HashSet<(String, String)>,
    /// (node, step) pairs the operator chose to skip: a resume does not run them again.
    pub skipped: std::collections::HashSet<(String, String)>,
    /// Nodes the operator aborted: a resume runs nothing on them until they are retried.
    pub aborted: std::collections::HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepState {
    pub attempt: u32,
    pub fp: String,
    /// `None` while started and not finished (running, or interrupted).
    pub status: Option<Status>,
    pub reason: Option<String>,
}

/// A retry of every step of a node (`--retry NODE`): takes back its abort and its skips.
pub const ANY_STEP: &str = "*";

impl Replay {
    /// The operator's decision about `node`'s `step`; the last word stands: a retry takes back a
    /// skip or an abort.
    pub fn decided(&mut self, node: &str, step: &str, decision: &str) {
        match decision {
            "skip" => {
                self.skipped.insert((node.to_string(), step.to_string()));
            }
            "abort" => {
                self.aborted.insert(node.to_string());
            }
            "retry" => {
                self.aborted.remove(node);
                self.skipped
                    .retain(|(n, s)| n != node || (step != ANY_STEP && s != step));
            }
            _ => {}
        }
    }

    /// Forget what the install did on `nodes` (reset there): their steps, secrets kept there,
    /// and the operator's decisions about them; the install is not complete any more.
    fn forget(&mut self, nodes: &[String]) {
        let gone = |n: &String| nodes.contains(n);
        self.steps.retain(|(n, _), _| !gone(n));
        self.redacted.retain(|(n, _)| !gone(n));
        self.skipped.retain(|(n, _)| !gone(n));
        self.aborted.retain(|n| !gone(n));
        self.complete = false;
    }

    pub fn is_done(&self, node: &str, step: &str) -> bool {
        self.steps
            .get(&(node.to_string(), step.to_string()))
            .is_some_and(|s| s.status == Some(Status::Ok))
    }

    /// An install exists that did not finish, or finished with failures.
    pub fn unfinished(&self) -> bool {
        // A step the operator skipped is as finished as it will be.
        self.install_id.is_some()
            && (!self.complete
                || self
                    .steps
                    .iter()
                    .any(|(k, s)| s.status != Some(Status::Ok) && !self.skipped.contains(k)))
    }
}

/// Read a journal. A torn last line (a crash mid-append) is ignored; a bad line elsewhere is an
/// error naming it.
pub fn replay(path: &Path) -> Result<Replay, crate::conf::ConfError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replay::default()),
        Err(e) => return Err(crate::conf::ConfError::io(path, &e)),
    };
    replay_bytes(&bytes, path)
}

pub fn replay_bytes(bytes: &[u8], path: &Path) -> Result<Replay, crate::conf::ConfError> {
    let mut r = Replay::default();
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: Record = match serde_json::from_slice(line) {
            Ok(rec) => rec,
            // The final line without a newline is a torn append: the record never happened.
            Err(_) if i == last => break,
            // A torn line healed by a later open is followed by complete records: skip it too.
            Err(_) if serde_json::from_slice::<serde_json::Value>(line).is_err() => continue,
            Err(e) => {
                return Err(crate::conf::ConfError::new(
                    path,
                    i + 1,
                    format!("expected a kswizard journal record: {e}"),
                ));
            }
        };
        match rec {
            Record::Begin {
                install_id,
                config,
                plan,
                ts,
            } => {
                r = Replay {
                    install_id: Some(install_id),
                    config: Some(config),
                    plan: Some(plan),
                    begun: Some(ts),
                    ..Replay::default()
                };
            }
            Record::Start {
                node,
                step,
                attempt,
                fp,
                ..
            } => {
                r.complete = false;
                r.redacted.remove(&(node.clone(), step.clone()));
                r.steps.insert(
                    (node, step),
                    StepState {
                        attempt,
                        fp,
                        status: None,
                        reason: None,
                    },
                );
            }
            Record::Outputs {
                node,
                step,
                values,
                redacted,
            } => {
                if !redacted.is_empty() {
                    r.redacted.insert((node, step));
                }
                for (k, v) in values {
                    r.outputs.retain(|(ek, _)| *ek != k);
                    r.outputs.push((k, v));
                }
            }
            Record::End {
                node,
                step,
                status,
                reason,
                lost,
                ..
            } => {
                let s = r.steps.entry((node, step)).or_insert(StepState {
                    attempt: 0,
                    fp: String::new(),
                    status: None,
                    reason: None,
                });
                // A step kswizard lost contact with may still be running: as if unfinished, so
                // a resume re-attaches to the same attempt instead of starting another.
                s.status = (!lost).then_some(status);
                s.reason = reason;
            }
            Record::Reconfigured { config, .. } => r.config = Some(config),
            Record::Left { node, step, .. } => {
                let key = (node, step);
                r.steps.remove(&key);
                r.redacted.remove(&key);
            }
            Record::Decision {
                node,
                step,
                decision,
                ..
            } => r.decided(&node, &step, &decision),
            Record::Complete { .. } => r.complete = true,
            Record::Reset { all: true, .. } => r = Replay::default(),
            Record::Reset { nodes, .. } => r.forget(&nodes),
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn start(node: &str, step: &str) -> Record {
        Record::Start {
            node: node.into(),
            step: step.into(),
            attempt: 1,
            fp: "f".into(),
            ts: 1,
        }
    }

    fn end(node: &str, step: &str, status: Status) -> Record {
        Record::End {
            node: node.into(),
            step: step.into(),
            status,
            reason: None,
            lost: false,
            ts: 2,
        }
    }

    #[test]
    fn replays_states_and_tolerates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.jsonl");
        let mut j = Journal::open(&p, true).unwrap();
        j.append(&Record::Begin {
            install_id: "i1".into(),
            config: "c".into(),
            plan: "plan.yaml".into(),
            ts: 0,
        })
        .unwrap();
        j.append(&start("n1", "a")).unwrap();
        j.append(&end("n1", "a", Status::Ok)).unwrap();
        j.append(&start("n1", "b")).unwrap();
        drop(j);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A crash in the middle of the next append.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"t":"end","node":"n1","st"#).unwrap();
        drop(f);
        let r = replay(&p).unwrap();
        assert!(r.is_done("n1", "a"));
        assert!(!r.is_done("n1", "b"));
        assert_eq!(r.steps[&("n1".into(), "b".into())].status, None);
        assert!(r.unfinished());

        // Appending after the crash starts a fresh line and both replay.
        let mut j = Journal::open(&p, false).unwrap();
        j.append(&end("n1", "b", Status::Failed)).unwrap();
        let r = replay(&p).unwrap();
        assert_eq!(
            r.steps[&("n1".into(), "b".into())].status,
            Some(Status::Failed)
        );
    }

    #[test]
    fn a_bad_record_in_the_middle_is_an_error_naming_the_line() {
        let bytes =
            b"{\"t\":\"complete\",\"ts\":1}\n{\"t\":\"bogus\"}\n{\"t\":\"complete\",\"ts\":2}\n";
        let e = replay_bytes(bytes, Path::new("j")).unwrap_err();
        assert_eq!(e.line, 2);
    }

    /// A reset of some nodes: their steps are forgotten (they run again), the others' stay
    /// done, the install is unfinished; a reset of every node forgets the install.
    #[test]
    fn a_reset_forgets_the_nodes_steps_or_the_whole_install() {
        let records = [
            Record::Begin {
                install_id: "i1".into(),
                config: "c".into(),
                plan: "plan.yaml".into(),
                ts: 0,
            },
            start("n1", "a"),
            end("n1", "a", Status::Ok),
            start("n2", "a"),
            end("n2", "a", Status::Failed),
            Record::Decision {
                node: "n2".into(),
                step: "a".into(),
                decision: "skip".into(),
                ts: 3,
            },
            Record::Complete { ts: 4 },
        ];
        let text = |extra: &[Record]| -> Vec<u8> {
            records
                .iter()
                .chain(extra)
                .flat_map(|r| {
                    let mut l = serde_json::to_vec(r).unwrap();
                    l.push(b'\n');
                    l
                })
                .collect()
        };
        let before = replay_bytes(&text(&[]), Path::new("j")).unwrap();
        assert!(!before.unfinished());

        let some = replay_bytes(
            &text(&[Record::Reset {
                nodes: vec!["n2".into()],
                all: false,
                ts: 5,
            }]),
            Path::new("j"),
        )
        .unwrap();
        assert!(some.is_done("n1", "a"));
        assert!(!some.steps.contains_key(&("n2".into(), "a".into())));
        assert!(some.skipped.is_empty());
        assert_eq!(some.install_id.as_deref(), Some("i1"));
        assert!(some.unfinished(), "the reset node's steps are to run again");

        let every = replay_bytes(
            &text(&[Record::Reset {
                nodes: vec!["n1".into(), "n2".into()],
                all: true,
                ts: 5,
            }]),
            Path::new("j"),
        )
        .unwrap();
        assert_eq!(every, Replay::default());
        assert!(!every.unfinished());
    }

    #[test]
    fn outputs_keep_the_latest_value() {
        let mut vals = BTreeMap::new();
        vals.insert("JOIN".to_string(), "x".to_string());
        let a = serde_json::to_string(&Record::Outputs {
            node: "n".into(),
            step: "s".into(),
            values: vals.clone(),
            redacted: Vec::new(),
        })
        .unwrap();
        vals.insert("JOIN".to_string(), "y".to_string());
        let b = serde_json::to_string(&Record::Outputs {
            node: "n".into(),
            step: "s".into(),
            values: vals,
            redacted: Vec::new(),
        })
        .unwrap();
        let r = replay_bytes(format!("{a}\n{b}\n").as_bytes(), Path::new("j")).unwrap();
        assert_eq!(r.outputs, vec![("JOIN".to_string(), "y".to_string())]);
    }
}
