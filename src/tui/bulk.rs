//! Adding many hosts at once: from an address range with a name prefix, or from pasted hosts.ini
//! lines (read by the same parser as the file, so every key the file accepts works here too).

use std::net::Ipv4Addr;
use std::path::Path;

use crate::conf::hosts_ini;
use crate::model::Host;

/// More hosts than this in one range is a typo, not a cluster.
const MAX_RANGE: usize = 1000;

/// `192.168.0.11-16` or `192.168.0.11-192.168.0.16`: the addresses from the first to the last.
pub fn parse_range(spec: &str) -> Result<Vec<Ipv4Addr>, String> {
    let usage = || format!("'{spec}' is not a range: write e.g. 192.168.0.11-16");
    let (first, last) = spec.trim().split_once('-').ok_or_else(usage)?;
    let first: Ipv4Addr = first.trim().parse().map_err(|_| usage())?;
    let last = last.trim();
    let last: Ipv4Addr = match last.parse::<u8>() {
        Ok(octet) => {
            let [a, b, c, _] = first.octets();
            Ipv4Addr::new(a, b, c, octet)
        }
        Err(_) => last.parse().map_err(|_| usage())?,
    };
    let (lo, hi) = (u32::from(first), u32::from(last));
    if hi < lo {
        return Err(format!("range {spec} ends before it starts"));
    }
    let count = (hi - lo) as usize + 1;
    if count > MAX_RANGE {
        return Err(format!(
            "range {spec} has {count} addresses; at most {MAX_RANGE} at once"
        ));
    }
    Ok((lo..=hi).map(Ipv4Addr::from).collect())
}

/// A new host's access as most hosts already have it: the commonest (port, user, auth, sudo
/// password) among them, so that adding hosts to a cluster needs no per-host edit. The taskbox's
/// `ansible_connection=local` is never copied: a new host is reached by SSH (with a key unless
/// most hosts use passwords).
pub fn common_access(hosts: &[Host]) -> Host {
    // Few distinct accesses in any real cluster: a list, counted in order of first appearance.
    let mut seen: Vec<(&Host, usize)> = Vec::new();
    for h in hosts.iter().filter(|h| !h.is_local()) {
        let same = |t: &&Host| {
            t.port == h.port
                && t.user == h.user
                && t.auth == h.auth
                && t.become_pass == h.become_pass
        };
        match seen.iter_mut().find(|(t, _)| same(t)) {
            Some((_, n)) => *n += 1,
            None => seen.push((h, 1)),
        }
    }
    let mut template = Host::new("", "");
    // The first of the commonest wins a tie, so the choice is stable.
    let top = seen.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if let Some((h, _)) = seen.iter().find(|(_, n)| *n == top) {
        template.port = h.port;
        template.user.clone_from(&h.user);
        template.auth = h.auth.clone();
        template.become_pass.clone_from(&h.become_pass);
    }
    template
}

/// One host per address, named `prefix1`, `prefix2`, … skipping names already in `existing`.
pub fn hosts_from_range(spec: &str, prefix: &str, existing: &[Host]) -> Result<Vec<Host>, String> {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return Err("give a name prefix, e.g. node".to_string());
    }
    let addrs = parse_range(spec)?;
    let taken: std::collections::HashSet<&str> = existing.iter().map(|h| h.name.as_str()).collect();
    let mut n = 0;
    let mut hosts = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let name = loop {
            n += 1;
            let candidate = format!("{prefix}{n}");
            if !taken.contains(candidate.as_str()) {
                break candidate;
            }
        };
        hosts.push(Host::new(name, addr.to_string()));
    }
    Ok(hosts)
}

/// Hosts from pasted inventory lines. Host lines before any section are Ansible's ungrouped
/// hosts, as in a file; pasted sections (`[kube-master]` …) give the hosts their roles.
pub fn hosts_from_ini(text: &str) -> Result<Vec<Host>, String> {
    let cluster =
        hosts_ini::parse(text.as_bytes(), Path::new("pasted lines")).map_err(|e| e.to_string())?;
    if cluster.hosts.is_empty() {
        return Err(
            "no host lines found: paste lines like 'node1 ansible_host=192.168.0.4 ip=192.168.0.4'"
                .to_string(),
        );
    }
    // hosts.ini's legacy reading of a non-root line with only ansible_become_pass is password
    // login (install.sh copies it into ansible_ssh_pass). Typed or pasted here, such a line
    // means what it says: key login, and a sudo password.
    let mut hosts = cluster.hosts;
    for h in &mut hosts {
        let says_ssh_pass = text.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(h.name.as_str())
                && words.any(|w| {
                    w.starts_with("ansible_ssh_pass=") || w.starts_with("ansible_password=")
                })
        });
        if !says_ssh_pass && matches!(h.auth, crate::model::Auth::Password(_)) {
            h.auth = crate::model::Auth::Key { file: None };
        }
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_line_with_only_a_sudo_password_keeps_key_login() {
        use crate::model::{Auth, Secret};
        let hosts = hosts_from_ini(
            "node1 ansible_host=10.0.0.4 ip=10.0.0.4 ansible_user=ubuntu ansible_become_pass=Qcloud@123\nnode2 ansible_host=10.0.0.5 ip=10.0.0.5 ansible_user=ubuntu ansible_ssh_pass=pw ansible_become_pass=pw\n",
        )
        .unwrap();
        assert_eq!(hosts[0].auth, Auth::Key { file: None });
        assert_eq!(hosts[0].become_pass, Some(Secret::new("Qcloud@123")));
        assert_eq!(hosts[1].auth, Auth::Password(Secret::new("pw")));
    }

    #[test]
    fn new_hosts_get_the_access_most_hosts_have() {
        use crate::model::{Auth, Secret};
        let mut hosts: Vec<Host> = (1..=4)
            .map(|i| Host::new(format!("n{i}"), format!("10.0.0.{i}")))
            .collect();
        for h in &mut hosts[1..] {
            h.user = Some("ubuntu".into());
            h.port = Some(2222);
            h.auth = Auth::Key {
                file: Some("/root/.ssh/lab".into()),
            };
            h.become_pass = Some(Secret::new("sudo-pw"));
        }
        hosts[0].auth = Auth::Local;
        let t = common_access(&hosts);
        assert_eq!(
            (t.user.as_deref(), t.port, &t.auth, &t.become_pass),
            (
                Some("ubuntu"),
                Some(2222),
                &hosts[1].auth,
                &Some(Secret::new("sudo-pw"))
            )
        );
        // Only the taskbox: a new host is reached by SSH with a key, as root.
        let t = common_access(&hosts[..1]);
        assert_eq!(t.auth, Host::new("", "").auth);
        assert_eq!(t.user, None);
    }
    use crate::model::Auth;

    #[test]
    fn short_and_long_ranges() {
        let short = parse_range("192.168.0.11-16").unwrap();
        assert_eq!(short.len(), 6);
        assert_eq!(short[5], Ipv4Addr::new(192, 168, 0, 16));
        assert_eq!(parse_range("10.0.0.250-10.0.1.2").unwrap().len(), 9);
        assert!(parse_range("192.168.0.16-11").is_err());
        assert!(parse_range("node1").is_err());
    }

    #[test]
    fn range_names_skip_existing_ones() {
        let existing = vec![Host::new("node2", "10.0.0.2")];
        let hosts = hosts_from_range("10.0.0.5-7", "node", &existing).unwrap();
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["node1", "node3", "node4"]);
        assert_eq!(hosts[2].ip.as_deref(), Some("10.0.0.7"));
    }

    #[test]
    fn pasted_lines_keep_their_keys() {
        let hosts = hosts_from_ini(
            "node7 ansible_host=10.0.0.7 ip=10.0.0.7 ansible_user=ubuntu ansible_become_pass=s3cret\n\
             node8 ansible_connection=local ip=10.0.0.8\n",
        )
        .unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].user.as_deref(), Some("ubuntu"));
        assert!(hosts[0].become_pass.is_some());
        assert_eq!(hosts[1].auth, Auth::Local);
        assert!(hosts_from_ini("\n# nothing\n").is_err());
    }
}
