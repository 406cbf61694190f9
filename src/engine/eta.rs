//! **Pure.** How long an install has left, from how long its steps took: the journal's start and
//! end records of the steps that ended ok (every run of this install: a fresh install starts a
//! new journal, so earlier installs count only while their journal is the one on disk) and the
//! steps this run finished. A step's usual time is the median of its durations over every node
//! and run. The estimate is a rough critical path: per node the usual times of its steps still to
//! run (the running one less what it has run), the longest node. Barriers are not modelled: a
//! node that waits for another's step is counted as running its own steps meanwhile, which is
//! why the result is said as "about".

use std::collections::HashMap;

use super::events::Status;
use super::journal::Record;

/// Every step's durations (seconds), as many as ended ok.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub samples: HashMap<String, Vec<u64>>,
}

impl History {
    /// Durations read from a journal's lines; lines that do not parse (a torn tail) are skipped.
    pub fn from_journal(text: &str) -> History {
        let mut started: HashMap<(String, String), u64> = HashMap::new();
        let mut h = History::default();
        for r in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        {
            match r {
                Record::Start { node, step, ts, .. } => {
                    started.insert((node, step), ts);
                }
                Record::End {
                    node,
                    step,
                    status: Status::Ok,
                    lost: false,
                    ts,
                    ..
                } => {
                    if let Some(t0) = started.remove(&(node, step.clone())) {
                        h.add(&step, ts.saturating_sub(t0));
                    }
                }
                _ => {}
            }
        }
        h
    }

    /// Kept sorted, so the median is a lookup (the Install screen asks every frame).
    pub fn add(&mut self, step: &str, secs: u64) {
        let v = self.samples.entry(step.to_string()).or_default();
        let at = v.partition_point(|&x| x <= secs);
        v.insert(at, secs);
    }

    /// The step's usual time (the median), if it ever ended ok.
    pub fn usual(&self, step: &str) -> Option<u64> {
        let v = self.samples.get(step)?;
        v.get(v.len() / 2).copied()
    }
}

/// One node's part: the steps it still has to run after the running one, and the running one
/// with how long it has run.
pub struct NodeLeft<'a> {
    pub to_run: &'a [String],
    pub running: Option<(&'a str, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eta {
    /// No step of this plan has a recorded time yet.
    NoHistory,
    /// About this many seconds; `unknown` steps still to run have no recorded time (counted as 0).
    About { secs: u64, unknown: usize },
}

pub fn estimate(nodes: &[NodeLeft], h: &History) -> Eta {
    if h.samples.is_empty() {
        return Eta::NoHistory;
    }
    let mut unknown = 0;
    let mut longest = 0;
    for n in nodes {
        let mut total = 0;
        if let Some((step, ran)) = n.running {
            match h.usual(step) {
                Some(u) => total += u.saturating_sub(ran),
                None => unknown += 1,
            }
        }
        for s in n.to_run {
            match h.usual(s) {
                Some(u) => total += u,
                None => unknown += 1,
            }
        }
        longest = longest.max(total);
    }
    Eta::About {
        secs: longest,
        unknown,
    }
}

/// "1h 02m", "4m 05s", "12s".
pub fn clock(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_come_from_start_and_ok_end_pairs() {
        let j = [
            r#"{"t":"start","node":"a","step":"s1","attempt":1,"fp":"x","ts":100}"#,
            r#"{"t":"end","node":"a","step":"s1","status":"ok","ts":130}"#,
            r#"{"t":"start","node":"b","step":"s1","attempt":1,"fp":"x","ts":100}"#,
            r#"{"t":"end","node":"b","step":"s1","status":"failed","ts":101}"#,
            r#"{"t":"start","node":"b","step":"s1","attempt":2,"fp":"x","ts":200}"#,
            r#"{"t":"end","node":"b","step":"s1","status":"ok","ts":210}"#,
            r#"{"t":"start","node":"c","step":"s1","attempt":1,"fp":"x","ts":100}"#,
            r#"{"t":"end","node":"c","step":"s1","status":"ok","ts":150}"#,
            r#"{"t":"start","node":"a","step":"s2","attempt":1,"fp":"x""#,
        ]
        .join("\n");
        let h = History::from_journal(&j);
        assert_eq!(h.samples["s1"], [10, 30, 50]);
        assert_eq!(h.usual("s1"), Some(30));
        assert_eq!(h.usual("s2"), None);
    }

    #[test]
    fn the_longest_node_decides_and_unknown_steps_are_counted() {
        let mut h = History::default();
        assert_eq!(estimate(&[], &h), Eta::NoHistory);
        h.add("a", 10);
        h.add("b", 100);
        let rest_1 = ["b".to_string()];
        let rest_2 = ["a".to_string(), "new".to_string()];
        let nodes = [
            NodeLeft {
                to_run: &rest_1,
                running: Some(("a", 4)),
            },
            NodeLeft {
                to_run: &rest_2,
                running: Some(("b", 150)),
            },
        ];
        assert_eq!(
            estimate(&nodes, &h),
            Eta::About {
                secs: 106,
                unknown: 1
            }
        );
        assert_eq!(clock(3725), "1h 02m");
        assert_eq!(clock(245), "4m 05s");
    }
}
