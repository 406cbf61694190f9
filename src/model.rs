//! The cluster as kswizard understands it: hosts, their roles and the apiserver load balancer.
//!
//! Pure data. Readers in `conf/` build it from the installer's files, `validate` checks it, writers in
//! `conf/` turn it back into files, and the engine derives an install from it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

pub const DEFAULT_LB_PORT: u16 = 6443;
pub const DEFAULT_LB_DOMAIN: &str = "lb.kubesphere.local";
/// The port every apiserver listens on; the built-in LB must not take it on the masters.
pub const APISERVER_PORT: u16 = 6443;
/// `KubeSphere`'s default pod network (`kube_pods_subnet` in its common.yaml).
pub const DEFAULT_POD_CIDR: &str = "10.233.64.0/18";
/// The `KubeSphere` console's `NodePort`, on every node.
pub const CONSOLE_PORT: u16 = 30880;

/// A password. Its `Debug` and `Display` never show the text, so it cannot leak through logs or
/// error reports by accident; code that needs the text calls `expose`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How kswizard reaches a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `ansible_connection=local`: the taskbox itself; commands run without SSH.
    Local,
    /// SSH with a key: the named file, or the agent and the user's default keys.
    Key { file: Option<String> },
    /// SSH with a password (`ansible_ssh_pass`).
    Password(Secret),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub master: bool,
    pub worker: bool,
    pub etcd: bool,
}

impl Roles {
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.master {
            v.push("master");
        }
        if self.worker {
            v.push("worker");
        }
        if self.etcd {
            v.push("etcd");
        }
        v
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// `ansible_host`: the address kswizard connects to.
    pub address: Option<String>,
    /// `ip`: the address Kubernetes binds to.
    pub ip: Option<String>,
    pub port: Option<u16>,
    /// `ansible_user`; `None` is root.
    pub user: Option<String>,
    pub auth: Auth,
    /// `ansible_become_pass`: the sudo password of a non-root user.
    pub become_pass: Option<Secret>,
    pub roles: Roles,
    /// Keys kswizard does not interpret, kept in their order and written back as they were.
    pub extra: Vec<(String, String)>,
    /// A trailing `# ...` comment on the host's line, kept.
    pub comment: Option<String>,
}

impl Host {
    pub fn new(name: impl Into<String>, ip: impl Into<String>) -> Self {
        let ip = ip.into();
        Host {
            name: name.into(),
            address: Some(ip.clone()),
            ip: Some(ip),
            port: None,
            user: None,
            auth: Auth::Key { file: None },
            become_pass: None,
            roles: Roles::default(),
            extra: Vec::new(),
            comment: None,
        }
    }

    /// The address to connect to: `ansible_host`, else `ip`, else the name (as Ansible does).
    pub fn connect_address(&self) -> &str {
        self.address
            .as_deref()
            .or(self.ip.as_deref())
            .unwrap_or(&self.name)
    }

    /// The address Kubernetes uses for the node: `ip`, else the connect address.
    pub fn node_ip(&self) -> &str {
        self.ip.as_deref().unwrap_or_else(|| self.connect_address())
    }

    pub fn is_local(&self) -> bool {
        self.auth == Auth::Local
    }

    pub fn is_root(&self) -> bool {
        matches!(self.user.as_deref(), None | Some("root"))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LbMode {
    /// A load balancer kswizard does not manage (cloud LB, F5, haproxy on hosts of your own).
    #[default]
    External,
    /// haproxy + keepalived on the masters, set up by the install.
    BuiltIn,
    /// No load balancer: only valid with a single master.
    None,
}

impl LbMode {
    pub fn label(self) -> &'static str {
        match self {
            LbMode::External => "external",
            LbMode::BuiltIn => "built-in haproxy + keepalived",
            LbMode::None => "none",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancer {
    pub mode: LbMode,
    /// The VIP or the LB's address (`loadbalancer_apiserver.address`).
    pub address: Option<String>,
    /// `loadbalancer_apiserver.port`; kept as read so that bad values can be reported.
    pub port: i64,
    pub domain: String,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer {
            mode: LbMode::External,
            address: None,
            port: i64::from(DEFAULT_LB_PORT),
            domain: DEFAULT_LB_DOMAIN.to_string(),
        }
    }
}

impl LoadBalancer {
    /// The LB as the installer's common.yaml sees it: an address and port only when the mode has one.
    pub fn is_configured(&self) -> bool {
        self.mode != LbMode::None && self.address.is_some()
    }
}

/// The Kubernetes release kswizard's plan installs (and the lab's stand-ins keep the contract of).
pub const KUBERNETES_VERSION: &str = "v1.28.2";

/// Where etcd runs (kubeadm's HA topologies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EtcdTopology {
    /// etcd on the hosts of `[etcd]`, set up by kswizard's own steps, reached by the apiservers over TLS.
    #[default]
    External,
    /// kubeadm's default: one etcd member on each master, made by `kubeadm init` / `join --control-plane`.
    Stacked,
}

impl EtcdTopology {
    /// The name kswizard.yaml and plans (`etcd: [stacked]`) use.
    pub fn name(self) -> &'static str {
        match self {
            EtcdTopology::External => "external",
            EtcdTopology::Stacked => "stacked",
        }
    }

    pub fn is_external(&self) -> bool {
        *self == EtcdTopology::External
    }

    /// The trade-off between the two, in one sentence (kubeadm's HA topology page).
    pub fn trade_off(self) -> &'static str {
        match self {
            EtcdTopology::External => {
                "external: etcd on hosts of its own, so losing a master loses no etcd member, at the cost of more hosts to run"
            }
            EtcdTopology::Stacked => {
                "stacked: an etcd member on each master, simpler and fewer hosts, but losing a master loses its etcd member too"
            }
        }
    }
}

/// kswizard's own settings, which the installer's files have no place for (`conf/kswizard.yaml`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    // Written without the keys left at their defaults: the file says what the operator chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb_mode: Option<LbMode>,
    /// keepalived: the interface that carries the VIP, and the VRRP router id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalived_interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalived_router_id: Option<u8>,
    /// Put the `KubeSphere` console (30880 on all nodes) behind the LB too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub console_lb: bool,
    /// etcd on hosts of its own (the default) or stacked on the masters.
    #[serde(skip_serializing_if = "EtcdTopology::is_external")]
    pub etcd_topology: EtcdTopology,
    /// A plan file other than the bundled one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The artifact bundle (`kswizard bundle fetch`) the plan delivers to the nodes, relative to
    /// the conf directory; without one, the steps install from the package repositories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Validation codes the operator accepted explicitly (only `etcd-on-worker` can be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<String>,
}

/// A name in a group that no host definition matches: kept so validation can point at the typo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndefinedRef {
    pub group: String,
    pub name: String,
    pub line: usize,
}

/// What a hosts.ini held that the model does not describe, kept so that writing loses nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IniLayout {
    /// Comment and blank lines before the first section.
    pub preamble: Vec<String>,
    /// Comment lines inside the sections kswizard writes, by canonical section name.
    pub section_comments: Vec<(String, Vec<String>)>,
    /// Children of `[k8s-cluster:children]` besides kube-node and kube-master (e.g. calico-rr).
    pub cluster_children: Vec<String>,
    /// Sections kswizard does not interpret (`[all:vars]`, `[calico-rr]`, `[bastion]`), verbatim.
    pub kept_sections: Vec<Vec<String>>,
    pub crlf: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    /// In file order. Duplicate names are kept so validation can report them.
    pub hosts: Vec<Host>,
    pub lb: LoadBalancer,
    pub settings: Settings,
    /// common.yaml's `kube_pods_subnet` when it sets one (the CNI's pool and kubeadm's podSubnet).
    pub pods_subnet: Option<String>,
    pub undefined: Vec<UndefinedRef>,
    pub ini: IniLayout,
    /// Hosts a day-2 operation takes out of the cluster (`kswizard remove`, `reset`): still in
    /// the conf while it runs, but no longer members. Never read from or written to a file.
    pub leaving: BTreeSet<String>,
}

impl Cluster {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn is_leaving(&self, host: &Host) -> bool {
        self.leaving.contains(&host.name)
    }

    /// The hosts that are (or stay) members: every host but the leaving ones, in file order.
    pub fn staying(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| !self.is_leaving(h))
    }

    /// The first staying master: where the cluster-wide steps run.
    pub fn first_master(&self) -> Option<&Host> {
        self.staying().find(|h| h.roles.master)
    }

    /// The first staying etcd member: the first staying etcd host, or with stacked etcd the first
    /// staying master.
    pub fn first_etcd(&self) -> Option<&Host> {
        if self.settings.etcd_topology.is_external() {
            self.staying().find(|h| h.roles.etcd)
        } else {
            self.first_master()
        }
    }

    /// The staying hosts with a role.
    pub fn with_role(&self, pick: impl Fn(&Roles) -> bool) -> impl Iterator<Item = &Host> {
        self.staying().filter(move |h| pick(&h.roles))
    }

    pub fn masters(&self) -> impl Iterator<Item = &Host> {
        self.with_role(|r| r.master)
    }

    pub fn workers(&self) -> impl Iterator<Item = &Host> {
        self.with_role(|r| r.worker)
    }

    /// The `KubeSphere` console on the first node (every node serves it on `CONSOLE_PORT`).
    pub fn console_url(&self) -> Option<String> {
        let first = self.hosts.first()?;
        Some(format!("http://{}:{CONSOLE_PORT}", first.node_ip()))
    }

    /// The console through the LB's console listener: with `console_lb` and an LB configured.
    pub fn console_lb_url(&self) -> Option<String> {
        let address = self.lb.address.as_ref()?;
        (self.settings.console_lb && self.lb.is_configured())
            .then(|| format!("http://{address}:{CONSOLE_PORT}"))
    }

    pub fn etcd(&self) -> impl Iterator<Item = &Host> {
        self.with_role(|r| r.etcd)
    }

    /// The preset of the Roles screen and of the seeds: the first three hosts are masters and etcd
    /// (fewer when there are fewer hosts, keeping etcd odd), the rest are workers.
    pub fn apply_preset(&mut self) {
        let n = self.hosts.len();
        let control = match n {
            0 => 0,
            1 | 2 => 1,
            _ => 3,
        };
        for (i, h) in self.hosts.iter_mut().enumerate() {
            let control_plane = i < control;
            h.roles = Roles {
                master: control_plane,
                etcd: control_plane,
                worker: !control_plane || n == 1,
            };
        }
    }
}

#[cfg(test)]
impl Cluster {
    /// For tests: `n` hosts n1.. at 10.0.0.1.. with the preset roles (the first three masters
    /// and etcd, the rest workers).
    pub fn numbered(n: usize) -> Cluster {
        let mut c = Cluster::default();
        for i in 1..=n {
            c.hosts
                .push(Host::new(format!("n{i}"), format!("10.0.0.{i}")));
        }
        c.apply_preset();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_on_the_first_node_and_on_the_lb_only_with_console_lb() {
        let mut c = Cluster::default();
        assert_eq!(c.console_url(), None);
        c.hosts.push(Host::new("m1", "10.0.0.1"));
        c.hosts.push(Host::new("w1", "10.0.0.2"));
        assert_eq!(c.console_url().as_deref(), Some("http://10.0.0.1:30880"));
        c.lb.mode = LbMode::External;
        c.lb.address = Some("10.0.0.250".into());
        assert_eq!(c.console_lb_url(), None);
        c.settings.console_lb = true;
        assert_eq!(
            c.console_lb_url().as_deref(),
            Some("http://10.0.0.250:30880")
        );
        c.lb.mode = LbMode::None;
        assert_eq!(c.console_lb_url(), None, "no LB, no console listener");
    }
}
