//! The install engine over the local transport, in a temp directory: no root, no lab. Every
//! "node" is a local shell whose step directories live under a temp dir of its own (the runner's
//! state root is a parameter), so the executor, the runner and the journal run for real.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use kswizard::engine::control::Command;
use kswizard::engine::decide::Mode;
use kswizard::engine::events::{Event, Status, Summary};
use kswizard::engine::executor::{self, EngineError, Options};
use kswizard::engine::journal;
use kswizard::engine::plan::{self, Plan};
use kswizard::model::{Auth, Cluster, Host};

struct Bench {
    dir: tempfile::TempDir,
    cluster: Cluster,
}

impl Bench {
    /// `n` local nodes: the first is master and etcd, the rest are workers.
    fn new(n: usize) -> Bench {
        let mut cluster = Cluster::default();
        for i in 1..=n {
            let mut h = Host::new(format!("n{i}"), "127.0.0.1");
            h.auth = Auth::Local;
            cluster.hosts.push(h);
        }
        cluster.apply_preset();
        if n > 1 {
            for h in &mut cluster.hosts[1..] {
                h.roles.master = false;
                h.roles.etcd = false;
                h.roles.worker = true;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("trace")).unwrap();
        Bench { dir, cluster }
    }

    fn trace(&self) -> PathBuf {
        self.dir.path().join("trace")
    }

    /// Plan text with `TRACE` standing for the trace directory.
    fn plan(&self, text: &str) -> Plan {
        let text = text.replace("TRACE", &self.trace().display().to_string());
        plan::parse(&text, Path::new("plan.yaml"), |_| unreachable!()).unwrap()
    }

    fn opts(&self) -> Options {
        Options {
            state_root: format!("{}/nodes/{{node}}", self.dir.path().display()),
            reconnect_for: Duration::from_secs(2),
            ..Options::new(self.dir.path().join("state"))
        }
    }

    fn journal(&self) -> PathBuf {
        executor::journal_path(&self.dir.path().join("state"))
    }

    fn count(&self, node: &str, step: &str) -> usize {
        std::fs::read_to_string(self.trace().join(format!("{node}-{step}")))
            .map_or(0, |s| s.lines().count())
    }

    fn run(&self, plan: &Plan, opts: &Options) -> Result<(Summary, Vec<Event>), EngineError> {
        run(&self.cluster, plan, opts)
    }
}

fn run(
    cluster: &Cluster,
    plan: &Plan,
    opts: &Options,
) -> Result<(Summary, Vec<Event>), EngineError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let collect = tokio::spawn(async move {
            let mut v = Vec::new();
            while let Some(e) = rx.recv().await {
                v.push(e);
            }
            v
        });
        let r = executor::install(cluster, plan, opts, tx).await;
        let events = collect.await.unwrap();
        r.map(|s| (s, events))
    })
}

/// Every step appends a line to TRACE/<node>-<step>: how many times it ran.
const COUNTED: &str = "echo x >> TRACE/$KSW_NODE-$KSW_STEP";

fn counted(id: &str, roles: &str, extra: &str) -> String {
    format!(
        "- id: {id}\n  roles: [{roles}]\n  become: false\n  run: |\n    KSW_STEP={id}\n    {extra}\n    {COUNTED}\n"
    )
}

fn finished(events: &[Event], node: &str, step: &str) -> Option<(Status, Option<String>)> {
    events.iter().rev().find_map(|e| match e {
        Event::Finished {
            node: n,
            step: s,
            status,
            reason,
            ..
        } if n == node && s == step => Some((*status, reason.clone())),
        _ => None,
    })
}

fn outputs(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Output { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_workers_join_step_sees_only_the_values_it_declared() {
    let b = Bench::new(2);
    let plan = b.plan(&format!(
        "steps:\n{}{}",
        common::keyed(counted(
            "init",
            "first-master",
            "printf 'JOIN_TOKEN=t0ken-1234\\nJOIN_CERT_KEY=cert-key-5678\\nETCD_CA_KEY=ca-key-9012\\n' >> \"$KSW_OUTPUT\""
        ), &["outputs: [JOIN_TOKEN, JOIN_CERT_KEY, ETCD_CA_KEY]"]),
        common::keyed(counted("join", "worker", "env | sort > TRACE/$KSW_NODE-env"), &["needs: [JOIN_TOKEN]", "after: [init]"]),
    ));
    let (summary, _) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!((summary.ok, summary.failed), (2, 0), "{summary:?}");
    let env = std::fs::read_to_string(b.trace().join("n2-env")).unwrap();
    assert!(env.contains("JOIN_TOKEN=t0ken-1234"), "{env}");
    assert!(
        !env.contains("cert-key-5678") && !env.contains("ca-key-9012"),
        "{env}"
    );
    // The env file on the node was emptied once the step read it.
    let env_file = b.dir.path().join("nodes/n2");
    let found: Vec<_> = walk(&env_file)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "env"))
        .collect();
    assert!(!found.is_empty());
    for f in found {
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "", "{}", f.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn secret_outputs_are_never_shown_nor_journaled() {
    let b = Bench::new(1);
    let plan = b.plan(&format!(
        "steps:\n{}{}",
        common::keyed(counted(
            "gen",
            "all",
            "printf 'APP_CREDENTIALS=app-cred-4321\\nSSH_PRIVATE_KEY_B64=key-b64-8765\\nPUBLIC=plain-value\\n' >> \"$KSW_OUTPUT\""
        ), &["outputs: [APP_CREDENTIALS, SSH_PRIVATE_KEY_B64, PUBLIC]", "secrets: [APP_CREDENTIALS, SSH_PRIVATE_KEY_B64]"]),
        common::keyed(counted(
            "leak",
            "all",
            "echo \"creds $APP_CREDENTIALS key $SSH_PRIVATE_KEY_B64 public $PUBLIC\"; exit 4"
        ), &["needs: [APP_CREDENTIALS, SSH_PRIVATE_KEY_B64, PUBLIC]"]),
    ));
    let (summary, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!(summary.failed, 1);
    let shown = outputs(&events);
    assert!(
        shown.contains(&"creds *** key *** public plain-value".to_string()),
        "{shown:?}"
    );
    let tail = &summary.failures[0].log_tail;
    assert_eq!(tail, &["creds *** key *** public plain-value"]);
    let journal = std::fs::read_to_string(b.journal()).unwrap();
    assert!(
        !journal.contains("app-cred-4321") && !journal.contains("key-b64-8765"),
        "{journal}"
    );
    assert!(journal.contains("plain-value"));
    // The step's whole log kept on the taskbox is scrubbed too, and private.
    let Some(Event::Plan { logs, nodes, .. }) = events.first() else {
        panic!("{events:?}");
    };
    let file = kswizard::engine::step_logs::in_dir(logs, &nodes[0].node, "leak");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.ends_with("creds *** key *** public plain-value\n"),
        "{text}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn resume_refuses_when_there_is_nothing_to_resume() {
    let b = Bench::new(1);
    let plan = b.plan(&format!("steps:\n{}", counted("a", "all", "")));
    let opts = Options {
        resume: true,
        ..b.opts()
    };
    // No journal at all, then one truncated to nothing.
    assert!(matches!(
        b.run(&plan, &opts),
        Err(EngineError::NothingToResume(_))
    ));
    std::fs::create_dir_all(b.journal().parent().unwrap()).unwrap();
    std::fs::write(b.journal(), "").unwrap();
    let e = b.run(&plan, &opts).unwrap_err();
    assert!(
        e.to_string().contains("there is no install to resume"),
        "{e}"
    );
    assert_eq!(b.count("n1", "a"), 0);
}

#[test]
fn a_journal_truncated_anywhere_resumes_exactly_once() {
    let b = Bench::new(3);
    let steps: String = ["s1", "s2", "s3", "s4"]
        .iter()
        .map(|s| counted(s, "all", ""))
        .collect();
    let plan = b.plan(&format!(
        "steps:\n{steps}{}",
        common::keyed(counted("last", "all", ""), &["after: [s4]"])
    ));
    let (first, _) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!(first.ok, 15);
    let whole = std::fs::read_to_string(b.journal()).unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    // Cut after every record but the first (the install's begin): whatever the journal lost,
    // the nodes' own record of attempts says what ran, and nothing runs twice.
    for keep in 1..lines.len() {
        let mut cut = lines[..keep].join("\n");
        cut.push('\n');
        std::fs::write(b.journal(), cut).unwrap();
        let (s, _) = b
            .run(
                &plan,
                &Options {
                    resume: true,
                    ..b.opts()
                },
            )
            .unwrap();
        assert_eq!((s.ok, s.failed, s.skipped), (0, 0, 0), "kept {keep}: {s:?}");
        assert_eq!(s.already_done, 15, "kept {keep}: {s:?}");
        for n in ["n1", "n2", "n3"] {
            for st in ["s1", "s2", "s3", "s4", "last"] {
                assert_eq!(b.count(n, st), 1, "kept {keep}: {n} {st}");
            }
        }
    }
}

#[test]
fn a_host_that_left_the_conf_leaves_the_install_accounting() {
    let b = Bench::new(2);
    let plan = b.plan(&format!(
        "steps:\n{}",
        counted("a", "all", "[ \"$KSW_NODE\" = n2 ] && exit 3; true")
    ));
    let (s, _) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!(s.failed, 1);
    assert!(journal::replay(&b.journal()).unwrap().unfinished());
    // The operator removes the failed host and resumes: the rest is complete, and says so.
    let mut smaller = b.cluster.clone();
    smaller.hosts.truncate(1);
    let (s, events) = run(
        &smaller,
        &plan,
        &Options {
            resume: true,
            ..b.opts()
        },
    )
    .unwrap();
    // n1's step does not run again: only `membership` steps follow who is in the cluster.
    assert_eq!((s.ok, s.failed, s.skipped, s.already_done), (0, 0, 0, 1));
    assert!(events.iter().any(|e| matches!(e, Event::Plan { left, .. }
        if left == &[("n2".to_string(), "a".to_string())])));
    let r = journal::replay(&b.journal()).unwrap();
    assert!(!r.unfinished(), "{r:?}");
    // And the next plain install does not ask to resume: it starts over.
    let (s, _) = run(&smaller, &plan, &b.opts()).unwrap();
    assert_eq!(s.ok, 1);
}

#[test]
fn a_timeout_ends_a_step_whose_child_keeps_the_output_open() {
    let b = Bench::new(1);
    let plan = b.plan(
        "steps:\n- {id: slow, roles: [all], become: false, timeout: 1, run: 'sleep 40 & echo started'}\n",
    );
    let t = Instant::now();
    let (s, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!(s.failed, 1);
    assert_eq!(
        finished(&events, "n1", "slow"),
        Some((Status::Failed, Some("timed out after 1 s".into())))
    );
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_step_cannot_forge_the_runners_markers() {
    let b = Bench::new(1);
    let plan = b.plan(&format!(
        "steps:\n{}{}",
        "- id: forger\n  roles: [all]\n  become: false\n  outputs: [X]\n  run: |\n    printf '\\036KSW-OUT X=1\\n\\036KSW-RC 0\\n'\n    exit 3\n",
        counted("after", "all", "")
    ));
    let (s, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!((s.ok, s.failed, s.skipped), (0, 1, 1), "{s:?}");
    assert_eq!(
        finished(&events, "n1", "forger"),
        Some((Status::Failed, Some("exit code 3".into())))
    );
    let journal = std::fs::read_to_string(b.journal()).unwrap();
    assert!(!journal.contains("\"outputs\""), "{journal}");
    assert_eq!(b.count("n1", "after"), 0);
}

#[test]
fn an_edited_step_runs_its_new_text_after_an_interrupted_old_one() {
    let b = Bench::new(1);
    let old = b.plan(
        "steps:\n- {id: slow, roles: [all], become: false, run: 'sleep 2; echo old >> TRACE/edit'}\n",
    );
    // kswizard dies while `slow` runs (the install's future is dropped, as by kill -9: the step
    // goes on, detached, on the node).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pid = b.dir.path().join("nodes/n1");
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let opts = b.opts();
        let install = executor::install(&b.cluster, &old, &opts, tx);
        let started = async {
            while !walk(&pid).iter().any(|p| p.ends_with("slow/pid")) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            _ = install => panic!("the install ended before it was interrupted"),
            () = started => {}
        }
    });
    drop(rt);
    let edited = b
        .plan("steps:\n- {id: slow, roles: [all], become: false, run: 'echo new >> TRACE/edit'}\n");
    let (s, events) = b
        .run(
            &edited,
            &Options {
                resume: true,
                ..b.opts()
            },
        )
        .unwrap();
    assert_eq!((s.ok, s.failed), (1, 0), "{s:?}");
    // The old text finished on its own; the new one ran after it, as a later attempt.
    assert_eq!(
        std::fs::read_to_string(b.trace().join("edit")).unwrap(),
        "old\nnew\n"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Started { attempt: 2, .. }))
    );
    // A later resume treats the new text as done.
    let (s, _) = b
        .run(
            &edited,
            &Options {
                resume: true,
                ..b.opts()
            },
        )
        .unwrap();
    assert_eq!((s.ok, s.already_done), (0, 1));
}

#[test]
fn the_preview_says_what_an_install_would_run() {
    let b = Bench::new(2);
    let text = format!(
        "steps:\n{}{}",
        counted("a", "all", ""),
        counted("b", "all", "")
    );
    let plan = b.plan(&text);
    let replay = || journal::replay(&b.journal()).unwrap();
    let p = executor::preview(&b.cluster, &plan, &replay(), None, None);
    assert_eq!(
        (p.mode, p.complete, p.steps, p.nodes, p.done),
        (Mode::Fresh, false, 4, 2, 0)
    );
    b.run(&plan, &b.opts()).unwrap();
    // Complete, nothing changed: a plain install would run everything again.
    let p = executor::preview(&b.cluster, &plan, &replay(), None, None);
    assert_eq!((p.mode, p.complete, p.steps), (Mode::Fresh, true, 4));
    assert!(p.changed.is_empty());
    // One step edited: named as changed, which a resume would run.
    let edited = b.plan(&text.replacen("KSW_STEP=b", "KSW_STEP=b; true", 1));
    let p = executor::preview(&b.cluster, &edited, &replay(), None, None);
    assert_eq!(
        p.changed,
        [
            ("n1".to_string(), "b".to_string()),
            ("n2".to_string(), "b".to_string())
        ]
    );
    // An unfinished install goes on with what is left.
    let failing = b.plan(&text.replacen("KSW_STEP=b", "exit 1", 1));
    b.run(&failing, &b.opts()).unwrap();
    let p = executor::preview(&b.cluster, &failing, &replay(), None, None);
    assert_eq!(
        (p.mode, p.complete, p.steps, p.done),
        (Mode::Resume, false, 2, 2)
    );
}

/// A bundle in the bench's dir whose files (name, content, mode) go under `<dir>/node-root/`.
fn bundle(b: &Bench, files: &[(&str, &[u8], &str)]) -> PathBuf {
    use kswizard::bundle::{Entry, Manifest};
    let dir = b.dir.path().join("bundle");
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let mut m = Manifest {
        kubernetes: kswizard::model::KUBERNETES_VERSION.into(),
        arch: "amd64".into(),
        files: Vec::new(),
    };
    for (name, content, mode) in files {
        let file = format!("files/{name}");
        std::fs::write(dir.join(&file), content).unwrap();
        let (sha256, size) = kswizard::bundle::manifest::sha256_file(&dir.join(&file)).unwrap();
        m.files.push(Entry {
            name: (*name).into(),
            version: "v1".into(),
            file,
            target: format!("{}/node-root/bin/{name}", b.dir.path().display()),
            mode: (*mode).into(),
            sha256,
            size,
            roles: vec![plan::Role::All],
            source: None,
            member: None,
            checksum_url: None,
            standin: false,
        });
    }
    std::fs::write(dir.join(kswizard::bundle::MANIFEST), m.render()).unwrap();
    dir
}

fn delivered(events: &[Event]) -> (usize, u64, usize) {
    events
        .iter()
        .find_map(|e| match e {
            Event::Delivered {
                files,
                bytes,
                unchanged,
                ..
            } => Some((*files, *bytes, *unchanged)),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_bundle_is_delivered_once_and_a_damaged_one_is_refused_before_anything_is_copied() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bench::new(1);
    // Larger than a pipe buffer, so the transfer streams.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let dir = bundle(
        &b,
        &[
            ("tool", b"#!/bin/sh\necho delivered tool ran\n", "0755"),
            ("data", &big, "0640"),
        ],
    );
    b.cluster.settings.bundle = Some(dir.display().to_string());
    let root = b.dir.path().join("node-root/bin");
    let plan = b.plan(&format!(
        "steps:\n- {{id: deliver, roles: [all], deliver: bundle, become: false}}\n{}",
        counted("use", "all", &format!("{}/tool", root.display()))
    ));
    let opts = Options {
        bundle: Some(dir.clone()),
        ..b.opts()
    };
    let (s, events) = b.run(&plan, &opts).unwrap();
    assert_eq!((s.ok, s.failed), (2, 0), "{events:?}");
    assert_eq!(delivered(&events), (2, big.len() as u64 + 34, 0));
    assert_eq!(std::fs::read(root.join("data")).unwrap(), big);
    let mode = |f: &str| {
        std::fs::metadata(root.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!((mode("tool"), mode("data")), (0o755, 0o640));
    assert!(
        outputs(&events)
            .iter()
            .any(|l| l.contains("delivered tool ran"))
    );

    // Again: nothing is sent. A file changed on the node is sent again, and only it.
    let again = Options {
        restart: true,
        ..opts.clone()
    };
    let (_, events) = b.run(&plan, &again).unwrap();
    assert_eq!(delivered(&events), (0, 0, 2));
    std::fs::write(root.join("data"), b"drifted").unwrap();
    let (_, events) = b.run(&plan, &again).unwrap();
    assert_eq!(delivered(&events), (1, big.len() as u64, 1));
    assert_eq!(std::fs::read(root.join("data")).unwrap(), big);

    // A damaged bundle file: refused with its name, before the journal or the node hear of it.
    std::fs::remove_file(root.join("tool")).unwrap();
    let mut damaged = big.clone();
    damaged[1000] ^= 1;
    std::fs::write(dir.join("files/data"), &damaged).unwrap();
    let journal = std::fs::read(b.journal()).unwrap();
    let err = b.run(&plan, &again).unwrap_err().to_string();
    assert!(err.contains("files/data: sha256"), "{err}");
    assert!(!root.join("tool").exists());
    assert_eq!(std::fs::read(b.journal()).unwrap(), journal);
}

#[test]
fn a_bundle_for_another_kubernetes_version_is_refused_saying_which_to_fetch() {
    let mut b = Bench::new(1);
    let dir = bundle(&b, &[("tool", b"#!/bin/sh\n", "0755")]);
    let manifest = dir.join(kswizard::bundle::MANIFEST);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(kswizard::model::KUBERNETES_VERSION, "v1.29.0"),
    )
    .unwrap();
    b.cluster.settings.bundle = Some(dir.display().to_string());
    let plan = b.plan("steps:\n- {id: deliver, roles: [all], deliver: bundle, become: false}\n");
    let opts = Options {
        bundle: Some(dir),
        ..b.opts()
    };
    let err = b.run(&plan, &opts).unwrap_err().to_string();
    assert!(
        err.contains("the bundle is for Kubernetes v1.29.0")
            && err.contains(&format!(
                "bundle fetch --version {}",
                kswizard::model::KUBERNETES_VERSION
            )),
        "{err}"
    );
    assert!(!b.journal().exists());
}

/// A node-side preflight for local "nodes": facts of their own, a warning everywhere, and a
/// failure on the node named in `FAIL_ON` (written into the script by the test).
const PREFLIGHT: &str = r#"echo "FACT time=$(date -u +%s.%N)"
echo "FACT hostname=$KSW_NODE"
echo "FACT machine_id=id-$KSW_NODE"
echo "FACT addresses="
echo "CHECK cgroup warn v1 ;; use v2"
echo "CHECK state ok $KSW_STATE_ROOT ;; "
[ "$KSW_NODE" = FAIL_ON ] && echo "CHECK ports fail in use: 6443 (nc) ;; stop it"
echo "FACT time_end=$(date -u +%s.%N)"
echo END
"#;

fn with_preflight(b: &Bench, fail_on: &str) -> Plan {
    let text = format!(
        "preflight: pf.sh\nsteps:\n{}{}",
        counted("one", "all", ""),
        counted("two", "all", "")
    )
    .replace("TRACE", &b.trace().display().to_string());
    plan::parse(&text, Path::new("plan.yaml"), |s| {
        assert_eq!(s, "pf.sh");
        Ok(PREFLIGHT.replace("FAIL_ON", fail_on))
    })
    .unwrap()
}

fn preflights(events: &[Event]) -> Vec<(String, kswizard::engine::preflight::Level)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Preflight { node, status, .. } => Some((node.clone(), *status)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_failed_preflight_stops_the_install_before_any_step_or_journal() {
    use kswizard::engine::preflight::Level;
    let b = Bench::new(3);
    let plan = with_preflight(&b, "n2");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(executor::install(&b.cluster, &plan, &b.opts(), tx));
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let Err(EngineError::Preflight { nodes, table }) = r else {
        panic!("{r:?}");
    };
    assert_eq!(nodes, ["n2"]);
    assert!(
        table.contains("failed:\n  n2 ports: in use: 6443 (nc) (fix: stop it)\n"),
        "{table}"
    );
    assert!(
        table.contains("warnings:\n  n1 cgroup: v1 (fix: use v2)"),
        "{table}"
    );
    assert_eq!(
        preflights(&events),
        [
            ("n1".to_string(), Level::Warn),
            ("n2".to_string(), Level::Fail),
            ("n3".to_string(), Level::Warn)
        ]
    );
    // The runner's state root reached the script, per node.
    let Some(Event::Preflight { checks, .. }) = events.iter().find(|e| e.node() == Some("n3"))
    else {
        panic!("{events:?}");
    };
    let state = checks.iter().find(|c| c.id == "state").unwrap();
    assert!(state.reason.ends_with("/nodes/n3"), "{state:?}");
    assert!(matches!(events[0], Event::Plan { .. }), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Started { .. } | Event::Finished { .. })),
        "{events:?}"
    );
    assert_eq!(b.count("n1", "one"), 0);
    assert!(!b.journal().exists());
}

#[test]
fn warnings_do_not_stop_the_install_and_a_resume_with_nothing_to_run_skips_preflight() {
    use kswizard::engine::preflight::Level;
    let b = Bench::new(2);
    let plan = with_preflight(&b, "nobody");
    let (summary, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!((summary.ok, summary.failed), (4, 0), "{events:?}");
    assert_eq!(
        preflights(&events),
        [
            ("n1".to_string(), Level::Warn),
            ("n2".to_string(), Level::Warn)
        ]
    );
    // Preflight comes before the first step.
    let first_step = events
        .iter()
        .position(|e| matches!(e, Event::Started { .. }))
        .unwrap();
    let last_preflight = events
        .iter()
        .rposition(|e| matches!(e, Event::Preflight { .. }))
        .unwrap();
    assert!(last_preflight < first_step);
    assert_eq!(b.count("n2", "two"), 1);

    let resume = Options {
        resume: true,
        ..b.opts()
    };
    let (summary, events) = b.run(&plan, &resume).unwrap();
    assert_eq!(summary.already_done, 4);
    assert!(preflights(&events).is_empty(), "{events:?}");
}

/// The install up to "continue anyway?": the events sent before the question, and what the nodes
/// and the journal show while it waits; then `answer` is given and the install's end returned.
fn ask_on_warnings(
    b: &Bench,
    plan: &Plan,
    answer: bool,
) -> (Vec<Event>, Result<Summary, EngineError>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let (confirm, mut asks) = tokio::sync::mpsc::channel(1);
        let opts = Options {
            confirm_warnings: Some(confirm),
            ..b.opts()
        };
        let install = tokio::spawn({
            let (cluster, plan) = (b.cluster.clone(), plan.clone());
            async move { executor::install(&cluster, &plan, &opts, tx).await }
        });
        let question = asks.recv().await.unwrap();
        // A moment for anything the install might (wrongly) do without the answer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut before = Vec::new();
        while let Ok(e) = rx.try_recv() {
            before.push(e);
        }
        assert_eq!(b.count("n1", "one") + b.count("n2", "one"), 0);
        assert!(!b.journal().exists());
        question.send(answer).unwrap();
        while rx.recv().await.is_some() {}
        (before, install.await.unwrap())
    })
}

#[test]
fn warnings_wait_for_continue_anyway_before_any_step() {
    use kswizard::engine::preflight::Level;
    let b = Bench::new(2);
    let plan = with_preflight(&b, "nobody");
    let (before, r) = ask_on_warnings(&b, &plan, true);
    assert_eq!(
        preflights(&before),
        [
            ("n1".to_string(), Level::Warn),
            ("n2".to_string(), Level::Warn)
        ]
    );
    assert!(
        !before.iter().any(|e| matches!(e, Event::Started { .. })),
        "{before:?}"
    );
    let summary = r.unwrap();
    assert_eq!((summary.ok, summary.failed), (4, 0));
    assert_eq!(b.count("n2", "two"), 1);
}

#[test]
fn warnings_declined_stop_the_install_before_any_step_or_journal() {
    let b = Bench::new(2);
    let plan = with_preflight(&b, "nobody");
    let (_, r) = ask_on_warnings(&b, &plan, false);
    let Err(EngineError::PreflightDeclined { nodes }) = r else {
        panic!("{r:?}");
    };
    assert_eq!(nodes, ["n1", "n2"]);
    assert_eq!(b.count("n1", "one"), 0);
    assert!(!b.journal().exists());
}

#[test]
fn a_preflight_without_warnings_asks_nothing() {
    let b = Bench::new(1);
    let text = format!("preflight: pf.sh\nsteps:\n{}", counted("one", "all", ""))
        .replace("TRACE", &b.trace().display().to_string());
    // PREFLIGHT without its warning (and nobody failing).
    let script = PREFLIGHT
        .replace("echo \"CHECK cgroup warn v1 ;; use v2\"\n", "")
        .replace("FAIL_ON", "nobody");
    let plan = plan::parse(&text, Path::new("plan.yaml"), |_| Ok(script.clone())).unwrap();
    let (confirm, asks) = tokio::sync::mpsc::channel(1);
    // Nobody answers: an install that asked would end declined.
    drop(asks);
    let opts = Options {
        confirm_warnings: Some(confirm),
        ..b.opts()
    };
    let (summary, events) = b.run(&plan, &opts).unwrap();
    assert_eq!(
        preflights(&events),
        [("n1".to_string(), kswizard::engine::preflight::Level::Ok)]
    );
    assert_eq!(summary.ok, 1);
}

/// A plan whose step `b` (on the workers) fails on n2 until TRACE/fixed exists; every run of it is
/// counted in TRACE/<node>-b-runs, before it can fail. `c` waits for `b` on every node.
fn failing_b(b: &Bench, skippable: bool) -> Plan {
    let fail = "echo x >> TRACE/$KSW_NODE-b-runs; if [ $KSW_NODE = n2 ] && [ ! -e TRACE/fixed ]; then echo 'TRACE/fixed is missing'; exit 3; fi";
    let mut text = String::from("steps:\n");
    text.push_str(&counted("a", "all", ""));
    text.push_str(&counted("b", "worker", fail));
    if skippable {
        text.push_str("  skippable: true\n");
    }
    text.push_str(&counted("c", "all", ""));
    text.push_str("  after: [b]\n");
    b.plan(&text)
}

/// Run an install that takes commands: `answer` gets each `Awaiting` (node, step) and says what
/// to send, if anything.
fn run_with(
    b: &Bench,
    plan: &Plan,
    mut answer: impl FnMut(&str, &str) -> Option<Command>,
) -> (Summary, Vec<Event>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let (ctx, crx) = tokio::sync::mpsc::channel(4);
        let opts = b.opts();
        let install = executor::install_with(&b.cluster, plan, &opts, tx, Some(crx));
        let drive = async {
            let mut v = Vec::new();
            while let Some(e) = rx.recv().await {
                if let Event::Awaiting { node, step, .. } = &e
                    && let Some(cmd) = answer(node, step)
                {
                    ctx.send(cmd).await.unwrap();
                }
                v.push(e);
            }
            v
        };
        let (r, events) = tokio::join!(install, drive);
        (r.unwrap(), events)
    })
}

#[test]
fn a_failed_step_retried_after_its_cause_is_removed_completes_the_install() {
    let b = Bench::new(3);
    let plan = failing_b(&b, false);
    let fixed = b.trace().join("fixed");
    let (sum, events) = run_with(&b, &plan, |node, step| {
        assert_eq!((node, step), ("n2", "b"), "only n2's b fails");
        // The operator removes the cause, then retries from the screen.
        std::fs::write(&fixed, "").unwrap();
        Some(Command::Retry {
            node: node.into(),
            step: step.into(),
        })
    });
    assert_eq!(
        (sum.ok, sum.failed, sum.skipped),
        (8, 0, 0),
        "{sum:?}\n{events:#?}"
    );
    assert!(sum.failures.is_empty(), "{:?}", sum.failures);
    // Counted on the nodes: b ran twice on n2, every other step once.
    assert_eq!(b.count("n2", "b-runs"), 2);
    assert_eq!(b.count("n3", "b-runs"), 1);
    for node in ["n1", "n2", "n3"] {
        assert_eq!(b.count(node, "a"), 1, "{node} a");
        assert_eq!(
            b.count(node, "c"),
            1,
            "{node} c: waited at b's barrier, then ran"
        );
    }
    assert_eq!(b.count("n1", "b-runs"), 0);
    // The retry is a later attempt, and the failure's reason said why.
    assert!(events.iter().any(|e| matches!(e,
        Event::Started { node, step, attempt: 2, .. } if node == "n2" && step == "b")));
    let why = events.iter().find_map(|e| match e {
        Event::Finished {
            node,
            status: Status::Failed,
            reason,
            ..
        } if node == "n2" => reason.clone(),
        _ => None,
    });
    assert!(why.unwrap().contains("exit code 3"));
    // The journal has the decision, and the install is complete.
    let text = std::fs::read_to_string(b.journal()).unwrap();
    assert!(
        text.contains(r#""t":"decision","node":"n2","step":"b","decision":"retry""#),
        "{text}"
    );
    let replay = journal::replay(&b.journal()).unwrap();
    assert!(!replay.unfinished());
}

#[test]
fn a_skippable_failed_step_skipped_lets_the_node_and_its_barrier_go_on() {
    let b = Bench::new(3);
    let plan = failing_b(&b, true);
    let (sum, events) = run_with(&b, &plan, |node, step| {
        Some(Command::Skip {
            node: node.into(),
            step: step.into(),
        })
    });
    assert_eq!((sum.ok, sum.failed, sum.skipped), (7, 0, 1), "{sum:?}");
    assert_eq!(
        finished(&events, "n2", "b"),
        Some((Status::Skipped, Some("skipped by the operator".into())))
    );
    for node in ["n1", "n2", "n3"] {
        assert_eq!(b.count(node, "c"), 1, "{node} c");
    }
    assert_eq!(b.count("n2", "b-runs"), 1);
    // A resume honours the skip: b is not run again, and the install counts as finished.
    let resume = Options {
        resume: true,
        ..b.opts()
    };
    let (sum, _) = b.run(&plan, &resume).unwrap();
    assert_eq!((sum.ok, sum.failed, sum.skipped), (0, 0, 0), "{sum:?}");
    assert_eq!(b.count("n2", "b-runs"), 1);
    assert!(!journal::replay(&b.journal()).unwrap().unfinished());
}

#[test]
fn resume_honours_an_abort_until_the_node_is_retried_and_skips_only_what_the_plan_allows() {
    let b = Bench::new(3);
    let plan = failing_b(&b, false);
    run_with(&b, &plan, |node, _| {
        Some(Command::AbortNode { node: node.into() })
    });
    assert_eq!(b.count("n2", "b-runs"), 1);
    // The cause removed, a plain resume still leaves the aborted node alone, saying how to go on.
    std::fs::write(b.trace().join("fixed"), "").unwrap();
    let resume = Options {
        resume: true,
        ..b.opts()
    };
    let (sum, events) = b.run(&plan, &resume).unwrap();
    assert_eq!(b.count("n2", "b-runs"), 1);
    let (status, why) = finished(&events, "n2", "b").unwrap();
    assert_eq!(status, Status::Skipped, "{sum:?}");
    assert!(why.unwrap().contains("--retry n2"));
    // A skip the plan does not allow, or of an unknown node, is refused before anything runs.
    let skip = |node: &str| Options {
        decisions: vec![Command::Skip {
            node: node.into(),
            step: "b".into(),
        }],
        ..resume.clone()
    };
    let err = b.run(&plan, &skip("n2")).unwrap_err().to_string();
    assert!(err.contains("does not mark 'b' skippable"), "{err}");
    let err = b.run(&plan, &skip("n9")).unwrap_err().to_string();
    assert!(err.contains("n9: no such host"), "{err}");
    // `--retry n2`: its steps run, and every step ends run once more than it had to, b twice.
    let retry = Options {
        decisions: vec![Command::Retry {
            node: "n2".into(),
            step: kswizard::engine::journal::ANY_STEP.into(),
        }],
        ..resume
    };
    let (sum, events) = b.run(&plan, &retry).unwrap();
    assert_eq!(sum.failed, 0, "{sum:?} {events:#?}");
    assert_eq!(b.count("n2", "b-runs"), 2);
    for node in ["n1", "n2", "n3"] {
        assert_eq!(b.count(node, "c"), 1, "{node} c");
        assert_eq!(b.count(node, "a"), 1, "{node} a");
    }
    assert!(!journal::replay(&b.journal()).unwrap().unfinished());
}

#[test]
fn an_aborted_node_releases_the_steps_waiting_for_it_as_skipped() {
    let b = Bench::new(3);
    let plan = failing_b(&b, false);
    let (sum, events) = run_with(&b, &plan, |node, _| {
        Some(Command::AbortNode { node: node.into() })
    });
    assert_eq!((sum.ok, sum.failed, sum.skipped), (4, 1, 3), "{sum:?}");
    let (status, why) = finished(&events, "n1", "c").unwrap();
    assert_eq!(status, Status::Skipped);
    assert!(
        why.unwrap()
            .contains("waits for step 'b', which failed on n2")
    );
    let text = std::fs::read_to_string(b.journal()).unwrap();
    assert!(text.contains(r#""decision":"abort""#), "{text}");
}

/// Day 2: hosts added to the conf of a complete install.
#[test]
fn an_added_host_runs_its_steps_and_the_others_only_their_membership_steps() {
    let b = Bench::new(3);
    let plan = b.plan(&format!(
        "steps:\n{}{}",
        counted("a", "all", ""),
        counted(
            "m",
            "all",
            "echo \"masters=$KSW_MASTERS workers=$KSW_WORKER_NAMES\""
        )
        .replace("  become: false\n", "  become: false\n  membership: true\n")
    ));
    let mut two = b.cluster.clone();
    two.hosts.truncate(2);
    let (s, _) = run(&two, &plan, &b.opts()).unwrap();
    assert_eq!(s.ok, 4);
    // n3 added to the conf: the same install goes on, no question, no --resume; the wizard's
    // preview says so before.
    let state = b.dir.path().join("state");
    let record = kswizard::engine::installed::Installed::load(&state).unwrap();
    let replay = journal::replay(&b.journal()).unwrap();
    let p = executor::preview(&b.cluster, &plan, &replay, None, record.as_ref());
    assert_eq!((p.mode, p.steps, p.nodes), (Mode::Resume, 4, 3));
    assert_eq!(p.day2.len(), 1);
    let (s, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!((s.ok, s.failed, s.already_done), (4, 0, 2), "{events:?}");
    for (node, a, m) in [("n1", 1, 2), ("n2", 1, 2), ("n3", 1, 1)] {
        assert_eq!((b.count(node, "a"), b.count(node, "m")), (a, m), "{node}");
    }
    let out: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Output { node, line, .. } if node == "n1" => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(out.contains(&"masters=127.0.0.1 workers=n2,n3"), "{out:?}");
    // The record now holds all three: a plain install again starts a new one, as before.
    let rec = kswizard::engine::installed::Installed::load(&state)
        .unwrap()
        .unwrap();
    assert_eq!(rec.hosts.len(), 3);
}

#[test]
fn install_refuses_a_conf_that_lost_an_installed_host_and_names_kswizard_remove() {
    let b = Bench::new(2);
    let plan = b.plan(&format!("steps:\n{}", counted("a", "all", "")));
    b.run(&plan, &b.opts()).unwrap();
    let mut one = b.cluster.clone();
    one.hosts.truncate(1);
    let e = run(&one, &plan, &b.opts()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, EngineError::Membership(_)), "{text}");
    assert!(
        text.contains("- n2 (worker) no longer in the conf"),
        "{text}"
    );
    assert!(text.contains("`kswizard remove n2`"), "{text}");
    assert_eq!(b.count("n1", "a"), 1, "nothing ran");
}

#[test]
fn a_serial_step_runs_on_one_node_at_a_time() {
    let b = Bench::new(3);
    // mkdir is atomic: a second node inside at the same time fails its step.
    let plan = b.plan(&format!(
        "steps:\n{}",
        counted(
            "one-by-one",
            "all",
            "mkdir TRACE/inside || exit 7; sleep 0.3; rmdir TRACE/inside"
        )
        .replace("  become: false\n", "  become: false\n  serial: true\n")
    ));
    let (s, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!((s.ok, s.failed), (3, 0), "{events:?}");
    // And the same plan without `serial` does overlap (the check above is not vacuous).
    let b = Bench::new(3);
    let plan = b.plan(&format!(
        "steps:\n{}",
        counted(
            "together",
            "all",
            "mkdir TRACE/inside || exit 7; sleep 0.3; rmdir TRACE/inside"
        )
    ));
    let (s, _) = b.run(&plan, &b.opts()).unwrap();
    assert!(s.failed > 0, "{s:?}");
}

#[test]
fn an_operation_has_a_journal_of_its_own_and_leaves_the_installed_record() {
    let b = Bench::new(2);
    let plan = b.plan(&format!("steps:\n{}", counted("a", "all", "")));
    b.run(&plan, &b.opts()).unwrap();
    let state = b.dir.path().join("state");
    let before = std::fs::read(b.journal()).unwrap();
    let mut cluster = b.cluster.clone();
    cluster.leaving.insert("n2".into());
    let op = b.plan(&format!(
        "steps:\n{}{}",
        counted(
            "bye",
            "leaving",
            "echo \"leaving=$KSW_LEAVING_NAMES workers=$KSW_WORKERS\""
        ),
        counted("rewire", "first-master", "")
    ));
    let opts = Options {
        operation: Some("remove".into()),
        ..b.opts()
    };
    let (s, events) = run(&cluster, &op, &opts).unwrap();
    assert_eq!(s.ok, 2, "{events:?}");
    assert_eq!((b.count("n2", "bye"), b.count("n1", "bye")), (1, 0));
    assert_eq!(b.count("n1", "rewire"), 1);
    assert!(events.iter().any(|e| matches!(e, Event::Output { line, .. }
        if line == "leaving=n2 workers=")));
    assert_eq!(std::fs::read(b.journal()).unwrap(), before);
    let own = journal::replay(&executor::journal_for(&state, "remove")).unwrap();
    assert!(own.install_id.is_some() && !own.unfinished());
    let rec = kswizard::engine::installed::Installed::load(&state)
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.hosts.len(),
        2,
        "the operation decides what the record says"
    );
}

#[test]
fn a_host_with_nothing_to_run_is_never_contacted() {
    let mut b = Bench::new(3);
    // n2 answers, n3 is down (nothing listens on loopback port 1); neither has a step. A node
    // contacted sends its facts first, so n2's missing facts show it was left alone; n3 checks
    // that a host that is down and has nothing to run fails nothing.
    b.cluster.hosts[2].auth = Auth::Key { file: None };
    b.cluster.hosts[2].port = Some(1);
    let plan = b.plan(&format!(
        "steps:\n{}",
        counted("only-masters", "master", "")
    ));
    let (summary, events) = b.run(&plan, &b.opts()).unwrap();
    assert_eq!((summary.ok, summary.failed), (1, 0), "{events:?}");
    assert_eq!(b.count("n1", "only-masters"), 1);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Facts { node, .. } if node != "n1")),
        "{events:?}"
    );
}

#[test]
fn an_unreachable_node_waits_for_the_operator_who_may_skip_its_skippable_step() {
    let mut b = Bench::new(3);
    // n3 cannot be reached (nothing listens on loopback port 1), as a dead host being removed.
    b.cluster.hosts[2].auth = Auth::Key { file: None };
    b.cluster.hosts[2].port = Some(1);
    let mut text = String::from("steps:\n");
    text.push_str(&counted("reset", "worker", ""));
    text.push_str("  skippable: true\n");
    text.push_str(&counted("after-reset", "master", ""));
    text.push_str("  after: [reset]\n");
    let plan = b.plan(&text);
    let mut asked = Vec::new();
    let (sum, events) = run_with(&b, &plan, |node, step| {
        asked.push(format!("{node}:{step}"));
        Some(Command::Skip {
            node: node.into(),
            step: step.into(),
        })
    });
    assert_eq!(asked, ["n3:reset"]);
    let (status, _) = finished(&events, "n3", "reset").unwrap();
    assert_eq!(status, Status::Skipped);
    assert_eq!((sum.ok, sum.failed, sum.skipped), (2, 0, 1), "{sum:?}");
    assert_eq!(sum.skipped_by_operator, 1);
    assert!(sum.ended_as_chosen());
    // The step waiting at its barrier ran once the operator skipped it.
    assert_eq!(b.count("n1", "after-reset"), 1);
    assert_eq!(b.count("n2", "reset"), 1);
    // Why it failed first: the connection's own reason.
    assert!(
        events.iter().any(|e| matches!(e,
        Event::Finished { node, status: Status::Failed, reason: Some(r), .. }
            if node == "n3" && r.contains("cannot connect"))),
        "{events:#?}"
    );
}
