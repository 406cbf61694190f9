//! The built-in load balancer end to end on the lab (issue 8): the seeds' 6-host example installed
//! with haproxy + keepalived on the masters and a VIP on the lab's bridge, then haproxy stopped on
//! the VIP holder, the holder's link cut, haproxy restarted; `lb status` before and after the
//! apiservers start; and a node cut off for 20 s in the middle of a step.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use kswizard::lab::Node;

mod common;
use common::lab::{LB_PORT, holders, lab_up, readyz, readyz_within};
use common::{install_json, lb_status_json};

/// Wait (polling every 100 ms, at most `limit`) until `cond`; how long it took.
fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "needs root and the lab"]
fn the_built_in_lb_serves_the_vip_and_moves_it_when_haproxy_or_its_node_goes() {
    let g = lab_up(150, 6);
    let (conf, vip) = g.built_in("b");
    let front = format!("{vip}:{LB_PORT}");
    let masters: Vec<Node> = g.lab.nodes[..3].to_vec();

    // Before the install nothing answers: the states say so (and that it is expected).
    let before = lb_status_json(&conf);
    for b in before["backends"].as_array().unwrap() {
        assert_eq!(b["state"], "not-listening", "{before}");
    }

    let (code, out) = install_json(&conf, &[]);
    assert_eq!(code, 0, "{out}");
    let after = lb_status_json(&conf);
    assert_eq!(after["frontend"]["state"], "ready", "{after}");
    for b in after["backends"].as_array().unwrap() {
        assert_eq!(b["state"], "ready", "{after}");
    }
    assert_eq!(after["built_in"]["holders"], serde_json::json!(["master1"]));
    // One answer, waited for as long as a loaded machine needs: what counts is that it is 200.
    assert_eq!(readyz_within(&front, 10), 200);

    // What a failover takes by design: 2 failed checks 1 s apart (up to 2 s after the stop), then
    // the backups' master-down interval (3 missed adverts + skew, about 3.2 s), then a probe
    // (up to 1.1 s): about 4 s measured alone, up to 6.3 s by design. The bound is that plus room
    // for a loaded machine (2 cores beside the whole suite): "a failover", not a stopwatch, and
    // still far from anything slower (a restarted node, a manual move). The medians are printed.
    let failover = Duration::from_secs(8);

    // haproxy stopped on the VIP holder: the VIP moves and /readyz answers again through it.
    let mut haproxy_gone = Vec::new();
    for _ in 0..3 {
        let holder = masters
            .iter()
            .find(|m| holders(&masters, &vip) == [m.name.as_str()])
            .unwrap();
        holder.exec("systemctl stop haproxy").unwrap();
        let dt = until(Duration::from_secs(20), "readyz through the VIP", || {
            readyz(&front) == 200
        });
        haproxy_gone.push(dt);
        assert_ne!(holders(&masters, &vip), [holder.name.as_str()]);
        holder.exec("systemctl start haproxy").unwrap();
        // Back on the first master once its haproxy passes its checks (preemption).
        until(Duration::from_secs(20), "the VIP back on master1", || {
            holders(&masters, &vip) == ["master1"]
        });
    }
    let haproxy_median = median(haproxy_gone.clone());
    eprintln!(
        "haproxy stopped on the VIP holder: /readyz through the VIP again after {haproxy_gone:?}, median {haproxy_median:?}"
    );
    assert!(haproxy_median < failover, "{haproxy_gone:?}");

    // The holder cut off entirely (its link down): the same.
    let mut cut = Vec::new();
    for _ in 0..3 {
        masters[0].link_down().unwrap();
        let t = Instant::now();
        while readyz(&front) != 200 {
            if t.elapsed() > Duration::from_secs(20) {
                let neigh = Command::new("ip")
                    .args(["neigh", "show", &vip])
                    .output()
                    .unwrap();
                panic!(
                    "readyz through the VIP not within 20 s; holders now {:?}; taskbox neighbour: {}; master2: {}",
                    holders(&masters[1..], &vip),
                    String::from_utf8_lossy(&neigh.stdout),
                    masters[1]
                        .exec("journalctl -u keepalived --no-pager | tail -5; ip -o addr show eth0")
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let dt = t.elapsed();
        cut.push(dt);
        masters[0].link_up().unwrap();
        until(
            Duration::from_secs(20),
            "the VIP back on master1 alone",
            || holders(&masters, &vip) == ["master1"],
        );
    }
    let cut_median = median(cut.clone());
    eprintln!(
        "VIP holder's link down: /readyz through the VIP again after {cut:?}, median {cut_median:?}"
    );
    assert!(cut_median < failover, "{cut:?}");

    // haproxy restarted on the holder: the VIP does not flap. The cluster is unreachable through it
    // only while the new haproxy's checks rise (it starts its backends down: 2 checks, 0.5 s apart).
    let mut moves = 0;
    let mut unanswered: Vec<Duration> = Vec::new();
    let mut last = holders(&masters, &vip).join(",");
    masters[0].exec("systemctl restart haproxy").unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        let now = holders(&masters, &vip).join(",");
        if now != last {
            moves += 1;
            last = now;
        }
        if readyz(&front) != 200 {
            unanswered.push(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let gap = match (unanswered.first(), unanswered.last()) {
        (Some(a), Some(b)) => b.saturating_sub(*a),
        _ => Duration::ZERO,
    };
    eprintln!(
        "haproxy restarted: {moves} VIP moves, {} probes unanswered over {gap:?}",
        unanswered.len()
    );
    assert_eq!(moves, 0);
    // The checks' rise takes about 2 s here alone; lab tests running beside it on 2 cores have
    // stretched it to 3.5 s. The bound is for "a rise, not a failover", not a stopwatch.
    assert!(gap < Duration::from_secs(6), "{unanswered:?}");

    // One master's apiserver stopped: lb status says so, the frontend stays ready. haproxy marks it
    // down after 2 failed checks 2 s apart (up to 4 s), and each `lb status` asks 3 masters over
    // SSH (seconds when loaded): 10 s is that with room, not a measurement.
    masters[2]
        .exec("kill $(cat /var/lib/kubelet/standin/apiserver.pid)")
        .unwrap();
    until(Duration::from_secs(10), "master3 reported down", || {
        let s = lb_status_json(&conf);
        let m3 = s["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == "master3")
            .cloned()
            .unwrap();
        m3["up"] == false && s["frontend"]["state"] == "ready"
    });
}

#[test]
#[ignore = "needs root and the lab"]
fn a_node_cut_off_for_20_s_mid_step_finishes_and_the_step_runs_once() {
    let g = lab_up(151, 2);
    let trace = g.lab.shared.join("trace");
    std::fs::create_dir_all(&trace).unwrap();
    let plan = g.tmp.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "steps:\n- id: long\n  roles: [all]\n  run: 'touch {t}/$KSW_NODE.began; sleep 8; echo x >> {t}/$KSW_NODE'\n- id: after\n  roles: [all]\n  after: [long]\n  run: 'true'\n",
            t = trace.display()
        ),
    )
    .unwrap();
    let conf = g.conf_dir("c", &g.cluster());
    let victim = g.lab.nodes[1].clone();
    // Cut once the victim's step has begun (its mark is in the shared dir, seen here without the
    // network), not after a guessed time: on a loaded machine the install may still be in its
    // preflight 2 s in, and a node cut off there fails the install before any step.
    let began = trace.join(format!("{}.began", victim.name));
    let cutter = std::thread::spawn(move || {
        until(Duration::from_secs(120), "the victim's step began", || {
            began.exists()
        });
        victim.link_down().unwrap();
        std::thread::sleep(Duration::from_secs(20));
        victim.link_up().unwrap();
    });
    let (code, out) = install_json(
        &conf,
        &["--plan", plan.to_str().unwrap(), "--reconnect-for", "60"],
    );
    cutter.join().unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reconnecting"), "the tries are shown: {out}");
    for n in &g.lab.nodes {
        let ran = std::fs::read_to_string(trace.join(&n.name)).unwrap();
        assert_eq!(ran, "x\n", "{}", n.name);
    }
}
