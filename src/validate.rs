//! The layout rules (DESIGN §3): one pure function over the model, stable codes, fixed wording.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::model::{APISERVER_PORT, Auth, Cluster, EtcdTopology, LbMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub hosts: Vec<String>,
    /// The field the operator edits to fix it: `roles.etcd`, `lb.address`, `host.name`, ...
    pub field: &'static str,
    pub message: String,
    pub hint: String,
}

/// Codes an operator may accept in kswizard.yaml (`accept:`); an accepted finding is a warning.
pub const ACCEPTABLE: &[&str] = &["etcd-on-worker"];

pub fn has_errors(findings: &[Finding]) -> bool {
    has_errors_but(findings, &[])
}

/// Whether `findings` hold an error whose code is not one of `tolerated`.
pub fn has_errors_but(findings: &[Finding], tolerated: &[&str]) -> bool {
    findings
        .iter()
        .any(|f| f.severity == Severity::Error && !tolerated.contains(&f.code))
}

/// The names in their first order, each once.
fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .filter(|n| seen.insert(*n))
        .map(str::to_string)
        .collect()
}

fn list(names: &[String]) -> String {
    names.join(", ")
}

struct Out<'a> {
    cluster: &'a Cluster,
    findings: Vec<Finding>,
}

impl Out<'_> {
    fn accepted(&self, code: &str) -> bool {
        ACCEPTABLE.contains(&code) && self.cluster.settings.accept.iter().any(|a| a == code)
    }

    fn push(
        &mut self,
        code: &'static str,
        severity: Severity,
        hosts: Vec<String>,
        field: &'static str,
        message: String,
        hint: String,
    ) {
        let (severity, message) = if self.accepted(code) {
            (
                Severity::Warning,
                format!("{message} (accepted in kswizard.yaml)"),
            )
        } else {
            (severity, message)
        };
        self.findings.push(Finding {
            code,
            severity,
            hosts,
            field,
            message,
            hint,
        });
    }
}

pub fn validate(cluster: &Cluster) -> Vec<Finding> {
    use Severity::{Error, Warning};
    let mut out = Out {
        cluster,
        findings: Vec::new(),
    };
    let names = |it: &mut dyn Iterator<Item = &crate::model::Host>| -> Vec<String> {
        unique(it.map(|h| h.name.as_str()))
    };
    let masters = names(&mut cluster.masters());
    let etcd = names(&mut cluster.etcd());

    // Names: unique and valid node names.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for h in &cluster.hosts {
        *by_name.entry(h.name.as_str()).or_default() += 1;
    }
    let mut reported = HashSet::new();
    for h in &cluster.hosts {
        let n = by_name[h.name.as_str()];
        if n > 1 && reported.insert(h.name.as_str()) {
            out.push(
                "duplicate-host",
                Error,
                vec![h.name.clone()],
                "host.name",
                format!("host {} is defined {n} times in [all]", h.name),
                format!(
                    "remove the extra lines for {}, or rename one of them",
                    h.name
                ),
            );
        }
    }
    for h in &cluster.hosts {
        if !valid_node_name(&h.name) && reported.insert(h.name.as_str()) {
            out.push(
                "hostname-invalid",
                Error,
                vec![h.name.clone()],
                "host.name",
                format!(
                    "host name '{}' is not a valid node name: Kubernetes needs lowercase letters, digits, '-' and '.' (RFC 1123), at most 63 characters a label",
                    h.name
                ),
                format!("rename it, e.g. '{}'", suggest_name(&h.name)),
            );
        }
    }

    // Addresses: no two hosts share one.
    let mut by_addr: HashMap<&str, Vec<&str>> = HashMap::new();
    for h in &cluster.hosts {
        let mut addrs: Vec<&str> = [h.address.as_deref(), h.ip.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        addrs.dedup();
        for a in addrs {
            by_addr.entry(a).or_default().push(h.name.as_str());
        }
    }
    let mut dup_addrs: Vec<(&str, Vec<String>)> = by_addr
        .into_iter()
        .map(|(a, v)| (a, unique(v.into_iter())))
        .filter(|(_, v)| v.len() > 1)
        .collect();
    // In the order of each address's first host.
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    for (i, h) in cluster.hosts.iter().enumerate() {
        first_at.entry(h.name.as_str()).or_insert(i);
    }
    dup_addrs.sort_by_key(|(_, v)| first_at.get(v[0].as_str()).copied());
    for (addr, hosts) in dup_addrs {
        out.push(
            "duplicate-ip",
            Error,
            hosts.clone(),
            "host.ip",
            format!("address {addr} is used by {}", list(&hosts)),
            "each host needs its own address: correct ansible_host / ip".to_string(),
        );
    }

    // Addresses and ports: what steps and ssh are handed must be what it says it is.
    for h in &cluster.hosts {
        if let Some(ip) = h.ip.as_deref().filter(|ip| ip.parse::<IpAddr>().is_err()) {
            out.push(
                "ip-invalid",
                Error,
                vec![h.name.clone()],
                "host.ip",
                format!(
                    "ip={} of host {} is not an IPv4 or IPv6 address",
                    shown(ip),
                    h.name
                ),
                "set ip= to the address the node has on the cluster network, e.g. 192.168.0.2"
                    .to_string(),
            );
        }
        if let Some(a) = h.address.as_deref().filter(|a| !is_address_or_name(a)) {
            out.push(
                "host-address-invalid",
                Error,
                vec![h.name.clone()],
                "host.address",
                format!(
                    "ansible_host={} of host {} is neither an IP address nor a DNS name",
                    shown(a),
                    h.name
                ),
                "set ansible_host= to the address or DNS name kswizard connects to".to_string(),
            );
        }
        if h.port == Some(0) {
            out.push(
                "ssh-port-invalid",
                Error,
                vec![h.name.clone()],
                "host.port",
                format!(
                    "SSH port 0 of host {} is not a TCP port: expected 1..65535",
                    h.name
                ),
                "set ansible_port= to the port sshd listens on, or remove it for 22".to_string(),
            );
        }
    }
    let roleless = names(
        &mut cluster
            .hosts
            .iter()
            .filter(|h| !h.roles.master && !h.roles.worker && !h.roles.etcd),
    );
    if !roleless.is_empty() {
        out.push(
            "host-no-role",
            Warning,
            roleless.clone(),
            "roles.master",
            format!(
                "{} has no role: it would get preflight and packages but never join the cluster",
                list(&roleless)
            ),
            "give it a role (master, worker or etcd), or remove it from hosts.ini".to_string(),
        );
    }

    for u in &cluster.undefined {
        out.push(
            "host-undefined",
            Error,
            vec![u.name.clone()],
            "host.name",
            format!(
                "[{}] names host '{}' (hosts.ini line {}), which [all] does not define",
                u.group, u.name, u.line
            ),
            format!(
                "correct the name if it is a typo, or add a line for '{}' to [all] with its ansible_host and ip",
                u.name
            ),
        );
    }

    let local = names(&mut cluster.hosts.iter().filter(|h| h.auth == Auth::Local));
    if local.len() > 1 {
        out.push(
            "local-host-count",
            Error,
            local.clone(),
            "host.auth",
            format!(
                "{} hosts use ansible_connection=local ({}): only the taskbox kswizard runs on can be local",
                local.len(),
                list(&local)
            ),
            "keep ansible_connection=local on the taskbox only; give the others ansible_host= and SSH access".to_string(),
        );
    }

    // Roles.
    if masters.is_empty() {
        out.push(
            "no-master",
            Error,
            Vec::new(),
            "roles.master",
            "no master: a cluster needs at least one host in [kube-master]".to_string(),
            "give the master role to one host, or to three for high availability".to_string(),
        );
    }
    if etcd.is_empty() {
        out.push(
            "no-etcd",
            Error,
            Vec::new(),
            "roles.etcd",
            "no etcd host: a cluster needs at least one host in [etcd]".to_string(),
            "give the etcd role to the masters (1 or 3 of them)".to_string(),
        );
    } else if etcd.len() % 2 == 0 {
        out.push(
            "etcd-count-even",
            Error,
            etcd.clone(),
            "roles.etcd",
            format!(
                "{} etcd hosts ({}): etcd needs an odd count (3 tolerates 1 failure, 5 tolerates 2); {} tolerates no more failures than {}",
                etcd.len(),
                list(&etcd),
                etcd.len(),
                etcd.len() - 1
            ),
            "remove one etcd host or add one".to_string(),
        );
    }
    let on_workers = names(&mut cluster.with_role(|r| r.etcd && r.worker && !r.master));
    if !on_workers.is_empty() {
        out.push(
            "etcd-on-worker",
            Error,
            on_workers.clone(),
            "roles.etcd",
            format!(
                "etcd on worker {}: etcd's memory and disk use starves workloads, and a busy worker slows every write of the cluster",
                list(&on_workers)
            ),
            // Once accepted, offering to accept it again would read as if the override were not seen.
            if out.accepted("etcd-on-worker") {
                "move etcd to the masters or to hosts of its own, or remove etcd-on-worker from 'accept:' in kswizard.yaml to make this an error again".to_string()
            } else {
                "move etcd to the masters or to hosts of its own, or accept it with 'accept: [etcd-on-worker]' in kswizard.yaml".to_string()
            },
        );
    }

    // Stacked etcd: kubeadm puts a member on each master and nowhere else, so [etcd] must say so.
    if cluster.settings.etcd_topology == EtcdTopology::Stacked {
        let masters_set: HashSet<&String> = masters.iter().collect();
        let etcd_set: HashSet<&String> = etcd.iter().collect();
        let missing: Vec<String> = masters
            .iter()
            .filter(|m| !etcd_set.contains(m))
            .cloned()
            .collect();
        let extra: Vec<String> = etcd
            .iter()
            .filter(|e| !masters_set.contains(e))
            .cloned()
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("master {} not in [etcd]", list(&missing)));
            }
            if !extra.is_empty() {
                parts.push(format!("{} in [etcd] but not a master", list(&extra)));
            }
            out.push(
                "etcd-stacked-not-masters",
                Error,
                unique(missing.iter().chain(&extra).map(String::as_str)),
                "roles.etcd",
                format!(
                    "etcd_topology is stacked, so etcd runs exactly on the masters: {}",
                    parts.join("; ")
                ),
                "give the etcd role to exactly the masters, or set etcd_topology back to external (t on the Roles screen)".to_string(),
            );
        }
    }

    // The load balancer.
    let lb = &cluster.lb;
    if masters.len() > 1 && !lb.is_configured() {
        out.push(
            "lb-required",
            Error,
            masters.clone(),
            "lb.address",
            format!(
                "{} masters ({}) and no load balancer: kubelets and kubectl need one address in front of the apiservers",
                masters.len(),
                list(&masters)
            ),
            "set the load balancer's address (loadbalancer_apiserver.address in common.yaml), or keep a single master".to_string(),
        );
    }
    if cluster.settings.console_lb && !lb.is_configured() {
        out.push(
            "console-lb-without-lb",
            Error,
            Vec::new(),
            "lb.console",
            "console_lb is set in kswizard.yaml but there is no load balancer: the console listener (HTTP 30880) has no LB to be on".to_string(),
            "configure the load balancer, or remove console_lb from conf/kswizard.yaml".to_string(),
        );
    }
    if lb.mode != LbMode::None {
        if let Some(addr) = &lb.address {
            let owners =
                names(&mut cluster.hosts.iter().filter(|h| {
                    h.address.as_deref() == Some(addr) || h.ip.as_deref() == Some(addr)
                }));
            if !owners.is_empty() {
                out.push(
                    "vip-is-node-ip",
                    Error,
                    owners.clone(),
                    "lb.address",
                    format!(
                        "load balancer address {addr} is the address of {}: the LB needs an address of its own",
                        list(&owners)
                    ),
                    "use the LB's own address, or a free address in the masters' subnet for a VIP".to_string(),
                );
            }
        }
        if let Some(addr) = lb.address.as_deref().filter(|a| !is_address_or_name(a)) {
            out.push(
                "lb-address-invalid",
                Error,
                Vec::new(),
                "lb.address",
                format!(
                    "load balancer address {} is neither an IP address nor a DNS name",
                    shown(addr)
                ),
                "set the LB's address (loadbalancer_apiserver.address in common.yaml), e.g. 192.168.0.253".to_string(),
            );
        }
        if !is_dns_name(&lb.domain) {
            out.push(
                "lb-domain-invalid",
                Error,
                Vec::new(),
                "lb.domain",
                format!(
                    "load balancer domain {} is not a DNS name: expected letters, digits and '-' in dot-separated labels",
                    shown(&lb.domain)
                ),
                "set apiserver_loadbalancer_domain_name in common.yaml to a name such as lb.kubesphere.local".to_string(),
            );
        }
        if !(1..=65535).contains(&lb.port) {
            out.push(
                "port-invalid",
                Error,
                Vec::new(),
                "lb.port",
                format!(
                    "load balancer port {} is not a TCP port: expected 1..65535",
                    lb.port
                ),
                format!("use {APISERVER_PORT} unless the load balancer listens on another port"),
            );
        }
        if lb.mode == LbMode::BuiltIn && lb.port == i64::from(APISERVER_PORT) {
            out.push(
                "lb-port-conflict",
                Error,
                masters.clone(),
                "lb.port",
                format!(
                    "the built-in load balancer runs haproxy on the masters, where port {APISERVER_PORT} is the apiserver's own"
                ),
                "give the load balancer another port, e.g. 8443".to_string(),
            );
        }
        if lb.mode == LbMode::BuiltIn
            && let Some(vip) = lb
                .address
                .as_deref()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
        {
            // One pass over the masters: a single `contains` keeps this linear.
            let subnets: Vec<[u8; 3]> = cluster
                .masters()
                .filter_map(|h| h.node_ip().parse::<Ipv4Addr>().ok())
                .map(|ip| {
                    let o = ip.octets();
                    [o[0], o[1], o[2]]
                })
                .collect();
            let o = vip.octets();
            if !subnets.is_empty() && !subnets.contains(&[o[0], o[1], o[2]]) {
                let s = subnets[0];
                out.push(
                    "vip-subnet",
                    Warning,
                    masters.clone(),
                    "lb.address",
                    format!(
                        "VIP {vip} is outside the masters' subnet {}.{}.{}.0/24: keepalived can only announce it on the masters' own network",
                        s[0], s[1], s[2]
                    ),
                    format!("choose a free address in {}.{}.{}.0/24", s[0], s[1], s[2]),
                );
            }
        }
    }

    let with_pass = names(
        &mut cluster
            .hosts
            .iter()
            .filter(|h| matches!(h.auth, Auth::Password(_)) || h.become_pass.is_some()),
    );
    if !with_pass.is_empty() {
        out.push(
            "plaintext-password",
            Warning,
            with_pass.clone(),
            "host.auth",
            format!("hosts.ini holds passwords in plain text for {}", list(&with_pass)),
            "run `kswizard ssh-copy-id`: it installs an SSH key with the password once and removes ansible_ssh_pass".to_string(),
        );
    }

    let mut findings = out.findings;
    findings.sort_by_key(|f| f.severity);
    findings
}

/// A value as a message shows it: quoted, with control characters escaped (a newline in a
/// domain must show as `\n`, not break the line).
fn shown(v: &str) -> String {
    format!("{v:?}")
}

/// A DNS name (RFC 1123, any case): dot-separated labels of letters, digits and '-', not starting
/// or ending with '-', and a last label that is not all digits (that would be an IPv4 typo).
pub fn is_dns_name(v: &str) -> bool {
    let v = v.strip_suffix('.').unwrap_or(v);
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !v
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// An IPv4 or IPv6 address, or a DNS name: what ssh and /etc/hosts can be given.
pub fn is_address_or_name(v: &str) -> bool {
    v.parse::<IpAddr>().is_ok() || is_dns_name(v)
}

/// Lowercase RFC 1123 subdomain, as Kubernetes requires of node names.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn suggest_name(name: &str) -> String {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '-' || c == '.').to_string();
    if s.is_empty() { "node1".to_string() } else { s }
}

#[cfg(test)]
mod tests;
