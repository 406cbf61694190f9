//! The cluster as installed: `<state>/installed.json`, written when an install ends with no
//! failure and updated by the day-2 operations that change membership (remove, reset). Day 2
//! compares it with the conf (`diff`): what was added, removed or changed, and what each
//! difference will do. The comparison is pure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::conf::ConfError;
use crate::model::{Cluster, EtcdTopology, LbMode, Roles};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledHost {
    pub name: String,
    /// The node IP (`ip=`, else the address kswizard connects to).
    pub ip: String,
    pub roles: Roles,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledLb {
    pub mode: LbMode,
    pub address: Option<String>,
    pub port: i64,
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub install_id: String,
    /// When it was recorded (seconds since the epoch).
    pub ts: u64,
    pub hosts: Vec<InstalledHost>,
    pub lb: InstalledLb,
    pub etcd_topology: EtcdTopology,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("installed.json")
}

impl Installed {
    /// The cluster's staying hosts as an install `install_id` made them.
    pub fn of(cluster: &Cluster, install_id: &str) -> Installed {
        Installed {
            install_id: install_id.to_string(),
            ts: super::journal::now(),
            hosts: cluster
                .staying()
                .map(|h| InstalledHost {
                    name: h.name.clone(),
                    ip: h.node_ip().to_string(),
                    roles: h.roles,
                })
                .collect(),
            lb: InstalledLb {
                mode: cluster.lb.mode,
                address: cluster.lb.address.clone(),
                port: cluster.lb.port,
                domain: cluster.lb.domain.clone(),
            },
            etcd_topology: cluster.settings.etcd_topology,
        }
    }

    /// The record once `names` left the cluster (`kswizard remove`, `reset`).
    #[must_use]
    pub fn without(&self, names: &[String]) -> Installed {
        Installed {
            hosts: self
                .hosts
                .iter()
                .filter(|h| !names.contains(&h.name))
                .cloned()
                .collect(),
            ts: super::journal::now(),
            ..self.clone()
        }
    }

    pub fn host(&self, name: &str) -> Option<&InstalledHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The record in `state_dir`; `None` when nothing was installed from it (or all was reset).
    pub fn load(state_dir: &Path) -> Result<Option<Installed>, ConfError> {
        let p = path(state_dir);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfError::io(&p, &e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            ConfError::new(
                &p,
                e.line(),
                format!("expected kswizard's record of the installed cluster: {e}; it is rewritten by the next install that ends well"),
            )
        })
    }

    /// Written whole or not at all, 0600. A record with no host left is removed.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let p = path(state_dir);
        if self.hosts.is_empty() {
            return match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::conf::atomic::write_atomic_mode(&p, text.as_bytes(), 0o600)
    }
}

/// One difference between the installed cluster and the conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// In the conf, not installed: `install` adds it.
    Added {
        name: String,
        roles: Roles,
    },
    /// Installed, no longer in the conf: only `kswizard remove` takes it out.
    Removed {
        name: String,
        roles: Roles,
    },
    RolesChanged {
        name: String,
        from: Roles,
        to: Roles,
    },
    /// The node IP changed.
    IpChanged {
        name: String,
        from: String,
        to: String,
    },
    LbChanged {
        from: String,
        to: String,
    },
    TopologyChanged {
        from: EtcdTopology,
        to: EtcdTopology,
    },
}

fn roles_text(r: Roles) -> String {
    let names = r.names();
    if names.is_empty() {
        "no role".into()
    } else {
        names.join("+")
    }
}

fn lb_text(mode: LbMode, address: Option<&str>, port: i64, domain: &str) -> String {
    match (mode, address) {
        (LbMode::None, _) | (_, None) => "no load balancer".into(),
        (LbMode::BuiltIn, Some(a)) => format!("built-in {a}:{port} ({domain})"),
        (LbMode::External, Some(a)) => format!("external {a}:{port} ({domain})"),
    }
}

impl Change {
    /// What the difference is, in a few words.
    pub fn what(&self) -> String {
        match self {
            Change::Added { name, roles } => format!("+ {name} ({}) added", roles_text(*roles)),
            Change::Removed { name, roles } => {
                format!("- {name} ({}) no longer in the conf", roles_text(*roles))
            }
            Change::RolesChanged { name, from, to } => {
                format!(
                    "~ {name}: roles {} -> {}",
                    roles_text(*from),
                    roles_text(*to)
                )
            }
            Change::IpChanged { name, from, to } => format!("~ {name}: IP {from} -> {to}"),
            Change::LbChanged { from, to } => format!("~ load balancer: {from} -> {to}"),
            Change::TopologyChanged { from, to } => {
                format!("~ etcd topology: {} -> {}", from.name(), to.name())
            }
        }
    }

    /// What it will do, one sentence.
    pub fn what_it_does(&self) -> String {
        match self {
            Change::Added { roles, .. } => {
                let mut parts = Vec::new();
                if roles.master {
                    parts.push("joins the control plane; every master's LB backends and the apiservers' view are re-wired");
                } else if roles.worker {
                    parts.push("joins as a worker");
                }
                if roles.etcd {
                    parts.push("becomes an etcd member (a learner first, then promoted; one at a time, after a snapshot); the apiservers' etcd endpoints are updated one by one");
                }
                if parts.is_empty() {
                    parts.push("gets the base packages only");
                }
                format!(
                    "`install` {}; on the other nodes only the re-wiring steps run",
                    parts.join("; ")
                )
            }
            Change::Removed { name, .. } => format!(
                "`install` refuses while it is missing: `kswizard remove {name}` takes it out (drain, kubeadm reset, etcd member, backends), or put it back in the conf"
            ),
            Change::RolesChanged { name, .. } => format!(
                "a role is not changed in place: `kswizard remove {name}`, then add it back with its new roles"
            ),
            Change::IpChanged { name, .. } => format!(
                "certificates and members name the old IP: `kswizard remove {name}`, then add it back"
            ),
            Change::LbChanged { .. } => "the load balancer is not changed in place: the apiserver certificates and every kubeconfig name it; `kswizard reset` and install again".into(),
            Change::TopologyChanged { .. } => "the etcd topology is not changed in place: `kswizard reset` and install again (back up etcd first)".into(),
        }
    }

    /// Only added hosts: what `install` carries out by itself.
    pub fn is_addition(&self) -> bool {
        matches!(self, Change::Added { .. })
    }
}

/// The conf against the installed cluster: hosts added, removed or changed, in conf order then
/// record order, then the LB and the topology.
pub fn diff(installed: &Installed, cluster: &Cluster) -> Vec<Change> {
    let mut out = Vec::new();
    for h in cluster.staying() {
        match installed.host(&h.name) {
            None => out.push(Change::Added {
                name: h.name.clone(),
                roles: h.roles,
            }),
            Some(i) if i.roles != h.roles => out.push(Change::RolesChanged {
                name: h.name.clone(),
                from: i.roles,
                to: h.roles,
            }),
            Some(i) if i.ip != h.node_ip() => out.push(Change::IpChanged {
                name: h.name.clone(),
                from: i.ip.clone(),
                to: h.node_ip().to_string(),
            }),
            Some(_) => {}
        }
    }
    for i in &installed.hosts {
        if cluster.host(&i.name).is_none_or(|h| cluster.is_leaving(h)) {
            out.push(Change::Removed {
                name: i.name.clone(),
                roles: i.roles,
            });
        }
    }
    let was = &installed.lb;
    let lb = &cluster.lb;
    let from = lb_text(was.mode, was.address.as_deref(), was.port, &was.domain);
    let to = lb_text(lb.mode, lb.address.as_deref(), lb.port, &lb.domain);
    if from != to {
        out.push(Change::LbChanged { from, to });
    }
    if installed.etcd_topology != cluster.settings.etcd_topology {
        out.push(Change::TopologyChanged {
            from: installed.etcd_topology,
            to: cluster.settings.etcd_topology,
        });
    }
    out
}

#[cfg(test)]
mod tests;
