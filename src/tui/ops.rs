//! The day-2 operations the wizard runs besides the install and the remove (`o` on Hosts,
//! Review and Done, with an installed cluster): etcd backup, etcd restore from a backup, reset.
//! **Pure**: the dialog's states and what each action does in them; `update` calls `act`, and
//! the effects run the same `ops::*` functions the commands do.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::action::{Action, Effect};
use super::input::Input;
use super::install::Operation;
use crate::model::Cluster;
use crate::ops::etcd::{self, Meta};
use crate::ops::etcd_io::Backup;
use crate::ops::reset;

/// An entry of the operations menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Backup,
    Restore,
    /// Every host of the conf.
    ResetAll,
    /// The host selected on the Hosts screen.
    ResetHost(String),
}

impl Choice {
    /// Its line in the menu, and what it does.
    pub fn label(&self, cluster: &Cluster) -> (String, String) {
        match self {
            Choice::Backup => (
                "Back up etcd".into(),
                "a snapshot from a healthy member, kept under the state dir's backups/".into(),
            ),
            Choice::Restore => (
                "Restore etcd from a backup".into(),
                "replaces etcd's data on every member; asks first, shows what is lost".into(),
            ),
            Choice::ResetAll => (
                "Reset the cluster".into(),
                format!(
                    "undo the install on all {} hosts; the conf stays",
                    cluster.hosts.len()
                ),
            ),
            // Said before it is chosen: an etcd member alone is refused.
            Choice::ResetHost(h) => (
                format!("Reset {h}"),
                match reset::targets(cluster, std::slice::from_ref(h)) {
                    Ok(_) => "undo the install on it alone; the conf stays".into(),
                    Err(_) => "refused: it runs an etcd member (remove it instead)".into(),
                },
            ),
        }
    }
}

/// What the restore's check found (`ops::etcd_io::check_restore`, without `--force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreCheck {
    /// What the restore loses (`etcd::loss_lines`).
    pub loss: Vec<String>,
    /// Why not without forcing: etcd has quorum (`etcd::refusal`).
    pub refused: Option<String>,
    /// An unfinished restore of this snapshot goes on.
    pub resuming: bool,
}

/// What the backup operation kept on the taskbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub dir: PathBuf,
    pub meta: Meta,
}

/// The operations dialog, one box at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    Menu {
        choices: Vec<Choice>,
        selected: usize,
    },
    /// The backups to restore from: being listed (`None`), or as listed at `now`.
    Backups {
        list: Option<Result<Vec<Backup>, String>>,
        now: u64,
        selected: usize,
    },
    /// The restore from `backup`: its check under way (`None`) or done. `forced`: the operator
    /// pressed F after the refusal (etcd has quorum); y then restores.
    Restore {
        backup: PathBuf,
        check: Option<Result<RestoreCheck, String>>,
        forced: bool,
    },
    /// The reset of `hosts`: the operator types the cluster's name (`reset::cluster_name`).
    Reset {
        hosts: BTreeSet<String>,
        input: Input,
    },
    /// Why not, in a box that only closes (a status line would cut it).
    Refused { title: String, why: String },
}

/// What a key in the dialog leads to.
#[derive(Debug)]
pub enum Step {
    /// The dialog stays (changed or not), with these effects.
    Stay(Dialog, Vec<Effect>),
    /// The dialog closes.
    Close,
    /// The dialog closes and the operation runs on the Install screen; `true`: a restore the
    /// operator forced (etcd has quorum).
    Run(Operation, bool),
}

/// The menu; with `host` (the Hosts screen's selected host) the reset of it alone too.
pub fn menu(host: Option<&str>) -> Dialog {
    let mut choices = vec![Choice::Backup, Choice::Restore, Choice::ResetAll];
    choices.extend(host.map(|h| Choice::ResetHost(h.to_string())));
    Dialog::Menu {
        choices,
        selected: 0,
    }
}

/// The dialog that asks again for `op` (`i` after it stopped): restore and reset are asked as
/// the first time; the backup runs again.
pub fn again(op: &Operation, conf_dir: &std::path::Path, cluster: &Cluster) -> Step {
    match op {
        Operation::Backup => Step::Run(Operation::Backup, false),
        Operation::Restore(backup) => check(backup.clone(), conf_dir, cluster),
        Operation::Reset { hosts, .. } => Step::Stay(
            Dialog::Reset {
                hosts: hosts.clone(),
                input: Input::default(),
            },
            Vec::new(),
        ),
        Operation::Remove(_) => Step::Close,
    }
}

fn check(backup: PathBuf, conf_dir: &std::path::Path, cluster: &Cluster) -> Step {
    let effect = Effect::CheckRestore {
        cluster: Box::new(cluster.clone()),
        dir: conf_dir.to_path_buf(),
        backup: backup.clone(),
    };
    Step::Stay(
        Dialog::Restore {
            backup,
            check: None,
            forced: false,
        },
        vec![effect],
    )
}

/// Up / Down over `len` rows.
fn moved(selected: usize, len: usize, action: &Action) -> usize {
    match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => (selected + 1).min(len.saturating_sub(1)),
        _ => selected,
    }
}

/// `action` in `dialog`, for the cluster of `conf_dir`.
pub fn act(dialog: Dialog, action: Action, conf_dir: &std::path::Path, cluster: &Cluster) -> Step {
    let stay = |d| Step::Stay(d, Vec::new());
    match (dialog, action) {
        // Esc, n, and any answer to a check that failed (its box only closes) or a refusal.
        (_, Action::Back)
        | (Dialog::Restore { .. }, Action::Answer(false))
        | (
            Dialog::Restore {
                check: Some(Err(_)),
                ..
            },
            Action::Answer(_),
        )
        | (Dialog::Refused { .. }, Action::Confirm) => Step::Close,
        (Dialog::Menu { choices, selected }, a @ (Action::Up | Action::Down)) => {
            let selected = moved(selected, choices.len(), &a);
            stay(Dialog::Menu { choices, selected })
        }
        (Dialog::Menu { choices, selected }, Action::Confirm) => {
            match choices.get(selected).cloned() {
                Some(Choice::Backup) => Step::Run(Operation::Backup, false),
                Some(Choice::Restore) => Step::Stay(
                    Dialog::Backups {
                        list: None,
                        now: 0,
                        selected: 0,
                    },
                    vec![Effect::ListBackups(conf_dir.to_path_buf())],
                ),
                Some(c @ (Choice::ResetAll | Choice::ResetHost(_))) => {
                    let names = match c {
                        Choice::ResetHost(h) => vec![h],
                        _ => Vec::new(),
                    };
                    // A partial reset of etcd members is refused as the command refuses it.
                    match reset::targets(cluster, &names) {
                        Ok(hosts) => stay(Dialog::Reset {
                            hosts,
                            input: Input::default(),
                        }),
                        Err(why) => stay(Dialog::Refused {
                            title: "Not resetting".into(),
                            why: format!("{why}."),
                        }),
                    }
                }
                None => stay(Dialog::Menu { choices, selected }),
            }
        }
        (
            Dialog::Backups {
                list: Some(Ok(list)),
                now,
                selected,
            },
            a,
        ) => {
            if let (Action::Confirm, Some(b)) = (&a, list.get(selected)) {
                return check(b.dir.clone(), conf_dir, cluster);
            }
            let selected = moved(selected, list.len(), &a);
            stay(Dialog::Backups {
                list: Some(Ok(list)),
                now,
                selected,
            })
        }
        (
            Dialog::Restore {
                backup,
                check: Some(Ok(c)),
                forced,
            },
            a,
        ) => {
            let needs_force = c.refused.is_some() && !forced;
            match a {
                Action::ForceRestore if needs_force => stay(Dialog::Restore {
                    backup,
                    check: Some(Ok(c)),
                    forced: true,
                }),
                // y alone never restores a cluster that has quorum: F comes first.
                Action::Answer(true) if !needs_force => {
                    Step::Run(Operation::Restore(backup), forced)
                }
                _ => stay(Dialog::Restore {
                    backup,
                    check: Some(Ok(c)),
                    forced,
                }),
            }
        }
        (Dialog::Reset { hosts, mut input }, Action::Text(e)) => {
            input.apply(e);
            stay(Dialog::Reset { hosts, input })
        }
        (Dialog::Reset { hosts, input }, Action::Confirm) => {
            if reset::confirmed(cluster, input.text()) {
                let all = hosts.len() == cluster.hosts.len();
                Step::Run(Operation::Reset { hosts, all }, false)
            } else {
                stay(Dialog::Refused {
                    title: "Not resetting".into(),
                    why: format!(
                        "'{}' is not the cluster's name ({}): nothing was reset.",
                        input.text().trim(),
                        reset::cluster_name(cluster)
                    ),
                })
            }
        }
        (d, _) => stay(d),
    }
}

/// The backups were listed: into the dialog that waits for them.
pub fn listed(dialog: &mut Dialog, found: Result<Vec<Backup>, String>, at: u64) {
    if let Dialog::Backups { list, now, .. } = dialog
        && list.is_none()
    {
        *list = Some(found);
        *now = at;
    }
}

/// The restore's check is in: into the dialog that waits for it (the same backup).
pub fn checked(dialog: &mut Dialog, of: &std::path::Path, result: Result<RestoreCheck, String>) {
    if let Dialog::Restore { backup, check, .. } = dialog
        && backup == of
        && check.is_none()
    {
        *check = Some(result);
    }
}

/// A backup's row in the list: name, time taken, age, revision, keys.
pub fn row(b: &Backup, now: u64) -> [String; 5] {
    let unknown = || "?".to_string();
    match &b.meta {
        Some(m) => [
            b.name(),
            etcd::utc_text(m.taken),
            etcd::age_text(now.saturating_sub(m.taken)),
            m.revision.map_or_else(unknown, |r| r.to_string()),
            m.keys.map_or_else(unknown, |k| k.to_string()),
        ],
        None => [
            b.name(),
            "(no meta.json)".into(),
            unknown(),
            unknown(),
            unknown(),
        ],
    }
}

/// The lines the Install screen's log and status give a kept backup: where it is, what it holds.
pub fn kept_lines(k: &Kept) -> Vec<String> {
    vec![
        format!("kswizard: backup kept in {}", k.dir.display()),
        format!("kswizard: {}  {}", etcd::SNAPSHOT, etcd::holds(&k.meta)),
        format!(
            "kswizard: restore it with o (Hosts, Review, Done), or `kswizard etcd restore {}`",
            k.dir.display()
        ),
    ]
}

/// A size in the largest binary unit under it: `512 B`, `60.0 KiB`, `2.0 MiB`, `1.5 GiB`.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = UNITS[0];
    for u in UNITS {
        value /= 1024.0;
        unit = u;
        if value < 1024.0 {
            break;
        }
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_their_unit() {
        assert_eq!(super::size_text(512), "512 B");
        assert_eq!(super::size_text(61_472), "60.0 KiB");
        assert_eq!(super::size_text(2_129_952), "2.0 MiB");
        assert_eq!(super::size_text(3 << 30), "3.0 GiB");
    }
}
