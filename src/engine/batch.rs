//! One batch of steps on one node, as the runner's lines tell it: a sans-IO state machine.
//!
//! `feed` takes the lines the runner prints (see `runner`), `poll` hands out what they mean
//! (facts, a step began, a log line, a step ended), `close` takes how the command ended and says
//! whether the batch is over or contact was lost. `verdict` turns a step's end into ok, retry or
//! fail. No I/O: `node.rs` carries the transitions out (journal, events, board, transport).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::events::Facts;
use super::plan::Step;
use super::runner::{How, Line, parse_line};

/// The log lines kept for a failure's report.
pub const LOG_TAIL: usize = 10;

/// A step of the batch, as kswizard asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub step: String,
    pub attempt: u32,
    /// The names it may publish; anything else in `$KSW_OUTPUT` is dropped.
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The node's facts, when the batch carried them; `uid` is who the commands ran as.
    Facts {
        facts: Facts,
        uid: Option<u32>,
    },
    /// The node took the step: `attempt` is the one it runs (or found), which may be later than
    /// the one asked for when an earlier version of the step ran there.
    Began {
        step: String,
        attempt: u32,
        how: How,
    },
    Output {
        step: String,
        line: String,
    },
    Ended(Ended),
}

/// A step's end on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub step: String,
    pub attempt: u32,
    pub how: How,
    pub ending: Ending,
    /// What it published (declared names only).
    pub outputs: BTreeMap<String, String>,
    /// The last lines of its log.
    pub tail: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exit(i32),
    /// The node said why there is no exit code (the step vanished, it could not be set up).
    NodeSaid(String),
}

/// How the command carrying the batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Every step of the batch ended, or one failed (the runner stops there).
    Over,
    /// The runner never ran (sudo refused, no shell): its exit code and stderr.
    NeverStarted {
        step: String,
        code: i32,
        stderr: String,
    },
    /// Contact was lost (or the runner died) before `step` ended: it may still run on the node;
    /// reconnect and ask again, and the node re-attaches or reports it.
    Lost { step: String, why: String },
}

struct Current {
    step: String,
    attempt: u32,
    how: How,
    outputs: BTreeMap<String, String>,
    tail: VecDeque<String>,
}

pub struct Batch {
    expected: Vec<Expected>,
    /// Index in `expected` of the next step to begin.
    next: usize,
    current: Option<Current>,
    /// Facts still to come (the batch carries them).
    facts: Option<(Facts, Option<u32>)>,
    /// The runner said something: a silent failure means it never ran.
    heard: bool,
    /// A step failed or could not be set up: the runner stops, later lines mean nothing.
    stopped: bool,
    out: VecDeque<Transition>,
}

impl Batch {
    pub fn new(expected: Vec<Expected>, facts: bool) -> Batch {
        Batch {
            expected,
            next: 0,
            current: None,
            facts: facts.then(|| (Facts::default(), None)),
            heard: false,
            stopped: false,
            out: VecDeque::new(),
        }
    }

    /// The next transition the lines fed so far make.
    pub fn poll(&mut self) -> Option<Transition> {
        self.out.pop_front()
    }

    /// How many steps of the batch ended with exit code 0.
    pub fn ended_ok(&self) -> usize {
        self.next - usize::from(self.stopped)
    }

    /// Facts arrive before anything else: the first other line (or the end) completes them.
    fn flush_facts(&mut self) {
        if let Some((facts, uid)) = self.facts.take() {
            self.out.push_back(Transition::Facts { facts, uid });
        }
    }

    pub fn feed(&mut self, raw: &str) {
        self.heard = true;
        let line = parse_line(raw);
        if let Line::Fact(k, v) = &line {
            if let Some((facts, uid)) = self.facts.as_mut() {
                take_fact(facts, uid, k, v);
            }
            return;
        }
        self.flush_facts();
        if self.stopped || line == Line::Blank {
            return;
        }
        let Some(c) = self.current.as_mut() else {
            match line {
                // Only the step expected next may begin.
                Line::Begin { step, attempt, how }
                    if self.expected.get(self.next).is_some_and(|e| e.step == step) =>
                {
                    self.out.push_back(Transition::Began {
                        step: step.clone(),
                        attempt,
                        how,
                    });
                    self.current = Some(Current {
                        step,
                        attempt,
                        how,
                        outputs: BTreeMap::new(),
                        tail: VecDeque::new(),
                    });
                }
                // The runner could not set the next step up: that step ends with why.
                Line::Failed(why) | Line::Vanished(why) => {
                    if let Some(e) = self.expected.get(self.next) {
                        self.current = Some(Current {
                            step: e.step.clone(),
                            attempt: e.attempt,
                            how: How::Start,
                            outputs: BTreeMap::new(),
                            tail: VecDeque::new(),
                        });
                        self.end(Ending::NodeSaid(why));
                    }
                }
                // Before a step begins, the runner may say why it waits (an earlier version of the
                // step still runs): shown in the log of the step it is about.
                Line::Log(l) => {
                    if let Some(e) = self.expected.get(self.next) {
                        self.out.push_back(Transition::Output {
                            step: e.step.clone(),
                            line: l,
                        });
                    }
                }
                // Anything else out of place between steps is no step's.
                _ => {}
            }
            return;
        };
        match line {
            Line::Log(l) => {
                push_tail(&mut c.tail, l.clone());
                let step = c.step.clone();
                self.out.push_back(Transition::Output { step, line: l });
            }
            Line::Output(k, v) => {
                let declared = &self.expected[self.next].outputs;
                if declared.contains(&k) {
                    c.outputs.insert(k, v);
                } else {
                    // Not echoed: a stray line of a secret value must not reach the log.
                    // The line itself is never echoed: it may be a piece of a secret value.
                    let note = format!(
                        "kswizard: dropped a line of $KSW_OUTPUT: expected NAME=value with NAME one of this step's outputs ({})",
                        declared.join(", ")
                    );
                    push_tail(&mut c.tail, note.clone());
                    let step = c.step.clone();
                    self.out.push_back(Transition::Output { step, line: note });
                }
            }
            Line::Exit(rc) => self.end(Ending::Exit(rc)),
            Line::Failed(why) | Line::Vanished(why) => self.end(Ending::NodeSaid(why)),
            // A second begin while a step runs is out of place: no step's line.
            Line::Begin { .. } | Line::Fact(..) | Line::Blank => {}
        }
    }

    fn end(&mut self, ending: Ending) {
        let Some(c) = self.current.take() else {
            return;
        };
        let ok = ending == Ending::Exit(0);
        self.next += 1;
        self.stopped = !ok;
        self.out.push_back(Transition::Ended(Ended {
            step: c.step,
            attempt: c.attempt,
            how: c.how,
            ending,
            outputs: c.outputs,
            tail: c.tail.into(),
        }));
    }

    /// The command ended: with its exit code and stderr, or without (`Err`: connection lost).
    pub fn close(&mut self, end: Result<(i32, String), String>) -> Closed {
        self.flush_facts();
        if self.stopped || (self.current.is_none() && self.next == self.expected.len()) {
            return Closed::Over;
        }
        let step = self
            .current
            .as_ref()
            .map_or_else(|| self.expected[self.next].step.clone(), |c| c.step.clone());
        match end {
            // 255 is ssh's own code: the connection, not the shell, failed.
            Ok((code, stderr)) if !self.heard && code != 0 && code != 255 => {
                Closed::NeverStarted { step, code, stderr }
            }
            Ok((code, stderr)) => Closed::Lost {
                step,
                why: format!(
                    "the runner ended with code {code} before the step did{}",
                    stderr
                        .trim()
                        .lines()
                        .last()
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                ),
            },
            Err(why) => Closed::Lost { step, why },
        }
    }
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == LOG_TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

fn take_fact(f: &mut Facts, uid: &mut Option<u32>, k: &str, v: &str) {
    let v = v.trim();
    match k {
        "os" => f.os = v.to_string(),
        "cpus" => f.cpus = v.parse().unwrap_or(0),
        "mem" => f.memory_mb = v.parse().unwrap_or(0),
        "disk" => f.disk_free_mb = v.parse().unwrap_or(0),
        "uid" => *uid = v.parse().ok(),
        _ => {}
    }
}

/// Facts from the lines of `runner::FACTS` run on its own.
pub fn facts_of(output: &str) -> (Facts, Option<u32>) {
    let mut facts = Facts::default();
    let mut uid = None;
    for l in output.lines() {
        if let Line::Fact(k, v) = parse_line(l) {
            take_fact(&mut facts, &mut uid, &k, &v);
        }
    }
    (facts, uid)
}

/// What a step's end means for the install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Run it again as `attempt`, after `after`; `reason` says why the last one failed.
    Retry {
        attempt: u32,
        after: Duration,
        reason: String,
        /// It used one of the step's retries (an earlier run's failure found on the node uses none).
        counted: bool,
    },
    Fail(String),
}

/// Decide on a step's end. `retries_left` is how many of its `retries` this run has not used.
pub fn verdict(step: &Step, ended: &Ended, retries_left: u32) -> Verdict {
    let reason = match &ended.ending {
        Ending::Exit(0) => return Verdict::Ok,
        Ending::Exit(124) => format!("timed out after {} s", step.timeout),
        Ending::Exit(rc) => format!("exit code {rc}"),
        // It could not start there, or vanished: running it again would not help.
        Ending::NodeSaid(why) => return Verdict::Fail(why.clone()),
    };
    if ended.how == How::Done {
        // An earlier run's failed attempt, which the journal lost: the operator resumed to run it
        // again, so it runs again at once, without using one of this run's retries.
        return Verdict::Retry {
            attempt: ended.attempt + 1,
            after: Duration::ZERO,
            reason,
            counted: false,
        };
    }
    if retries_left == 0 {
        return Verdict::Fail(reason);
    }
    // Back off a little longer each time: 1 s, 2 s, 3 s ...
    let nth = step.retries - retries_left + 1;
    Verdict::Retry {
        attempt: ended.attempt + 1,
        after: Duration::from_secs(u64::from(nth)),
        reason,
        counted: true,
    }
}

/// How long to wait before reconnecting for the `tries`-th time, having waited `waited` so far;
/// `None` once `budget` is spent. 0.5 s, 1 s, 2 s, 4 s, then every 5 s.
pub fn reconnect_delay(tries: u32, waited: Duration, budget: Duration) -> Option<Duration> {
    if waited >= budget {
        return None;
    }
    let step = Duration::from_millis(500u64 << tries.min(3)).min(Duration::from_secs(5));
    Some(step.min(budget.saturating_sub(waited)))
}

#[cfg(test)]
mod tests;
