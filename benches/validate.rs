//! Reading and checking a 1,000-host and a 10,000-host hosts.ini: parse + validate, each alone, and
//! a floor (splitting the file into lines) to compare against. Ten times the hosts should cost about
//! ten times as much: every lookup is a hash lookup. Plain timing loop: the numbers are for a
//! person, not CI.
//!
//! Run: `cargo bench --bench validate`. Target: parse + validate of 1,000 hosts under 50 ms.
// A benchmark fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use kswizard::conf::hosts_ini;
use kswizard::model::{Cluster, LbMode, LoadBalancer};
use kswizard::validate::validate;

/// Host counts, with the iterations each is measured over.
const SIZES: [(usize, usize); 2] = [(1_000, 200), (10_000, 40)];

/// 3 masters with etcd, the rest workers; every line non-root with passwords and extra keys, the
/// heaviest lines the legacy layout has.
fn inventory(hosts: usize) -> String {
    let mut s = String::from("; generated for the benchmark\n[all]\n");
    for i in 0..hosts {
        let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256 + 1);
        s.push_str(&format!(
            "node{i}  ansible_host={ip}  ip={ip}  ansible_user=ubuntu  ansible_become_pass=\"Pa ss#{i}\"  ansible_port=22  etcd_member_name=etcd{i}  rack=r{}\n",
            i % 40
        ));
    }
    s.push_str(
        "\n[kube-master]\nnode0\nnode1\nnode2\n\n[etcd]\nnode0\nnode1\nnode2\n\n[kube-node]\n",
    );
    for i in 3..hosts {
        s.push_str(&format!("node{i}\n"));
    }
    s.push_str("\n[k8s-cluster:children]\nkube-node\nkube-master\n");
    s
}

#[derive(Clone, Copy)]
struct Stats {
    mean: Duration,
    median: Duration,
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..iterations / 10 {
        f(); // warm caches and the allocator
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    Stats {
        mean: times.iter().sum::<Duration>() / times.len() as u32,
        median: times[times.len() / 2],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mut totals = Vec::new();
    for (hosts, iterations) in SIZES {
        totals.push((hosts, bench(hosts, iterations)));
    }
    let ((small, t_small), (large, t_large)) = (totals[0], totals[1]);
    println!(
        "parse + validate, {large} hosts / {small} hosts: {:.1}x the time for {}x the hosts",
        t_large.median.as_secs_f64() / t_small.median.as_secs_f64(),
        large / small
    );
    println!(
        "target: parse + validate of {small} hosts under 50 ms: {}",
        if ms(t_small.median) < 50.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// Measures `hosts` hosts, prints the table, and gives the parse + validate time.
fn bench(hosts: usize, iterations: usize) -> Stats {
    let text = inventory(hosts);
    let bytes = text.as_bytes();
    let path = Path::new("conf/hosts.ini");
    // common.yaml's part: three masters need the LB.
    let lb = LoadBalancer {
        mode: LbMode::External,
        address: Some("10.255.0.100".into()),
        ..LoadBalancer::default()
    };
    let read = || -> Cluster {
        let mut c = hosts_ini::parse(black_box(bytes), path).unwrap();
        c.lb = lb.clone();
        c
    };
    let cluster = read();
    let findings = validate(&cluster);
    assert_eq!(cluster.hosts.len(), hosts);
    // Passwords in the file are the only remark on this layout.
    assert_eq!(
        findings.iter().map(|f| f.code).collect::<Vec<_>>(),
        ["plaintext-password"]
    );

    let floor = measure(iterations, || {
        black_box(black_box(&text).lines().count());
    });
    let cases = [
        (
            "parse + validate",
            measure(iterations, || {
                black_box(validate(&read()));
            }),
        ),
        (
            "parse",
            measure(iterations, || {
                black_box(read());
            }),
        ),
        (
            "validate",
            measure(iterations, || {
                black_box(validate(black_box(&cluster)));
            }),
        ),
        ("floor: split into lines", floor),
    ];
    println!(
        "\n{hosts} hosts, {} KiB, {} lines, {iterations} iterations",
        text.len() / 1024,
        text.lines().count()
    );
    println!(
        "{:<26} {:>10} {:>10} {:>10}",
        "", "mean ms", "median ms", "x floor"
    );
    for (name, s) in &cases {
        println!(
            "{name:<26} {:>10.3} {:>10.3} {:>10.1}",
            ms(s.mean),
            ms(s.median),
            s.median.as_secs_f64() / floor.median.as_secs_f64()
        );
    }
    cases[0].1
}
