//! The SSH transport against real sshd: cancelled connects, host keys that cannot be pinned, the
//! remains of killed runs, and `kswizard ssh-copy-id`. Tests marked `#[ignore]` need root and the
//! lab (`.ci/run` runs them); each has a lab of its own on a subnet from 127.0.200 to 127.0.209.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kswizard::engine::transport::{self, ASKPASS_THREAD};
use kswizard::model::{Auth, Host, Secret};

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
