//! The built binary: exit codes, text and JSON output, and `write` leaving --conf alone.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kswizard(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kswizard"))
        .args(args)
        .output()
        .expect("run kswizard");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn validate(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["validate", "--conf", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    kswizard(&args)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// Two masters and no LB: an error.
fn two_masters() -> tempfile::TempDir {
    conf_dir(&[(
        "hosts.ini",
        "[all]\nm1 ansible_host=10.0.0.1\nm2 ansible_host=10.0.0.2\n[kube-master]\nm1\nm2\n[etcd]\nm1\n",
    )])
}

#[test]
fn validate_ok_with_warnings_is_exit_0_and_strict_makes_it_1() {
    let dir = kubesphere_conf();
    let run = validate(dir.path(), &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("warning[plaintext-password]: hosts.ini holds passwords in plain text for node1, node2\n  fix: "), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with(": 3 hosts (1 master, 2 workers, 1 etcd), no LB: 0 errors, 1 warning\n"),
        "{}",
        run.stdout
    );
    assert_eq!(validate(dir.path(), &["--strict"]).code, 1);
}

#[test]
fn validate_errors_are_exit_1_and_json_lists_findings() {
    let dir = two_masters();
    let run = validate(dir.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .starts_with("error[lb-required]: 2 masters (m1, m2) and no load balancer"),
        "{}",
        run.stdout
    );

    let run = validate(dir.path(), &["--format", "json"]);
    assert_eq!(run.code, 1);
    let v = json(&run);
    let findings = v["findings"].as_array().expect("findings array");
    assert_eq!(findings.len(), 1, "{v}");
    let f = &findings[0];
    assert_eq!(f["code"], "lb-required");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["hosts"], serde_json::json!(["m1", "m2"]));
    assert_eq!(f["field"], "lb.address");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("2 masters (m1, m2)")
    );
    assert!(
        f["hint"]
            .as_str()
            .unwrap()
            .starts_with("set the load balancer's address")
    );
}

#[test]
fn validate_json_of_a_good_layout_is_an_empty_list() {
    let dir = conf_dir(&[(
        "hosts.ini",
        "[all]\nm1 ansible_host=10.0.0.1\n[kube-master]\nm1\n[etcd]\nm1\n[kube-node]\nm1\n",
    )]);
    let run = validate(dir.path(), &["--format", "json", "--strict"]);
    assert_eq!(
        (run.code, json(&run)),
        (0, serde_json::json!({"findings": []}))
    );
}

#[test]
fn unreadable_input_is_exit_2_with_file_and_line() {
    let dir = conf_dir(&[("hosts.ini", "[all]\nnode1 ansible_port=x\n")]);
    let hosts = dir.path().join("hosts.ini");
    let run = validate(dir.path(), &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        format!(
            "kswizard: {}:2: ansible_port of host 'node1': expected a port number 1..65535, found 'x'\n",
            hosts.display()
        )
    );
    let run = validate(dir.path(), &["--format", "json"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        json(&run),
        serde_json::json!({"error": {
            "file": hosts.display().to_string(),
            "line": 2,
            "message": "ansible_port of host 'node1': expected a port number 1..65535, found 'x'"
        }})
    );
}

#[test]
fn usage_errors_are_exit_2() {
    assert_eq!(kswizard(&["validate", "--format", "xml"]).code, 2);
    assert_eq!(kswizard(&["frobnicate"]).code, 2);
    assert_eq!(kswizard(&["write", "--conf", "x"]).code, 2);
}

#[test]
fn help_and_version() {
    let run = kswizard(&["--help"]);
    assert_eq!(run.code, 0);
    for word in ["validate", "write", "Usage: kswizard"] {
        assert!(run.stdout.contains(word), "{}", run.stdout);
    }
    let run = kswizard(&["validate", "--help"]);
    assert!(
        run.code == 0 && run.stdout.contains("--strict"),
        "{}",
        run.stdout
    );
    let run = kswizard(&["--version"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, concat!("kswizard ", env!("CARGO_PKG_VERSION"), "\n"))
    );
}

#[test]
fn write_puts_the_files_in_out_and_leaves_conf_alone() {
    let conf = kubesphere_conf();
    let before = snapshot(conf.path());
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("new");
    let run = kswizard(&[
        "write",
        "--conf",
        conf.path().to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--lb-address",
        "192.168.0.10",
        "--lb-port",
        "8443",
        "--lb-domain",
        "lb.example.com",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(snapshot(conf.path()), before, "--conf changed");

    let written: Vec<String> = snapshot(&out_dir).into_iter().map(|(n, _)| n).collect();
    assert_eq!(written, ["common.yaml", "hosts.ini"]);
    let (c, _) = kswizard::conf::load(&out_dir).unwrap();
    assert_eq!(c.lb.address.as_deref(), Some("192.168.0.10"));
    assert_eq!((c.lb.port, c.lb.domain.as_str()), (8443, "lb.example.com"));
    assert_eq!(c.hosts.len(), 3);
    // Only the LB lines of common.yaml changed.
    let new_common = std::fs::read_to_string(out_dir.join("common.yaml")).unwrap();
    let old_common = sample(KS_COMMON);
    let changed = old_common
        .lines()
        .zip(new_common.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        (changed, new_common.lines().count()),
        (4, old_common.lines().count())
    );
    // hosts.ini holds passwords: only its owner may read it.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out_dir.join("hosts.ini"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn write_refuses_a_layout_with_errors() {
    let conf = two_masters();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "write",
        "--conf",
        conf.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    let run = kswizard(&args);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("kswizard: nothing written: "),
        "{}",
        run.stderr
    );
    assert!(snapshot(out.path()).is_empty());
    // With the LB given, the same layout is written.
    let mut with_lb = args.to_vec();
    with_lb.extend(["--lb-address", "10.0.0.100"]);
    assert_eq!(kswizard(&with_lb).code, 0);
    assert!(out.path().join("hosts.ini").exists() && out.path().join("common.yaml").exists());
}

#[test]
fn a_file_over_a_limit_is_exit_2_naming_file_line_and_limit() {
    // 100,000 levels of nesting: refused at once (serde_yaml alone took seconds on it).
    let deep = format!("x: 1\nloadbalancer_apiserver: {}\n", "[".repeat(100_000));
    let dir = conf_dir(&[("common.yaml", &deep)]);
    let run = validate(dir.path(), &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        format!(
            "kswizard: {}:2: YAML nested more than 64 levels deep; kswizard reads up to 64 (its settings need fewer than 5)\n",
            dir.path().join("common.yaml").display()
        )
    );
}

#[test]
fn write_without_changes_gives_back_a_crlf_vars_yml_byte_for_byte() {
    // The older vars.yml, CRLF, with an LB set and the sample's domain line still commented.
    let vars = sample(KS_VARS)
        .replace(
            "#loadbalancer_apiserver:\n#  address: 192.168.0.10\n#  port: 6443\n",
            "loadbalancer_apiserver:\n  address: 192.168.0.10\n  port: 6443\n",
        )
        .replace('\n', "\r\n");
    assert!(vars.contains("\r\nloadbalancer_apiserver:\r\n"));
    let conf = conf_dir(&[("hosts.ini", &sample(KS_HOSTS)), ("vars.yml", &vars)]);
    let out = tempfile::tempdir().unwrap();
    let run = kswizard(&[
        "write",
        "--conf",
        conf.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(std::fs::read(out.path().join("vars.yml")).unwrap() == vars.as_bytes());
}

#[test]
#[ignore = "needs root: steps live in /var/lib/kswizard on the taskbox"]
fn ctrl_c_on_install_says_how_to_resume_and_exits_130() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    assert!(
        kswizard::engine::transport::is_root(),
        "needs root: run it through `bash .ci/run`"
    );
    let dir = conf_dir(&[(
        "hosts.ini",
        "[all]\ntaskbox ansible_connection=local ip=127.0.0.1\n[kube-master]\ntaskbox\n[kube-node]\ntaskbox\n[etcd]\ntaskbox\n",
    )]);
    let trace = dir.path().join("ran");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "steps:\n- {{id: slow, roles: [all], run: 'sleep 2; echo x >> {}'}}\n",
            trace.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kswizard"))
        .args(["install", "--yes", "--output", "json", "--conf"])
        .arg(dir.path())
        .arg("--plan")
        .arg(&plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut install_id = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        let e: Value = serde_json::from_str(&l).unwrap();
        if e["event"] == "plan" {
            install_id = e["install_id"].as_str().unwrap().to_string();
        }
        if e["event"] == "started" {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let last: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(
        (&last["event"], &last["interrupted"]),
        (&"summary".into(), &true.into())
    );
    assert!(
        stderr.contains("kswizard install --resume --conf"),
        "{stderr}"
    );
    // The step went on without kswizard; the resume finds it and does not run it again.
    let run = kswizard(&[
        "install",
        "--resume",
        "--output",
        "json",
        "--conf",
        dir.path().to_str().unwrap(),
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&trace).unwrap(), "x\n");
    let _ = std::fs::remove_dir_all(format!("/var/lib/kswizard/{install_id}"));
}

#[test]
fn status_says_how_the_conf_differs_from_the_installed_cluster_and_install_refuses_a_lost_host() {
    let dir = conf_dir(&[(
        "hosts.ini",
        "[all]\nm1 ansible_host=127.0.0.1\nw1 ansible_host=127.0.0.2\n[kube-master]\nm1\n[kube-node]\nw1\n[etcd]\nm1\n",
    )]);
    let conf = dir.path();
    let state = tempfile::tempdir().unwrap();
    // The record of an install that also had w2 (a worker since taken out of the conf by hand).
    let (mut cluster, _) = kswizard::conf::load(conf).unwrap();
    let mut w2 = cluster.hosts[1].clone();
    w2.name = "w2".into();
    cluster.hosts.push(w2);
    cluster.hosts.remove(1);
    kswizard::engine::installed::Installed::of(&cluster, "i1")
        .save(state.path())
        .unwrap();
    let (c, s) = (conf.to_str().unwrap(), state.path().to_str().unwrap());
    let run = kswizard(&["status", "--conf", c, "--state", s]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("+ w1 (worker) added\n      `install` joins as a worker"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("- w2 (worker) no longer in the conf\n      `install` refuses while it is missing: `kswizard remove w2`"), "{}", run.stdout);
    let run = kswizard(&["status", "--conf", c, "--state", s, "--format", "json"]);
    assert_eq!(
        json(&run)["conf_vs_installed"][0]["change"],
        "+ w1 (worker) added"
    );
    let run = kswizard(&["install", "--conf", c, "--state", s, "--yes"]);
    assert!(
        run.stderr.contains("`kswizard remove w2`"),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(!state.path().join("journal.jsonl").exists(), "nothing ran");
}

#[test]
fn status_names_an_unfinished_operation_and_the_command_that_goes_on_with_it() {
    let dir = conf_dir(&[(
        "hosts.ini",
        "[all]\nm1 ansible_host=127.0.0.1\nw1 ansible_host=127.0.0.2\n[kube-master]\nm1\n[kube-node]\nw1\n[etcd]\nm1\n",
    )]);
    let state = tempfile::tempdir().unwrap();
    // A remove of w1 cut after its drain: its journal and its pending hosts, as the command left them.
    let ops = state.path().join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    std::fs::write(
        ops.join("remove.jsonl"),
        concat!(
            r#"{"t":"begin","install_id":"op-1","config":"","ts":1}"#,
            "\n",
            r#"{"t":"start","node":"m1","step":"drain","attempt":1,"fp":"f","ts":2}"#,
            "\n",
            r#"{"t":"end","node":"m1","step":"drain","status":"ok","ts":3}"#,
            "\n",
            r#"{"t":"start","node":"w1","step":"node-reset","attempt":1,"fp":"f","ts":4}"#,
            "\n",
        ),
    )
    .unwrap();
    std::fs::write(ops.join("remove.pending"), "w1\n").unwrap();
    let (c, s) = (dir.path().to_str().unwrap(), state.path().to_str().unwrap());
    let run = kswizard(&["status", "--conf", c, "--state", s]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = format!(
        "unfinished: remove of w1 (1 step done): `kswizard remove w1 --conf {c}` goes on where it stopped"
    );
    assert!(run.stdout.contains(&want), "{}", run.stdout);
    let run = kswizard(&["status", "--conf", c, "--state", s, "--format", "json"]);
    let u = &json(&run)["unfinished_operations"][0];
    assert_eq!((&u["operation"], &u["done"]), (&"remove".into(), &1.into()));
}
