//! kswizard's engine against ansible-playbook and a plain parallel ssh loop, on the same lab
//! nodes, in one run: 10 no-op steps as root on every node (issue 3's benchmark).
//!
//! Needs root and Debian's `ansible` (skipped with a message without them). Run:
//! `cargo bench --bench engine_vs_ansible` (`KSW_BENCH_NODES=20,100` by default).
// A benchmark fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use kswizard::engine::executor::{self, Options};
use kswizard::engine::plan;
use kswizard::lab;

#[path = "common/lab.rs"]
mod lab_common;
use lab_common::median;

const STEPS: usize = 10;

fn kswizard_run(conf: &Path, work: &Path) -> f64 {
    let (cluster, _) = kswizard::conf::load(conf).unwrap();
    let text: String = (0..STEPS)
        .map(|i| format!("- {{id: s{i}, roles: [all], run: 'true'}}\n"))
        .collect();
    let plan = plan::parse(
        &format!("steps:\n{text}"),
        Path::new("bench.yaml"),
        |_| unreachable!(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = work.join("state");
    let t = Instant::now();
    let summary = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let opts = Options {
            restart: true,
            ..Options::new(state)
        };
        let s = executor::install(&cluster, &plan, &opts, tx).await.unwrap();
        drain.await.unwrap();
        s
    });
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(summary.ok, STEPS * cluster.hosts.len(), "{summary:?}");
    secs
}

/// The floor: per node, one multiplexed ssh master and STEPS sequential `sudo -n true`.
fn ssh_loop(lab: &lab::Lab, work: &Path) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for (i, n) in lab.nodes.iter().enumerate() {
            let ctl = work.join(format!("c{i}"));
            s.spawn(move || {
                let ssh = || {
                    let mut c = lab.ssh();
                    c.arg("-S").arg(&ctl);
                    c
                };
                let ok = ssh()
                    .args(["-M", "-f", "-N"])
                    .arg(format!("{}@{}", lab.key_user, n.ip))
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "ssh master to {}", n.ip);
                for _ in 0..STEPS {
                    assert!(
                        ssh()
                            .arg(&n.ip)
                            .args(["sudo", "-n", "true"])
                            .status()
                            .unwrap()
                            .success()
                    );
                }
                let _ = ssh()
                    .args(["-O", "exit"])
                    .arg(&n.ip)
                    .stderr(Stdio::null())
                    .status();
            });
        }
    });
    t.elapsed().as_secs_f64()
}

fn ansible(lab: &lab::Lab, work: &Path) -> Option<f64> {
    if Command::new("ansible-playbook")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return None;
    }
    let mut inv = String::from("[all]\n");
    for n in &lab.nodes {
        inv.push_str(&format!(
            "{} ansible_host={} ansible_user={} ansible_ssh_private_key_file={}\n",
            n.name,
            n.ip,
            lab.key_user,
            lab.key.display()
        ));
    }
    std::fs::write(work.join("inventory.ini"), inv).unwrap();
    let tasks: String = (0..STEPS)
        .map(|i| format!("    - name: step {i}\n      command: /bin/true\n"))
        .collect();
    std::fs::write(
        work.join("play.yml"),
        format!("- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n{tasks}"),
    )
    .unwrap();
    std::fs::write(
        work.join("ansible.cfg"),
        "[defaults]\nforks = 20\nhost_key_checking = False\ninterpreter_python = /usr/bin/python3\nstdout_callback = minimal\n[ssh_connection]\npipelining = True\n",
    )
    .unwrap();
    // Cold like the others: no ssh masters left from an earlier run (ControlPersist is 60 s).
    let cp = tempfile::Builder::new()
        .prefix("acp")
        .tempdir_in("/tmp")
        .unwrap();
    let t = Instant::now();
    let out = Command::new("ansible-playbook")
        .current_dir(work)
        .env("ANSIBLE_CONFIG", work.join("ansible.cfg"))
        .env("ANSIBLE_SSH_CONTROL_PATH_DIR", cp.path())
        .args(["-i", "inventory.ini", "play.yml"])
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "ansible failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(secs)
}

fn main() {
    if !lab::is_root() {
        println!("engine_vs_ansible: skipped, the lab needs root");
        return;
    }
    let sizes = lab_common::sizes();
    println!("{STEPS} no-op steps as root on every node; median wall time, lower is better");
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>14} {:>14}",
        "nodes", "ansible", "ssh loop", "kswizard", "ansible/ksw", "ksw/ssh loop"
    );
    for &n in &sizes {
        let tmp = tempfile::Builder::new()
            .prefix("kb")
            .tempdir_in("/tmp")
            .unwrap();
        // Down also when a contestant panics.
        let (lab, _down) = lab_common::up(tmp.path(), n);
        let work = tmp.path();
        // Warm the page cache and sshd once, so that no contestant pays for the first contact.
        let _ = ssh_loop(&lab, work);
        // The median of a few runs each (one for large labs: ansible alone takes minutes there),
        // interleaved so that a passing load on the machine hits all three alike.
        let runs = if n <= 20 { 3 } else { 1 };
        let (mut a, mut s, mut k) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            a.extend(ansible(&lab, work));
            s.push(ssh_loop(&lab, work));
            k.push(kswizard_run(&lab.conf_dir, work));
        }
        let ansible = median(a);
        let ssh = median(s).expect("ran");
        let ksw = median(k).expect("ran");
        let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}s"));
        println!(
            "{n:>6} {:>10} {:>10} {:>10} {:>14} {:>14}",
            fmt(ansible),
            fmt(Some(ssh)),
            fmt(Some(ksw)),
            ansible.map_or("n/a".into(), |a| format!("{:.1}x", a / ksw)),
            format!("{:.2}x", ksw / ssh)
        );
    }
}
