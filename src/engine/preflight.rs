//! Preflight, the install's first stage: every node's report (`assets/steps/preflight.sh`, which
//! only reads) parsed, and the checks no node can make alone added: its clock against the
//! taskbox's, hostnames, machines and addresses compared across nodes. Pure: the executor runs
//! the script and hands the text and times in.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// A clock further than this from the taskbox's fails (TLS certificates, tokens and etcd leases
/// are all timed).
pub const SKEW_FAIL_S: f64 = 30.0;
/// Further than this warns: still works, but the clocks are not synchronised.
pub const SKEW_WARN_S: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    /// A symbol for a table cell: never colour alone.
    pub fn symbol(self) -> &'static str {
        match self {
            Level::Ok => "✓",
            Level::Warn => "!",
            Level::Fail => "✗",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: String,
    pub level: Level,
    pub reason: String,
    /// What to do about it; empty for a check that passed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

impl Check {
    pub fn new(id: &str, level: Level, reason: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            level,
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    /// "id: reason (fix: ...)", for a log line or an error.
    pub fn line(&self) -> String {
        if self.fix.is_empty() {
            format!("{}: {}", self.id, self.reason)
        } else {
            format!("{}: {} (fix: {})", self.id, self.reason, self.fix)
        }
    }
}

/// One node's preflight: its checks in the order made, and what it said it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub node: String,
    pub checks: Vec<Check>,
    pub facts: BTreeMap<String, String>,
}

/// The taskbox's clock (Unix seconds) when it sent the preflight command and when the report
/// was in: the node read its time somewhere between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub sent: f64,
    pub received: f64,
}

impl Report {
    /// The worst level of its checks.
    pub fn level(&self) -> Level {
        self.checks
            .iter()
            .map(|c| c.level)
            .max()
            .unwrap_or(Level::Ok)
    }

    pub fn with(&self, level: Level) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.level == level)
    }

    /// Add a check; a second one of the same id joins the first (worst level, both reasons).
    pub fn add(&mut self, c: Check) {
        match self.checks.iter_mut().find(|k| k.id == c.id) {
            Some(k) => {
                k.level = k.level.max(c.level);
                k.reason = format!("{}; {}", k.reason, c.reason);
                if !c.fix.is_empty() {
                    k.fix = if k.fix.is_empty() {
                        c.fix
                    } else {
                        format!("{}; {}", k.fix, c.fix)
                    };
                }
            }
            None => self.checks.push(c),
        }
    }

    /// A node kswizard could not reach or run the preflight on.
    pub fn unreachable(node: &str, why: &str) -> Report {
        let mut r = Report {
            node: node.into(),
            ..Report::default()
        };
        r.add(Check::new(
            "ssh",
            Level::Fail,
            why,
            "check that the host is up and its login works (the Hosts screen's t tests it)",
        ));
        r
    }
}

/// The report of `node`: the script's output and exit code, and its stderr. Never panics: a line
/// that is not a report line, a missing `END` or a non-zero exit is a failed `report` check
/// naming the first such line.
pub fn parse(node: &str, out: &str, code: i32, stderr: &str) -> Report {
    let mut r = Report {
        node: node.into(),
        ..Report::default()
    };
    let mut ended = false;
    let mut bad: Option<String> = None;
    for (n, line) in out.lines().enumerate() {
        let line = line.trim_end();
        let mut note = |what: &str| {
            bad.get_or_insert_with(|| format!("line {}: {what}: '{}'", n + 1, cut(line, 80)));
        };
        if line.is_empty() {
            continue;
        }
        if ended {
            note("text after END");
        } else if line == "END" {
            ended = true;
        } else if let Some(fact) = line.strip_prefix("FACT ") {
            match fact.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    r.facts.insert(k.into(), v.into());
                }
                _ => note("expected FACT key=value"),
            }
        } else if let Some(check) = line.strip_prefix("CHECK ") {
            match parse_check(check) {
                Some(c) => r.add(c),
                None => note("expected CHECK <id> ok|warn|fail <reason> ;; <fix>"),
            }
        } else {
            note("not a report line");
        }
    }
    let why = match (bad, ended, code) {
        (Some(b), _, _) => Some(format!("the preflight report is unreadable ({b})")),
        (None, false, _) => Some("the preflight report stopped before its end".to_string()),
        (None, true, 0) => None,
        (None, true, c) => Some(format!("the preflight script ended with exit code {c}")),
    };
    if let Some(mut why) = why {
        if let Some(last) = stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            why.push_str(&format!("; it said: {}", cut(last.trim(), 200)));
        }
        r.add(Check::new(
            "report",
            Level::Fail,
            why,
            "run steps/preflight.sh on the node by hand (as root, with the KSW_* environment) to see why",
        ));
    }
    r
}

fn parse_check(text: &str) -> Option<Check> {
    let (head, fix) = text.split_once(" ;;").unwrap_or((text, ""));
    let mut parts = head.splitn(3, ' ');
    let id = parts.next().filter(|id| !id.is_empty())?;
    let level = match parts.next()? {
        "ok" => Level::Ok,
        "warn" => Level::Warn,
        "fail" => Level::Fail,
        _ => return None,
    };
    Some(Check::new(
        id,
        level,
        parts.next().unwrap_or("").trim(),
        fix.trim(),
    ))
}

/// At most `n` characters of `s`.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// How far the node's clock is from the taskbox's, in seconds, positive when ahead, at least:
/// the node read `first` after the taskbox sent (`w.sent`) and `last` before the report was in
/// (`w.received`), so its offset lies in `[last - received, first - sent]`; the point of that
/// range nearest 0. Its width is the network's round trip only: neither a slow script nor a slow
/// link can make a skew that is not there (a midpoint of the window would).
pub fn skew(first: f64, last: f64, w: Window) -> f64 {
    let (lo, hi) = (last - w.received, first - w.sent);
    if lo > 0.0 {
        lo
    } else if hi < 0.0 {
        hi
    } else {
        0.0
    }
}

fn clock_check(r: &Report, w: Window) -> Check {
    let fix = "synchronise the clocks (timedatectl set-ntp true, with chrony or systemd-timesyncd) on the node and the taskbox";
    // Seconds with a fraction; a `date` without %N (busybox) gives "1700000000.N": the seconds.
    let time = |k: &str| {
        let t = r.facts.get(k)?;
        t.parse::<f64>()
            .ok()
            .or_else(|| t.split('.').next()?.parse::<u64>().ok().map(|s| s as f64))
    };
    let Some(t) = time("time") else {
        return Check::new(
            "clock",
            Level::Fail,
            "the node did not report its time",
            "check that `date +%s.%N` works on the node",
        );
    };
    let s = skew(t, time("time_end").unwrap_or(t), w);
    let how = if s > 0.0 { "ahead of" } else { "behind" };
    let said = format!("{:.1} s {how} the taskbox", s.abs());
    if s.abs() > SKEW_FAIL_S {
        Check::new(
            "clock",
            Level::Fail,
            format!("{said} (more than {SKEW_FAIL_S} s)"),
            fix,
        )
    } else if s.abs() > SKEW_WARN_S {
        Check::new("clock", Level::Warn, said, fix)
    } else {
        Check::new(
            "clock",
            Level::Ok,
            format!("within {SKEW_WARN_S} s of the taskbox"),
            "",
        )
    }
}

/// The checks across nodes, added to each report: its clock against the taskbox (`windows`,
/// by node), hostnames and machine ids unique, and its `ip=` (from `ips`, by node) an address of
/// no other node. Reports without facts (nodes not reached) take part in none of them.
pub fn compare(
    reports: &mut [Report],
    windows: &HashMap<String, Window>,
    ips: &HashMap<String, String>,
) {
    let reached: Vec<bool> = reports.iter().map(|r| !r.facts.is_empty()).collect();
    // Every other node (by index) that reports the same value of `fact` (by `key`).
    let sharing = |reports: &[Report], fact: &str, key: fn(&str) -> String| {
        let mut by: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in reports.iter().enumerate() {
            if let Some(v) = r.facts.get(fact).filter(|v| !v.is_empty()) {
                by.entry(key(v)).or_default().push(i);
            }
        }
        (0..reports.len())
            .map(|i| {
                let v = reports[i].facts.get(fact).map(|v| key(v));
                v.and_then(|v| by.get(&v))
                    .map(|is| {
                        is.iter()
                            .copied()
                            .filter(|&j| j != i)
                            .collect::<Vec<usize>>()
                    })
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
    };
    // Hostnames are DNS names: case does not tell them apart.
    let hostnames = sharing(reports, "hostname", str::to_ascii_lowercase);
    let machines = sharing(reports, "machine_id", str::to_string);
    let addresses: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            r.facts
                .get("addresses")
                .map(|a| {
                    a.split(',')
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let names = |reports: &[Report], js: &[usize]| {
        js.iter()
            .map(|&j| reports[j].node.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for i in 0..reports.len() {
        if !reached[i] {
            continue;
        }
        let node = reports[i].node.clone();
        let c = match windows.get(&node) {
            Some(w) => clock_check(&reports[i], *w),
            None => Check::new("clock", Level::Fail, "kswizard did not time the report", ""),
        };
        reports[i].add(c);
        let hostname = reports[i]
            .facts
            .get("hostname")
            .cloned()
            .unwrap_or_default();
        reports[i].add(if hostnames[i].is_empty() {
            Check::new("unique-hostname", Level::Ok, hostname, "")
        } else {
            Check::new(
                "unique-hostname",
                Level::Fail,
                format!(
                    "its hostname '{hostname}' is also the hostname of {}",
                    names(reports, &hostnames[i])
                ),
                "give each machine its own hostname (hostnamectl set-hostname NAME): Kubernetes names its nodes by it",
            )
        });
        // The same machine id and a shared address: one machine reached twice. The same id
        // alone: cloned machines (Kubernetes and some CNIs tell nodes apart by it).
        let id = reports[i]
            .facts
            .get("machine_id")
            .cloned()
            .unwrap_or_default();
        let (twice, clones): (Vec<usize>, Vec<usize>) = machines[i]
            .iter()
            .copied()
            .partition(|&j| addresses[j].iter().any(|a| addresses[i].contains(a)));
        reports[i].add(if !twice.is_empty() {
            Check::new(
                "same-machine",
                Level::Fail,
                format!(
                    "this entry and {} reach the same machine (machine-id {id}, the same addresses)",
                    names(reports, &twice)
                ),
                "hosts.ini lists one machine twice: remove one entry or fix its ansible_host",
            )
        } else if !clones.is_empty() {
            Check::new(
                "same-machine",
                Level::Warn,
                format!(
                    "its machine-id {id} is also that of {} (cloned machines?)",
                    names(reports, &clones)
                ),
                "give each clone its own id: rm /etc/machine-id; systemd-machine-id-setup",
            )
        } else {
            Check::new("same-machine", Level::Ok, "no other entry reaches this machine", "")
        });
        if let Some(ip) = ips.get(&node) {
            let others: Vec<String> = (0..reports.len())
                .filter(|&j| j != i && addresses[j].iter().any(|a| a == ip))
                .map(|j| reports[j].node.clone())
                .collect();
            reports[i].add(if others.is_empty() {
                Check::new("unique-ip", Level::Ok, format!("{ip} is on no other node"), "")
            } else {
                Check::new(
                    "unique-ip",
                    Level::Fail,
                    format!("its ip= {ip} is also an address of {}", others.join(", ")),
                    "two machines hold the same address: fix ip= in hosts.ini or the machines' addresses",
                )
            });
        }
    }
}

/// Every report as one table, node × check (✓ ok, ! warning, ✗ failed, · not made there), then
/// the failures and the warnings with their reasons and fixes.
pub fn table(reports: &[Report]) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for c in reports.iter().flat_map(|r| &r.checks) {
        if !ids.contains(&c.id.as_str()) {
            ids.push(&c.id);
        }
    }
    // A column only for the checks that are not ok everywhere: twenty columns would not fit a
    // terminal, and the ones that passed everywhere say nothing a name list does not.
    let (clean, notable): (Vec<&str>, Vec<&str>) = ids.into_iter().partition(|id| {
        reports
            .iter()
            .flat_map(|r| &r.checks)
            .filter(|c| c.id == *id)
            .all(|c| c.level == Level::Ok)
    });
    let width = reports
        .iter()
        .map(|r| r.node.chars().count())
        .chain([9])
        .max()
        .unwrap_or(9);
    let mut out = String::new();
    if !notable.is_empty() {
        out.push_str(&format!("{:<width$}", "preflight"));
        for id in &notable {
            out.push_str(&format!(" {id}"));
        }
        out.push('\n');
        for r in reports {
            out.push_str(&format!("{:<width$}", r.node));
            for id in &notable {
                let cell = r
                    .checks
                    .iter()
                    .find(|c| c.id == *id)
                    .map_or("·", |c| c.level.symbol());
                // Under the id's first letter, padded to its width.
                out.push_str(&format!(" {cell:<w$}", w = id.chars().count()));
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        }
    }
    if !clean.is_empty() {
        out.push_str(&format!(
            "preflight ok on all {} nodes: {}\n",
            reports.len(),
            clean.join(", ")
        ));
    }
    for (level, title) in [(Level::Fail, "failed"), (Level::Warn, "warnings")] {
        let lines: Vec<String> = reports
            .iter()
            .flat_map(|r| {
                r.with(level)
                    .map(move |c| format!("  {} {}", r.node, c.line()))
            })
            .collect();
        if !lines.is_empty() {
            out.push_str(&format!("{title}:\n{}\n", lines.join("\n")));
        }
    }
    out
}

#[cfg(test)]
mod tests;
