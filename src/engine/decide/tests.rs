//! The decision table: from plan, journal and board to what each node runs, as which attempt.

use std::path::Path;

use super::*;
use crate::engine::journal::StepState;

fn plan() -> Plan {
    crate::engine::plan::parse(
        "steps:
- {id: prep, roles: [all], run: 'true'}
- {id: init, roles: [first-master], run: 'true', after: [prep], outputs: [TOKEN, URL], secrets: [TOKEN]}
- {id: join, roles: [all], run: 'true', after: [init], needs: [TOKEN, URL]}
- {id: check, roles: [all], run: 'true'}
- {id: user, roles: [all], run: 'true', become: false}
",
        Path::new("plan.yaml"),
        |_| unreachable!(),
    )
    .unwrap()
}

fn node_plans() -> Vec<NodePlan> {
    vec![
        NodePlan {
            node: "m1".into(),
            steps: vec!["prep".into(), "init".into(), "join".into()],
        },
        NodePlan {
            node: "w1".into(),
            steps: vec!["prep".into(), "join".into()],
        },
    ]
}

/// Every step's fingerprint on every node is "f-<step>" unless `changed` names it.
fn fps(changed: &[&str]) -> Vec<HashMap<String, String>> {
    node_plans()
        .iter()
        .map(|np| {
            np.steps
                .iter()
                .map(|s| {
                    let fp = if changed.contains(&s.as_str()) {
                        format!("f-{s}-edited")
                    } else {
                        format!("f-{s}")
                    };
                    (s.clone(), fp)
                })
                .collect()
        })
        .collect()
}

fn state(step: &str, attempt: u32, status: Option<Status>) -> StepState {
    StepState {
        attempt,
        fp: format!("f-{step}"),
        status,
        reason: None,
    }
}

fn replay(states: &[(&str, &str, StepState)]) -> Replay {
    let mut r = Replay {
        install_id: Some("i1".into()),
        ..Replay::default()
    };
    for (n, s, st) in states {
        r.steps.insert((n.to_string(), s.to_string()), st.clone());
    }
    r
}

fn todo(s: &Schedule, node: &str) -> Vec<(String, u32, Why)> {
    s.nodes
        .iter()
        .find(|n| n.node == node)
        .unwrap()
        .steps
        .iter()
        .map(|t| (t.step.clone(), t.attempt, t.why))
        .collect()
}

fn t(step: &str, attempt: u32, why: Why) -> (String, u32, Why) {
    (step.to_string(), attempt, why)
}

#[test]
fn a_new_install_runs_everything_as_attempt_1() {
    let s = schedule(&node_plans(), &fps(&[]), &Replay::default());
    assert_eq!(
        todo(&s, "m1"),
        [
            t("prep", 1, Why::New),
            t("init", 1, Why::New),
            t("join", 1, Why::New)
        ]
    );
    assert_eq!(s.remaining["prep"], 2);
    assert_eq!(s.remaining["init"], 1);
    assert!(s.done.is_empty() && s.changed.is_empty() && s.left.is_empty());
}

#[test]
fn the_decision_table() {
    let r = replay(&[
        // done
        ("m1", "prep", state("prep", 1, Some(Status::Ok))),
        // running (or interrupted): the same attempt, which the node re-attaches to or reports
        ("m1", "init", state("init", 2, None)),
        // failed: the next attempt
        ("m1", "join", state("join", 1, Some(Status::Failed))),
        // done, then the step was edited: the next attempt, and named as changed
        ("w1", "prep", state("prep", 3, Some(Status::Ok))),
        // skipped before it ever started: attempt 1
        ("w1", "join", state("join", 0, Some(Status::Skipped))),
    ]);
    let s = schedule(&node_plans(), &fps(&["prep"]), &r);
    assert_eq!(
        todo(&s, "m1"),
        [
            t("prep", 2, Why::Changed),
            t("init", 2, Why::Unfinished),
            t("join", 2, Why::Again)
        ]
    );
    assert_eq!(
        todo(&s, "w1"),
        [t("prep", 4, Why::Changed), t("join", 1, Why::Again)]
    );
    assert_eq!(
        s.changed,
        [
            ("m1".to_string(), "prep".to_string()),
            ("w1".to_string(), "prep".to_string())
        ]
    );
}

#[test]
fn done_steps_are_not_run_and_open_their_barriers() {
    let r = replay(&[
        ("m1", "prep", state("prep", 1, Some(Status::Ok))),
        ("w1", "prep", state("prep", 1, Some(Status::Ok))),
    ]);
    let s = schedule(&node_plans(), &fps(&[]), &r);
    assert_eq!(s.done.len(), 2);
    assert!(!s.remaining.contains_key("prep"));
    assert_eq!(todo(&s, "w1"), [t("join", 1, Why::New)]);
}

#[test]
fn a_running_step_that_changed_is_still_the_same_attempt() {
    // The node may still run it: asking for another attempt would start a second copy beside
    // it; the node's runner sees the other fingerprint, waits for it, then runs the new one.
    let r = replay(&[("m1", "prep", state("prep", 1, None))]);
    let s = schedule(&node_plans(), &fps(&["prep"]), &r);
    assert_eq!(todo(&s, "m1")[0], t("prep", 1, Why::Unfinished));
}

#[test]
fn secret_outputs_are_recalled_as_the_same_attempt() {
    let mut r = replay(&[("m1", "init", state("init", 2, Some(Status::Ok)))]);
    r.redacted.insert(("m1".into(), "init".into()));
    let s = schedule(&node_plans(), &fps(&[]), &r);
    assert_eq!(todo(&s, "m1")[1], t("init", 2, Why::Recall));
    assert!(s.recalled.contains("init"));
    // A step that needs the recalled value waits for it, though it is not in its `after`.
    let p = plan();
    let mut check = p.step("check").unwrap().clone();
    assert_eq!(waits_for(&p, &check, &s.scheduled), Vec::<String>::new());
    check.needs = vec!["TOKEN".into()];
    assert_eq!(waits_for(&p, &check, &s.scheduled), ["init"]);
}

#[test]
fn a_step_waits_for_any_producer_this_install_runs_again() {
    // init is unfinished (it runs again); join is done on m1 but runs on w1: it needs init's
    // values, so it waits for init even though its `after` would let it start.
    let r = replay(&[
        ("m1", "prep", state("prep", 1, Some(Status::Ok))),
        ("w1", "prep", state("prep", 1, Some(Status::Ok))),
        ("m1", "init", state("init", 1, None)),
    ]);
    let s = schedule(&node_plans(), &fps(&[]), &r);
    assert!(s.scheduled.contains("init"));
    let p = plan();
    let mut join = p.step("join").unwrap().clone();
    join.after.clear();
    assert_eq!(waits_for(&p, &join, &s.scheduled), ["init"]);
    // A producer not run in this install: its values are in the journal already.
    let none = HashSet::new();
    assert!(waits_for(&p, &join, &none).is_empty());
}

#[test]
fn a_lost_journal_tail_resumes_from_what_it_still_says() {
    // The journal kept only the start of prep on m1 (its end and everything later was lost):
    // m1 asks for attempt 1 again, and the node reports what attempt 1 did.
    let r = replay(&[("m1", "prep", state("prep", 1, None))]);
    let s = schedule(&node_plans(), &fps(&[]), &r);
    assert_eq!(
        todo(&s, "m1"),
        [
            t("prep", 1, Why::Unfinished),
            t("init", 1, Why::New),
            t("join", 1, Why::New)
        ]
    );
}

#[test]
fn hosts_and_steps_that_left_leave_the_accounting() {
    let r = replay(&[
        ("m1", "prep", state("prep", 1, Some(Status::Ok))),
        ("gone", "prep", state("prep", 1, Some(Status::Failed))),
        (
            "m1",
            "removed-step",
            state("removed-step", 1, Some(Status::Failed)),
        ),
    ]);
    let s = schedule(&node_plans(), &fps(&[]), &r);
    assert_eq!(
        s.left,
        [
            ("gone".to_string(), "prep".to_string()),
            ("m1".to_string(), "removed-step".to_string())
        ]
    );
}

#[test]
fn modes() {
    let none = Replay::default();
    assert_eq!(mode(&none, false, false), Ok(Mode::Fresh));
    assert_eq!(mode(&none, true, false), Err(Refusal::NothingToResume));
    assert_eq!(mode(&none, true, true), Ok(Mode::Fresh));
    let unfinished = replay(&[("m1", "prep", state("prep", 1, None))]);
    assert_eq!(mode(&unfinished, false, false), Ok(Mode::Resume));
    assert_eq!(mode(&unfinished, false, true), Ok(Mode::Fresh));
    let mut complete = replay(&[("m1", "prep", state("prep", 1, Some(Status::Ok)))]);
    complete.complete = true;
    assert_eq!(mode(&complete, false, false), Ok(Mode::Fresh));
    assert_eq!(mode(&complete, true, false), Ok(Mode::Resume));
}

#[test]
fn batches_stop_at_a_closed_barrier_a_become_change_or_an_unknown_value() {
    let p = plan();
    let steps: Vec<&Step> = ["prep", "init", "join", "check", "user"]
        .iter()
        .map(|s| p.step(s).unwrap())
        .collect();
    let none = HashSet::new();
    // init waits for prep, not passed yet: prep goes alone.
    assert_eq!(batch_len(&p, &steps, &none, |_| false, |_| false), 1);
    // All barriers open, but join needs values that init (in this batch) publishes.
    assert_eq!(batch_len(&p, &steps, &none, |_| true, |_| true), 2);
    // From join on, values known: join and check go together, user (become: false) does not.
    assert_eq!(batch_len(&p, &steps[2..], &none, |_| true, |_| true), 2);
    // A value nobody published yet stops the batch before the step that needs it.
    assert_eq!(
        batch_len(&p, &[steps[3], steps[2]], &none, |_| true, |_| false),
        1
    );
    assert_eq!(batch_len(&p, &[], &none, |_| true, |_| true), 0);
}

#[test]
fn a_serial_step_goes_alone_in_its_batch() {
    let p = plan();
    let mut steps: Vec<Step> = ["prep", "check", "user"]
        .iter()
        .map(|s| p.step(s).unwrap().clone())
        .collect();
    steps[2].become_root = true;
    let all = |st: &[Step]| -> usize {
        let refs: Vec<&Step> = st.iter().collect();
        batch_len(&p, &refs, &HashSet::new(), |_| true, |_| true)
    };
    assert_eq!(all(&steps), 3);
    steps[1].serial = true;
    // Before it: the batch stops. It: alone.
    assert_eq!(all(&steps), 1);
    assert_eq!(all(&steps[1..]), 1);
    assert_eq!(all(&steps[2..]), 1);
}

#[test]
fn a_step_sees_only_the_values_it_needs() {
    let p = plan();
    let base = vec![("KSW_NODE".to_string(), "w1".to_string())];
    let mut published = BTreeMap::new();
    published.insert("TOKEN".to_string(), "t0k".to_string());
    published.insert("URL".to_string(), "https://lb".to_string());
    published.insert("ETCD_CA_KEY".to_string(), "secret".to_string());
    let env = env_for(p.step("join").unwrap(), &base, &published).unwrap();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["KSW_NODE", "TOKEN", "URL"]);
    let env = env_for(p.step("check").unwrap(), &base, &published).unwrap();
    assert_eq!(env, base);
    published.remove("URL");
    assert_eq!(
        env_for(p.step("join").unwrap(), &base, &published),
        Err(vec!["URL".to_string()])
    );
}

/// A step that failed before it started (its node could not be reached: an `end` without a
/// `start`) and that the operator skipped is not run again: `kswizard remove --skip` of a dead
/// host's reset.
#[test]
fn a_skipped_step_that_never_started_is_not_run() {
    let mut r = replay(&[
        ("m1", "prep", state("prep", 1, Some(Status::Ok))),
        (
            "w1",
            "prep",
            StepState {
                attempt: 0,
                fp: String::new(),
                status: Some(Status::Failed),
                reason: Some("w1: cannot connect".into()),
            },
        ),
    ]);
    r.decided("w1", "prep", "skip");
    let s = schedule(&node_plans(), &fps(&[]), &r);
    assert!(s.skipped.contains(&("w1".into(), "prep".into())), "{s:?}");
    assert!(!todo(&s, "w1").iter().any(|(step, ..)| step == "prep"));
}
