//! `kswizard remove`'s effects around the pure `quorum` decisions: the pre-check over SSH (the
//! etcd members and their health, asked from a staying master), then, once the plan ran, the
//! conf and the installed record without the hosts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::quorum::{self, Member};
use crate::engine::runner::sh_quote;
use crate::engine::transport;
use crate::model::{Cluster, Host};

/// The node side of the pre-check (it only reads).
const MEMBER_HEALTH: &str = include_str!("../../assets/steps/etcd-member-health.sh");

/// The client URLs the pre-check asks: every etcd member's, leaving ones too (their health counts
/// until they are removed). Stacked etcd's members are the masters.
pub fn client_urls(cluster: &Cluster) -> Vec<String> {
    let hosts: Vec<&Host> = if cluster.settings.etcd_topology.is_external() {
        cluster.etcd().collect()
    } else {
        cluster.masters().collect()
    };
    hosts
        .iter()
        .map(|h| format!("https://{}:2379", h.node_ip()))
        .collect()
}

/// The pre-check's script with its inputs set in front of it.
pub fn member_health_script(cluster: &Cluster) -> String {
    format!(
        "KSW_ETCD_URLS={}\nKSW_ETCD_TOPOLOGY={}\nexport KSW_ETCD_URLS KSW_ETCD_TOPOLOGY\n{MEMBER_HEALTH}",
        sh_quote(&client_urls(cluster).join(",")),
        cluster.settings.etcd_topology.name()
    )
}

/// The etcd members as a staying master sees them: asked on each staying master in turn until one
/// answers with a whole report. `Err` says why none could (each master's reason).
pub async fn etcd_members(
    cluster: &Cluster,
    leaving: &BTreeSet<String>,
    state_dir: &Path,
) -> Result<(Vec<Member>, String), String> {
    crate::engine::executor::ensure_state_dir(state_dir).map_err(|e| e.to_string())?;
    let ctl = transport::control_dir_in(state_dir)
        .map_err(|e| format!("no directory for SSH control sockets: {e}"))?;
    let known_hosts = state_dir.join("known_hosts");
    let script = member_health_script(cluster);
    let mut why = Vec::new();
    for (n, host) in cluster
        .masters()
        .filter(|h| !leaving.contains(&h.name))
        .enumerate()
    {
        let conn = match transport::connect(host, &known_hosts, ctl.path(), n).await {
            Ok(c) => c,
            Err(e) => {
                why.push(format!("{}: {e}", host.name));
                continue;
            }
        };
        let answer = conn.run(&script, true).await;
        let text = match &answer {
            Ok((_, out, _)) => conn.redact(out),
            Err(lost) => conn.redact(&lost.to_string()),
        };
        conn.close().await;
        match quorum::parse_members(&text) {
            Ok(members) => return Ok((members, host.name.clone())),
            Err(e) => why.push(format!("{}: {e}", host.name)),
        }
    }
    Err(format!(
        "no staying master could list the etcd members: {}",
        why.join("; ")
    ))
}

/// The hosts of a remove that has not ended (`<state>/ops/remove.pending`): only that remove can
/// go on, so that no host is left half removed and out of mind. `kswizard remove` and the
/// wizard's delete both keep it.
pub fn pending_path(state: &Path) -> PathBuf {
    state.join("ops").join("remove.pending")
}

pub fn read_pending(state: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(pending_path(state)).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

pub fn write_pending(state: &Path, names: &[String]) -> std::io::Result<()> {
    let p = pending_path(state);
    if let Some(dir) = p.parent() {
        crate::engine::executor::ensure_state_dir(dir).map_err(std::io::Error::other)?;
    }
    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
    crate::conf::atomic::write_atomic_mode(&p, text.as_bytes(), 0o600)
}

/// Why a remove of `asked` must wait: an unfinished remove of other hosts (`pending`).
pub fn other_pending(pending: &BTreeSet<String>, asked: &BTreeSet<String>) -> Option<String> {
    (pending != asked).then(|| {
        let names: Vec<&str> = pending.iter().map(String::as_str).collect();
        format!(
            "an earlier `kswizard remove {}` has not ended: run it again to finish it first",
            names.join(" ")
        )
    })
}

/// What the pre-check of a removal found: the hosts that leave and the etcd arithmetic, with
/// the staying master etcd was asked on.
#[derive(Debug, Clone)]
pub struct Checked {
    pub leaving: BTreeSet<String>,
    pub arithmetic: quorum::Arithmetic,
    pub asked_on: String,
}

/// Why the pre-check says no.
#[derive(Debug, Clone)]
pub enum NotRemoved {
    /// The hosts cannot leave (not in the conf, not installed, every master or etcd member).
    Hosts(quorum::Refusal),
    /// No staying master could list the etcd members.
    NoMembers(String),
    /// etcd would lose quorum (`quorum::check`), as the members listed on `asked_on` say.
    Etcd {
        refusal: quorum::Refusal,
        asked_on: String,
    },
}

impl std::fmt::Display for NotRemoved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRemoved::Hosts(r) => write!(f, "{r}"),
            NotRemoved::NoMembers(e) => {
                write!(f, "cannot check etcd quorum, so nothing is removed: {e}")
            }
            NotRemoved::Etcd { refusal, asked_on } => {
                write!(f, "{refusal}\n  (etcd asked on {asked_on})")
            }
        }
    }
}

/// The whole pre-check of removing `names`, for `kswizard remove` and the wizard's delete:
/// installed hosts of the conf that may leave (`quorum::leaving`), and the etcd members as a
/// staying master sees them keeping quorum without theirs (`quorum::check`).
pub async fn precheck(
    cluster: &Cluster,
    record: &crate::engine::installed::Installed,
    names: &[String],
    state_dir: &Path,
) -> Result<Checked, NotRemoved> {
    let installed: BTreeSet<String> = record.hosts.iter().map(|h| h.name.clone()).collect();
    let leaving = quorum::leaving(cluster, &installed, names).map_err(NotRemoved::Hosts)?;
    let (members, asked_on) = etcd_members(cluster, &leaving, state_dir)
        .await
        .map_err(NotRemoved::NoMembers)?;
    let ips: BTreeSet<String> = cluster
        .hosts
        .iter()
        .filter(|h| leaving.contains(&h.name))
        .map(|h| h.node_ip().to_string())
        .collect();
    match quorum::check(&members, &ips) {
        Ok(arithmetic) => Ok(Checked {
            leaving,
            arithmetic,
            asked_on,
        }),
        Err(refusal) => Err(NotRemoved::Etcd { refusal, asked_on }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled op plans load with every script, and select what their comments say.
    #[test]
    fn the_remove_and_reset_plans_load_and_select_the_leaving_and_staying_hosts() {
        use crate::engine::paths::{load_plan, op_plan};
        let mut c = Cluster::numbered(5);
        c.leaving.insert("n1".into());
        c.leaving.insert("n5".into());
        let nowhere = Path::new("/nonexistent/conf");
        let remove = load_plan(&op_plan(nowhere, "remove")).unwrap();
        let on = |node: &str| -> Vec<String> {
            remove
                .expand(&c)
                .into_iter()
                .find(|n| n.node == node)
                .map(|n| n.steps)
                .unwrap_or_default()
        };
        // n1 was the first master: it is reset; n2 drains (every master holds the etcd CA key
        // since the install, so nothing needs n1 first: a dead first master can be removed).
        assert_eq!(on("n1"), ["node-reset"]);
        assert_eq!(
            on("n2"),
            [
                "etcd-ca-here",
                "drain",
                "apiserver-etcd",
                "etcd-member-remove",
                "delete-node",
                "verify"
            ]
        );
        assert_eq!(on("n3"), ["apiserver-etcd", "verify"]);
        assert_eq!(on("n4"), Vec::<String>::new());
        assert_eq!(on("n5"), ["node-reset"]);
        let reset = load_plan(&op_plan(nowhere, "reset")).unwrap();
        let nodes: Vec<String> = reset
            .expand(&c)
            .into_iter()
            .filter(|n| !n.steps.is_empty())
            .map(|n| n.node)
            .collect();
        assert_eq!(nodes, ["n1", "n5"]);
    }

    /// The pre-check is POSIX sh (the transport runs `sh -s`): its inputs quoted in front of it.
    #[test]
    fn the_pre_check_asks_every_member_with_its_inputs_in_front() {
        let c = Cluster::numbered(4);
        let s = member_health_script(&c);
        assert!(s.starts_with(
            "KSW_ETCD_URLS='https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379'\nKSW_ETCD_TOPOLOGY=external\n"
        ), "{s}");
        assert!(s.contains("#!/bin/sh\n"));
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

/// What could not be written after a remove ended well.
#[derive(Debug)]
pub enum NotWritten {
    Conf(crate::conf::ConfError),
    Record(String),
}

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotWritten::Conf(e) => write!(f, "{e}"),
            NotWritten::Record(e) => write!(f, "{e}"),
        }
    }
}

/// After a remove that ended well (the command's and the wizard's): the conf written without
/// `names`, then the installed record, then the pending file dropped, in that order, so that a
/// crash between them leaves a state the same command finishes.
pub fn write_removed(
    cluster: &Cluster,
    source: &crate::conf::Source,
    conf_dir: &Path,
    state: &Path,
    names: &[String],
) -> Result<(), NotWritten> {
    let mut kept = cluster.clone();
    kept.hosts.retain(|h| !names.contains(&h.name));
    if kept.hosts.len() != cluster.hosts.len() {
        crate::conf::save(&kept, source, conf_dir).map_err(NotWritten::Conf)?;
    }
    let record = crate::engine::installed::Installed::load(state)
        .map_err(|e| NotWritten::Record(e.to_string()))?;
    if let Some(r) = record {
        r.without(names).save(state).map_err(|e| {
            NotWritten::Record(format!(
                "{}: {e}",
                crate::engine::installed::path(state).display()
            ))
        })?;
    }
    let _ = std::fs::remove_file(pending_path(state));
    Ok(())
}
