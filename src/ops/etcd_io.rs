//! The I/O of `kswizard etcd backup` / `etcd restore` around `ops::etcd`'s decisions: the
//! snapshot fetched from its node over the install's SSH transport (`Conn::pull`) and checked,
//! the etcd cluster's health asked over SSH, and the backup directories on the taskbox (dirs
//! 0700, files 0600: a snapshot holds every secret of the cluster).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::etcd::{self, Live, Meta};
use crate::bundle::manifest::sha256_file;
use crate::engine::installed::{Installed, diff};
use crate::engine::transport::{self, Conn, ControlDir};
use crate::model::{Cluster, Host};

/// A connection to `host` with the install's host keys and a control dir in the state dir; the
/// dir must outlive the connection.
async fn connect(host: &Host, state: &Path) -> Result<(Conn, ControlDir), String> {
    let ctl = transport::control_dir_in(state)
        .map_err(|e| format!("{}: {e}", state.join("ctl").display()))?;
    let conn = transport::connect(host, &state.join("known_hosts"), ctl.path(), 0)
        .await
        .map_err(|e| e.to_string())?;
    Ok((conn, ctl))
}

/// A path the node reported, safe to put between single quotes in a command.
fn node_path(p: &str) -> Result<&str, String> {
    if p.starts_with('/') && !p.contains(['\'', '\n']) {
        Ok(p)
    } else {
        Err(format!(
            "the node reported the snapshot at '{p}': expected an absolute path"
        ))
    }
}

/// Bring the node's `remote` file to `dest` (0600): streamed over the connection into a part
/// file beside it, its sha256 checked against `sha256` (the node's), then renamed into place; a
/// mismatch is refused and nothing is kept. The node's copy is removed afterwards either way.
/// Returns the bytes fetched.
pub async fn fetch(
    host: &Host,
    state: &Path,
    remote: &str,
    sha256: &str,
    dest: &Path,
) -> Result<u64, String> {
    let remote = node_path(remote)?;
    let (conn, _ctl) = connect(host, state).await?;
    let part = dest.with_extension("db.part");
    let fetched = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part)
            .await
            .map_err(|e| format!("{}: {e}", part.display()))?;
        let (code, err, bytes) = conn
            .pull(&format!("cat -- '{remote}'"), true, &mut file)
            .await
            .map_err(|e| e.to_string())?;
        if code != 0 {
            return Err(format!(
                "{}: could not read {remote} (exit {code}): {}",
                host.name,
                conn.redact(err.trim())
            ));
        }
        file.sync_all()
            .await
            .map_err(|e| format!("{}: {e}", part.display()))?;
        let (sum, _) = sha256_file(&part).map_err(|e| format!("{}: {e}", part.display()))?;
        if !sum.eq_ignore_ascii_case(sha256) {
            return Err(format!(
                "the snapshot's sha256 is {sum} on the taskbox but {sha256} on {}: the copy was cut or damaged, nothing was kept; run the backup again",
                host.name
            ));
        }
        std::fs::rename(&part, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        Ok(bytes)
    }
    .await;
    if fetched.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    // The snapshot holds the cluster's secrets: it does not stay on the node.
    let removed = conn.run(&format!("rm -f -- '{remote}'"), true).await;
    conn.close().await;
    let bytes = fetched?;
    match removed {
        Ok((0, ..)) => Ok(bytes),
        _ => Err(format!(
            "the snapshot was fetched, but {remote} could not be removed from {}: remove it by hand",
            host.name
        )),
    }
}

/// The etcd cluster as the first etcd host that answers sees it (`steps/etcd-status.sh`, one
/// look), or `None` when no etcd host could be reached.
pub async fn live(cluster: &Cluster, state: &Path, status_script: &str) -> Option<Live> {
    for host in cluster.hosts.iter().filter(|h| h.roles.etcd) {
        let Ok((conn, _ctl)) = connect(host, state).await else {
            continue;
        };
        let env: String = crate::engine::executor::base_env(cluster, host, "")
            .into_iter()
            .filter(|(k, _)| k.starts_with("KSW_ETCD") || k == "KSW_IP")
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
            .collect();
        // The script is bash's (as steps are), the command's shell is sh: a quoted here-document.
        let ran = conn
            .run(
                &format!("{env}export KSW_WAIT=0\nexec bash <<'KSW_STATUS'\n{status_script}\nKSW_STATUS\n"),
                true,
            )
            .await;
        conn.close().await;
        if let Ok((_, out, _)) = ran {
            let live = Live::parse(&out);
            if !live.members.is_empty() {
                return Some(live);
            }
        }
    }
    None
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A new backup directory `out/etcd-<time>/` (0700, and `out` too when it is new). Two backups
/// in one second are refused rather than mixed.
pub fn new_backup_dir(out: &Path, now: u64) -> Result<PathBuf, String> {
    let at = |e: std::io::Error, p: &Path| format!("{}: {e}", p.display());
    private_dir(out).map_err(|e| at(e, out))?;
    let dir = out.join(etcd::backup_name(now));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| at(e, &dir))?;
    Ok(dir)
}

/// The rest of a backup beside its snapshot: the sha256sum line, the record, and copies (0600)
/// of the conf and of the install's journal and installed record of this moment (those that
/// exist). Returns the copies' names.
pub fn keep_beside(
    dir: &Path,
    meta: &Meta,
    conf: &Path,
    state: &Path,
) -> Result<Vec<String>, String> {
    let at = |e: std::io::Error, p: &Path| format!("{}: {e}", p.display());
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        private_file(&p, bytes).map_err(|e| at(e, &p))
    };
    write(etcd::SNAPSHOT_SUM, etcd::sum_line(&meta.sha256).as_bytes())?;
    let record = serde_json::to_string_pretty(meta).map_err(|e| e.to_string())?;
    write(etcd::META, record.as_bytes())?;
    let conf_copy = dir.join("conf");
    private_dir(&conf_copy).map_err(|e| at(e, &conf_copy))?;
    let mut kept = Vec::new();
    let sources = [
        crate::conf::HOSTS_INI,
        crate::conf::COMMON_YAML,
        crate::conf::VARS_YML,
        crate::conf::SETTINGS_YAML,
    ]
    .map(|n| (conf.join(n), format!("conf/{n}")))
    .into_iter()
    .chain([
        (
            crate::engine::executor::journal_path(state),
            "journal.jsonl".to_string(),
        ),
        (
            crate::engine::installed::path(state),
            "installed.json".to_string(),
        ),
    ]);
    for (from, name) in sources {
        match std::fs::read(&from) {
            Ok(bytes) => {
                write(&name, &bytes)?;
                kept.push(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(e, &from)),
        }
    }
    Ok(kept)
}

/// `--keep N`: remove all but the newest `keep` backup directories in `out`; returns their names.
pub fn prune(out: &Path, keep: usize) -> Result<Vec<String>, String> {
    let at = |e: std::io::Error, p: &Path| format!("{}: {e}", p.display());
    let names: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| at(e, out))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let gone = etcd::to_prune(&names, keep);
    for name in &gone {
        let p = out.join(name);
        std::fs::remove_dir_all(&p).map_err(|e| at(e, &p))?;
    }
    Ok(gone)
}

/// Where backups go unless told otherwise (`--out`): `<state>/backups`.
pub fn backups_dir(state: &Path) -> PathBuf {
    state.join("backups")
}

/// A backup directory found under the backups dir, with its record when it has a readable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub dir: PathBuf,
    pub meta: Option<Meta>,
}

impl Backup {
    /// Its directory's name (`etcd-20261202T043000Z`).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// The backups under `out` (the directories named as `backup_name` makes them), newest first;
/// none when `out` does not exist yet. What the wizard's restore offers.
pub fn list(out: &Path) -> Result<Vec<Backup>, String> {
    let entries = match std::fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", out.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| etcd::is_backup_name(n))
        .collect();
    // The names sort as the times they were taken.
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names
        .into_iter()
        .map(|n| {
            let dir = out.join(n);
            // A record that cannot be read leaves the backup listed, its figures unknown.
            let meta = std::fs::read_to_string(dir.join(etcd::META))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            Backup { dir, meta }
        })
        .collect())
}

/// The operations (`assets/<name>.yaml`, journal `<state>/ops/<name>.jsonl`).
pub const BACKUP: &str = "etcd-backup";
pub const RESTORE: &str = "etcd-restore";

/// The backup plan's step that takes the snapshot and publishes where it is.
pub const SNAPSHOT_STEP: &str = "etcd-snapshot";

/// What `store` kept.
pub struct Stored {
    pub dir: PathBuf,
    pub meta: Meta,
    /// The copies beside the snapshot (`conf/hosts.ini`, `journal.jsonl`, ...).
    pub copies: Vec<String>,
    /// The backup directories `--keep` removed.
    pub pruned: Vec<String>,
    /// Seconds the fetch took.
    pub fetch_s: f64,
}

/// After the `etcd-backup` operation ran: the snapshot its journal says it took, fetched into a
/// new backup directory under `out` with the rest kept beside it, then `keep` applied. A
/// directory there always holds a checked snapshot: one that fails half way is removed.
pub async fn store(
    cluster: &Cluster,
    conf: &Path,
    state: &Path,
    out: &Path,
    keep: Option<usize>,
) -> Result<Stored, String> {
    use crate::engine::executor::{journal_for, journal_path};
    use crate::engine::journal;
    let replay = journal::replay(&journal_for(state, BACKUP)).map_err(|e| e.to_string())?;
    let output = |name: &str| {
        replay
            .outputs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let taken_on = replay
        .steps
        .iter()
        .find(|((_, step), s)| {
            step == SNAPSHOT_STEP && s.status == Some(crate::engine::events::Status::Ok)
        })
        .and_then(|((node, _), _)| cluster.hosts.iter().find(|h| &h.name == node));
    let (Some(host), Some(remote), Some(sha256)) =
        (taken_on, output("SNAPSHOT_FILE"), output("SNAPSHOT_SHA256"))
    else {
        return Err(format!(
            "the {SNAPSHOT_STEP} step published no snapshot (its outputs are not in the journal)"
        ));
    };
    let now = journal::now();
    let dir = new_backup_dir(out, now)?;
    let started = std::time::Instant::now();
    let fetched = fetch(host, state, remote, sha256, &dir.join(etcd::SNAPSHOT)).await;
    let fetch_s = started.elapsed().as_secs_f64();
    let number = |k: &str| output(k).and_then(|v| v.parse().ok());
    let kept = fetched.and_then(|size| {
        let meta = Meta {
            taken: now,
            node: host.name.clone(),
            member: output("SNAPSHOT_MEMBER").unwrap_or("").to_string(),
            revision: number("SNAPSHOT_REVISION"),
            keys: number("SNAPSHOT_KEYS"),
            size,
            sha256: sha256.to_ascii_lowercase(),
            install_id: journal::replay(&journal_path(state))
                .ok()
                .and_then(|r| r.install_id),
        };
        keep_beside(&dir, &meta, conf, state).map(|copies| (meta, copies))
    });
    let (meta, copies) = kept.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&dir);
    })?;
    let pruned = match keep {
        Some(k) => prune(out, k)?,
        None => Vec::new(),
    };
    Ok(Stored {
        dir,
        meta,
        copies,
        pruned,
        fetch_s,
    })
}

/// The restore plan's step whose script reports the cluster's health (`steps/etcd-status.sh`):
/// also what kswizard runs before a restore, so both read the cluster the same way.
const HEALTH_STEP: &str = "etcd-healthy";

/// What a restore found before it changes anything.
pub struct Check {
    /// The cluster's etcd as it answered; `None`: no etcd host could be asked.
    pub live: Option<Live>,
    /// What the restore will lose (`etcd::loss_lines`).
    pub loss: Vec<String>,
    /// An unfinished restore of the same snapshot goes on (its members may be stopped: no
    /// refusal for health then).
    pub resuming: bool,
    /// Why it does not go on without `--force` (`etcd::refusal`).
    pub refused: Option<String>,
}

/// Where an unfinished restore records the snapshot it restores: a later run with another file
/// must not resume it with that one.
fn record_path(state: &Path) -> PathBuf {
    state.join("ops").join("etcd-restore.snapshot.json")
}

/// The snapshot file an unfinished restore began with, as recorded.
pub fn restoring(state: &Path) -> Option<String> {
    let text = std::fs::read_to_string(record_path(state)).ok()?;
    let begun: serde_json::Value = serde_json::from_str(&text).ok()?;
    begun["file"].as_str().map(str::to_string)
}

/// Before a restore (the `etcd-restore` operation `op`) of `snapshot`: an unfinished restore of
/// another snapshot is an error; the cluster's health and what will be lost.
pub async fn check_restore(
    op: &crate::ops::Operation,
    snapshot: &Snapshot,
    force: bool,
) -> Result<Check, String> {
    use crate::engine::executor::journal_for;
    let state = &op.options.state_dir;
    let journal = journal_for(state, RESTORE);
    let previous = crate::engine::journal::replay(&journal).map_err(|e| e.to_string())?;
    let resuming = previous.install_id.is_some() && previous.unfinished();
    if resuming {
        let begun: Option<serde_json::Value> = std::fs::read_to_string(record_path(state))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let same = begun
            .as_ref()
            .is_some_and(|b| b["sha256"] == snapshot.sha256.as_str());
        if !same {
            let file = begun
                .as_ref()
                .and_then(|b| b["file"].as_str())
                .unwrap_or("(not recorded)");
            return Err(format!(
                "an unfinished restore from another snapshot ({file}) is in {}: finish it first with `kswizard etcd restore {file}` (or, to give it up, remove {})",
                state.display(),
                journal.display()
            ));
        }
    }
    if let Some(installed) = Installed::load(state).map_err(|e| e.to_string())?
        && let Some(why) = etcd::membership_refusal(&diff(&installed, &op.cluster))
    {
        return Err(why);
    }
    let script = op
        .plan
        .step(HEALTH_STEP)
        .map(|s| s.body.clone())
        .unwrap_or_default();
    let live = live(&op.cluster, state, &script).await;
    let loss = etcd::loss_lines(
        snapshot.meta.as_ref(),
        crate::engine::journal::now(),
        live.as_ref(),
    );
    let refused = if resuming {
        None
    } else {
        etcd::refusal(live.as_ref().unwrap_or(&Live::default()), force)
    };
    Ok(Check {
        live,
        loss,
        resuming,
        refused,
    })
}

/// The restore goes ahead: its snapshot recorded (for `check_restore` of a later run) and given
/// to the operation's `deliver: snapshot` step.
pub fn begin_restore(op: &mut crate::ops::Operation, snapshot: &Snapshot) -> Result<(), String> {
    let record = record_path(&op.options.state_dir);
    let begun = serde_json::json!({"file": snapshot.file, "sha256": snapshot.sha256});
    crate::conf::atomic::write_atomic_mode(&record, begun.to_string().as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", record.display()))?;
    op.options.snapshot = Some(snapshot.file.clone());
    Ok(())
}

/// A snapshot to restore: `FILE` is a backup directory or a snapshot file. Its sha256 is taken
/// and, when a `snapshot.db.sha256` is beside it, checked (a damaged file is refused); the record
/// beside it is read when there is one.
pub struct Snapshot {
    pub file: PathBuf,
    pub sha256: String,
    pub meta: Option<Meta>,
}

pub fn open_snapshot(given: &Path) -> Result<Snapshot, String> {
    let file = if given.is_dir() {
        given.join(etcd::SNAPSHOT)
    } else {
        given.to_path_buf()
    };
    let file = std::path::absolute(&file).unwrap_or(file);
    let (sha256, _) = sha256_file(&file).map_err(|e| {
        format!(
            "{}: {e} (expected a snapshot file, or a backup directory holding {})",
            file.display(),
            etcd::SNAPSHOT
        )
    })?;
    let beside = |name: &str| file.parent().map(|d| d.join(name));
    if let Some(sum_file) = beside(etcd::SNAPSHOT_SUM).filter(|p| p.exists()) {
        let text = std::fs::read_to_string(&sum_file)
            .map_err(|e| format!("{}: {e}", sum_file.display()))?;
        let Some(recorded) = etcd::parse_sum_line(&text) else {
            return Err(format!(
                "{}:1: expected `<sha256>  {}` as sha256sum writes it",
                sum_file.display(),
                etcd::SNAPSHOT
            ));
        };
        if recorded != sha256 {
            return Err(format!(
                "{}: its sha256 is {sha256}, but {} says {recorded}: the file is damaged; restore another backup",
                file.display(),
                sum_file.display()
            ));
        }
    }
    let meta = match beside(etcd::META).filter(|p| p.exists()) {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}:{}: {e} (expected the record `kswizard etcd backup` writes)",
                    p.display(),
                    e.line()
                )
            })?)
        }
        None => None,
    };
    Ok(Snapshot { file, sha256, meta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Auth;

    /// This machine as a node (the local transport), a state dir, a "remote" snapshot and where
    /// the taskbox keeps it.
    fn setup() -> (Host, tempfile::TempDir, PathBuf, PathBuf) {
        let mut h = Host::new("here", "127.0.0.1");
        h.auth = Auth::Local;
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("node-snapshot.db");
        std::fs::write(&remote, b"etcd snapshot bytes").unwrap();
        let dest = dir.path().join("backup").join(etcd::SNAPSHOT);
        std::fs::create_dir(dest.parent().unwrap()).unwrap();
        (h, dir, remote, dest)
    }

    #[test]
    fn backups_are_listed_newest_first_with_their_records() {
        let out = tempfile::tempdir().unwrap();
        assert!(list(&out.path().join("none")).unwrap().is_empty());
        for (t, meta) in [(1_000, true), (3_000, false), (2_000, true)] {
            let dir = new_backup_dir(out.path(), t).unwrap();
            if meta {
                let m = Meta {
                    taken: t,
                    node: "m1".into(),
                    member: "m1".into(),
                    revision: Some(t),
                    keys: Some(7),
                    size: 9,
                    sha256: "0".repeat(64),
                    install_id: None,
                };
                std::fs::write(dir.join(etcd::META), serde_json::to_string(&m).unwrap()).unwrap();
            }
        }
        std::fs::create_dir(out.path().join("not-a-backup")).unwrap();
        let found = list(out.path()).unwrap();
        let names: Vec<String> = found.iter().map(Backup::name).collect();
        assert_eq!(
            names,
            [
                etcd::backup_name(3_000),
                etcd::backup_name(2_000),
                etcd::backup_name(1_000)
            ]
        );
        assert!(found[0].meta.is_none());
        assert_eq!(found[1].meta.as_ref().unwrap().revision, Some(2_000));
    }

    #[tokio::test]
    #[ignore = "needs root: the fetch reads the node's file as root"]
    async fn a_fetched_snapshot_is_checked_kept_private_and_gone_from_the_node() {
        use std::os::unix::fs::PermissionsExt;
        let (h, dir, remote, dest) = setup();
        let (sha, _) = sha256_file(&remote).unwrap();
        let r = remote.display().to_string();
        let bytes = fetch(&h, dir.path(), &r, &sha, &dest).await.unwrap();
        assert_eq!(bytes, 19);
        assert_eq!(std::fs::read(&dest).unwrap(), b"etcd snapshot bytes");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!remote.exists(), "the node keeps no copy");
    }

    #[tokio::test]
    #[ignore = "needs root: the fetch reads the node's file as root"]
    async fn a_snapshot_that_arrives_otherwise_is_refused_and_nothing_is_kept() {
        let (h, dir, remote, dest) = setup();
        let r = remote.display().to_string();
        let err = fetch(&h, dir.path(), &r, &"0".repeat(64), &dest)
            .await
            .unwrap_err();
        assert!(err.contains("the copy was cut or damaged"), "{err}");
        assert!(!dest.exists() && !dest.with_extension("db.part").exists());
        assert!(!remote.exists(), "the node keeps no copy either way");
        let quoted = fetch(&h, dir.path(), "/tmp/it's", "x", &dest).await;
        assert!(quoted.unwrap_err().contains("expected an absolute path"));
    }
}
