//! The SSH transport against real sshd: cancelled connects, host keys that cannot be pinned, the
//! remains of killed runs, and `kswizard ssh-copy-id`. Tests marked `#[ignore]` need root and the
//! lab (`.ci/run` runs them); each has a lab of its own on a subnet from 10.231.200 to 10.231.209.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kswizard::conf;
use kswizard::engine::transport::{self, ASKPASS_THREAD, ConnectError};

mod common;
use common::lab::{Tmpfs, lab_up};
use kswizard::model::{Auth, Host, Secret};

fn kswizard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kswizard"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Names of this process's threads.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

/// Files in `dir` whose name ends in `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

/// Pids of the ssh `ControlMasters` whose control socket is in `dir` (from their command lines).
fn masters_in(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"ssh"))
                && args.contains(&&b"-M"[..])
                && args.windows(2).any(|w| {
                    w[0] == b"-S"
                        && Path::new(std::str::from_utf8(w[1]).unwrap_or("")).parent() == Some(dir)
                })
        })
        .collect()
}

/// A 16 KiB tmpfs filled up, with an empty `known_hosts` in it; unmounted on drop.
/// Who `host` logs in as, connecting as the engine does (host keys in the conf's state dir).
fn login_user(conf: &Path, host: &Host) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = conf.parent().unwrap().join(".kswizard");
    let ctl = transport::control_dir_in(&state).unwrap();
    let conn = rt
        .block_on(transport::connect(
            host,
            &state.join("known_hosts"),
            ctl.path(),
            0,
        ))
        .unwrap();
    let (code, out, _) = rt.block_on(conn.run("id -un\n", false)).unwrap();
    rt.block_on(conn.close());
    assert_eq!(code, 0);
    out.trim().to_string()
}

/// A tmpfs with a `known_hosts` on it and no room left.
fn full_tmpfs(dir: &Path) -> Tmpfs {
    let t = Tmpfs::mount(dir, "16k");
    std::fs::write(dir.join("known_hosts"), "").unwrap();
    // Fill it: the write fails once the disk is full.
    let _ = std::fs::write(dir.join("fill"), vec![0u8; 64 * 1024]);
    t
}

/// Wait for `cond` (at most 60 s, room for a loaded machine): processes end asynchronously.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_cancelled_password_connect_ends_its_askpass_thread_and_its_ssh() {
    // A "host" that accepts TCP and never speaks SSH: ssh waits for its banner.
    let listener = std::net::TcpListener::bind("127.0.200.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut host = Host::new("silent", "127.0.200.1");
    host.port = Some(port);
    host.user = Some("nobody".into());
    host.auth = Auth::Password(Secret::new("not-sent"));
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().to_path_buf();
    let task =
        tokio::spawn(
            async move { transport::connect(&host, &ctl.join("known_hosts"), &ctl, 7).await },
        );
    let accepted = tokio::task::spawn_blocking(move || listener.accept().map(|(s, _)| s));
    let mut stream = tokio::time::timeout(Duration::from_secs(10), accepted)
        .await
        .expect("ssh (openssh-client) must be installed: it never connected")
        .unwrap()
        .unwrap();
    // ssh is connected, so the password is being served.
    assert!(
        threads().iter().any(|t| t == ASKPASS_THREAD),
        "{:?}",
        threads()
    );
    assert_eq!(files_ending(dir.path(), ".ap").len(), 1);

    // Cancel the connect, as the SSH test's timeout does.
    task.abort();
    match task.await {
        Err(e) => assert!(e.is_cancelled(), "{e}"),
        Ok(_) => panic!("the connect ended before it was cancelled"),
    }

    assert!(
        !threads().iter().any(|t| t == ASKPASS_THREAD),
        "{:?}",
        threads()
    );
    assert_eq!(files_ending(dir.path(), ".ap"), Vec::<PathBuf>::new());
    // The ssh that was connecting is gone too: its connection closes, long before ssh's own
    // ConnectTimeout (10 s) would have ended it.
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf);
    assert!(read.is_ok(), "ssh still holds the connection: {read:?}");
}

#[test]
#[ignore = "needs root and the lab"]
fn a_host_key_that_cannot_be_recorded_fails_the_connection() {
    let g = lab_up(201, 1);
    let host = g.cluster().hosts[0].clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ctl = tempfile::Builder::new()
        .prefix("kc")
        .tempdir_in("/tmp")
        .unwrap();
    // A full disk: ssh says "Permanently added" and leaves known_hosts empty.
    let _full = full_tmpfs(&g.tmp.path().join("full"));
    let on_full_disk = g.tmp.path().join("full/known_hosts");
    // known_hosts whose directory is a file: ssh cannot write it, says so, and logs in anyway.
    let not_a_dir = g.tmp.path().join("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();
    let unwritable = not_a_dir.join("known_hosts");
    for (n, kh) in [on_full_disk, unwritable].iter().enumerate() {
        let Err(e) = rt.block_on(transport::connect(&host, kh, ctl.path(), n)) else {
            panic!("connected without pinning the host key in {}", kh.display())
        };
        assert!(
            matches!(&e, ConnectError::HostKeyNotPinned { file, .. } if file == kh),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: kswizard could not record the host key in {}",
                host.name,
                kh.display()
            )) && msg.contains("make that file writable"),
            "{msg}"
        );
        // The master it started is stopped.
        eventually("the master to exit", || masters_in(ctl.path()).is_empty());
        assert!(!ctl.path().join(n.to_string()).exists());
    }

    // A writable known_hosts: the key is pinned and the connection is used.
    let kh = g.tmp.path().join("known_hosts");
    let conn = rt
        .block_on(transport::connect(&host, &kh, ctl.path(), 2))
        .unwrap();
    let (code, out, _) = rt.block_on(conn.run("echo ok\n", false)).unwrap();
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    rt.block_on(conn.close());
    let keygen = Command::new("ssh-keygen")
        .args(["-F", host.connect_address(), "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    // A state file: 0600, whatever ssh's umask would give it.
    assert_eq!(
        std::fs::metadata(&kh).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
#[ignore = "needs root and the lab"]
fn a_killed_runs_masters_and_control_dir_are_cleaned_up_by_the_next_start() {
    let g = lab_up(202, 2);
    let conf = g.conf_dir("k", &g.cluster());
    let plan = g.tmp.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "steps:\n- id: wait\n  roles: [all]\n  run: sleep 5\n",
    )
    .unwrap();
    // Kill it once both nodes run the step, their masters up.
    let mut child = common::install_until(&conf, &plan, "started", 2);
    let pid = child.id();
    // The killed run's control dir: the one whose owner is that process.
    let state = conf.parent().unwrap().join(".kswizard");
    let run_dirs = || -> Vec<PathBuf> {
        [state.join("ctl"), PathBuf::from("/tmp")]
            .iter()
            .filter_map(|base| std::fs::read_dir(base).ok())
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                std::fs::read_to_string(p.join("owner"))
                    .is_ok_and(|o| o.split_whitespace().next() == Some(&pid.to_string()))
            })
            .collect()
    };
    let dirs = run_dirs();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let masters = masters_in(&dirs[0]);
    assert_eq!(masters.len(), 2, "{masters:?}");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    // The masters outlive it.
    assert!(
        masters
            .iter()
            .all(|m| Path::new(&format!("/proc/{m}")).exists())
    );

    // The next start cleans up; its own dir is kept while it lives.
    let next = transport::control_dir_in(&state).unwrap();
    assert!(next.path().exists());
    assert!(!dirs[0].exists(), "{} left behind", dirs[0].display());
    eventually("the killed run's masters to exit", || {
        masters
            .iter()
            .all(|m| !Path::new(&format!("/proc/{m}")).exists())
    });
}

/// `kswizard ssh-copy-id` on `conf` with `args`.
fn copy_id(conf: &Path, args: &[&str]) -> Output {
    kswizard()
        .arg("ssh-copy-id")
        .arg("--conf")
        .arg(conf)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The hosts `kswizard validate` warns `plaintext-password` for.
fn plaintext_password_hosts(conf: &Path) -> Vec<String> {
    let out = kswizard()
        .args(["validate", "--format", "json", "--conf"])
        .arg(conf)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "plaintext-password")
        .flat_map(|f| f["hosts"].as_array().unwrap().clone())
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

/// The lab's password user's home on the first node (as this machine sees it), cleared so that
/// the test sees what ssh-copy-id creates.
fn fresh_home(lab: &kswizard::lab::Lab) -> PathBuf {
    let home = lab.nodes[0].path(&format!("/home/{}", lab.password_user));
    let _ = std::fs::remove_dir_all(home.join(".ssh"));
    home
}

#[test]
#[ignore = "needs root and the lab"]
fn ssh_copy_id_switches_password_hosts_to_key_login() {
    let g = lab_up(203, 3);
    let pw = g.lab.password().unwrap();
    let home = fresh_home(&g.lab);
    let mut cluster = g.cluster();
    // master1: password login; master2: password login and a sudo password; master3: a key.
    for (i, become_pass) in [(0, None), (1, Some(pw.clone()))] {
        cluster.hosts[i].user = Some(g.lab.password_user.clone());
        cluster.hosts[i].auth = Auth::Password(pw.clone());
        cluster.hosts[i].become_pass = become_pass;
    }
    let conf = g.conf_dir("c", &cluster);
    assert_eq!(plaintext_password_hosts(&conf), ["master1", "master2"]);
    // The lab's own key: the lab's sshd accepts it (its AuthorizedKeysFile is the lab's).
    let key = g.lab.key.with_extension("pub");
    let out = copy_id(&conf, &["--key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for h in ["master1", "master2"] {
        assert!(
            stdout.contains(&format!(
                "{h}: key {} authorized for {}; key login works",
                key.display(),
                g.lab.password_user
            )),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("master2: ansible_become_pass kept: sudo still asks"),
        "{stdout}"
    );
    assert!(!stdout.contains(pw.expose()));
    // Its control sockets were in the state dir, and are gone with their masters.
    let ctl_base = conf.parent().unwrap().join(".kswizard/ctl");
    assert_eq!(std::fs::read_dir(&ctl_base).unwrap().count(), 0);

    // hosts.ini: key login, no SSH password; master2 keeps its sudo password.
    let hosts_ini = std::fs::read_to_string(conf.join("hosts.ini")).unwrap();
    assert!(!hosts_ini.contains("ansible_ssh_pass"), "{hosts_ini}");
    let after = conf::load(&conf).unwrap().0;
    let want = Auth::Key {
        file: Some(g.lab.key.display().to_string()),
    };
    assert_eq!(after.hosts[0].auth, want);
    assert_eq!(after.hosts[0].become_pass, None);
    assert_eq!(after.hosts[1].auth, want);
    assert_eq!(after.hosts[1].become_pass.as_ref(), Some(&pw));
    assert_eq!(after.hosts[2], cluster.hosts[2]);
    // No warning for master1 any more; master2's sudo password is still a password in the file.
    assert_eq!(plaintext_password_hosts(&conf), ["master2"]);

    // The key is in the user's authorized_keys once, with private modes, however often it runs.
    let conf2 = g.conf_dir("c2", &cluster);
    let out = copy_id(&conf2, &["--key", key.to_str().unwrap(), "master1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ak = home.join(".ssh/authorized_keys");
    let pubkey = std::fs::read_to_string(&key).unwrap();
    assert_eq!(std::fs::read_to_string(&ak).unwrap(), pubkey);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.join(".ssh")), 0o700);
    assert_eq!(mode(&ak), 0o600);

    // Key login works with what hosts.ini now says: an install-like connect as the engine makes it.
    assert_eq!(login_user(&conf, &after.hosts[0]), g.lab.password_user);
    let state = conf.parent().unwrap().join(".kswizard");
    // Nothing in the state dir holds the password.
    for e in walk(&state) {
        let bytes = std::fs::read(&e).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(pw.expose()),
            "{}",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

/// Make `node`'s sshd also read the users' own `~/.ssh/authorized_keys` (the lab's reads only the
/// lab's key file), so that a key ssh-copy-id installs is the one that logs in.
fn read_home_authorized_keys(node: &kswizard::lab::Node) {
    let cfg = node.path("/etc/ssh/sshd_config.d/kswizard-lab.conf");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("AuthorizedKeysFile ") {
                format!("{l} .ssh/authorized_keys\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>();
    std::fs::write(&cfg, text).unwrap();
    node.exec("systemctl restart ssh.service").unwrap();
    node.wait_ready(Duration::from_secs(10)).unwrap();
}

#[test]
#[ignore = "needs root and the lab"]
fn ssh_copy_id_with_a_new_key_switches_the_hosts_where_key_login_works() {
    let g = lab_up(204, 2);
    let pw = g.lab.password().unwrap();
    fresh_home(&g.lab);
    // master1's sshd reads ~/.ssh/authorized_keys; worker1's does not, so key login fails there.
    read_home_authorized_keys(&g.lab.nodes[0]);
    let mut cluster = g.cluster();
    for h in &mut cluster.hosts {
        h.user = Some(g.lab.password_user.clone());
        h.auth = Auth::Password(pw.clone());
    }
    let conf = g.conf_dir("c", &cluster);
    // A new key, made with --yes.
    let key = g.tmp.path().join("keys/id_ed25519.pub");
    let private = g.tmp.path().join("keys/id_ed25519");
    let out = copy_id(&conf, &["--key", key.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(key.exists() && private.exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "master1: key {} authorized for {}; key login works",
            key.display(),
            g.lab.password_user
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("worker1: FAILED, hosts.ini unchanged for it: worker1: the key is in")
            && stdout.contains("but key login fails"),
        "{stdout}"
    );
    let after = conf::load(&conf).unwrap().0;
    assert_eq!(
        after.hosts[0].auth,
        Auth::Key {
            file: Some(private.display().to_string())
        }
    );
    assert_eq!(after.hosts[1], cluster.hosts[1]);
    assert_eq!(plaintext_password_hosts(&conf), ["worker1"]);
    // The new key logs in to master1, as the engine connects.
    assert_eq!(login_user(&conf, &after.hosts[0]), g.lab.password_user);

    // Unknown hosts and a missing key without --yes are bad input.
    let out = copy_id(&conf, &["nosuchhost"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nosuchhost: no such host in hosts.ini"));
    let missing = g.tmp.path().join("none/id_ed25519.pub");
    let out = copy_id(&conf, &["--key", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("Pass --yes to create it"),
        "{}",
        text(&out)
    );
}
