//! **Pure.** What `kswizard remove` decides before anything runs: which hosts leave (named, in the
//! conf, installed; never every master nor every etcd member), the etcd members as the pre-check
//! on a staying master saw them (`assets/steps/etcd-members.sh`), and whether removing the leaving
//! hosts' members keeps quorum, with the arithmetic to show the operator either way.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::Cluster;

/// Why the named hosts cannot be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No host named.
    Nothing,
    /// Names that are not hosts of the conf.
    NotInConf(Vec<String>),
    /// Hosts of the conf that the installed record does not hold: nothing to remove there.
    NotInstalled(Vec<String>),
    /// Every master would leave: no control plane would be left to drain and re-wire from.
    EveryMaster,
    /// Every etcd member would leave: the cluster's data with them.
    EveryEtcd,
    /// The etcd arithmetic says no.
    Quorum(Arithmetic),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Nothing => write!(f, "name the hosts to remove: kswizard remove NODE..."),
            Refusal::NotInConf(n) => write!(
                f,
                "not a host of the conf: {} (the names are hosts.ini's)",
                n.join(", ")
            ),
            Refusal::NotInstalled(n) => write!(
                f,
                "not installed: {} (the installed record does not hold it; delete it from the conf instead, or `kswizard reset` it)",
                n.join(", ")
            ),
            Refusal::EveryMaster => write!(
                f,
                "refused: that removes every master; at least one must stay (add a master first, then remove the old ones)"
            ),
            Refusal::EveryEtcd => write!(
                f,
                "refused: that removes every etcd member, and the cluster's data with them; use `kswizard reset` to remove the whole cluster"
            ),
            Refusal::Quorum(a) => write!(f, "refused: the removal would lose etcd quorum\n{a}"),
        }
    }
}

/// The leaving hosts: `names` deduplicated, each a host of `cluster` that `installed` says was
/// installed; refused when no master or no etcd member would stay.
pub fn leaving(
    cluster: &Cluster,
    installed: &BTreeSet<String>,
    names: &[String],
) -> Result<BTreeSet<String>, Refusal> {
    let set: BTreeSet<String> = names.iter().cloned().collect();
    if set.is_empty() {
        return Err(Refusal::Nothing);
    }
    let unknown: Vec<String> = set
        .iter()
        .filter(|n| !cluster.hosts.iter().any(|h| &h.name == *n))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Refusal::NotInConf(unknown));
    }
    let not_installed: Vec<String> = set
        .iter()
        .filter(|n| !installed.contains(*n))
        .cloned()
        .collect();
    if !not_installed.is_empty() {
        return Err(Refusal::NotInstalled(not_installed));
    }
    let stays = |pick: fn(&crate::model::Roles) -> bool| {
        cluster.with_role(pick).any(|h| !set.contains(&h.name))
    };
    if !stays(|r| r.master) {
        return Err(Refusal::EveryMaster);
    }
    // With stacked etcd the members are the masters, checked above.
    if cluster.settings.etcd_topology.is_external()
        && cluster.with_role(|r| r.etcd).next().is_some()
        && !stays(|r| r.etcd)
    {
        return Err(Refusal::EveryEtcd);
    }
    Ok(set)
}

/// One etcd member as the pre-check saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// etcd's name for it (`etcd-10-0-0-1` external, the node name stacked; `-` if not started).
    pub name: String,
    /// The host part of its peer URL: which host it lives on.
    pub ip: String,
    pub healthy: bool,
}

/// The pre-check's report: `MEMBER <name> <peer-url> healthy|unhealthy` lines, then `END`. A cut
/// or malformed report is an error naming the line: the arithmetic is never done on half a list.
pub fn parse_members(report: &str) -> Result<Vec<Member>, String> {
    let mut members = Vec::new();
    for line in report.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["MEMBER", name, peer, health @ ("healthy" | "unhealthy")] => {
                let ip = peer_host(peer).ok_or_else(|| {
                    format!("the member line '{line}' has no peer URL https://IP:PORT")
                })?;
                members.push(Member {
                    name: (*name).to_string(),
                    ip,
                    healthy: *health == "healthy",
                });
            }
            ["END"] if members.is_empty() => {
                return Err("the etcd member list is empty".into());
            }
            ["END"] => return Ok(members),
            ["FAIL", ..] => return Err(line.trim_start_matches("FAIL").trim().to_string()),
            [] => {}
            // The script's own remarks (which endpoint it asked) are not part of the report.
            _ if !line.starts_with("MEMBER") => {}
            _ => {
                return Err(format!(
                    "expected 'MEMBER name peer-url healthy|unhealthy', got '{line}'"
                ));
            }
        }
    }
    Err("the etcd member list ended without END (cut off?)".into())
}

/// `https://10.0.0.1:2380` → `10.0.0.1` (`[::1]` → `::1`).
fn peer_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        rest.rsplit_once(':').map_or(rest, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// etcd's quorum of `n` members: a majority.
pub fn quorum_of(n: usize) -> usize {
    n / 2 + 1
}

/// The numbers behind the decision, shown whether it is yes or no.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Arithmetic {
    /// Members now, and how many of them answered healthy.
    pub members: usize,
    pub healthy: usize,
    /// The members that leave (their names), removed one at a time, unhealthy ones first.
    pub removing: Vec<String>,
    /// Members after the removal, and how many of them are healthy now.
    pub staying: usize,
    pub healthy_staying: usize,
    /// Quorum now and after.
    pub quorum_now: usize,
    pub quorum_after: usize,
}

impl Arithmetic {
    /// etcd commits each removal with the quorum of the members it has then: removing the
    /// unhealthy ones first only lowers the bar, and removing a healthy one keeps
    /// `healthy ≥ quorum` from one size to the next, so two checks cover every step: quorum now,
    /// and quorum among the staying members after.
    pub fn keeps_quorum(&self) -> bool {
        self.removing.is_empty()
            || (self.healthy >= self.quorum_now && self.healthy_staying >= self.quorum_after)
    }
}

impl Arithmetic {
    /// A note when members leave and an even number stays: no more failures tolerated than with
    /// one fewer, and `install` refuses the conf until one is added or removed.
    pub fn even_note(&self) -> Option<String> {
        (!self.removing.is_empty() && self.staying > 0 && self.staying.is_multiple_of(2)).then(|| {
            format!(
                "  note: {} etcd members tolerate {} failed member(s), the same as {}: add an etcd host (install refuses an even count, etcd-count-even, until one is added or removed)",
                self.staying,
                (self.staying - 1) / 2,
                self.staying - 1
            )
        })
    }
}

impl fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  etcd members now      {} ({} healthy; quorum {})",
            self.members, self.healthy, self.quorum_now
        )?;
        let names = if self.removing.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.removing.join(", "))
        };
        writeln!(f, "  removing              {}{names}", self.removing.len())?;
        writeln!(
            f,
            "  staying               {} ({} healthy)",
            self.staying, self.healthy_staying
        )?;
        write!(
            f,
            "  quorum after          {} of {}: ",
            self.quorum_after, self.staying
        )?;
        if self.removing.is_empty() {
            write!(f, "no member leaves")
        } else if self.healthy < self.quorum_now {
            write!(
                f,
                "{} healthy < {} needed now: the cluster has no quorum, no member can be removed",
                self.healthy, self.quorum_now
            )
        } else if self.healthy_staying < self.quorum_after {
            write!(
                f,
                "{} healthy staying < {} needed: refused (bring a member back first)",
                self.healthy_staying, self.quorum_after
            )
        } else {
            write!(
                f,
                "{} healthy staying ≥ {}: kept",
                self.healthy_staying, self.quorum_after
            )
        }
    }
}

/// The arithmetic of removing the members on the hosts at `leaving_ips`; `Err` when it loses
/// quorum.
pub fn check(members: &[Member], leaving_ips: &BTreeSet<String>) -> Result<Arithmetic, Refusal> {
    let (going, staying): (Vec<&Member>, Vec<&Member>) =
        members.iter().partition(|m| leaving_ips.contains(&m.ip));
    let mut removing: Vec<&Member> = going;
    removing.sort_by_key(|m| m.healthy);
    let a = Arithmetic {
        members: members.len(),
        healthy: members.iter().filter(|m| m.healthy).count(),
        removing: removing.iter().map(|m| m.name.clone()).collect(),
        staying: staying.len(),
        healthy_staying: staying.iter().filter(|m| m.healthy).count(),
        quorum_now: quorum_of(members.len()),
        quorum_after: quorum_of(staying.len()),
    };
    if a.staying == 0 && !a.removing.is_empty() {
        return Err(Refusal::EveryEtcd);
    }
    if a.keeps_quorum() {
        Ok(a)
    } else {
        Err(Refusal::Quorum(a))
    }
}

#[cfg(test)]
mod tests;
