//! The line machine: the runner's lines in, transitions and verdicts out.

use std::path::Path;

use proptest::prelude::*;

use super::*;

const M: char = '\u{1e}';

fn expected(steps: &[&str]) -> Vec<Expected> {
    steps
        .iter()
        .map(|s| Expected {
            step: s.to_string(),
            attempt: 1,
            outputs: vec!["JOIN".into()],
        })
        .collect()
}

fn feed_all(b: &mut Batch, lines: &[String]) -> Vec<Transition> {
    let mut out = Vec::new();
    for l in lines {
        b.feed(l);
        while let Some(t) = b.poll() {
            out.push(t);
        }
    }
    out
}

fn lines(text: &str) -> Vec<String> {
    text.replace('^', &M.to_string())
        .lines()
        .map(str::to_string)
        .collect()
}

fn ended(t: &[Transition]) -> Vec<(String, Ending)> {
    t.iter()
        .filter_map(|t| match t {
            Transition::Ended(e) => Some((e.step.clone(), e.ending.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batch_begins_logs_publishes_and_ends() {
    let mut b = Batch::new(expected(&["a", "b"]), true);
    let t = feed_all(
        &mut b,
        &lines(
            "^KSW-FACT os=Debian\n^KSW-FACT uid=0\n^KSW-BEGIN a 1 start\n|hello\n\n^KSW-OUT JOIN=x=y\n^KSW-RC 0\n^KSW-BEGIN b 3 attach\n|more\n\n^KSW-RC 0",
        ),
    );
    assert!(matches!(&t[0], Transition::Facts { facts, uid: Some(0) } if facts.os == "Debian"));
    assert_eq!(
        t[1],
        Transition::Began {
            step: "a".into(),
            attempt: 1,
            how: How::Start
        }
    );
    assert_eq!(
        t[2],
        Transition::Output {
            step: "a".into(),
            line: "hello".into()
        }
    );
    let Transition::Ended(a) = &t[3] else {
        panic!("{t:?}")
    };
    assert_eq!(a.outputs["JOIN"], "x=y");
    assert_eq!(a.tail, ["hello"]);
    // The node runs a later attempt than asked (an earlier run's): its number is the one kept.
    assert!(matches!(
        &t[4],
        Transition::Began {
            attempt: 3,
            how: How::Attach,
            ..
        }
    ));
    assert_eq!(b.ended_ok(), 2);
    assert_eq!(b.close(Ok((0, String::new()))), Closed::Over);
}

#[test]
fn a_failed_step_stops_the_batch_and_later_lines_mean_nothing() {
    let mut b = Batch::new(expected(&["a", "b"]), false);
    let t = feed_all(
        &mut b,
        &lines(
            "^KSW-BEGIN a 1 start\n^KSW-RC 3\n|after the exit code\n^KSW-OUT JOIN=late\n^KSW-BEGIN b 1 start",
        ),
    );
    assert_eq!(ended(&t), [("a".to_string(), Ending::Exit(3))]);
    assert_eq!(t.len(), 2);
    assert_eq!(b.ended_ok(), 0);
    assert_eq!(b.close(Ok((0, String::new()))), Closed::Over);
}

#[test]
fn what_the_runner_says_before_a_step_begins_is_in_that_steps_log() {
    let mut b = Batch::new(expected(&["a"]), false);
    let t = feed_all(
        &mut b,
        &lines(
            "|kswizard: an earlier version of this step is still running; waiting\n^KSW-BEGIN a 2 start\n^KSW-RC 0",
        ),
    );
    assert_eq!(
        t[0],
        Transition::Output {
            step: "a".into(),
            line: "kswizard: an earlier version of this step is still running; waiting".into()
        }
    );
    assert_eq!(ended(&t), [("a".to_string(), Ending::Exit(0))]);
}

#[test]
fn only_the_expected_step_may_begin() {
    let mut b = Batch::new(expected(&["a", "b"]), false);
    let t = feed_all(
        &mut b,
        &lines(
            "^KSW-BEGIN b 1 start\n^KSW-RC 0\n^KSW-BEGIN a 1 start\n^KSW-BEGIN b 1 start\n^KSW-RC 0",
        ),
    );
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(ended(&t), [("a".to_string(), Ending::Exit(0))]);
}

#[test]
fn a_torn_stream_is_lost_contact_on_the_open_step() {
    let mut b = Batch::new(expected(&["a", "b"]), false);
    feed_all(
        &mut b,
        &lines("^KSW-BEGIN a 1 start\n^KSW-RC 0\n^KSW-BEGIN b 1 start\n|half a li"),
    );
    assert_eq!(
        b.close(Err("connection reset".into())),
        Closed::Lost {
            step: "b".into(),
            why: "connection reset".into()
        }
    );
    // ssh's own 255 is the connection too, even after the runner spoke.
    let mut b = Batch::new(expected(&["a"]), false);
    assert!(matches!(
        b.close(Ok((255, "x".into()))),
        Closed::Lost { .. }
    ));
}

#[test]
fn a_runner_that_never_spoke_never_started() {
    let mut b = Batch::new(expected(&["a"]), false);
    assert_eq!(
        b.close(Ok((1, "sudo: a password is required".into()))),
        Closed::NeverStarted {
            step: "a".into(),
            code: 1,
            stderr: "sudo: a password is required".into()
        }
    );
}

#[test]
fn the_node_saying_why_ends_the_step() {
    let mut b = Batch::new(expected(&["a"]), false);
    let t = feed_all(
        &mut b,
        &lines("^KSW-FAIL cannot create the step directories"),
    );
    assert_eq!(
        ended(&t),
        [(
            "a".to_string(),
            Ending::NodeSaid("cannot create the step directories".into())
        )]
    );
    let mut b = Batch::new(expected(&["a"]), false);
    let t = feed_all(
        &mut b,
        &lines("^KSW-BEGIN a 1 attach\n^KSW-LOST the step ended without an exit code"),
    );
    assert!(matches!(&ended(&t)[0].1, Ending::NodeSaid(w) if w.contains("without an exit code")));
}

#[test]
fn undeclared_outputs_are_dropped_without_echoing_them() {
    let mut b = Batch::new(expected(&["a"]), false);
    let t = feed_all(
        &mut b,
        &lines("^KSW-BEGIN a 1 start\n^KSW-OUT OTHER=s3cret\n^KSW-OUT GARBAGE_S3CRET\n^KSW-RC 0"),
    );
    let Transition::Ended(e) = t.last().unwrap() else {
        panic!()
    };
    assert!(e.outputs.is_empty());
    let shown: Vec<&String> = t
        .iter()
        .filter_map(|t| match t {
            Transition::Output { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    assert_eq!(shown.len(), 2);
    assert!(
        shown
            .iter()
            .all(|l| !l.to_lowercase().contains("s3cret") && !l.contains("OTHER")),
        "{shown:?}"
    );
}

fn step(retries: u32) -> Step {
    let text =
        format!("steps:\n- {{id: s, roles: [all], run: x, retries: {retries}, timeout: 7}}\n");
    crate::engine::plan::parse(&text, Path::new("p"), |_| unreachable!())
        .unwrap()
        .steps
        .remove(0)
}

fn end(how: How, ending: Ending) -> Ended {
    Ended {
        step: "s".into(),
        attempt: 2,
        how,
        ending,
        outputs: BTreeMap::new(),
        tail: Vec::new(),
    }
}

#[test]
fn verdicts() {
    let s = step(2);
    assert_eq!(
        verdict(&s, &end(How::Start, Ending::Exit(0)), 2),
        Verdict::Ok
    );
    assert_eq!(
        verdict(&s, &end(How::Start, Ending::Exit(1)), 2),
        Verdict::Retry {
            attempt: 3,
            after: Duration::from_secs(1),
            reason: "exit code 1".into(),
            counted: true
        }
    );
    assert_eq!(
        verdict(&s, &end(How::Attach, Ending::Exit(124)), 1),
        Verdict::Retry {
            attempt: 3,
            after: Duration::from_secs(2),
            reason: "timed out after 7 s".into(),
            counted: true
        }
    );
    assert_eq!(
        verdict(&s, &end(How::Start, Ending::Exit(137)), 0),
        Verdict::Fail("exit code 137".into())
    );
    // What the node could not even start is not retried.
    assert_eq!(
        verdict(&s, &end(How::Start, Ending::NodeSaid("gone".into())), 2),
        Verdict::Fail("gone".into())
    );
    // An earlier run's failure found on the node: run again at once, without using a retry.
    assert_eq!(
        verdict(&step(0), &end(How::Done, Ending::Exit(3)), 0),
        Verdict::Retry {
            attempt: 3,
            after: Duration::ZERO,
            reason: "exit code 3".into(),
            counted: false
        }
    );
}

#[test]
fn reconnects_back_off_within_their_budget() {
    let budget = Duration::from_secs(120);
    let delays: Vec<Duration> = (0..6)
        .map(|i| reconnect_delay(i, Duration::ZERO, budget).unwrap())
        .collect();
    assert_eq!(
        delays,
        [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis)
    );
    assert_eq!(reconnect_delay(9, budget, budget), None);
    assert_eq!(
        reconnect_delay(9, Duration::from_millis(119_500), budget),
        Some(Duration::from_millis(500))
    );
}

proptest! {
    /// However the stream is cut into lines and whatever a step prints, the machine never
    /// panics, never ends a step it did not begin, and ends each step at most once.
    #[test]
    fn any_stream_is_read_safely(raw in proptest::collection::vec(
        prop_oneof![
            Just("^KSW-BEGIN a 1 start".to_string()),
            Just("^KSW-BEGIN b 2 attach".to_string()),
            Just("^KSW-RC 0".to_string()),
            Just("^KSW-RC 3".to_string()),
            Just("^KSW-OUT JOIN=v".to_string()),
            Just("^KSW-LOST x".to_string()),
            Just("^KSW-FAIL y".to_string()),
            Just("^KSW-FACT os=z".to_string()),
            Just(String::new()),
            "\\|[ -~\u{1e}]{0,12}",
            "[ -~\u{1e}]{0,12}",
        ],
        0..40,
    )) {
        let text: Vec<String> = raw.iter().map(|l| l.replace('^', "\u{1e}")).collect();
        let mut b = Batch::new(expected(&["a", "b"]), true);
        let t = feed_all(&mut b, &text);
        let mut begun = Vec::new();
        let mut ends = Vec::new();
        for x in &t {
            match x {
                Transition::Began { step, .. } => begun.push(step.clone()),
                Transition::Ended(e) => {
                    prop_assert!(!ends.contains(&e.step));
                    ends.push(e.step.clone());
                }
                _ => {}
            }
        }
        prop_assert!(ends.len() <= 2);
        // Steps end in order, and the machine's count agrees with what it said.
        prop_assert!(ends.iter().zip(["a", "b"]).all(|(e, w)| e == w));
        let oks = t.iter().filter(|x| matches!(x, Transition::Ended(e) if e.ending == Ending::Exit(0))).count();
        prop_assert_eq!(b.ended_ok(), oks);
        let _ = b.close(Err("end".into()));
    }
}
