//! Findings and read errors as the command line prints them (text or JSON).

use serde_json::json;

use crate::conf::ConfError;
use crate::model::Cluster;
use crate::validate::{Finding, Severity};

pub fn text(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        s.push_str(&format!(
            "{sev}[{}]: {}\n  fix: {}\n",
            f.code, f.message, f.hint
        ));
    }
    s
}

pub fn summary(cluster: &Cluster, findings: &[Finding]) -> String {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let lb = &cluster.lb;
    let lb = match (&lb.address, lb.mode) {
        (Some(a), m) if m != crate::model::LbMode::None => {
            format!("LB {a}:{} ({}, {})", lb.port, lb.domain, m.label())
        }
        _ => "no LB".to_string(),
    };
    let (masters, workers) = (cluster.masters().count(), cluster.workers().count());
    format!(
        "{} ({}, {}, {} etcd), {lb}: {}, {}",
        count(cluster.hosts.len(), "host"),
        count(masters, "master"),
        count(workers, "worker"),
        cluster.etcd().count(),
        count(errors, "error"),
        count(warnings, "warning"),
    )
}

/// "1 master", "3 masters": the summary is read by people.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

pub fn json(findings: &[Finding]) -> String {
    json!({ "findings": findings }).to_string()
}

pub fn error_json(e: &ConfError) -> String {
    json!({ "error": { "file": e.file.display().to_string(), "line": e.line, "message": e.message } }).to_string()
}
