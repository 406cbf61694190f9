//! Helpers shared by the integration tests: the reference samples and conf/ directories built from
//! them in a temporary directory.

#![allow(dead_code)] // each test crate uses its own subset

pub mod http;
pub mod lab;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples")
}

pub fn sample(name: &str) -> String {
    let path = samples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub const KS_HOSTS: &str = "ks-installer-v2.1.1-hosts.ini";
pub const KS_COMMON: &str = "ks-installer-v2.1.1-common.yaml";
pub const KS_VARS: &str = "ks-installer-v2.1-prerelease-vars.yml";
pub const KUBESPRAY_OLD: &str = "kubespray-v2.11.0-inventory-sample-inventory.ini";
pub const KUBESPRAY_NEW: &str = "kubespray-master-46dbdd39-inventory-sample-inventory.ini";

/// A temporary conf/ directory holding `files` as (name in conf/, content).
pub fn conf_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write conf file");
    }
    dir
}

/// The `KubeSphere` 2.1.1 installer's conf/ as shipped.
pub fn kubesphere_conf() -> tempfile::TempDir {
    conf_dir(&[
        ("hosts.ini", &sample(KS_HOSTS)),
        ("common.yaml", &sample(KS_COMMON)),
    ])
}

/// Every file of a directory with its bytes, sorted by name.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

/// `kswizard install --yes --output json --conf CONF --plan PLAN` started, returned once it has
/// printed its `n`-th `event` (e.g. "started", "finished"): a run to kill at a known point.
pub fn install_until(conf: &Path, plan: &Path, event: &str, n: usize) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kswizard"))
        .args(["install", "--yes", "--output", "json", "--conf"])
        .arg(conf)
        .arg("--plan")
        .arg(plan)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start kswizard install");
    let marker = format!("\"event\":\"{event}\"");
    let out = child.stdout.take().expect("piped");
    let mut seen = 0;
    for line in std::io::BufReader::new(out).lines() {
        if line.is_ok_and(|l| l.contains(&marker)) {
            seen += 1;
            if seen == n {
                break;
            }
        }
    }
    child
}

/// `step` (a plan step's YAML, with a `  roles:` line) with more keys: `outputs: [..]`, ...
pub fn keyed(step: String, keys: &[&str]) -> String {
    let extra: String = keys.iter().map(|k| format!("  {k}\n")).collect();
    step.replacen("  roles:", &format!("{extra}  roles:"), 1)
}

pub fn kswizard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kswizard"))
}

/// `kswizard install --yes --output json --conf CONF` with `extra`: exit code, events, stderr.
pub fn install_run(conf: &Path, extra: &[&str]) -> (Option<i32>, Vec<serde_json::Value>, String) {
    install_watched(conf, extra, |_| {})
}

/// `install_run` that hands each event to `on` as it comes: a test acts at a point of the run
/// (sshd killed once a step re-attached) instead of after a guessed time.
pub fn install_watched(
    conf: &Path,
    extra: &[&str],
    mut on: impl FnMut(&serde_json::Value),
) -> (Option<i32>, Vec<serde_json::Value>, String) {
    use std::io::{BufRead, Read};
    let mut child = kswizard()
        .args(["install", "--yes", "--output", "json", "--conf"])
        .arg(conf)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut events = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let l = line.unwrap();
        let e: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
        on(&e);
        events.push(e);
    }
    let status = child.wait().unwrap();
    (status.code(), events, err.join().unwrap())
}

/// `install_run` with `--plan PLAN`, which must start: exit code and the events.
pub fn install(conf: &Path, plan: &Path, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    install_plan_watched(conf, plan, extra, |_| {})
}

/// `install` with `install_watched`'s `on`.
pub fn install_plan_watched(
    conf: &Path,
    plan: &Path,
    extra: &[&str],
    on: impl FnMut(&serde_json::Value),
) -> (i32, Vec<serde_json::Value>) {
    let plan = plan.display().to_string();
    let args: Vec<&str> = ["--plan", plan.as_str()]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let (code, events, err) = install_watched(conf, &args, on);
    assert!(code != Some(2), "install failed to start: {err}");
    (code.unwrap_or(-1), events)
}

/// (node, step) -> (status, reason) of every `finished` event.
pub fn finished(events: &[serde_json::Value]) -> HashMap<(String, String), (String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| {
            (
                (
                    e["node"].as_str().unwrap().to_string(),
                    e["step"].as_str().unwrap().to_string(),
                ),
                (
                    e["status"].as_str().unwrap().to_string(),
                    e["reason"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// What a step printed on a node, one line each, from the `output` events.
pub fn output_of(events: &[serde_json::Value], node: &str, step: &str) -> String {
    events
        .iter()
        .filter(|e| e["event"] == "output" && e["node"] == node && e["step"] == step)
        .map(|e| format!("{}\n", e["line"].as_str().unwrap_or_default()))
        .collect()
}

/// `install_run` as text (the events as JSON lines, then stderr), for messages and searches.
pub fn install_json(conf: &Path, extra: &[&str]) -> (i32, String) {
    let (code, events, err) = install_run(conf, extra);
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    (code.unwrap_or(-1), format!("{lines}{err}"))
}

/// `kswizard lb status --format json --conf CONF` once.
pub fn lb_status_json(conf: &Path) -> serde_json::Value {
    let out = kswizard()
        .args(["lb", "status", "--format", "json", "--conf"])
        .arg(conf)
        .output()
        .expect("run kswizard lb status");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)))
}
