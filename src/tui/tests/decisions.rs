//! The operator's decisions about a failed node on the Install screen: keys, what `update` asks
//! the engine, the failed row with its actions (snapshots), and a retry from the screen through
//! the real engine over the local transport.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::snapshots::check;
use super::{engine, output, planned, send, started};
use crate::engine::control::Command;
use crate::engine::events::{Event, Status};
use crate::tui::action::{Action, Effect};
use crate::tui::keymap::map_key;
use crate::tui::state::{Confirm, Modal, Screen, State};

/// Press `c` as the keyboard would: through the keymap, then `update`.
fn press(s: &mut State, c: char) -> Vec<Effect> {
    let action = map_key(s, KeyEvent::from(KeyCode::Char(c))).unwrap();
    send(s, [action])
}

/// The bundled plan under way; node2's `verify`-like step failed and it waits for a decision.
fn failed_waiting(step: &str, skippable: bool) -> State {
    let mut s = planned();
    engine(
        &mut s,
        [
            started("node2", step),
            output("node2", step, "apt-get: E: Unable to fetch containerd.io"),
            output("node2", step, "E: Some index files failed to download"),
            Event::Finished {
                node: "node2".into(),
                step: step.into(),
                status: Status::Failed,
                elapsed_ms: 4100,
                reason: Some("exit code 100".into()),
            },
            Event::Awaiting {
                node: "node2".into(),
                step: step.into(),
                skippable,
            },
        ],
    );
    s
}

fn status(s: &State) -> &str {
    &s.status.as_ref().unwrap().text
}

#[test]
fn r_on_the_failed_node_asks_the_engine_to_retry_its_step() {
    let mut s = failed_waiting("os-prep", false);
    // Not on a failed node: nothing is sent, the status says how to get there.
    assert!(press(&mut s, 'r').is_empty());
    assert!(status(&s).contains("master1 is not waiting for a decision"));
    press(&mut s, 'n');
    assert_eq!(s.install.as_ref().unwrap().selected, 4);
    let hints = crate::tui::decision::hints(&s);
    assert_eq!(
        hints,
        [("r", "retry"), ("a", "abort node"), ("A", "abort install")]
    );
    // os-prep is not skippable: s says so and sends nothing.
    assert!(press(&mut s, 's').is_empty());
    assert!(
        status(&s).contains("os-prep cannot be skipped"),
        "{}",
        status(&s)
    );
    let effects = press(&mut s, 'r');
    assert!(
        matches!(&effects[..], [Effect::Command(Command::Retry { node, step })] if node == "node2" && step == "os-prep"),
        "{effects:?}"
    );
    assert_eq!(status(&s), "Retrying os-prep on node2.");
    // Sent once: a second r finds nothing waiting.
    assert!(press(&mut s, 'r').is_empty());
    // The engine runs it again: the node is no longer failed.
    engine(&mut s, [started("node2", "os-prep")]);
    let n = &s.install.as_ref().unwrap().nodes[4];
    assert_eq!(n.failed, None);
    assert_eq!(n.running.as_deref(), Some("os-prep"));
}

#[test]
fn s_skips_a_skippable_step_a_aborts_the_node_and_capital_a_asks_before_aborting_the_install() {
    let mut s = failed_waiting("verify", true);
    press(&mut s, 'n');
    assert!(crate::tui::decision::hints(&s).contains(&("s", "skip")));
    let effects = press(&mut s, 's');
    assert!(
        matches!(&effects[..], [Effect::Command(Command::Skip { node, step })] if node == "node2" && step == "verify"),
        "{effects:?}"
    );
    let mut s = failed_waiting("verify", true);
    press(&mut s, 'n');
    let effects = press(&mut s, 'a');
    assert!(
        matches!(&effects[..], [Effect::Command(Command::AbortNode { node })] if node == "node2"),
        "{effects:?}"
    );
    let mut s = failed_waiting("verify", true);
    assert!(press(&mut s, 'A').is_empty());
    assert_eq!(s.modal, Some(Modal::Confirm(Confirm::AbortInstall)));
    // n keeps it running.
    assert!(press(&mut s, 'n').is_empty());
    assert_eq!(s.modal, None);
    press(&mut s, 'A');
    let effects = press(&mut s, 'y');
    assert!(
        matches!(&effects[..], [Effect::Command(Command::AbortInstall)]),
        "{effects:?}"
    );
    assert!(s.install.as_ref().unwrap().awaiting.is_empty());
}

#[test]
fn a_failed_node_with_its_actions() {
    let mut s = failed_waiting("os-prep", false);
    press(&mut s, 'n');
    check("install_failed_node_actions", &s);
    let mut s = failed_waiting("verify", true);
    press(&mut s, 'n');
    press(&mut s, 'A');
    check("install_abort_question", &s);
}

/// Done-when of issue 11 item 3: one node's step fails, the operator removes the cause and
/// presses `n` then `r` on the Install screen; the real engine (local transport, a temp dir)
/// runs it again and the install ends complete, that step run twice and every other once,
/// counted on the nodes.
#[test]
fn a_step_retried_from_the_screen_after_its_cause_is_removed_completes_the_install() {
    use crate::engine::executor::{self, Options};
    use crate::model::{Auth, Cluster, Host};
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    std::fs::create_dir_all(&trace).unwrap();
    let mut cluster = Cluster::default();
    for i in 1..=3 {
        let mut h = Host::new(format!("n{i}"), "127.0.0.1");
        h.auth = Auth::Local;
        cluster.hosts.push(h);
    }
    cluster.apply_preset();
    // Every run of a step is counted on its node before it can fail; b fails on n2 until the
    // file `fixed` exists; c waits at b's barrier.
    let step = |id: &str, after: &str, body: &str| {
        format!(
            "- id: {id}\n  roles: [all]\n  become: false\n  after: [{after}]\n  run: |\n    echo x >> {t}/$KSW_NODE-{id}\n    {body}\n",
            t = trace.display()
        )
    };
    let fail = format!(
        "if [ $KSW_NODE = n2 ] && [ ! -e {t}/fixed ]; then echo 'fixed is missing'; exit 3; fi",
        t = trace.display()
    );
    let text = format!(
        "steps:\n{}{}{}",
        step("a", "", "true"),
        step("b", "a", &fail),
        step("c", "b", "true")
    );
    let plan =
        crate::engine::plan::parse(&text, std::path::Path::new("plan.yaml"), |_| unreachable!())
            .unwrap();
    let opts = Options {
        state_root: format!("{}/nodes/{{node}}", dir.path().display()),
        ..Options::new(dir.path().join("state"))
    };
    let (mut s, _) = super::installing();
    s.install = Some(crate::tui::install::Install::new(cluster.clone()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let summary = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let (ctx, crx) = tokio::sync::mpsc::channel(4);
        let install = executor::install_with(&cluster, &plan, &opts, tx, Some(crx));
        let screen = async {
            while let Some(e) = rx.recv().await {
                let waiting = matches!(&e, Event::Awaiting { .. });
                send(&mut s, [Action::Engine(Box::new(e))]);
                if waiting {
                    // The row says the step and why, the footer the keys.
                    let n = &s.install.as_ref().unwrap().nodes[1];
                    let (step, why) = n.failed.clone().unwrap();
                    assert_eq!(step, "b");
                    assert!(why.contains("exit code 3"), "{why}");
                    std::fs::write(trace.join("fixed"), "").unwrap();
                    press(&mut s, 'n');
                    for effect in press(&mut s, 'r') {
                        if let Effect::Command(cmd) = effect {
                            ctx.send(cmd).await.unwrap();
                        }
                    }
                }
            }
        };
        let (r, ()) = tokio::join!(install, screen);
        r.unwrap()
    });
    send(&mut s, [Action::InstallEnded(Ok(summary.clone()))]);
    assert_eq!(s.screen, Screen::Done, "{summary:?}");
    assert_eq!((summary.ok, summary.failed, summary.skipped), (9, 0, 0));
    let count = |node: &str, step: &str| {
        std::fs::read_to_string(trace.join(format!("{node}-{step}")))
            .map_or(0, |t| t.lines().count())
    };
    for node in ["n1", "n2", "n3"] {
        for st in ["a", "b", "c"] {
            let want = if (node, st) == ("n2", "b") { 2 } else { 1 };
            assert_eq!(count(node, st), want, "{node} {st}");
        }
    }
}
