//! **Pure.** How to reach the installed cluster, said by the Done screen and at the end of the
//! text report (so by the headless demo too): the kubeconfig and an `scp` line to copy it,
//! `kubectl get nodes` as the verify step saw it last, the LB and its backends, the etcd
//! endpoints with the files that reach them, the console when the plan installs `KubeSphere`,
//! and where the steps' logs are on the taskbox.

use std::path::Path;

use crate::model::{CONSOLE_PORT, Cluster, EtcdTopology};

/// The admin kubeconfig kubeadm writes on the first master (root's, 0600).
pub const KUBECONFIG: &str = "/etc/kubernetes/admin.conf";

/// `kubectl get nodes` as the verify step printed it (after its `ok … nodes Ready` line): the
/// table of its last attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodesTable {
    pub lines: Vec<String>,
    reading: bool,
}

impl NodesTable {
    /// One line of the verify step's output.
    pub fn feed(&mut self, line: &str) {
        if line.starts_with("NAME ") {
            // A later attempt's table replaces an earlier one's.
            self.lines.clear();
            self.reading = true;
        } else if ["ok ", "FAIL ", "verified", "attempt ", "kswizard:"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            self.reading = false;
            return;
        }
        if self.reading {
            self.lines.push(line.to_string());
        }
    }
}

/// Label and value lines (an empty label continues the line above).
pub fn lines(
    c: &Cluster,
    kubesphere: bool,
    nodes: &[String],
    logs: Option<&Path>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |label: &str, value: String| out.push((label.to_string(), value));
    if let Some(first) = c.masters().next() {
        let ip = first.node_ip();
        push(
            "kubeconfig",
            format!("{KUBECONFIG} on {} ({ip})", first.name),
        );
        let port = first.port.map_or(String::new(), |p| format!("-P {p} "));
        let user = first.user.as_deref().unwrap_or("root");
        let at = first.connect_address();
        if first.is_root() {
            push(
                "copy it",
                format!("scp {port}{user}@{at}:{KUBECONFIG} ./admin.conf"),
            );
        } else {
            // admin.conf is root's and 0600: a sudo user copies it to its home first.
            let ssh_port = first.port.map_or(String::new(), |p| format!("-p {p} "));
            push(
                "copy it",
                format!(
                    "ssh -t {ssh_port}{user}@{at} 'sudo install -m 0600 -o {user} {KUBECONFIG} ~/admin.conf'"
                ),
            );
            push("", format!("scp {port}{user}@{at}:admin.conf ./admin.conf"));
        }
        push("then", "kubectl --kubeconfig ./admin.conf get nodes".into());
        push(
            "",
            format!(
                "({} must resolve to {}: /etc/hosts)",
                c.lb.domain,
                c.lb.address.as_deref().unwrap_or(ip)
            ),
        );
    }
    if nodes.is_empty() {
        push("nodes", "not seen: the verify step printed no table".into());
    } else {
        for (i, l) in nodes.iter().enumerate() {
            push(if i == 0 { "nodes (verify)" } else { "" }, l.clone());
        }
    }
    match (&c.lb.address, c.lb.is_configured()) {
        (Some(a), true) => push(
            "load balancer",
            format!("{a}:{} {} ({})", c.lb.port, c.lb.domain, c.lb.mode.label()),
        ),
        _ => push("load balancer", "none".into()),
    }
    let backends: Vec<String> = c
        .masters()
        .map(|m| format!("{} {}:6443", m.name, m.node_ip()))
        .collect();
    push("  backends", backends.join(", "));
    let (members, pki, client): (Vec<_>, _, _) = match c.settings.etcd_topology {
        EtcdTopology::External => (
            c.etcd().collect(),
            "/etc/etcd/pki",
            "/etc/etcd/pki/apiserver-etcd-client",
        ),
        EtcdTopology::Stacked => (
            c.masters().collect(),
            "/etc/kubernetes/pki/etcd",
            "/etc/kubernetes/pki/apiserver-etcd-client",
        ),
    };
    let endpoints: Vec<String> = members
        .iter()
        .map(|h| format!("https://{}:2379", h.node_ip()))
        .collect();
    push("etcd", endpoints.join(","));
    push("  CA", format!("{pki}/ca.crt (on every master)"));
    push("  client", format!("{client}.crt and .key"));
    if kubesphere && let Some(url) = c.console_url() {
        push(
            "console",
            format!("{url} (every node serves it on :{CONSOLE_PORT})"),
        );
        if let Some(lb) = c.console_lb_url() {
            push("", format!("{lb} through the load balancer"));
        }
    }
    if let Some(dir) = logs {
        push(
            "step logs",
            format!("{}/<node>/<step>.log (on this machine)", dir.display()),
        );
    }
    out
}

/// The lines as text, labels in a column.
pub fn text(lines: &[(String, String)]) -> String {
    lines
        .iter()
        .map(|(l, v)| format!("  {l:<16} {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Host, LbMode};

    fn cluster() -> Cluster {
        let mut c = Cluster::default();
        for (i, n) in ["master1", "master2", "master3", "node1"]
            .iter()
            .enumerate()
        {
            c.hosts.push(Host::new(*n, format!("10.0.0.{}", i + 1)));
        }
        c.apply_preset();
        c.lb.mode = LbMode::External;
        c.lb.address = Some("10.0.0.250".into());
        c
    }

    #[test]
    fn the_nodes_table_is_the_last_attempts() {
        let mut t = NodesTable::default();
        for l in [
            "ok    2 of 3 nodes Ready",
            "NAME STATUS",
            "old NotReady",
            "attempt 1 failed; retrying in 2 s",
            "ok    apiserver",
            "NAME STATUS",
            "master1 Ready",
            "verified",
        ] {
            t.feed(l);
        }
        assert_eq!(t.lines, ["NAME STATUS", "master1 Ready"]);
    }

    #[test]
    fn root_copies_with_scp_and_a_sudo_user_installs_it_first() {
        let mut c = cluster();
        let nodes = vec!["NAME STATUS".to_string(), "master1 Ready".to_string()];
        let t = text(&lines(&c, true, &nodes, Some(Path::new("/s/logs/i"))));
        assert!(
            t.contains("scp root@10.0.0.1:/etc/kubernetes/admin.conf ./admin.conf"),
            "{t}"
        );
        assert!(
            t.contains("nodes (verify)   NAME STATUS\n                   master1 Ready"),
            "{t}"
        );
        assert!(
            t.contains("https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379"),
            "{t}"
        );
        assert!(t.contains("CA             /etc/etcd/pki/ca.crt"), "{t}");
        assert!(
            t.contains("client         /etc/etcd/pki/apiserver-etcd-client.crt and .key"),
            "{t}"
        );
        assert!(t.contains("console          http://10.0.0.1:30880"), "{t}");
        assert!(t.contains("/s/logs/i/<node>/<step>.log"), "{t}");
        c.hosts[0].user = Some("ops".into());
        c.hosts[0].port = Some(2222);
        c.settings.etcd_topology = EtcdTopology::Stacked;
        let t = text(&lines(&c, false, &[], None));
        assert!(t.contains("ssh -t -p 2222 ops@10.0.0.1 'sudo install -m 0600 -o ops /etc/kubernetes/admin.conf ~/admin.conf'"), "{t}");
        assert!(
            t.contains("scp -P 2222 ops@10.0.0.1:admin.conf ./admin.conf"),
            "{t}"
        );
        assert!(
            t.contains("CA             /etc/kubernetes/pki/etcd/ca.crt"),
            "{t}"
        );
        assert!(!t.contains("console"), "{t}");
        assert!(t.contains("not seen"), "{t}");
    }
}
