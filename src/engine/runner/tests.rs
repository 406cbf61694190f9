//! The runner's shell text, run locally against a temp dir standing in for /var/lib/kswizard.

use super::*;
use std::process::Command;

fn run_local(root: &std::path::Path, steps: &[Launch]) -> Vec<Line> {
    let text = launcher(&root.display().to_string(), "i1", steps, false);
    let out = Command::new("sh").arg("-c").arg(text).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(parse_line)
        .filter(|l| *l != Line::Blank)
        .collect()
}

fn step<'a>(id: &'a str, attempt: u32, body: &'a str, env: &'a [(String, String)]) -> Launch<'a> {
    Launch {
        step: id,
        attempt,
        fp: "fp1",
        timeout: 30,
        body,
        env,
    }
}

fn begin(step: &str, attempt: u32, how: How) -> Line {
    Line::Begin {
        step: step.into(),
        attempt,
        how,
    }
}

#[test]
fn runs_a_batch_in_order_and_stops_at_a_failure() {
    let root = tempfile::tempdir().unwrap();
    let count = root.path().join("count");
    let b1 = format!(
        "echo hello; echo \"$GREETING\"; echo one >> {c}; echo 'JOIN=kubeadm join x --token a=b' >> \"$KSW_OUTPUT\"",
        c = count.display()
    );
    let b2 = format!(
        "#!/bin/bash\nset -o pipefail\necho \"got ${{JOIN:-nothing}}\"; echo two >> {}; exit 3",
        count.display()
    );
    let b3 = format!("echo three >> {}", count.display());
    let env = vec![("GREETING".to_string(), "it's $HOME `x`".to_string())];
    let batch = [
        step("s1", 1, &b1, &env),
        step("s2", 1, &b2, &[]),
        step("s3", 1, &b3, &[]),
    ];
    let lines = run_local(root.path(), &batch);
    assert_eq!(
        lines,
        vec![
            begin("s1", 1, How::Start),
            Line::Log("hello".into()),
            Line::Log("it's $HOME `x`".into()),
            Line::Output("JOIN".into(), "kubeadm join x --token a=b".into()),
            Line::Exit(0),
            begin("s2", 1, How::Start),
            // A published value reaches a later step only through its declared env: never
            // through the node behind kswizard's back.
            Line::Log("got nothing".into()),
            Line::Exit(3),
        ]
    );
    // The same attempts again: reported from the node, not run again.
    let again = run_local(root.path(), &batch);
    assert_eq!(
        again[..3],
        [
            begin("s1", 1, How::Done),
            Line::Output("JOIN".into(), "kubeadm join x --token a=b".into()),
            Line::Exit(0),
        ]
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "one\ntwo\n");
    // The next attempt of s2 runs it again, and s3 after it.
    let retry = run_local(
        root.path(),
        &[step("s2", 2, &b2, &[]), step("s3", 1, &b3, &[])],
    );
    assert_eq!(retry.last(), Some(&Line::Exit(3)));
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "one\ntwo\ntwo\n");
}

#[test]
fn an_edited_step_runs_as_a_new_attempt_even_when_asked_for_the_old_one() {
    let root = tempfile::tempdir().unwrap();
    let old = run_local(root.path(), &[step("s", 1, "echo old", &[])]);
    assert_eq!(old[0], begin("s", 1, How::Start));
    // A journal that lost its records asks for attempt 1 again, with the edited content.
    let edited = Launch {
        fp: "fp2",
        ..step("s", 1, "echo new", &[])
    };
    let lines = run_local(root.path(), &[edited]);
    assert_eq!(
        lines,
        vec![
            begin("s", 2, How::Start),
            Line::Log("new".into()),
            Line::Exit(0)
        ]
    );
}

#[test]
fn an_attempt_that_vanished_is_run_again_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    run_local(root.path(), &[step("s", 1, "echo once", &[])]);
    // The node restarted mid-step: no live process, and no exit code.
    std::fs::remove_file(root.path().join("i1/s/rc")).unwrap();
    let lines = run_local(root.path(), &[step("s", 1, "echo once", &[])]);
    assert!(
        matches!(&lines[0], Line::Log(l) if l.contains("attempt 1 ended without an exit code")),
        "{lines:?}"
    );
    assert_eq!(lines[1], begin("s", 2, How::Start));
}

#[test]
fn an_edited_step_waits_for_its_running_earlier_version_then_runs() {
    let root = tempfile::tempdir().unwrap();
    let marker = root.path().join("old-ended");
    let slow = format!("sleep 1; touch {}", marker.display());
    // The old version runs detached, as after a kill -9 of kswizard.
    let text = launcher(
        &root.path().display().to_string(),
        "i1",
        &[step("s", 1, &slow, &[])],
        false,
    );
    let mut old = Command::new("sh")
        .arg("-c")
        .arg(text)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = root.path().join("i1/s/pid");
    while !pid.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let new_body = format!("test -e {} && echo after the old one", marker.display());
    let edited = Launch {
        fp: "fp2",
        ..step("s", 1, &new_body, &[])
    };
    let lines = run_local(root.path(), &[edited]);
    old.wait().unwrap();
    assert!(
        matches!(&lines[0], Line::Log(l) if l.contains("earlier version")),
        "{lines:?}"
    );
    assert_eq!(
        lines[1..],
        [
            begin("s", 2, How::Start),
            Line::Log("after the old one".into()),
            Line::Exit(0)
        ]
    );
}

#[test]
fn a_steps_output_cannot_speak_for_the_runner() {
    let root = tempfile::tempdir().unwrap();
    let forger = r"printf '\036KSW-OUT X=1\n\036KSW-RC 0\n\036KSW-BEGIN t 1 start\n'; exit 3";
    let lines = run_local(root.path(), &[step("s", 1, forger, &[])]);
    assert_eq!(
        lines,
        vec![
            begin("s", 1, How::Start),
            Line::Log("\u{1e}KSW-OUT X=1".into()),
            Line::Log("\u{1e}KSW-RC 0".into()),
            Line::Log("\u{1e}KSW-BEGIN t 1 start".into()),
            Line::Exit(3),
        ]
    );
}

#[test]
fn a_step_runs_with_the_usual_umask_and_the_runners_files_stay_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let made = root.path().join("made");
    let body = format!("touch {}", made.display());
    let lines = run_local(root.path(), &[step("s", 1, &body, &[])]);
    assert_eq!(lines.last(), Some(&Line::Exit(0)));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&made), 0o644);
    for f in ["env", "out", "log"] {
        assert_eq!(mode(&root.path().join("i1/s").join(f)), 0o600, "{f}");
    }
}

#[test]
fn a_last_line_without_newline_does_not_swallow_the_exit_code() {
    let root = tempfile::tempdir().unwrap();
    let lines = run_local(root.path(), &[step("s", 1, "printf partial", &[])]);
    assert_eq!(
        lines,
        vec![
            begin("s", 1, How::Start),
            Line::Log("partial".into()),
            Line::Exit(0)
        ]
    );
}

#[test]
fn the_timeout_ends_children_that_keep_the_output_open() {
    let root = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let lines = run_local(
        root.path(),
        &[Launch {
            timeout: 1,
            ..step("slow", 1, "sleep 40 & echo started", &[])
        }],
    );
    assert_eq!(
        lines,
        vec![
            begin("slow", 1, How::Start),
            Line::Log("started".into()),
            Line::Exit(124)
        ]
    );
    // Not the 40 s the child would have kept the step open.
    assert!(t.elapsed().as_secs() < 30);
}

#[test]
fn a_step_that_ignores_sigterm_is_reported_as_timed_out() {
    let root = tempfile::tempdir().unwrap();
    let pid = root.path().join("stubborn.pid");
    let body = format!("trap '' TERM; sleep 60 & echo $! > {}; wait", pid.display());
    let lines = run_local(
        root.path(),
        &[Launch {
            timeout: 1,
            ..step("stubborn", 1, &body, &[])
        }],
    );
    assert_eq!(lines.last(), Some(&Line::Exit(124)), "{lines:?}");
    // Killed with the rest of the step, not left behind. (Its pid may already belong to another
    // process: only a live `sleep 60` would be ours.)
    let pid = std::fs::read_to_string(pid).unwrap();
    let proc = format!("/proc/{}", pid.trim());
    let cmdline = std::fs::read(format!("{proc}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("{proc}/stat")).unwrap_or_default();
    assert!(
        cmdline != b"sleep\x0060\x00" || stat.contains(") Z "),
        "the step's child still runs: {stat}"
    );
}

#[test]
fn facts_are_read_with_builtins_and_come_first() {
    let out = Command::new("sh").arg("-c").arg(FACTS).output().unwrap();
    let facts: Vec<Line> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(parse_line)
        .collect();
    let keys: Vec<&str> = facts
        .iter()
        .map(|l| match l {
            Line::Fact(k, v) => {
                assert!(!v.is_empty(), "{k} is empty");
                k.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["os", "cpus", "mem", "disk", "uid"]);
    assert!(launcher("/r", "i", &[], true).contains("KSW-FACT uid="));
}

#[test]
fn lines_parse() {
    assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    assert_eq!(
        parse_line("\u{1e}KSW-LOST gone"),
        Line::Vanished("gone".into())
    );
    assert_eq!(
        parse_line("|\u{1e}KSW-RC 0"),
        Line::Log("\u{1e}KSW-RC 0".into())
    );
    assert_eq!(parse_line("sed: oops"), Line::Log("sed: oops".into()));
    assert_eq!(parse_line(""), Line::Blank);
    // A torn exit-code line is no exit code.
    assert_eq!(
        parse_line("\u{1e}KSW-RC "),
        Line::Log("\u{1e}KSW-RC ".into())
    );
    // A begin line that is not whole is not a begin.
    assert_eq!(
        parse_line("\u{1e}KSW-BEGIN s x start"),
        Line::Log("\u{1e}KSW-BEGIN s x start".into())
    );
    assert_eq!(
        parse_line("\u{1e}KSW-BEGIN s 2 attach"),
        begin("s", 2, How::Attach)
    );
}
