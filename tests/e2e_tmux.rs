//! The wizard end to end: the real binary in a 120×40 tmux pane, driven by send-keys and read by
//! capture-pane. Opens the repository's conf (copied), makes etcd even and sees the finding, fixes
//! it, sets a new VIP, writes, quits, and checks what reached the disk. And `kswizard demo` on a
//! terminal: the lab, the wizard at Review, the live install quit in the middle and resumed.
//! Needs tmux (the demo: root and the lab too): ignored by a plain `cargo nextest run`, run by
//! `.ci/run` (`--run-ignored all`).
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kswizard::conf;
use kswizard::lab::Lab;

/// How long any expected text may take to appear.
const WAIT: Duration = Duration::from_secs(20);

/// A tmux server of our own (own socket), killed on drop so a failing test leaves nothing behind.
struct Tmux {
    socket: PathBuf,
}

const SESSION: &str = "kswizard-e2e";

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    fn type_text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", SESSION, "-l", text])
                .status
                .success()
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", SESSION]).stdout)
            .into_owned()
    }

    /// `command` (a shell line) in a new 120×40 session.
    fn start(&self, command: &str) {
        // Run without tmux, this fails saying so: it never passes without having run.
        assert!(
            tmux_available(),
            "this test needs tmux: apt-get install -y tmux (`bash .ci/run` installs it)"
        );
        let started = self.run(&[
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            "120",
            "-y",
            "40",
            command,
        ]);
        assert!(started.status.success(), "{started:?}");
    }

    /// Poll the pane until every one of `texts` is on it.
    fn wait_for(&self, texts: &[&str]) -> String {
        self.wait_until(WAIT, &format!("{texts:?}"), |s| {
            texts.iter().all(|t| s.contains(t))
        })
    }

    /// Poll the pane until `ok` holds for it, at most `limit`; `what` names it in the failure.
    fn wait_until(&self, limit: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_gone(&self) {
        let start = Instant::now();
        while self.run(&["has-session", "-t", SESSION]).status.success() {
            assert!(
                start.elapsed() < WAIT,
                "kswizard did not quit:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The wizard on `dir` in a 120×40 tmux pane of a tmux server of its own (socket in `tmp`).
fn start_wizard(tmp: &Path, dir: &Path) -> Tmux {
    let tmux = Tmux {
        socket: tmp.join("tmux.sock"),
    };
    tmux.start(&format!(
        "{} --conf {}",
        env!("CARGO_BIN_EXE_kswizard"),
        dir.display()
    ));
    tmux
}

#[test]
#[ignore = "needs tmux"]
fn edit_roles_and_vip_then_write() {
    let repo_conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    for name in ["hosts.ini", "common.yaml"] {
        std::fs::copy(repo_conf.join(name), dir.join(name)).unwrap();
    }
    let tmux = start_wizard(tmp.path(), &dir);

    // Start: Open is the default choice.
    tmux.wait_for(&["Found: hosts.ini (6 hosts), common.yaml", "▶ Open"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["Hosts (6)", "node3"]);

    // Roles: etcd on node1 (a worker) makes four etcd hosts.
    tmux.keys(&["3"]);
    tmux.wait_for(&["Roles: 3 masters, 3 workers, 3 etcd"]);
    tmux.keys(&["j", "j", "j", "Left", "Space"]);
    tmux.wait_for(&[
        "etcd: 4 hosts — needs an odd count; 3 tolerate 1 failure, 5 tolerate 2",
        "[etcd-count-even]",
        "✗ etcd-count-even, etcd-on-worker",
    ]);
    tmux.keys(&["Space"]);
    tmux.wait_for(&[
        "etcd: 3 hosts — quorum 2, tolerates 1 failure",
        "no findings",
    ]);

    // Load balancer: a new VIP.
    tmux.keys(&["4"]);
    tmux.wait_for(&["Apiserver load balancer", "192.168.0.253"]);
    tmux.keys(&["j", "e", "C-u"]);
    tmux.type_text("192.168.0.250");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["192.168.0.250:6443", "no findings for the load balancer"]);

    // Review shows the change, Ctrl-S writes it, q quits without asking.
    tmux.keys(&["5"]);
    tmux.wait_for(&["-  address: 192.168.0.253", "+  address: 192.168.0.250"]);
    tmux.keys(&["C-s"]);
    tmux.wait_for(&["Wrote hosts.ini, common.yaml", "saved"]);
    tmux.keys(&["q"]);
    tmux.wait_until_gone();

    // common.yaml: only the address line changed.
    let before = read(&repo_conf.join("common.yaml"));
    let after = read(&dir.join("common.yaml"));
    assert_eq!(before.lines().count(), after.lines().count());
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [("  address: 192.168.0.253", "  address: 192.168.0.250")]
    );
    assert_eq!(read(&dir.join("common.yaml.bak")), before);

    // hosts.ini reads back to the same model.
    let (old, _) = conf::load(&repo_conf).unwrap();
    let (new, _) = conf::load(&dir).unwrap();
    assert_eq!(new.hosts, old.hosts);
    assert_eq!(new.ini, old.ini);
    assert_eq!(new.lb.address.as_deref(), Some("192.168.0.250"));
}

#[test]
#[ignore = "needs tmux"]
fn type_the_six_host_example_from_an_empty_conf_with_bulk_add() {
    // The installer's own common.yaml as shipped (read from the samples, not copied in).
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        samples.join("ks-installer-v2.1.1-common.yaml"),
        dir.join("common.yaml"),
    )
    .unwrap();
    let tmux = start_wizard(tmp.path(), &dir);

    tmux.wait_for(&["▶ New cluster"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["No hosts yet"]);
    // Two ranges: the masters, then the workers.
    for (range, prefix) in [("192.168.0.1-3", "master"), ("192.168.0.4-6", "node")] {
        tmux.keys(&["r"]);
        tmux.wait_for(&["Add hosts from an address range"]);
        tmux.type_text(range);
        tmux.keys(&["Tab", "C-u"]);
        tmux.type_text(prefix);
        tmux.keys(&["Enter"]);
        tmux.wait_for(&[&format!("{prefix}3")]);
    }
    tmux.wait_for(&["Hosts (6)"]);
    // master1 is the taskbox: local, no ansible_host.
    tmux.keys(&["k", "k", "k", "k", "k", "e"]);
    tmux.wait_for(&["Edit host", "master1"]);
    tmux.keys(&["Tab", "C-u", "Tab", "Tab", "Tab", "Tab", "Left", "Enter"]);
    tmux.wait_for(&["Changed master1."]);
    // Roles: the preset (first three masters with etcd, the rest workers).
    tmux.keys(&["3", "p"]);
    tmux.wait_for(&["Roles: 3 masters, 3 workers, 3 etcd"]);
    // The load balancer's address.
    tmux.keys(&["4"]);
    tmux.wait_for(&["Apiserver load balancer"]);
    tmux.keys(&["j", "e", "C-u"]);
    tmux.type_text("192.168.0.253");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["192.168.0.253:6443"]);
    tmux.keys(&["5", "C-s"]);
    tmux.wait_for(&["Wrote hosts.ini, common.yaml", "saved"]);
    tmux.keys(&["q"]);
    tmux.wait_until_gone();

    // The files say what the seeds' example says: its hosts, roles and LB lines.
    let repo_conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let (want, _) = conf::load(&repo_conf).unwrap();
    let (got, _) = conf::load(&dir).unwrap();
    assert_eq!(got.hosts, want.hosts);
    assert_eq!(
        (&got.lb.address, got.lb.port, &got.lb.domain),
        (&want.lb.address, want.lb.port, &want.lb.domain)
    );
}

/// The demo's lab dir and subnet in this test (10.231.221 is this test's own).
const DEMO_DIR: &str = "/tmp/wt-f-demo-e2e";
const DEMO_SUBNET: &str = "10.231.221";
/// Lab up (the node image cached) and a whole install take well under a minute; a first run that
/// builds the image takes minutes.
const DEMO_WAIT: Duration = Duration::from_secs(300);

/// Takes the demo's lab down when the test ends, whatever happens in it.
struct DemoLab;

impl DemoLab {
    fn down() -> std::process::ExitStatus {
        Command::new(env!("CARGO_BIN_EXE_kswizard"))
            .args(["demo", "--down", "--dir", DEMO_DIR])
            .output()
            .unwrap()
            .status
    }
}

impl Drop for DemoLab {
    fn drop(&mut self) {
        let _ = DemoLab::down();
    }
}

/// `kswizard demo` in the pane; the shell stays after it so that what it printed can be read.
fn start_demo(tmux: &Tmux) {
    tmux.start(&format!(
        "{} demo --yes --dir {DEMO_DIR} --subnet {DEMO_SUBNET}; echo demo-exited-$?; sleep 600",
        env!("CARGO_BIN_EXE_kswizard")
    ));
}

/// The Install screen's "Overall ███░░ 12 of 36 steps": (done, total).
fn overall(screen: &str) -> Option<(usize, usize)> {
    let line = screen.lines().find(|l| l.contains(" Overall "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let of = words.iter().position(|w| *w == "of")?;
    Some((
        words.get(of - 1)?.parse().ok()?,
        words.get(of + 1)?.parse().ok()?,
    ))
}

/// Every node's container init, as the taskbox numbers it: the same lab has the same ones.
fn node_leaders() -> Vec<Option<u32>> {
    let lab = Lab::load(Path::new(DEMO_DIR)).unwrap();
    lab.nodes.iter().map(kswizard::lab::Node::leader).collect()
}

#[test]
#[ignore = "needs root, the lab and tmux"]
fn demo_installs_live_quits_in_the_middle_and_resumes_to_done() {
    let _ = DemoLab::down();
    let _lab = DemoLab;
    let tmp = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: tmp.path().join("tmux.sock"),
    };
    let nodes = [
        "master1", "master2", "master3", "worker1", "worker2", "worker3",
    ];

    // The lab comes up, then the wizard opens at Review of its files, saying what this is.
    start_demo(&tmux);
    tmux.wait_until(DEMO_WAIT, "the lab up", |s| {
        nodes
            .iter()
            .all(|n| s.contains(&format!("{n:<9} {DEMO_SUBNET}.")))
            && s.contains("LB        10.231.221.250:6443")
            && s.contains("Enter opens the wizard.")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["[5 Review]", "Demo lab: i installs, 1-4 look around."]);
    let leaders = node_leaders();
    assert!(leaders.iter().all(Option::is_some), "{leaders:?}");
    tmux.keys(&["i"]);
    tmux.wait_for(&["Install? "]);
    tmux.keys(&["y"]);
    // Preflight: the lab's nodes run cgroup v1, a warning, so the install waits for `c`.
    tmux.wait_for(&["c continues anyway"]);
    tmux.keys(&["c"]);

    // The Install screen: all six nodes, and the steps done counting up live.
    let mut wanted: Vec<&str> = nodes.to_vec();
    wanted.push("[Install]");
    tmux.wait_for(&wanted);
    let started = tmux.wait_until(DEMO_WAIT, "some steps done", |s| {
        overall(s).is_some_and(|(done, _)| done > 0)
    });
    let (done_then, _) = overall(&started).unwrap();
    let middle = tmux.wait_until(DEMO_WAIT, "more steps done", |s| {
        overall(s).is_some_and(|(done, _)| done > done_then)
    });
    let (done_mid, total) = overall(&middle).unwrap();
    assert!(
        done_mid < total,
        "the install ended before it could be quit:\n{middle}"
    );

    // Quit in the middle: the question says the steps go on; the demo says how to go on.
    tmux.keys(&["q"]);
    tmux.wait_for(&["Quit and stop the install?"]);
    tmux.keys(&["y"]);
    tmux.wait_until(DEMO_WAIT, "the demo's closing words", |s| {
        s.contains("demo-exited-0") && s.contains("The install is unfinished")
    });
    tmux.wait_for(&["kswizard demo --down --dir /tmp/wt-f-demo-e2e"]);
    assert!(tmux.run(&["kill-session", "-t", SESSION]).status.success());

    // Again: the same lab (the same containers), the install question offers to resume.
    start_demo(&tmux);
    tmux.wait_for(&[
        "the lab in /tmp/wt-f-demo-e2e is up; using it as it is",
        "Enter opens the wizard.",
    ]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["[5 Review]", "Demo lab: i resumes the install"]);
    assert_eq!(node_leaders(), leaders, "the demo made a new lab");
    tmux.keys(&["i"]);
    tmux.wait_for(&["Resume the unfinished install?"]);
    tmux.keys(&["y"]);
    tmux.wait_for(&["c continues anyway"]);
    tmux.keys(&["c"]);
    tmux.wait_for(&["[Install]"]);
    let done = tmux.wait_until(DEMO_WAIT, "Done", |s| s.contains("[Done]"));
    assert!(
        done.contains("Installed on 6 hosts") && done.contains("were already done"),
        "{done}"
    );
    tmux.keys(&["q"]);
    tmux.wait_until(DEMO_WAIT, "the demo's end", |s| s.contains("demo-exited-0"));
    assert!(tmux.screen().contains("The install: "), "{}", tmux.screen());

    // Down: nothing of the lab is left.
    let lab = Lab::load(Path::new(DEMO_DIR)).unwrap();
    assert!(DemoLab::down().success());
    assert!(lab.processes().is_empty(), "{:?}", lab.processes());
    assert!(!Path::new(DEMO_DIR).exists());
}
