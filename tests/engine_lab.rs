//! The install engine against a real lab: systemd nodes with their own network namespaces on the
//! lab's bridge. Needs root and the lab's packages: ignored by a plain `cargo nextest run`, run by
//! `.ci/run` (`--run-ignored all`, as root); each test has a lab of its own on its own subnet.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::lab::{LabGuard, Tmpfs, lab_up};
use common::{finished, install, install_plan_watched, kswizard};
use kswizard::model::{Auth, Cluster, Secret};

/// The engine's view of a test lab: traces of what steps ran, plans next to conf dirs.
struct Traced(LabGuard);

impl std::ops::Deref for Traced {
    type Target = LabGuard;
    fn deref(&self) -> &LabGuard {
        &self.0
    }
}

fn traced_lab(subnet: u8, nodes: usize) -> Traced {
    let g = Traced(lab_up(subnet, nodes));
    // Steps run as root on the nodes; the trace dir is in the lab's shared dir, at the same path
    // on every node and here.
    std::fs::create_dir_all(g.trace()).unwrap();
    g
}

impl Traced {
    /// A shared (not node-private) directory where test steps leave their traces.
    fn trace(&self) -> PathBuf {
        self.lab.shared.join("trace")
    }

    /// Write `cluster` as a conf dir of its own, and `plan` next to it.
    fn conf_with(&self, name: &str, cluster: &Cluster, plan: &str) -> (PathBuf, PathBuf) {
        let conf = self.conf_dir(name, cluster);
        let plan_path = conf.parent().unwrap().join("plan.yaml");
        std::fs::write(
            &plan_path,
            plan.replace("TRACE", &self.trace().display().to_string()),
        )
        .unwrap();
        (conf, plan_path)
    }

    fn count(&self, node: &str, step: &str) -> usize {
        std::fs::read_to_string(self.trace().join(format!("{node}-{step}")))
            .map_or(0, |s| s.lines().count())
    }

    /// Let `node`'s `GATED` step go on (before it starts: it does not wait at all).
    fn let_go(&self, node: &str) {
        std::fs::write(self.trace().join(format!("{node}.go")), "").unwrap();
    }
}

/// A step's `extra` that holds it on its node until the test lets it go (`Traced::let_go`), so
/// that "mid-step" is a fact and not a guess about how long the install takes to get there: it
/// leaves `<node>.began` in the trace dir, then waits for `<node>.go` (at most 120 s).
const GATED: &str = "touch TRACE/$KSW_NODE.began; for _ in $(seq 1200); do [ -e TRACE/$KSW_NODE.go ] && break; sleep 0.1; done";

/// Wait (at most 120 s: an install on a loaded machine takes its time to get there) until
/// `node`'s `GATED` step has begun.
fn wait_began(trace: &Path, node: &str) {
    let began = trace.join(format!("{node}.began"));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !began.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{node}'s step did not begin within 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every step appends "<start ns> <end ns>" to TRACE/<node>-<step>.
const TRACED: &str =
    r#"s=$(date +%s%N); sleep 0.2; echo "$s $(date +%s%N)" >> TRACE/$KSW_NODE-$KSW_STEP"#;

fn traced_step(id: &str, roles: &str, after: &str, extra: &str) -> String {
    format!(
        "- id: {id}\n  roles: [{roles}]\n  after: [{after}]\n  run: |\n    KSW_STEP={id}\n    {extra}\n    {TRACED}\n"
    )
}

fn spans(g: &Traced, node: &str, step: &str) -> Vec<(u128, u128)> {
    std::fs::read_to_string(g.trace().join(format!("{node}-{step}")))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<u128>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect()
}

#[test]
#[ignore = "needs root and the lab"]
fn plan_runs_everywhere_in_order_with_barriers_and_outputs() {
    let g = traced_lab(71, 6);
    let plan = format!(
        "steps:\n{}{}{}{}",
        traced_step("prep", "all", "", ""),
        common::keyed(
            traced_step(
                "init",
                "first-master",
                "prep",
                "echo \"JOIN=join-$KSW_NODE-token\" >> \"$KSW_OUTPUT\""
            ),
            &["outputs: [JOIN]"]
        ),
        common::keyed(
            traced_step(
                "join",
                "worker",
                "init",
                "echo \"$JOIN\" > TRACE/$KSW_NODE-joined"
            ),
            &["needs: [JOIN]"]
        ),
        traced_step(
            "check",
            "all",
            "",
            "echo roles=$KSW_ROLES masters=$KSW_MASTERS lb=$KSW_LB_ADDRESS:$KSW_LB_PORT"
        ),
    );
    let (conf, plan) = g.conf_with("a", &g.cluster(), &plan);
    let (code, events) = install(&conf, &plan, &[]);
    assert_eq!(code, 0, "{events:#?}");
    let nodes: Vec<String> = g.lab.nodes.iter().map(|n| n.name.clone()).collect();
    // Ran once everywhere it should, nowhere else.
    for n in &nodes {
        assert_eq!(g.count(n, "prep"), 1);
        assert_eq!(g.count(n, "check"), 1);
        let worker = n.starts_with("worker");
        assert_eq!(g.count(n, "join"), usize::from(worker), "{n}");
        assert_eq!(g.count(n, "init"), usize::from(n == "master1"), "{n}");
    }
    // Barrier: init starts after prep ended on every node; join after init.
    let prep_end = nodes
        .iter()
        .map(|n| spans(&g, n, "prep")[0].1)
        .max()
        .unwrap();
    let init = spans(&g, "master1", "init")[0];
    assert!(
        init.0 >= prep_end,
        "init started before prep finished everywhere"
    );
    for n in nodes.iter().filter(|n| n.starts_with("worker")) {
        assert!(spans(&g, n, "join")[0].0 >= init.1);
        // The value master1 published reached the workers as environment.
        let joined = std::fs::read_to_string(g.trace().join(format!("{n}-joined"))).unwrap();
        assert_eq!(joined.trim(), "join-master1-token");
    }
    // Steps without a barrier do not wait: some node's `check` overlaps another's `join` or `init`.
    let outputs: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "output" && e["step"] == "check")
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert!(
        outputs.iter().any(|l| l.starts_with(
            "roles=master,etcd masters=10.231.71.1,10.231.71.2,10.231.71.3 lb=10.231.71.250:6443"
        )),
        "{outputs:?}"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["ok"], 6 + 1 + 3 + 6);
}

#[test]
#[ignore = "needs root and the lab"]
fn a_failing_step_stops_only_its_node() {
    let g = traced_lab(72, 4);
    let plan = format!(
        "steps:\n{}{}{}",
        traced_step(
            "one",
            "all",
            "",
            "if [ \"$KSW_NODE\" = master2 ]; then echo 'disk full on master2' >&2; exit 3; fi"
        ),
        traced_step("two", "all", "", ""),
        traced_step("three", "worker", "one", ""),
    );
    let mut cluster = g.cluster();
    cluster.hosts.truncate(4);
    let (conf, plan) = g.conf_with("b", &cluster, &plan);
    let (code, events) = install(&conf, &plan, &[]);
    assert_eq!(code, 1);
    let f = finished(&events);
    assert_eq!(
        f[&("master2".into(), "one".into())],
        ("failed".into(), "exit code 3".into())
    );
    assert_eq!(f[&("master2".into(), "two".into())].0, "skipped");
    assert_eq!(g.count("master2", "two"), 0);
    for n in ["master1", "master3", "worker1"] {
        assert_eq!(f[&(n.to_string(), "two".to_string())].0, "ok", "{n}");
    }
    // `three` waits for `one` on every node, so it cannot run anywhere.
    assert_eq!(
        f[&("worker1".into(), "three".into())],
        (
            "skipped".into(),
            "waits for step 'one', which failed on master2".into()
        )
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["failures"][0]["node"], "master2");
    assert!(
        summary["failures"][0]["log_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "disk full on master2")
    );
}

#[test]
#[ignore = "needs root and the lab"]
fn kill_9_then_resume_runs_every_step_exactly_once() {
    let g = traced_lab(73, 6);
    let mut plan = String::from("steps:\n");
    for i in 0..6 {
        let after = if i == 3 { "s2" } else { "" };
        plan.push_str(&traced_step(&format!("s{i}"), "all", after, "sleep 0.3"));
    }
    let (conf, plan) = g.conf_with("c", &g.cluster(), &plan);
    // Kill it in the middle: after some steps finished, while others run.
    let mut child = common::install_until(&conf, &plan, "finished", 10);
    Command::new("kill")
        .arg("-9")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let _ = child.wait();
    let (code, events) = install(&conf, &plan, &["--resume"]);
    assert_eq!(code, 0, "{events:#?}");
    let plan_event = &events[0];
    // Killed mid-run: not all was done. (The journal may lag behind what was printed: records
    // still queued when kswizard died are lost, and the nodes' own state covers them.)
    let done = plan_event["done"].as_array().unwrap().len();
    assert!(done < 36, "{plan_event}");
    for n in &g.lab.nodes {
        for i in 0..6 {
            assert_eq!(
                g.count(&n.name, &format!("s{i}")),
                1,
                "{} s{i} ran {} times",
                n.name,
                g.count(&n.name, &format!("s{i}"))
            );
        }
    }
    // A third run has nothing left to do.
    let (code, events) = install(&conf, &plan, &["--resume"]);
    assert_eq!(code, 0);
    assert_eq!(events.last().unwrap()["already_done"], 36);
}

/// `kswizard install` started in the background (JSON output, stdout piped).
fn spawn_install(conf: &Path, plan: &Path, extra: &[&str]) -> std::process::Child {
    kswizard()
        .args(["install", "--yes", "--output", "json", "--conf"])
        .arg(conf)
        .arg("--plan")
        .arg(plan)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A small deterministic generator: the campaign's kill points are the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
#[ignore = "needs root and the lab"]
fn kill_9_campaign_truncation_and_a_full_disk_run_every_step_exactly_once() {
    let g = traced_lab(83, 3);
    let mut plan = String::from("steps:\n");
    for i in 0..8 {
        let after = if i % 3 == 2 {
            format!("s{}", i - 1)
        } else {
            String::new()
        };
        plan.push_str(&traced_step(&format!("s{i}"), "all", &after, "sleep 0.15"));
    }
    let (conf, plan) = g.conf_with("campaign", &g.cluster(), &plan);
    let state = conf.parent().unwrap().join(".kswizard");
    let journal = state.join("journal.jsonl");
    let exactly_once = |when: &str| {
        for n in &g.lab.nodes {
            for i in 0..8 {
                let c = g.count(&n.name, &format!("s{i}"));
                assert!(c <= 1, "{when}: {} s{i} ran {c} times", n.name);
            }
        }
    };
    let all_once = |when: &str| {
        for n in &g.lab.nodes {
            for i in 0..8 {
                assert_eq!(
                    g.count(&n.name, &format!("s{i}")),
                    1,
                    "{when}: {} s{i}",
                    n.name
                );
            }
        }
    };
    let mut rng = Xorshift(0x5eed_cafe);
    for round in 0..3 {
        // A new install each round (the trace starts empty), killed twice in a row at random
        // points, the journal cut at a random byte after the second kill, then resumed to the end.
        for f in std::fs::read_dir(g.trace()).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        for kill in 0..2 {
            let extra: &[&str] = if kill == 0 {
                &["--restart"]
            } else {
                &["--resume"]
            };
            let mut child = spawn_install(&conf, &plan, extra);
            let ms = 300 + rng.below(2500);
            std::thread::sleep(Duration::from_millis(ms));
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("round {round}: kill {kill} after {ms} ms");
            exactly_once(&format!("round {round}, kill {kill}"));
        }
        let bytes = std::fs::read(&journal).unwrap();
        let first_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let cut = first_line + rng.below((bytes.len() - first_line + 1) as u64) as usize;
        std::fs::write(&journal, &bytes[..cut]).unwrap();
        eprintln!(
            "round {round}: journal cut at byte {cut} of {}",
            bytes.len()
        );
        // Steps the killed runs left running finish on their own; the resume attaches to them.
        let (code, events) = install(&conf, &plan, &["--resume"]);
        assert_eq!(code, 0, "round {round}: {events:#?}");
        all_once(&format!("round {round}"));
    }

    // A full disk under the state directory: the journal cannot be written, no step starts
    // that a resume could not account for, and once there is room again the resume finishes.
    for f in std::fs::read_dir(g.trace()).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let small = conf.parent().unwrap().join("small");
    let _tmpfs = Tmpfs::mount(&small, "64k");
    std::fs::copy(state.join("known_hosts"), small.join("known_hosts")).unwrap();
    // Leave two pages: one for the run's control dir (made before the journal, for preflight),
    // one for the journal, which fills up a few records in.
    let filler = small.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let full = std::fs::metadata(&filler).unwrap().len();
    std::fs::write(&filler, vec![0u8; (full - 8192) as usize]).unwrap();
    let state_flag = ["--state", small.to_str().unwrap()];
    let out = kswizard()
        .args([
            "install",
            "--yes",
            "--restart",
            "--output",
            "json",
            "--conf",
        ])
        .arg(&conf)
        .arg("--plan")
        .arg(&plan)
        .args(state_flag)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("the journal cannot be written")
            || stderr.contains("journal could not be written"),
        "{stdout}\n{stderr}"
    );
    exactly_once("disk full");
    std::fs::remove_file(&filler).unwrap();
    let (code, events) = install(
        &conf,
        &plan,
        &["--resume", "--state", small.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{events:#?}");
    all_once("after the disk had room again");
}

#[test]
#[ignore = "needs root and the lab"]
fn an_sshd_killed_mid_step_fails_that_node_and_the_rest_finish() {
    let g = traced_lab(74, 3);
    let plan = format!(
        "steps:\n{}{}",
        traced_step("long", "all", "", GATED),
        traced_step("after", "all", "", "")
    );
    let (conf, plan) = g.conf_with("d", &g.cluster(), &plan);
    let victim = g.lab.nodes[1].clone();
    for n in g.lab.nodes.iter().filter(|n| n.name != victim.name) {
        g.let_go(&n.name);
    }
    // sshd dies while the victim's step runs (it waits for the test: still running after).
    let node = victim.clone();
    let trace = g.trace();
    let killer = std::thread::spawn(move || {
        wait_began(&trace, &node.name);
        node.stop_ssh().unwrap();
    });
    let (code, events) = install(&conf, &plan, &["--reconnect-for", "4"]);
    killer.join().unwrap();
    assert_eq!(code, 1);
    let f = finished(&events);
    let (status, reason) = &f[&(victim.name.clone(), "long".to_string())];
    assert_eq!(status, "failed");
    assert!(
        reason.starts_with(&format!(
            "lost contact with {} during step 'long' and could not reconnect within 4 s",
            victim.name
        )),
        "{reason}"
    );
    // The tries are shown in the step's log as they happen.
    assert!(events.iter().any(|e| e["event"] == "output"
        && e["node"] == victim.name.as_str()
        && e["line"].as_str().unwrap().contains("reconnecting (try 2")));
    for n in g.lab.nodes.iter().filter(|n| n.name != victim.name) {
        assert_eq!(f[&(n.name.clone(), "after".to_string())].0, "ok");
    }

    // sshd comes back: a resume finds the step the node went on running, and does not run it
    // a second time.
    victim.start_ssh().unwrap();
    g.let_go(&victim.name);
    let (code, events) = install(&conf, &plan, &["--resume"]);
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(g.count(&victim.name, "long"), 1);
    assert_eq!(g.count(&victim.name, "after"), 1);
}

#[test]
#[ignore = "needs root and the lab"]
fn a_node_whose_sshd_comes_back_is_reconnected_and_its_step_not_run_twice() {
    let g = traced_lab(82, 2);
    let plan = format!(
        "steps:\n{}{}",
        traced_step("long", "all", "", GATED),
        traced_step("after", "all", "long", "")
    );
    let (conf, plan) = g.conf_with("r", &g.cluster(), &plan);
    let victim = g.lab.nodes[1].clone();
    for n in g.lab.nodes.iter().filter(|n| n.name != victim.name) {
        g.let_go(&n.name);
    }
    // sshd dies while the victim's step runs and is back 2.5 s later (the first reconnects
    // fail); the step goes on only once kswizard has re-attached to it.
    let node = victim.clone();
    let trace = g.trace();
    let bouncer = std::thread::spawn(move || {
        wait_began(&trace, &node.name);
        node.stop_ssh().unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        node.start_ssh().unwrap();
    });
    let (code, events) = install_plan_watched(&conf, &plan, &[], |e| {
        if e["event"] == "started"
            && e["node"] == victim.name.as_str()
            && e["step"] == "long"
            && e["reattached"] == true
        {
            g.let_go(&victim.name);
        }
    });
    bouncer.join().unwrap();
    assert_eq!(code, 0, "{events:#?}");
    for n in &g.lab.nodes {
        assert_eq!(g.count(&n.name, "long"), 1, "{}", n.name);
        assert_eq!(g.count(&n.name, "after"), 1, "{}", n.name);
    }
    let summary = events.last().unwrap();
    // The victim's step was started by this run and re-attached to after the reconnect.
    assert_eq!(
        summary["ok"].as_u64().unwrap() + summary["reattached"].as_u64().unwrap(),
        4
    );
}

#[test]
#[ignore = "needs root and the lab"]
fn password_login_and_sudo_password_work_and_leave_no_password_behind() {
    let g = traced_lab(75, 3);
    let pw = g.lab.password().unwrap();
    let mut cluster = g.cluster();
    // master2: password login and sudo password; master3: key login, sudo password.
    cluster.hosts[1].user = Some(g.lab.password_user.clone());
    cluster.hosts[1].auth = Auth::Password(pw.clone());
    cluster.hosts[1].become_pass = Some(pw.clone());
    cluster.hosts[2].user = Some(g.lab.password_user.clone());
    cluster.hosts[2].become_pass = Some(pw.clone());
    let plan = format!(
        "steps:\n{}",
        traced_step("whoami", "all", "", "echo uid=$(id -u)")
    );
    let (conf, plan) = g.conf_with("e", &cluster, &plan);
    let (code, events) = install(&conf, &plan, &[]);
    assert_eq!(code, 0, "{events:#?}");
    let uids: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "output")
        .map(|e| e["line"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["uid=0"; 3]);
    // Nothing kswizard wrote besides hosts.ini holds the password.
    let state = conf.parent().unwrap().join(".kswizard");
    let mut dirs = vec![state];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(pw.expose()),
                    "{}",
                    path.display()
                );
            }
        }
    }

    // A wrong password is a clear error for that host.
    cluster.hosts[1].auth = Auth::Password(Secret::new("not-the-password"));
    let (conf, plan) = g.conf_with("f", &cluster, &std::fs::read_to_string(&plan).unwrap());
    let (code, events) = install(&conf, &plan, &[]);
    assert_eq!(code, 1);
    let f = finished(&events);
    let (status, reason) = &f[&("master2".to_string(), "whoami".to_string())];
    assert_eq!(status, "failed");
    assert!(
        reason.starts_with("master2: SSH login refused (") && reason.contains("Permission denied"),
        "{reason}"
    );

    // A wrong sudo password too.
    cluster.hosts[1].auth = Auth::Password(pw.clone());
    cluster.hosts[2].become_pass = Some(Secret::new("wrong-sudo"));
    let (conf, plan) = g.conf_with("g", &cluster, &std::fs::read_to_string(&plan).unwrap());
    let (_, events) = install(&conf, &plan, &[]);
    let (status, reason) = &finished(&events)[&("master3".to_string(), "whoami".to_string())];
    assert_eq!(status, "failed");
    assert!(
        reason.starts_with("master3: the sudo password (ansible_become_pass) is wrong"),
        "{reason}"
    );
}

#[test]
#[ignore = "needs root and the lab"]
fn a_changed_host_key_is_refused() {
    let g = traced_lab(76, 2);
    let plan = format!("steps:\n{}", traced_step("one", "all", "", ""));
    let (conf, plan) = g.conf_with("h", &g.cluster(), &plan);
    assert_eq!(install(&conf, &plan, &[]).0, 0);
    // Pretend the second node now presents another key: pin a different one for it.
    let state = conf.parent().unwrap().join(".kswizard");
    let kh = state.join("known_hosts");
    let other = g.tmp.path().join("other");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    let victim = &g.lab.nodes[1];
    let pinned = format!("{} {}\n", victim.ip, other_key.join(" "));
    std::fs::write(&kh, pinned).unwrap();
    let (code, events) = install(&conf, &plan, &["--restart"]);
    assert_eq!(code, 1);
    let (status, reason) = &finished(&events)[&(victim.name.clone(), "one".to_string())];
    assert_eq!(status, "failed");
    let want = format!(
        "{}: the host key changed since kswizard first connected",
        victim.name
    );
    assert!(reason.starts_with(&want), "{reason}");
    // The other node is unaffected.
    assert_eq!(
        finished(&events)[&(g.lab.nodes[0].name.clone(), "one".to_string())].0,
        "ok"
    );
}

#[test]
#[ignore = "needs root and the lab"]
fn a_changed_step_is_named_and_run_again_on_resume() {
    let g = traced_lab(79, 2);
    let plan_text = format!(
        "steps:\n{}{}",
        traced_step("a", "all", "", "echo version one"),
        traced_step("b", "all", "", "")
    );
    let (conf, plan) = g.conf_with("i", &g.cluster(), &plan_text);
    assert_eq!(install(&conf, &plan, &[]).0, 0);
    std::fs::write(
        &plan,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("version one", "version two"),
    )
    .unwrap();
    let (code, events) = install(&conf, &plan, &["--resume"]);
    assert_eq!(code, 0);
    let changed: Vec<(String, String)> =
        serde_json::from_value(events[0]["changed"].clone()).unwrap();
    let names: Vec<String> = g.lab.nodes.iter().map(|n| n.name.clone()).collect();
    assert_eq!(
        changed,
        names
            .iter()
            .map(|n| (n.clone(), "a".to_string()))
            .collect::<Vec<_>>()
    );
    for n in &names {
        assert_eq!(g.count(n, "a"), 2, "{n}: the changed step runs again");
        assert_eq!(g.count(n, "b"), 1, "{n}: the unchanged one does not");
    }
}

#[test]
#[ignore = "needs root and the lab"]
fn secret_outputs_stay_off_the_journal_and_are_recalled_from_the_node_on_resume() {
    let g = traced_lab(80, 2);
    let plan_text = format!(
        "steps:\n{}{}{}",
        common::keyed(
            traced_step(
                "gen",
                "first-master",
                "",
                "echo CA_KEY=s3cr3t-value >> \"$KSW_OUTPUT\"; echo CA_CRT=public-cert >> \"$KSW_OUTPUT\""
            ),
            &["outputs: [CA_KEY, CA_CRT]"]
        ),
        common::keyed(
            traced_step(
                "use",
                "all",
                "gen",
                "echo \"$CA_KEY $CA_CRT\" >> TRACE/$KSW_NODE-got"
            ),
            &["needs: [CA_KEY, CA_CRT]"]
        ),
        // Needs the secret too, but waits only for `use`, not for `gen` itself.
        common::keyed(
            traced_step(
                "late",
                "all",
                "use",
                "echo \"$CA_KEY\" >> TRACE/$KSW_NODE-late"
            ),
            &["needs: [CA_KEY]"]
        )
    );
    let (conf, plan) = g.conf_with("j", &g.cluster(), &plan_text);
    assert_eq!(install(&conf, &plan, &[]).0, 0);
    let journal =
        std::fs::read_to_string(conf.parent().unwrap().join(".kswizard/journal.jsonl")).unwrap();
    assert!(!journal.contains("s3cr3t-value"), "{journal}");
    assert!(
        journal.contains("public-cert") && journal.contains("\"redacted\":[\"CA_KEY\"]"),
        "{journal}"
    );

    // Only `late` changes. On resume it runs again and still gets the secret: `gen` hands it back
    // from the node (without running again) before `late` starts, though `late` waits only for
    // `use`, which is done.
    std::fs::write(
        &plan,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("-late", "-late2"),
    )
    .unwrap();
    let (code, events) = install(&conf, &plan, &["--resume"]);
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(g.count("master1", "gen"), 1);
    for n in &g.lab.nodes {
        assert_eq!(g.count(&n.name, "use"), 1, "{}", n.name);
        let late = std::fs::read_to_string(g.trace().join(format!("{}-late2", n.name))).unwrap();
        assert_eq!(late.trim(), "s3cr3t-value", "{}", n.name);
    }
}
