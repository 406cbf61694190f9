//! Reaching a node: one SSH `ControlMaster` per host (openssh sessions multiplexed over it), or the
//! local shell for the `ansible_connection=local` host. Every command kswizard runs on a node
//! goes through `Conn::exec`, which adds sudo when the command needs root.
//!
//! kswizard starts each master itself rather than through openssh's builder so that password
//! hosts work: ssh asks kswizard (as its own `SSH_ASKPASS`) for the password, and kswizard answers
//! over a private unix socket. Passwords never reach argv, the environment, files or logs.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use openssh::Session;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

use crate::model::{Auth, Host, Secret};

const SUDO_MARK: &str = "KSW-SUDO-GO";
const SUDO_SHELL: &str =
    "sudo -S -p '' sh -c 'IFS= read -r l; [ \"$l\" = KSW-SUDO-GO ] || IFS= read -r l; exec sh -s'";

/// The environment variable that turns `kswizard` into an askpass helper (see `askpass_main`).
pub const ASKPASS_ENV: &str = "KSW_ASKPASS_SOCK";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    HostKeyChanged {
        host: String,
        detail: String,
    },
    /// ssh logged in but could not record the host's key (full disk, unwritable file): the
    /// connection is refused, or the next one would trust whatever key it is shown.
    HostKeyNotPinned {
        host: String,
        file: PathBuf,
        detail: String,
    },
    AuthFailed {
        host: String,
        detail: String,
    },
    Unreachable {
        host: String,
        detail: String,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::HostKeyChanged { host, detail } => write!(
                f,
                "{host}: the host key changed since kswizard first connected ({detail}); if the host was reinstalled, delete its line from .kswizard/known_hosts, otherwise someone may be intercepting the connection"
            ),
            ConnectError::HostKeyNotPinned { host, file, detail } => write!(
                f,
                "{host}: kswizard could not record the host key in {} ({detail}), and does not use a connection whose key is not pinned; make that file writable (free disk space, check its permissions and its directory's), then try again",
                file.display()
            ),
            ConnectError::AuthFailed { host, detail } => write!(
                f,
                "{host}: SSH login refused ({detail}); check ansible_user and the password or key for this host in hosts.ini"
            ),
            ConnectError::Unreachable { host, detail } => write!(
                f,
                "{host}: cannot connect ({detail}); check ansible_host / ansible_port and that sshd runs there"
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

/// How a command on a node gets root.
#[derive(Clone, Debug)]
enum Become {
    AlreadyRoot,
    SudoNoPassword,
    SudoPassword(Secret),
}

pub struct Conn {
    pub host: String,
    kind: Kind,
    become_how: Become,
    /// The host's passwords, to scrub from any text kswizard reports.
    secrets: Vec<Secret>,
}

enum Kind {
    Local,
    Ssh { session: Arc<Session> },
}

/// Where runs keep their control sockets when the state dir's path is too long for them.
const SHORT_BASE: &str = "/tmp";
/// A run's control dir is `ksw` and six random characters.
const RUN_PREFIX: &str = "ksw";
const RUN_NAME_LEN: usize = 9;
/// In a run's control dir: the pid and start time of the kswizard that owns it.
const OWNER: &str = "owner";
/// The longest entry `connect` makes in a control dir ("/" and a decimal usize), plus the 17 bytes
/// ssh appends to the control path while it binds the socket.
const SOCKET_NAME_MAX: usize = 1 + 20 + 17;
/// A unix socket path holds at most 107 bytes (108 with the final NUL).
const SUN_PATH_MAX: usize = 107;

/// One run's directory of control sockets, log files and, while a master starts, the askpass
/// socket; 0700, with its owner recorded. Dropping it stops any master still in it and removes it.
/// A run killed before that leaves it behind: the next run's `control_dir*` stops its masters and
/// removes it, once its owner is gone.
#[derive(Debug)]
pub struct ControlDir {
    path: PathBuf,
}

impl ControlDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create(base: &Path) -> std::io::Result<ControlDir> {
        sweep(Path::new(SHORT_BASE));
        if base != Path::new(SHORT_BASE) {
            sweep(base);
        }
        let path = tempfile::Builder::new()
            .prefix(RUN_PREFIX)
            .rand_bytes(RUN_NAME_LEN - RUN_PREFIX.len())
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(base)?
            .keep();
        // From here on, dropping it removes the directory.
        let dir = ControlDir { path };
        let me = std::process::id();
        let started = start_time(me).ok_or_else(|| std::io::Error::other("no /proc/self/stat"))?;
        std::fs::write(dir.path.join(OWNER), format!("{me} {started}\n"))?;
        Ok(dir)
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        remove_run(&self.path);
    }
}

/// A control dir for a run whose state lives in `state`: `<state>/ctl/kswXXXXXX` (0700), or one in
/// /tmp when that path would be too long for unix sockets or cannot be made there (a full or
/// read-only disk must not stop connections). Runs killed earlier are cleaned up first.
pub fn control_dir_in(state: &Path) -> std::io::Result<ControlDir> {
    let base = state.join("ctl");
    if base.as_os_str().len() + 1 + RUN_NAME_LEN + SOCKET_NAME_MAX > SUN_PATH_MAX {
        return control_dir();
    }
    let in_state = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .and_then(|()| std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)))
        .and_then(|()| ControlDir::create(&base));
    in_state.or_else(|_| control_dir())
}

/// A control dir in /tmp (short: unix socket paths must stay under 108 bytes). Runs killed
/// earlier are cleaned up first.
pub fn control_dir() -> std::io::Result<ControlDir> {
    ControlDir::create(Path::new(SHORT_BASE))
}

/// When process `pid` started (clock ticks after boot), which tells it from a later process that
/// reuses its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name in parentheses may hold spaces; field 22 is the 20th after it.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Whether the `owner` record names a live process. Unreadable records count as live: the
/// directory may be someone else's, or being made right now.
fn owner_alive(record: &str) -> bool {
    let mut it = record.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(pid)), Some(Ok(started))) => u32::try_from(pid)
            .ok()
            .and_then(start_time)
            .is_some_and(|t| t == started),
        _ => true,
    }
}

/// Remove the control dirs in `base` whose owning kswizard is gone, with their masters.
fn sweep(base: &Path) {
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let run_like = name.len() == RUN_NAME_LEN
            && name.starts_with(RUN_PREFIX)
            && name.bytes().all(|b| b.is_ascii_alphanumeric());
        let path = e.path();
        // Never another user's (root sweeping /tmp), never a symlink.
        let mine = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if !run_like || !mine {
            continue;
        }
        if let Ok(record) = std::fs::read_to_string(path.join(OWNER))
            && !owner_alive(&record)
        {
            remove_run(&path);
        }
    }
}

/// Stop every master whose control socket is in `dir`, then remove `dir`.
fn remove_run(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let control = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<usize>().is_ok());
        if control && e.file_type().is_ok_and(|t| t.is_socket()) {
            exit_master(&e.path());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Ask the master on control socket `sock` to exit (`ssh -O exit`), giving up after a few seconds
/// (a stopped master does not answer); a socket nobody listens on is just removed.
fn exit_master(sock: &Path) {
    let child = std::process::Command::new("ssh")
        .arg("-S")
        .arg(sock)
        .args(["-O", "exit", "--", "kswizard-master"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let _ = std::fs::remove_file(sock);
}

/// Whether this process runs as root (the effective uid, as the owner of /proc/self shows it).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn become_for(host: &Host) -> Become {
    let root = if host.is_local() {
        is_root()
    } else {
        host.is_root()
    };
    match (&host.become_pass, root) {
        (_, true) => Become::AlreadyRoot,
        (Some(p), false) => Become::SudoPassword(p.clone()),
        (None, false) => Become::SudoNoPassword,
    }
}

/// The name of the thread that serves a password to ssh's askpass helper.
pub const ASKPASS_THREAD: &str = "ksw-askpass";

/// The password served to the askpass helper ssh starts, while one master starts. Dropping it
/// (the start ended, or the connect was cancelled) ends the serving thread and removes the socket.
struct Askpass {
    sock: PathBuf,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Askpass {
    fn serve(sock: PathBuf, password: Secret) -> std::io::Result<Askpass> {
        let listener = UnixListener::bind(&sock)?;
        listener.set_nonblocking(true)?;
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let mut askpass = Askpass {
            sock,
            done,
            thread: None,
        };
        let thread = std::thread::Builder::new()
            .name(ASKPASS_THREAD.into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.write_all(password.expose().as_bytes());
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                    }
                }
            })?;
        askpass.thread = Some(thread);
        Ok(askpass)
    }
}

impl Drop for Askpass {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        // The thread never blocks: it ends within one poll.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.sock);
    }
}

/// Run as `SSH_ASKPASS`: print the password kswizard serves on the socket named in the
/// environment. Only password prompts are answered.
pub fn askpass_main(sock: &str) -> std::process::ExitCode {
    let prompt = std::env::args().nth(1).unwrap_or_default().to_lowercase();
    if !prompt.contains("password") {
        return std::process::ExitCode::from(1);
    }
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return std::process::ExitCode::from(1);
    };
    let mut pw = String::new();
    if s.read_to_string(&mut pw).is_err() {
        return std::process::ExitCode::from(1);
    }
    println!("{pw}");
    std::process::ExitCode::SUCCESS
}

fn classify(host: &str, log: &str) -> ConnectError {
    let detail = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("ssh gave no reason")
        .trim()
        .to_string();
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || log.contains("Host key verification failed")
    {
        ConnectError::HostKeyChanged {
            host: host.into(),
            detail,
        }
    } else if log.contains("Permission denied") || log.contains("Too many authentication failures")
    {
        ConnectError::AuthFailed {
            host: host.into(),
            detail,
        }
    } else {
        ConnectError::Unreachable {
            host: host.into(),
            detail,
        }
    }
}

/// Whether `known_hosts` holds a key for the address ssh just connected to, under the name ssh
/// records it by (`addr`, or `[addr]:port` off port 22; hashed names too, as ssh-keygen reads them).
async fn pinned(host: &Host, known_hosts: &Path) -> Result<(), String> {
    let addr = host.connect_address().to_lowercase();
    let name = match host.port.unwrap_or(22) {
        22 => addr,
        p => format!("[{addr}]:{p}"),
    };
    let out = tokio::process::Command::new("ssh-keygen")
        .arg("-F")
        .arg(&name)
        .arg("-f")
        .arg(known_hosts)
        .stdin(Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(_) => Err(format!("after login it holds no key for {name}")),
        Err(e) => Err(format!("cannot run ssh-keygen to check it: {e}")),
    }
}

/// Connect to `host`: the local shell, or a new `ControlMaster` in `ctl_dir` with host keys pinned
/// in `known_hosts`.
pub async fn connect(
    host: &Host,
    known_hosts: &Path,
    ctl_dir: &Path,
    n: usize,
) -> Result<Conn, ConnectError> {
    let become_how = become_for(host);
    let secrets: Vec<Secret> = match &host.auth {
        Auth::Password(p) => vec![p.clone()],
        _ => Vec::new(),
    }
    .into_iter()
    .chain(host.become_pass.clone())
    .filter(|s| !s.expose().is_empty())
    .collect();
    if host.is_local() {
        return Ok(Conn {
            host: host.name.clone(),
            kind: Kind::Local,
            become_how,
            secrets,
        });
    }
    // ssh would create it as its umask says (0644); state files are 0600. Should this fail, the
    // check after login reports the key as not pinned.
    let _ = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(known_hosts);
    let ctl = ctl_dir.join(format!("{n}"));
    let log = ctl_dir.join(format!("{n}.log"));
    // ssh writes some failures (an address it cannot use, a bad option) to stderr, not to its
    // -E log: both are read when it fails, so its own words reach the operator. A file, not a
    // pipe: the master that forks off keeps it open.
    let err_path = ctl_dir.join(format!("{n}.err"));
    let stderr = std::fs::File::create(&err_path).map_or_else(|_| Stdio::null(), Stdio::from);
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // A cancelled connect (the SSH test's timeout) leaves no ssh behind.
        .kill_on_drop(true)
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(&ctl)
        .args(["-M", "-f", "-N"])
        // A master left behind by a killed kswizard goes away by itself once idle (and the next
        // run's control_dir stops it sooner).
        .args(["-o", "ControlPersist=600"])
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=10"])
        .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"])
        .arg("-p")
        .arg(host.port.unwrap_or(22).to_string())
        .arg("-l")
        .arg(host.user.as_deref().unwrap_or("root"));
    let askpass = match &host.auth {
        Auth::Password(pw) => {
            let sock = ctl_dir.join(format!("{n}.ap"));
            let askpass = Askpass::serve(sock.clone(), pw.clone()).map_err(|e| {
                ConnectError::Unreachable {
                    host: host.name.clone(),
                    detail: format!("askpass socket: {e}"),
                }
            })?;
            let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("kswizard"));
            cmd.env("SSH_ASKPASS", exe)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env(ASKPASS_ENV, &sock)
                .args(["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no"])
                .args([
                    "-o",
                    "PreferredAuthentications=password,keyboard-interactive",
                ])
                .args(["-o", "NumberOfPasswordPrompts=1"]);
            Some(askpass)
        }
        Auth::Key { file } => {
            cmd.args(["-o", "BatchMode=yes"]);
            if let Some(k) = file {
                cmd.args(["-o", "IdentitiesOnly=yes", "-i", k]);
            }
            None
        }
        Auth::Local => unreachable!("handled above"),
    };
    // `--`: an address is never taken for an option (`-oProxyCommand=...`).
    cmd.arg("--").arg(host.connect_address());
    let status = cmd.status().await;
    drop(askpass);
    let ok = matches!(status, Ok(s) if s.success());
    if !ok {
        let mut text = std::fs::read_to_string(&err_path).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
        return Err(classify(&host.name, &text));
    }
    if let Err(detail) = pinned(host, known_hosts).await {
        let sock = ctl.clone();
        let _ = tokio::task::spawn_blocking(move || exit_master(&sock)).await;
        return Err(ConnectError::HostKeyNotPinned {
            host: host.name.clone(),
            file: known_hosts.to_path_buf(),
            detail,
        });
    }
    let session = Session::resume_mux(ctl.into_boxed_path(), Some(log.into_boxed_path()));
    Ok(Conn {
        host: host.name.clone(),
        kind: Kind::Ssh {
            session: Arc::new(session),
        },
        become_how,
        secrets,
    })
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

/// A command running on a node: its output line by line, then its exit code.
pub struct Running {
    out: BufReader<Reader>,
    child: Child,
    stderr: Option<Reader>,
}

enum Child {
    Local(tokio::process::Child),
    Ssh(openssh::Child<Arc<Session>>),
}

/// The command ended without an exit code: the connection was lost, or the node's shell died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost(pub String);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection lost: {}", self.0)
    }
}

impl std::error::Error for Lost {}

impl Running {
    /// The next line; bytes that are not UTF-8 are replaced, not taken for the end.
    pub async fn next_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.out.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    }

    /// Wait for the end; returns the exit code and what the command wrote to stderr.
    pub async fn finish(mut self) -> Result<(i32, String), Lost> {
        // Whatever the caller did not read must not block the command's end on a full pipe.
        let _ = tokio::io::copy(&mut self.out, &mut tokio::io::sink()).await;
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err).await;
        }
        let status = match self.child {
            Child::Local(mut c) => c.wait().await.map_err(|e| Lost(e.to_string()))?,
            Child::Ssh(c) => c.wait().await.map_err(|e| Lost(e.to_string()))?,
        };
        match status.code() {
            Some(code) => Ok((code, err)),
            None => Err(Lost(format!("killed by a signal; {err}"))),
        }
    }
}

async fn write_all(w: &mut Writer, bytes: &[u8]) -> Result<(), Lost> {
    w.write_all(bytes).await.map_err(|e| Lost(e.to_string()))
}

impl Conn {
    /// Run `sh -s` on the node, as root when `root` is set, with `script` as its standard input.
    pub async fn exec(&self, script: &str, root: bool) -> Result<Running, Lost> {
        let (prefix, shell): (Option<String>, &str) = match (&self.become_how, root) {
            (Become::AlreadyRoot, _) | (_, false) => (None, "sh -s"),
            (Become::SudoNoPassword, true) => (None, "sudo -n sh -s"),
            // sudo reads the password line byte by byte and leaves the rest to the shell. When
            // sudo does not ask (NOPASSWD, a cached ticket), the password line reaches the shell:
            // it is read and dropped up to the marker line, never run.
            (Become::SudoPassword(p), true) => {
                (Some(format!("{}\n{SUDO_MARK}\n", p.expose())), SUDO_SHELL)
            }
        };
        let mut input = prefix.unwrap_or_default();
        input.push_str(script);
        let (mut stdin, running) = self.spawn(shell).await?;
        write_all(&mut stdin, input.as_bytes()).await?;
        stdin.shutdown().await.map_err(|e| Lost(e.to_string()))?;
        Ok(running)
    }

    /// Run `script` on the node (as root when `root` is set) with `data` as its standard input,
    /// streamed: the script is the command line (`sh -c`), not input, because dash reads its
    /// input ahead and would swallow the data. The script must hold no secret: it is in argv.
    pub async fn push(
        &self,
        script: &str,
        root: bool,
        data: &mut (impl AsyncRead + Unpin),
    ) -> Result<Running, Lost> {
        let quoted = format!("'{}'", script.replace('\'', "'\\''"));
        let (prefix, shell) = match (&self.become_how, root) {
            (Become::AlreadyRoot, _) | (_, false) => (None, format!("sh -c {quoted}")),
            (Become::SudoNoPassword, true) => (None, format!("sudo -n sh -c {quoted}")),
            // As in `exec`; the shell's `read` takes one byte at a time, so the data is left.
            (Become::SudoPassword(p), true) => (
                Some(format!("{}\n{SUDO_MARK}\n", p.expose())),
                format!(
                    "sudo -S -p '' sh -c 'IFS= read -r l; [ \"$l\" = {SUDO_MARK} ] || IFS= read -r l; exec sh -c \"$0\"' {quoted}"
                ),
            ),
        };
        let (mut stdin, running) = self.spawn(&shell).await?;
        if let Some(p) = prefix {
            write_all(&mut stdin, p.as_bytes()).await?;
        }
        tokio::io::copy(data, &mut stdin)
            .await
            .map_err(|e| Lost(e.to_string()))?;
        stdin.shutdown().await.map_err(|e| Lost(e.to_string()))?;
        Ok(running)
    }

    /// Run `script` on the node (as root when `root` is set) and copy its standard output, bytes
    /// as they are, into `to` (the node → taskbox direction of `push`: `kswizard etcd backup`
    /// fetches its snapshot so). Returns the exit code, what it wrote to stderr and the bytes
    /// copied.
    pub async fn pull(
        &self,
        script: &str,
        root: bool,
        to: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<(i32, String, u64), Lost> {
        let mut r = self.exec(script, root).await?;
        let bytes = tokio::io::copy(&mut r.out, to)
            .await
            .map_err(|e| Lost(e.to_string()))?;
        let (code, err) = r.finish().await?;
        Ok((code, err, bytes))
    }

    /// Start `command` on the node with piped standard streams.
    async fn spawn(&self, command: &str) -> Result<(Writer, Running), Lost> {
        let (stdin, stdout, stderr, child): (Writer, Reader, Reader, Child) = match &self.kind {
            Kind::Local => {
                let mut c = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(false)
                    .spawn()
                    .map_err(|e| Lost(e.to_string()))?;
                (
                    Box::new(c.stdin.take().expect("piped")),
                    Box::new(c.stdout.take().expect("piped")),
                    Box::new(c.stderr.take().expect("piped")),
                    Child::Local(c),
                )
            }
            Kind::Ssh { session } => {
                let mut c = session
                    .clone()
                    .arc_raw_command(command)
                    .stdin(openssh::Stdio::piped())
                    .stdout(openssh::Stdio::piped())
                    .stderr(openssh::Stdio::piped())
                    .spawn()
                    .await
                    .map_err(|e| Lost(e.to_string()))?;
                (
                    Box::new(c.stdin().take().expect("piped")),
                    Box::new(c.stdout().take().expect("piped")),
                    Box::new(c.stderr().take().expect("piped")),
                    Child::Ssh(c),
                )
            }
        };
        Ok((
            stdin,
            Running {
                out: BufReader::new(stdout),
                child,
                stderr: Some(stderr),
            },
        ))
    }

    /// Run a short command and collect its output.
    pub async fn run(&self, script: &str, root: bool) -> Result<(i32, String, String), Lost> {
        let mut r = self.exec(script, root).await?;
        let mut out = String::new();
        while let Some(l) = r.next_line().await {
            out.push_str(&l);
            out.push('\n');
        }
        let (code, err) = r.finish().await?;
        Ok((code, out, err))
    }

    /// `text` with this host's passwords replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.expose(), "***"))
    }

    pub async fn close(self) {
        if let Kind::Ssh { session } = self.kind
            && let Ok(s) = Arc::try_unwrap(session)
        {
            let _ = s.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ssh_failures() {
        let changed = "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n";
        assert!(matches!(
            classify("n1", changed),
            ConnectError::HostKeyChanged { .. }
        ));
        let denied = "kswlab@127.0.0.1: Permission denied (publickey,password).\n";
        let e = classify("n1", denied);
        assert!(matches!(e, ConnectError::AuthFailed { .. }));
        assert!(
            e.to_string()
                .contains("Permission denied (publickey,password)"),
            "{e}"
        );
        let refused = "ssh: connect to host 127.0.0.9 port 22: Connection refused\n";
        assert!(matches!(
            classify("n1", refused),
            ConnectError::Unreachable { .. }
        ));
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_control_dir_is_private() {
        let d = control_dir().unwrap();
        assert_eq!(mode(d.path()), 0o700);
    }

    #[test]
    fn control_dirs_live_in_the_state_dir_and_go_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join(".kswizard");
        let d = control_dir_in(&state).unwrap();
        assert_eq!(d.path().parent(), Some(state.join("ctl").as_path()));
        assert_eq!(mode(&state.join("ctl")), 0o700);
        assert_eq!(mode(d.path()), 0o700);
        let owner = std::fs::read_to_string(d.path().join(OWNER)).unwrap();
        assert!(
            owner.starts_with(&format!("{} ", std::process::id())),
            "{owner}"
        );
        let path = d.path().to_path_buf();
        drop(d);
        assert!(!path.exists());
    }

    #[test]
    fn a_state_dir_too_long_for_sockets_falls_back_to_a_short_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("x".repeat(60)).join(".kswizard");
        let d = control_dir_in(&state).unwrap();
        assert_eq!(d.path().parent(), Some(Path::new(SHORT_BASE)));
        assert!(!state.exists());
        // The longest socket path ssh makes there still fits.
        assert!(d.path().as_os_str().len() + SOCKET_NAME_MAX <= SUN_PATH_MAX);
    }

    #[test]
    fn a_state_dir_that_cannot_hold_the_control_dir_falls_back_to_a_short_dir() {
        // A full or read-only disk under the state dir must not stop connections: the journal
        // deals with that disk itself.
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let d = control_dir_in(&file.join(".kswizard")).unwrap();
        assert_eq!(d.path().parent(), Some(Path::new(SHORT_BASE)));
    }

    /// A pid that belonged to a process which has exited.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn only_dirs_of_dead_owners_are_swept() {
        let base = tempfile::tempdir().unwrap();
        let make = |name: &str, owner: Option<String>| {
            let p = base.path().join(name);
            std::fs::create_dir(&p).unwrap();
            if let Some(o) = owner {
                std::fs::write(p.join(OWNER), o).unwrap();
            }
            p
        };
        let me = std::process::id();
        let alive = make(
            "kswAAAAAA",
            Some(format!("{me} {}", start_time(me).unwrap())),
        );
        let dead = make("kswBBBBBB", Some(format!("{} 1", dead_pid())));
        // My pid, but another start time: the pid was reused, its owner is gone.
        let reused = make("kswCCCCCC", Some(format!("{me} 1")));
        let no_owner = make("kswDDDDDD", None);
        let half_written = make("kswEEEEEE", Some(String::new()));
        let other_name = make("ksw-lab", Some(format!("{} 1", dead_pid())));
        sweep(base.path());
        assert!(alive.exists());
        assert!(!dead.exists());
        assert!(!reused.exists());
        assert!(no_owner.exists());
        assert!(half_written.exists());
        assert!(other_name.exists());
    }

    #[test]
    fn errors_are_std_errors() {
        fn takes(_: &dyn std::error::Error) {}
        takes(&classify("n1", "Connection refused"));
        let lost = Lost("broken pipe".into());
        takes(&lost);
        assert_eq!(lost.to_string(), "connection lost: broken pipe");
    }

    #[tokio::test]
    async fn sshs_own_words_reach_the_operator_when_they_are_not_in_its_log() {
        // An address ssh refuses before connecting: it says why on stderr only.
        let h = Host::new("n1", "bad host!");
        let dir = tempfile::tempdir().unwrap();
        let e = connect(&h, &dir.path().join("kh"), dir.path(), 0)
            .await
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("hostname contains invalid characters"),
            "{e}"
        );
    }

    /// A connection to this machine's shell, and the temp dir it keeps its files in.
    async fn local_conn() -> (Conn, tempfile::TempDir) {
        let mut h = Host::new("t", "127.0.0.1");
        h.auth = Auth::Local;
        let dir = tempfile::tempdir().unwrap();
        let c = connect(&h, &dir.path().join("kh"), dir.path(), 0)
            .await
            .unwrap();
        (c, dir)
    }

    #[tokio::test]
    async fn push_streams_data_past_the_script_and_keeps_quotes() {
        let (c, dir) = local_conn().await;
        let out = dir.path().join("out");
        // More than a pipe buffer, so a shell that read ahead would lose some of it.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let script = format!(
            "head -c {} >'{}' && echo \"it's $(wc -c <'{}')\"",
            data.len(),
            out.display(),
            out.display()
        );
        let r = c.push(&script, false, &mut data.as_slice()).await.unwrap();
        let mut r = r;
        let line = r.next_line().await.unwrap();
        assert_eq!(r.finish().await.unwrap().0, 0);
        assert_eq!(line, "it's 300000");
        assert_eq!(std::fs::read(&out).unwrap(), data);
    }

    #[tokio::test]
    async fn pull_copies_the_output_byte_for_byte() {
        let (c, dir) = local_conn().await;
        let file = dir.path().join("in");
        // Every byte value, no line structure, more than a pipe buffer.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let mut got = Vec::new();
        let (code, _, bytes) = c
            .pull(&format!("cat -- '{}'", file.display()), false, &mut got)
            .await
            .unwrap();
        assert_eq!((code, bytes), (0, 300_000));
        assert_eq!(got, data);
        let (code, err, bytes) = c
            .pull("echo gone >&2; exit 4", false, &mut got)
            .await
            .unwrap();
        assert_eq!((code, err.as_str(), bytes), (4, "gone\n", 0));
    }

    #[tokio::test]
    async fn local_exec_streams_lines_and_exit_code() {
        let (c, _dir) = local_conn().await;
        let (code, out, _) = c.run("echo one; echo two; exit 3\n", false).await.unwrap();
        assert_eq!(code, 3);
        assert_eq!(out, "one\ntwo\n");
    }
}
