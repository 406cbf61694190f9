//! Every step's whole log kept on the taskbox: `<state>/logs/<install-id>/<node>/<step>.log`
//! (dirs 0700, files 0600), written from the event stream in `Shared::emit`, after the secrets
//! scrubber, so a file never holds what an event may not. A file holds the step's latest attempt
//! whole: a start truncates it, and a re-attached step starts it again too because the runner
//! replays the attempt's log from its first line (`tail -n +1`), so no line is written twice.
//! The node keeps every attempt's own log in its step dir.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::events::Event;

/// Where the logs of an install's steps are.
pub fn install_dir(state_dir: &Path, install_id: &str) -> PathBuf {
    state_dir.join("logs").join(safe(install_id))
}

/// The file of one node's step.
pub fn path(state_dir: &Path, install_id: &str, node: &str, step: &str) -> PathBuf {
    in_dir(&install_dir(state_dir, install_id), node, step)
}

/// The file of one node's step in an install's dir (`install_dir`).
pub fn in_dir(dir: &Path, node: &str, step: &str) -> PathBuf {
    dir.join(safe(node)).join(format!("{}.log", safe(step)))
}

/// A name as one path component: anything but `[A-Za-z0-9._-]` (a `/`, a space) becomes `_`,
/// and a name of dots cannot climb out of the dir.
fn safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        format!("_{s}")
    } else {
        s
    }
}

/// The open files of the steps running now. A failed write is told once on stderr and the
/// install goes on: a missing log file must not stop an install.
pub(super) struct StepLogs {
    dir: PathBuf,
    open: Mutex<HashMap<(String, String), std::fs::File>>,
    warned: std::sync::atomic::AtomicBool,
}

impl StepLogs {
    pub(super) fn new(state_dir: &Path, install_id: &str) -> StepLogs {
        StepLogs {
            dir: install_dir(state_dir, install_id),
            open: Mutex::new(HashMap::new()),
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Take one (already scrubbed) event: a start opens the step's file anew, output lines are
    /// appended, the end closes it.
    pub(super) fn take(&self, e: &Event) {
        let result = match e {
            Event::Started {
                node,
                step,
                attempt,
                reattached,
                already_done: false,
            } => self.start(node, step).and_then(|()| {
                let how = if *reattached {
                    ", re-attached: its log from its first line"
                } else {
                    ""
                };
                self.line(
                    node,
                    step,
                    &format!("kswizard: {step} attempt {attempt} on {node}{how}"),
                )
            }),
            Event::Output { node, step, line } => self.line(node, step, line),
            Event::Finished { node, step, .. } => {
                self.lock().remove(&(node.clone(), step.clone()));
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            eprintln!(
                "kswizard: the steps' logs cannot be written under {}: {e} (the install goes on; each node keeps its steps' logs)",
                self.dir.display()
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), std::fs::File>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start(&self, node: &str, step: &str) -> std::io::Result<()> {
        let dir = self.dir.join(safe(node));
        create_private_dir(&dir)?;
        let file = private_file(&dir.join(format!("{}.log", safe(step))))?;
        self.lock()
            .insert((node.to_string(), step.to_string()), file);
        Ok(())
    }

    fn line(&self, node: &str, step: &str, line: &str) -> std::io::Result<()> {
        use std::collections::hash_map::Entry;
        let mut open = self.lock();
        let f = match open.entry((node.to_string(), step.to_string())) {
            Entry::Occupied(e) => e.into_mut(),
            // Output of a step whose start this run did not see: appended to what the file holds.
            Entry::Vacant(v) => {
                let dir = self.dir.join(safe(node));
                create_private_dir(&dir)?;
                v.insert(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(dir.join(format!("{}.log", safe(step))))?,
                )
            }
        };
        writeln!(f, "{line}")
    }
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// `dir` and its missing parents, each made 0700.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Status;
    use std::os::unix::fs::PermissionsExt;

    fn started(reattached: bool) -> Event {
        Event::Started {
            node: "master1".into(),
            step: "etcd-start".into(),
            attempt: 1,
            reattached,
            already_done: false,
        }
    }

    fn out(line: &str) -> Event {
        Event::Output {
            node: "master1".into(),
            step: "etcd-start".into(),
            line: line.into(),
        }
    }

    #[test]
    fn a_step_log_is_whole_private_and_never_doubled_by_a_reattach() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = StepLogs::new(tmp.path(), "20261202-0100");
        logs.take(&started(false));
        logs.take(&out("one"));
        logs.take(&out("two"));
        // The connection was lost; the next run re-attaches and the runner replays from the top.
        let logs = StepLogs::new(tmp.path(), "20261202-0100");
        logs.take(&started(true));
        logs.take(&out("one"));
        logs.take(&out("two"));
        logs.take(&out("three"));
        logs.take(&Event::Finished {
            node: "master1".into(),
            step: "etcd-start".into(),
            status: Status::Ok,
            elapsed_ms: 10,
            reason: None,
        });
        let p = path(tmp.path(), "20261202-0100", "master1", "etcd-start");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "kswizard: etcd-start attempt 1 on master1, re-attached: its log from its first line\none\ntwo\nthree\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        assert_eq!(mode(&tmp.path().join("logs")), 0o700);
    }

    #[test]
    fn names_stay_one_component() {
        assert_eq!(safe("node/../x"), "node_.._x");
        assert_eq!(safe(".."), "_..");
        assert_eq!(safe(""), "_");
        assert_eq!(safe("kube-packages"), "kube-packages");
    }
}
