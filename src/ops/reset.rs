//! **Pure.** `kswizard reset`'s decisions: which hosts (the named ones, else all), the name the
//! operator types to confirm, and the install journal's record of what was reset.

use std::collections::BTreeSet;

use crate::engine::journal::{self, Record};
use crate::model::Cluster;

/// The hosts to reset: `names` (each a host of the conf; etcd members only with every host),
/// else every host.
pub fn targets(cluster: &Cluster, names: &[String]) -> Result<BTreeSet<String>, String> {
    if names.is_empty() {
        return Ok(cluster.hosts.iter().map(|h| h.name.clone()).collect());
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| cluster.host(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "not a host of the conf: {} (the names are hosts.ini's)",
            unknown.join(", ")
        ));
    }
    let set: BTreeSet<String> = names.iter().cloned().collect();
    if set.len() == cluster.hosts.len() {
        return Ok(set);
    }
    // Some hosts only: an etcd member's data would go while the cluster still counts it (and
    // may need it for quorum). `remove` takes members out properly.
    let members: Vec<&str> = cluster
        .hosts
        .iter()
        .filter(|h| set.contains(&h.name))
        .filter(|h| {
            if cluster.settings.etcd_topology.is_external() {
                h.roles.etcd
            } else {
                h.roles.master
            }
        })
        .map(|h| h.name.as_str())
        .collect();
    if members.is_empty() {
        Ok(set)
    } else {
        Err(format!(
            "{} {}: resetting it alone leaves the cluster counting a member without its data; `kswizard remove {}` takes it out (then add it back), or reset every host",
            members.join(", "),
            if members.len() == 1 {
                "runs an etcd member"
            } else {
                "run etcd members"
            },
            members.join(" ")
        ))
    }
}

/// The cluster's name as the operator confirms it: the address its nodes reach the apiservers at
/// (the LB's, else the first master's), which no other cluster on the network shares, unlike the
/// LB domain, which is `lb.kubesphere.local` in most.
pub fn cluster_name(cluster: &Cluster) -> String {
    match (&cluster.lb.address, cluster.lb.is_configured()) {
        (Some(a), true) => a.clone(),
        _ => cluster
            .masters()
            .next()
            .map_or_else(String::new, |h| h.node_ip().to_string()),
    }
}

/// The question, saying what goes and what stays.
pub fn question(cluster: &Cluster, hosts: &BTreeSet<String>) -> String {
    let all = hosts.len() == cluster.hosts.len();
    let which = if all {
        format!("all {} hosts", hosts.len())
    } else {
        hosts.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    format!(
        "This undoes the install on {which}: kubeadm reset, etcd members and data, the built-in LB, \
         the kubelet and containerd, the bundle's files, /etc/hosts line, /var/lib/kswizard. \
         The conf stays.\nType the cluster's name, its address {} (the LB's, or the first \
         master's without one), to go on:",
        cluster_name(cluster)
    )
}

/// Whether `typed` confirms: the name, spaces around it ignored.
pub fn confirmed(cluster: &Cluster, typed: &str) -> bool {
    let name = cluster_name(cluster);
    !name.is_empty() && typed.trim() == name
}

/// What a reset of `done` means for the next install, in words (the command prints it, the
/// wizard's status line says it).
pub fn outcome(cluster: &Cluster, done: &BTreeSet<String>) -> String {
    format!(
        "reset {}: the next install {}; the conf is unchanged",
        done.iter().cloned().collect::<Vec<_>>().join(", "),
        if done.len() == cluster.hosts.len() {
            "starts fresh"
        } else {
            "installs them again"
        }
    )
}

/// The install journal's record of a reset whose node-reset step ended ok on `done`.
pub fn record(cluster: &Cluster, done: &BTreeSet<String>) -> Record {
    Record::Reset {
        nodes: done.iter().cloned().collect(),
        all: cluster.hosts.iter().all(|h| done.contains(&h.name)),
        ts: journal::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_by_default_or_the_named_ones() {
        let c = Cluster::numbered(4);
        assert_eq!(targets(&c, &[]).unwrap().len(), 4);
        assert_eq!(
            targets(&c, &["n2".into(), "x".into()]).unwrap_err(),
            "not a host of the conf: x (the names are hosts.ini's)"
        );
        // n2 is an etcd member (the preset's masters): alone it is refused, with every host not.
        assert_eq!(
            targets(&c, &["n2".into()]).unwrap_err(),
            "n2 runs an etcd member: resetting it alone leaves the cluster counting a member without its data; `kswizard remove n2` takes it out (then add it back), or reset every host"
        );
        let every: Vec<String> = c.hosts.iter().map(|h| h.name.clone()).collect();
        assert_eq!(targets(&c, &every).unwrap().len(), 4);
        assert_eq!(
            targets(&c, &["n4".into()]).unwrap(),
            BTreeSet::from(["n4".to_string()])
        );
    }

    #[test]
    fn the_name_to_type_is_the_clusters_address() {
        let mut c = Cluster::numbered(4);
        assert_eq!(cluster_name(&c), "10.0.0.1");
        c.lb.mode = crate::model::LbMode::BuiltIn;
        c.lb.address = Some("10.0.0.200".into());
        c.lb.port = 8443;
        assert_eq!(cluster_name(&c), "10.0.0.200");
        assert!(confirmed(&c, " 10.0.0.200\n"));
        assert!(!confirmed(&c, "10.0.0.1"));
        assert!(!confirmed(&c, ""));
        assert!(question(&c, &targets(&c, &[]).unwrap()).contains("all 4 hosts"));
    }

    #[test]
    fn a_reset_of_every_host_says_so_in_the_journal() {
        let c = Cluster::numbered(4);
        let some = BTreeSet::from(["n4".to_string()]);
        assert!(matches!(
            record(&c, &some),
            Record::Reset { all: false, .. }
        ));
        let every = targets(&c, &[]).unwrap();
        assert!(matches!(
            record(&c, &every),
            Record::Reset { all: true, .. }
        ));
    }
}
