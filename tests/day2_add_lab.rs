//! Day 2, adding nodes (issue 12 item 2) on the lab: the 6-host example installed with the built-in
//! LB; a worker and a master added to the conf and `kswizard install` run again: only the new
//! hosts' steps and the membership steps run, the new master serves through the VIP and is in
//! every master's haproxy, every kubelet talks to the LB; then two etcd hosts added, one of them
//! left a learner by a run cut short after `member add`: etcd grows from 3 to 5 voting members one
//! at a time and every apiserver's `--etcd-servers` lists the five, restarted one master at a time.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kswizard::lab::Node;
use kswizard::model::{Cluster, Roles};

mod common;
use common::lab::{LB_PORT, LabGuard, holders, lab_up, readyz, readyz_within};
use common::{install_run, lb_status_json, output_of};

/// The plan's steps that depend on membership (`membership: true`): the only ones that may run on
/// a host already installed when hosts are added.
const MEMBERSHIP: [&str; 5] = [
    "lb-built-in",
    "etcd-members",
    "join-token",
    "apiserver-etcd",
    "verify",
];

/// `install --yes --output json` on `conf`, which must end well: its events.
fn install_ok(conf: &Path) -> Vec<serde_json::Value> {
    let (code, events, err) = install_run(conf, &[]);
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(code, Some(0), "{text}{err}");
    events
}

/// (node, step) of every step that ran (not read back as already done).
fn ran(events: &[serde_json::Value]) -> BTreeSet<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "started" && e["already_done"] != true)
        .map(|e| {
            (
                e["node"].as_str().unwrap().to_string(),
                e["step"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The steps that ran on `old` hosts are membership steps only, and these ran where expected.
fn only_membership_steps_on(old: &[&str], events: &[serde_json::Value], expected: &[(&str, &str)]) {
    let ran = ran(events);
    for (node, step) in &ran {
        assert!(
            !old.contains(&node.as_str()) || MEMBERSHIP.contains(&step.as_str()),
            "{step} ran again on {node}, which was installed: {ran:?}"
        );
    }
    for (node, step) in expected {
        assert!(
            ran.contains(&(node.to_string(), step.to_string())),
            "{step} did not run on {node}: {ran:?}"
        );
    }
}

/// The runs of `step` never overlap: each node's `finished` (or, for an attempt that is tried
/// again, its "trying again" line: the node gives up its turn until the retry) comes before the
/// next one's `started`. The nodes in the order they ran it.
fn one_at_a_time(events: &[serde_json::Value], step: &str) -> Vec<String> {
    let mut running: Option<&str> = None;
    let mut order = Vec::new();
    for e in events.iter().filter(|e| e["step"] == step) {
        let node = e["node"].as_str().unwrap();
        match e["event"].as_str().unwrap() {
            "started" => {
                assert_eq!(
                    running, None,
                    "{step} started on {node} while running elsewhere"
                );
                running = Some(node);
                order.push(node.to_string());
            }
            "finished" => {
                assert_eq!(running, Some(node), "{step} finished on {node}");
                running = None;
            }
            "output"
                if e["line"].as_str().is_some_and(|l| {
                    l.starts_with("kswizard: attempt ") && l.ends_with("trying again")
                }) =>
            {
                assert_eq!(running, Some(node), "{step} tried again on {node}");
                running = None;
            }
            _ => {}
        }
    }
    order
}

fn names(c: &Cluster) -> Vec<String> {
    c.hosts.iter().map(|h| h.name.clone()).collect()
}

/// A host of the lab's with other roles.
fn as_role(c: &Cluster, name: &str, roles: Roles) -> kswizard::model::Host {
    let mut h = c.hosts.iter().find(|h| h.name == name).unwrap().clone();
    h.roles = roles;
    h
}

/// While it lives, samples every 200 ms which masters hold the VIP and whether `/readyz` answers
/// through it; `stop` gives (samples, the holders of samples whose holders were not exactly
/// `holder`, the samples whose `/readyz` was not 200: number, when, what came back, 0 for nothing).
struct Watch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>, Vec<Unanswered>)>,
}

type Unanswered = (usize, Duration, u32);

impl Watch {
    fn start(masters: Vec<Node>, vip: String, holder: &'static str) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut n, mut moved, mut unanswered) = (0, Vec::new(), Vec::new());
            let t = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let now = holders(&masters, &vip);
                if now != [holder] {
                    moved.push(now.join(","));
                }
                // 5 s: on two loaded cores an answer can be slow; an LB without a backend or
                // listener answers at once (503, refused).
                let code = readyz_within(&format!("{vip}:{LB_PORT}"), 5);
                if code != 200 {
                    unanswered.push((n, t.elapsed(), code));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (n, moved, unanswered)
        });
        Watch { stop, thread }
    }

    fn stop(self) -> (usize, Vec<String>, Vec<Unanswered>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The server of every node's kubelet.conf.
fn kubelet_servers(nodes: &[Node]) -> Vec<(String, String)> {
    nodes
        .iter()
        .map(|n| {
            let s = n
                .exec("awk '$1 == \"server:\" { print $2 }' /etc/kubernetes/kubelet.conf")
                .unwrap();
            (n.name.clone(), s.trim().to_string())
        })
        .collect()
}

/// haproxy's `show stat` on `node`'s stats socket: the `stot` (sessions so far) of the
/// kube-apiserver backend's server for `ip`.
fn sessions_to(node: &Node, ip: &str) -> u64 {
    let stat = node
        .exec("bash -c 'exec 3<>/dev/tcp/127.0.0.1/8405 && echo show stat >&3 && cat <&3'")
        .unwrap();
    let server = format!("apiserver-{}", ip.replace('.', "-"));
    stat.lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.len() > 7 && f[0] == "kube-apiserver" && f[1] == server)
        .unwrap_or_else(|| panic!("no {server} in {}'s haproxy: {stat}", node.name))[7]
        .parse()
        .unwrap()
}

/// etcdctl `args` on the master `m` against its etcd client certificate and the first member.
fn etcdctl(m: &Node, args: &str) -> String {
    m.exec(&format!(
        "ETCDCTL_API=3 etcdctl --endpoints https://{}:2379 --cacert /etc/etcd/pki/ca.crt \
         --cert /etc/etcd/pki/apiserver-etcd-client.crt --key /etc/etcd/pki/apiserver-etcd-client.key {args}",
        m.ip
    ))
    .unwrap()
}

fn node<'a>(g: &'a LabGuard, name: &str) -> &'a Node {
    g.lab.nodes.iter().find(|n| n.name == name).unwrap()
}

#[test]
#[ignore = "needs root and the lab"]
fn added_worker_and_master_join_and_etcd_grows_from_3_to_5() {
    let t0 = Instant::now();
    // Ten nodes: the 6-host example, then worker4 (a worker), worker5 (made a master), worker6
    // and worker7 (made etcd hosts).
    let g = lab_up(230, 10);
    let all = g.cluster();
    let mut c = all.clone();
    c.hosts.truncate(6);
    let vip = g.with_built_in_lb(&mut c);
    let conf = g.conf_dir("c", &c);
    install_ok(&conf);
    let installed = t0.elapsed();
    let old = names(&c);
    let old: Vec<&str> = old.iter().map(String::as_str).collect();

    // A worker and a master added.
    let master = Roles {
        master: true,
        ..Roles::default()
    };
    let worker = Roles {
        worker: true,
        ..Roles::default()
    };
    c.hosts.push(as_role(&all, "worker4", worker));
    c.hosts.push(as_role(&all, "worker5", master));
    let conf = g.conf_dir("c", &c);
    let masters: Vec<Node> = ["master1", "master2", "master3", "worker5"]
        .iter()
        .map(|n| node(&g, n).clone())
        .collect();
    let watch = Watch::start(masters.clone(), vip.clone(), "master1");
    let t = Instant::now();
    let events = install_ok(&conf);
    let add_nodes = t.elapsed();
    let (samples, moved, unanswered) = watch.stop();
    eprintln!(
        "adding a worker and a master: {add_nodes:?}; VIP watched {samples} times: moved {moved:?}, /readyz unanswered at {unanswered:?}"
    );
    assert!(moved.is_empty(), "the VIP left master1 alone: {moved:?}");
    only_membership_steps_on(
        &old,
        &events,
        &[
            ("master1", "lb-built-in"),
            ("master2", "lb-built-in"),
            ("master3", "lb-built-in"),
            ("master1", "join-token"),
            ("worker4", "join-workers"),
            ("worker5", "join-masters"),
            ("worker5", "lb-built-in"),
        ],
    );

    // The new master is in every master's haproxy, up, and serves through the VIP.
    let new_ip = node(&g, "worker5").ip.clone();
    let status = lb_status_json(&conf);
    for m in status["built_in"]["masters"].as_array().unwrap() {
        let up: Vec<&str> = m["haproxy"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "UP")
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            up,
            ["master1", "master2", "master3", "worker5"],
            "{}: {status}",
            m["name"]
        );
    }
    assert_eq!(readyz(&format!("{new_ip}:6443")), 200);
    let before = sessions_to(&masters[0], &new_ip);
    for _ in 0..8 {
        assert_eq!(readyz(&format!("{vip}:{LB_PORT}")), 200);
    }
    let after = sessions_to(&masters[0], &new_ip);
    assert!(
        after > before,
        "no request through the VIP reached worker5's apiserver ({before} -> {after})"
    );

    // Every kubelet talks to the LB endpoint, never one master.
    let lb = format!("https://{}:{LB_PORT}", c.lb.domain);
    let nodes: Vec<Node> = c.hosts.iter().map(|h| node(&g, &h.name).clone()).collect();
    for (n, server) in kubelet_servers(&nodes) {
        assert_eq!(server, lb, "{n}'s kubelet.conf");
    }
    let got = masters[0]
        .exec("kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
        .unwrap();
    for h in &c.hosts {
        assert!(
            got.lines()
                .any(|l| l.split_whitespace().take(2).eq([h.name.as_str(), "Ready"])),
            "{} not Ready: {got}",
            h.name
        );
    }

    // etcd from 3 to 5: two etcd hosts added.
    let etcd = Roles {
        etcd: true,
        ..Roles::default()
    };
    let old = names(&c);
    let old: Vec<&str> = old.iter().map(String::as_str).collect();
    c.hosts.push(as_role(&all, "worker6", etcd));
    c.hosts.push(as_role(&all, "worker7", etcd));
    // As a run cut short after `member add` leaves it: worker6 a learner that never started.
    let w6 = node(&g, "worker6").ip.clone();
    etcdctl(
        &masters[0],
        &format!(
            "member add etcd-{} --peer-urls https://{w6}:2380 --learner",
            w6.replace('.', "-")
        ),
    );
    let conf = g.conf_dir("c", &c);
    let t = Instant::now();
    let events = install_ok(&conf);
    let grow = t.elapsed();
    only_membership_steps_on(
        &old,
        &events,
        &[
            ("master1", "etcd-members"),
            ("master1", "apiserver-etcd"),
            ("master2", "apiserver-etcd"),
            ("master3", "apiserver-etcd"),
            ("worker5", "apiserver-etcd"),
            ("worker6", "etcd-start"),
            ("worker7", "etcd-start"),
        ],
    );
    let joined = one_at_a_time(&events, "etcd-start");
    let mut hosts = joined.clone();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts, ["worker6", "worker7"], "{joined:?}");
    assert_eq!(one_at_a_time(&events, "apiserver-etcd").len(), 4);
    let w6 = output_of(&events, "worker6", "etcd-start");
    let w7 = output_of(&events, "worker7", "etcd-start");
    assert!(
        w6.contains("was added as a learner before: going on"),
        "{w6}"
    );
    assert!(
        w7.contains("snapshot of the cluster before adding")
            && w7.contains("/var/lib/kswizard/backups/"),
        "{w7}"
    );
    // The first to be promoted makes etcd four members for a moment, and says so.
    let (even, odd) = if w6.contains("etcd has 5 voting members") {
        (&w7, &w6)
    } else {
        (&w6, &w7)
    };
    assert!(
        even.contains("an even count, for the moment only"),
        "{even}"
    );
    assert!(odd.contains("etcd has 5 voting members"), "{odd}");

    let ips: Vec<String> = ["master1", "master2", "master3", "worker6", "worker7"]
        .iter()
        .map(|n| node(&g, n).ip.clone())
        .collect();
    let members = etcdctl(&masters[0], "member list");
    // ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER
    let rows: Vec<Vec<&str>> = members.lines().map(|l| l.split(", ").collect()).collect();
    assert_eq!(rows.len(), 5, "{members}");
    for r in &rows {
        assert_eq!((r[1], r[5]), ("started", "false"), "{members}");
    }
    let want = ips
        .iter()
        .map(|ip| format!("https://{ip}:2379"))
        .collect::<Vec<_>>()
        .join(",");
    for m in &masters {
        let list = m
            .exec(
                "sed -n 's/^ *- --etcd-servers=//p' /etc/kubernetes/manifests/kube-apiserver.yaml",
            )
            .unwrap();
        assert_eq!(list.trim(), want, "{}'s apiserver manifest", m.name);
        assert_eq!(readyz(&format!("{}:6443", m.ip)), 200, "{}", m.name);
    }
    assert_eq!(readyz(&format!("{vip}:{LB_PORT}")), 200);
    eprintln!(
        "figures: install {installed:?}, add a worker and a master {add_nodes:?}, grow etcd 3 -> 5 {grow:?}, whole test {:?}",
        t0.elapsed()
    );
    // Last, so that a failure here still shows whether the rest holds. No outage through the VIP
    // while haproxy and keepalived reload: never two probes in a row unanswered. (A single probe
    // cut during the TLS handshake has been seen in some runs on two loaded cores, never when no
    // install runs: 0 of 342 probes; its cause is not known yet.)
    assert!(
        unanswered.windows(2).all(|w| w[1].0 != w[0].0 + 1) && unanswered.len() <= 2,
        "the LB stopped answering while the worker and master were added: {unanswered:?}"
    );
}
