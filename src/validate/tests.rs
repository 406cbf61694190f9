//! Golden tests: the exact message and hint of every validation code, since the TUI, the CLI and
//! the documentation all show them.

use super::*;
use crate::model::{Host, LoadBalancer, Roles, Secret};

/// A host with `ip` as both addresses and roles from letters: m(aster), w(orker), e(tcd).
fn host(name: &str, ip: &str, roles: &str) -> Host {
    let mut h = Host::new(name, ip);
    h.roles = Roles {
        master: roles.contains('m'),
        worker: roles.contains('w'),
        etcd: roles.contains('e'),
    };
    h
}

fn cluster(hosts: Vec<Host>) -> Cluster {
    Cluster {
        hosts,
        lb: LoadBalancer {
            mode: LbMode::None,
            ..LoadBalancer::default()
        },
        ..Cluster::default()
    }
}

fn with_lb(mut c: Cluster, mode: LbMode, address: &str, port: i64) -> Cluster {
    c.lb = LoadBalancer {
        mode,
        address: Some(address.into()),
        port,
        ..LoadBalancer::default()
    };
    c
}

/// The seeds' HA example: three masters with etcd, three workers, an external LB.
fn ha6() -> Cluster {
    let mut hosts: Vec<Host> = (1..=3)
        .map(|i| host(&format!("master{i}"), &format!("192.168.0.{i}"), "me"))
        .collect();
    hosts.extend((4..=6).map(|i| host(&format!("node{}", i - 3), &format!("192.168.0.{i}"), "w")));
    with_lb(cluster(hosts), LbMode::External, "192.168.0.253", 6443)
}

/// A single master/etcd with one worker: valid without an LB.
fn small() -> Cluster {
    cluster(vec![
        host("master", "10.0.0.1", "me"),
        host("node1", "10.0.0.2", "w"),
    ])
}

/// The one finding `c` gives, which must have `code`.
fn only(c: &Cluster, code: &str) -> Finding {
    let found = validate(c);
    assert_eq!(codes(&found), [code], "{found:#?}");
    found.into_iter().next().unwrap()
}

fn codes(found: &[Finding]) -> Vec<&'static str> {
    found.iter().map(|f| f.code).collect()
}

/// `c` gives exactly one finding, `code`, with this text.
fn golden(c: &Cluster, code: &str, severity: Severity, hosts: &[&str], message: &str, hint: &str) {
    assert_golden(&only(c, code), severity, hosts, message, hint);
}

/// An external LB at `address:port` in front of the HA example: the LB rules only concern
/// built-in ones, so this is fine.
fn assert_external_lb_is_fine(address: &str, port: i64) {
    assert_eq!(
        validate(&with_lb(ha6(), LbMode::External, address, port)),
        []
    );
}

fn assert_golden(f: &Finding, severity: Severity, hosts: &[&str], message: &str, hint: &str) {
    assert_eq!(f.severity, severity, "{}", f.code);
    assert_eq!(f.hosts, hosts, "{}", f.code);
    assert_eq!(f.message, message, "{}", f.code);
    assert_eq!(f.hint, hint, "{}", f.code);
}

#[test]
fn good_layouts_give_no_findings() {
    assert_eq!(validate(&ha6()), []);
    assert_eq!(validate(&small()), []);
    let mut built_in = with_lb(ha6(), LbMode::BuiltIn, "192.168.0.250", 8443);
    built_in.hosts[0].auth = Auth::Local;
    assert_eq!(validate(&built_in), []);
}

#[test]
fn etcd_count_even() {
    let mut c = ha6();
    c.hosts[2].roles.etcd = false;
    golden(
        &c,
        "etcd-count-even",
        Severity::Error,
        &["master1", "master2"],
        "2 etcd hosts (master1, master2): etcd needs an odd count (3 tolerates 1 failure, 5 tolerates 2); 2 tolerates no more failures than 1",
        "remove one etcd host or add one",
    );
}

#[test]
fn etcd_on_worker() {
    let c = cluster(vec![
        host("master", "10.0.0.1", "me"),
        host("node1", "10.0.0.2", "we"),
        host("node2", "10.0.0.3", "we"),
    ]);
    golden(
        &c,
        "etcd-on-worker",
        Severity::Error,
        &["node1", "node2"],
        "etcd on worker node1, node2: etcd's memory and disk use starves workloads, and a busy worker slows every write of the cluster",
        "move etcd to the masters or to hosts of its own, or accept it with 'accept: [etcd-on-worker]' in kswizard.yaml",
    );
}

#[test]
fn etcd_on_worker_accepted_is_a_warning() {
    let mut c = cluster(vec![host("master", "10.0.0.1", "mwe")]);
    c.hosts.push(host("node1", "10.0.0.2", "we"));
    c.hosts.push(host("node2", "10.0.0.3", "we"));
    c.settings.accept = vec!["etcd-on-worker".into()];
    golden(
        &c,
        "etcd-on-worker",
        Severity::Warning,
        &["node1", "node2"],
        "etcd on worker node1, node2: etcd's memory and disk use starves workloads, and a busy worker slows every write of the cluster (accepted in kswizard.yaml)",
        "move etcd to the masters or to hosts of its own, or remove etcd-on-worker from 'accept:' in kswizard.yaml to make this an error again",
    );
}

#[test]
fn stacked_etcd_on_exactly_the_masters_is_fine() {
    let mut c = ha6();
    c.settings.etcd_topology = crate::model::EtcdTopology::Stacked;
    assert_eq!(validate(&c), []);
}

#[test]
fn stacked_etcd_on_hosts_of_its_own() {
    let mut hosts: Vec<Host> = (1..=3)
        .map(|i| host(&format!("master{i}"), &format!("10.0.0.{i}"), "m"))
        .collect();
    hosts.extend((1..=3).map(|i| host(&format!("etcd{i}"), &format!("10.0.0.1{i}"), "e")));
    let mut c = with_lb(cluster(hosts), LbMode::External, "10.0.0.253", 6443);
    assert_eq!(
        validate(&c),
        [],
        "external etcd on hosts of its own is fine"
    );
    c.settings.etcd_topology = crate::model::EtcdTopology::Stacked;
    golden(
        &c,
        "etcd-stacked-not-masters",
        Severity::Error,
        &["master1", "master2", "master3", "etcd1", "etcd2", "etcd3"],
        "etcd_topology is stacked, so etcd runs exactly on the masters: master master1, master2, master3 not in [etcd]; etcd1, etcd2, etcd3 in [etcd] but not a master",
        "give the etcd role to exactly the masters, or set etcd_topology back to external (t on the Roles screen)",
    );
}

#[test]
fn stacked_etcd_missing_on_one_master() {
    let mut c = ha6();
    c.settings.etcd_topology = crate::model::EtcdTopology::Stacked;
    c.hosts[2].roles.etcd = false;
    let found = validate(&c);
    assert_eq!(
        codes(&found),
        ["etcd-count-even", "etcd-stacked-not-masters"]
    );
    assert_eq!(found[1].hosts, ["master3"]);
    assert_eq!(
        found[1].message,
        "etcd_topology is stacked, so etcd runs exactly on the masters: master master3 not in [etcd]"
    );
}

#[test]
fn only_etcd_on_worker_can_be_accepted() {
    let mut c = cluster(vec![host("node1", "10.0.0.2", "w")]);
    c.settings.accept = vec!["no-master".into(), "no-etcd".into()];
    let found = validate(&c);
    assert!(
        found.iter().all(|f| f.severity == Severity::Error),
        "{found:#?}"
    );
}

#[test]
fn no_master_and_no_etcd() {
    let found = validate(&cluster(vec![host("node1", "10.0.0.2", "w")]));
    assert_eq!(codes(&found), ["no-master", "no-etcd"]);
    assert_golden(
        &found[0],
        Severity::Error,
        &[],
        "no master: a cluster needs at least one host in [kube-master]",
        "give the master role to one host, or to three for high availability",
    );
    assert_golden(
        &found[1],
        Severity::Error,
        &[],
        "no etcd host: a cluster needs at least one host in [etcd]",
        "give the etcd role to the masters (1 or 3 of them)",
    );
}

#[test]
fn lb_required() {
    let mut c = ha6();
    c.lb.mode = LbMode::None;
    let want = "3 masters (master1, master2, master3) and no load balancer: kubelets and kubectl need one address in front of the apiservers";
    let hint = "set the load balancer's address (loadbalancer_apiserver.address in common.yaml), or keep a single master";
    golden(
        &c,
        "lb-required",
        Severity::Error,
        &["master1", "master2", "master3"],
        want,
        hint,
    );
    // An LB mode without an address is no LB either.
    let mut c = ha6();
    c.lb.address = None;
    golden(
        &c,
        "lb-required",
        Severity::Error,
        &["master1", "master2", "master3"],
        want,
        hint,
    );
}

#[test]
fn vip_is_node_ip() {
    let c = with_lb(ha6(), LbMode::External, "192.168.0.2", 6443);
    golden(
        &c,
        "vip-is-node-ip",
        Severity::Error,
        &["master2"],
        "load balancer address 192.168.0.2 is the address of master2: the LB needs an address of its own",
        "use the LB's own address, or a free address in the masters' subnet for a VIP",
    );
}

#[test]
fn port_invalid() {
    for port in [0, 65536, -1] {
        let c = with_lb(ha6(), LbMode::External, "192.168.0.253", port);
        golden(
            &c,
            "port-invalid",
            Severity::Error,
            &[],
            &format!("load balancer port {port} is not a TCP port: expected 1..65535"),
            "use 6443 unless the load balancer listens on another port",
        );
    }
}

#[test]
fn lb_port_conflict() {
    let c = with_lb(ha6(), LbMode::BuiltIn, "192.168.0.253", 6443);
    golden(
        &c,
        "lb-port-conflict",
        Severity::Error,
        &["master1", "master2", "master3"],
        "the built-in load balancer runs haproxy on the masters, where port 6443 is the apiserver's own",
        "give the load balancer another port, e.g. 8443",
    );
    // An external LB is on hosts of its own: 6443 is its usual port.
    assert_external_lb_is_fine("192.168.0.253", 6443);
}

#[test]
fn console_lb_without_lb() {
    let mut c = small();
    c.settings.console_lb = true;
    golden(
        &c,
        "console-lb-without-lb",
        Severity::Error,
        &[],
        "console_lb is set in kswizard.yaml but there is no load balancer: the console listener (HTTP 30880) has no LB to be on",
        "configure the load balancer, or remove console_lb from conf/kswizard.yaml",
    );
    let mut c = with_lb(ha6(), LbMode::External, "192.168.0.253", 6443);
    c.settings.console_lb = true;
    assert_eq!(validate(&c), []);
}

#[test]
fn duplicate_host() {
    let mut c = small();
    c.hosts.push(host("node1", "10.0.0.3", "w"));
    golden(
        &c,
        "duplicate-host",
        Severity::Error,
        &["node1"],
        "host node1 is defined 2 times in [all]",
        "remove the extra lines for node1, or rename one of them",
    );
}

#[test]
fn duplicate_ip() {
    let mut c = small();
    c.hosts.push(host("node2", "10.0.0.2", "w"));
    golden(
        &c,
        "duplicate-ip",
        Severity::Error,
        &["node1", "node2"],
        "address 10.0.0.2 is used by node1, node2",
        "each host needs its own address: correct ansible_host / ip",
    );
    // ansible_host of one equal to ip of another is a clash too.
    let mut c = small();
    let mut h = host("node2", "10.0.0.9", "w");
    h.address = Some("10.0.0.1".into());
    c.hosts.push(h);
    assert_eq!(only(&c, "duplicate-ip").hosts, ["master", "node2"]);
}

#[test]
fn hostname_invalid() {
    let mut c = small();
    c.hosts.push(host("Node_2", "10.0.0.3", "w"));
    golden(
        &c,
        "hostname-invalid",
        Severity::Error,
        &["Node_2"],
        "host name 'Node_2' is not a valid node name: Kubernetes needs lowercase letters, digits, '-' and '.' (RFC 1123), at most 63 characters a label",
        "rename it, e.g. 'node-2'",
    );
}

#[test]
fn node_names() {
    for ok in [
        "a",
        "node1",
        "k8s-master-01",
        "m1.example.com",
        &"a".repeat(63),
    ] {
        assert!(valid_node_name(ok), "{ok}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "A",
        "a_b",
        "a..b",
        ".a",
        &"a".repeat(64),
        "ü",
    ] {
        assert!(!valid_node_name(bad), "{bad}");
    }
}

#[test]
fn host_undefined() {
    let mut c = small();
    c.undefined.push(crate::model::UndefinedRef {
        group: "kube-node".into(),
        name: "nod2".into(),
        line: 12,
    });
    golden(
        &c,
        "host-undefined",
        Severity::Error,
        &["nod2"],
        "[kube-node] names host 'nod2' (hosts.ini line 12), which [all] does not define",
        "correct the name if it is a typo, or add a line for 'nod2' to [all] with its ansible_host and ip",
    );
}

#[test]
fn local_host_count() {
    let mut c = small();
    for h in &mut c.hosts {
        h.auth = Auth::Local;
    }
    golden(
        &c,
        "local-host-count",
        Severity::Error,
        &["master", "node1"],
        "2 hosts use ansible_connection=local (master, node1): only the taskbox kswizard runs on can be local",
        "keep ansible_connection=local on the taskbox only; give the others ansible_host= and SSH access",
    );
}

#[test]
fn vip_subnet() {
    let c = with_lb(ha6(), LbMode::BuiltIn, "10.1.0.250", 8443);
    golden(
        &c,
        "vip-subnet",
        Severity::Warning,
        &["master1", "master2", "master3"],
        "VIP 10.1.0.250 is outside the masters' subnet 192.168.0.0/24: keepalived can only announce it on the masters' own network",
        "choose a free address in 192.168.0.0/24",
    );
    // An external LB may live anywhere.
    assert_external_lb_is_fine("10.1.0.250", 6443);
}

#[test]
fn plaintext_password() {
    let mut c = small();
    c.hosts[0].auth = Auth::Password(Secret::new("pw"));
    c.hosts[1].user = Some("ubuntu".into());
    c.hosts[1].become_pass = Some(Secret::new("pw"));
    golden(
        &c,
        "plaintext-password",
        Severity::Warning,
        &["master", "node1"],
        "hosts.ini holds passwords in plain text for master, node1",
        "run `kswizard ssh-copy-id`: it installs an SSH key with the password once and removes ansible_ssh_pass",
    );
}

#[test]
fn errors_come_before_warnings() {
    let mut c = with_lb(ha6(), LbMode::BuiltIn, "10.1.0.250", 6443);
    c.hosts[0].auth = Auth::Password(Secret::new("pw"));
    assert_eq!(
        codes(&validate(&c)),
        ["lb-port-conflict", "vip-subnet", "plaintext-password"]
    );
    assert!(has_errors(&validate(&c)));
    assert!(!has_errors(&validate(&small())));
}

/// Every lookup is a hash lookup: 100,000 hosts that are all masters and etcd, all with passwords,
/// in pairs sharing an address, validate in a fraction of a second. With one linear `contains` per
/// host (name lists, address owners, ordering of duplicates) this took minutes; the bound is only
/// there to turn that into a failure instead of a hung test.
#[test]
fn validation_is_linear_in_hosts() {
    const N: usize = 100_000;
    let hosts: Vec<Host> = (0..N)
        .map(|i| {
            let pair = i / 2;
            let mut h = host(
                &format!("n{i}"),
                &format!("10.{}.{}.{}", pair >> 16, (pair >> 8) & 255, pair & 255),
                "me",
            );
            h.auth = Auth::Password(Secret::new("pw"));
            h
        })
        .collect();
    let c = cluster(hosts);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(validate(&c)));
    let found = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("validating 100,000 hosts takes under a second unless a lookup is linear");
    let count = |code: &str| found.iter().filter(|f| f.code == code).count();
    assert_eq!(count("duplicate-ip"), N / 2);
    let hosts_of = |code: &str| found.iter().find(|f| f.code == code).map(|f| f.hosts.len());
    assert_eq!(hosts_of("etcd-count-even"), Some(N));
    assert_eq!(hosts_of("lb-required"), Some(N));
    assert_eq!(hosts_of("plaintext-password"), Some(N));
    // Duplicates are reported in host order.
    assert_eq!(found[0].hosts, ["n0", "n1"]);
}

#[test]
fn addresses_and_names_are_checked() {
    let mut c = small();
    c.hosts[1].address = Some("10.0.0.300".into());
    c.hosts[1].ip = Some("abc".into());
    let found = validate(&c);
    assert_eq!(codes(&found), ["ip-invalid", "host-address-invalid"]);
    assert_golden(
        &found[0],
        Severity::Error,
        &["node1"],
        "ip=\"abc\" of host node1 is not an IPv4 or IPv6 address",
        "set ip= to the address the node has on the cluster network, e.g. 192.168.0.2",
    );
    assert_golden(
        &found[1],
        Severity::Error,
        &["node1"],
        "ansible_host=\"10.0.0.300\" of host node1 is neither an IP address nor a DNS name",
        "set ansible_host= to the address or DNS name kswizard connects to",
    );
    // Names and IPv6 are addresses too.
    c.hosts[1].address = Some("node1.example.com".into());
    c.hosts[1].ip = Some("fd00::2".into());
    assert_eq!(validate(&c), []);
}

#[test]
fn lb_address_and_domain_are_checked() {
    for bad in ["192.168.0.999", "lb dot example", "a;b"] {
        golden(
            &with_lb(ha6(), LbMode::External, bad, 6443),
            "lb-address-invalid",
            Severity::Error,
            &[],
            &format!("load balancer address \"{bad}\" is neither an IP address nor a DNS name"),
            "set the LB's address (loadbalancer_apiserver.address in common.yaml), e.g. 192.168.0.253",
        );
    }
    assert_external_lb_is_fine("lb.example.com", 6443);
    for bad in [
        "bad domain_x",
        "lb.kubesphere.local\n10.66.66.66 registry.example.com",
        "-x.local",
        "",
    ] {
        let mut c = ha6();
        c.lb.domain = bad.into();
        golden(
            &c,
            "lb-domain-invalid",
            Severity::Error,
            &[],
            &format!(
                "load balancer domain {bad:?} is not a DNS name: expected letters, digits and '-' in dot-separated labels"
            ),
            "set apiserver_loadbalancer_domain_name in common.yaml to a name such as lb.kubesphere.local",
        );
    }
}

#[test]
fn ssh_port_zero() {
    let mut c = small();
    c.hosts[0].port = Some(0);
    golden(
        &c,
        "ssh-port-invalid",
        Severity::Error,
        &["master"],
        "SSH port 0 of host master is not a TCP port: expected 1..65535",
        "set ansible_port= to the port sshd listens on, or remove it for 22",
    );
}

#[test]
fn host_no_role() {
    let mut c = small();
    c.hosts.push(host("spare", "10.0.0.9", ""));
    golden(
        &c,
        "host-no-role",
        Severity::Warning,
        &["spare"],
        "spare has no role: it would get preflight and packages but never join the cluster",
        "give it a role (master, worker or etcd), or remove it from hosts.ini",
    );
}
