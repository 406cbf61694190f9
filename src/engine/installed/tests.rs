use super::*;
use crate::model::{Host, LoadBalancer};

fn host(name: &str, ip: &str, master: bool, worker: bool, etcd: bool) -> Host {
    let mut h = Host::new(name, ip);
    h.roles = Roles {
        master,
        worker,
        etcd,
    };
    h
}

fn cluster() -> Cluster {
    Cluster {
        hosts: vec![
            host("master1", "10.0.0.1", true, false, true),
            host("master2", "10.0.0.2", true, false, true),
            host("node1", "10.0.0.3", false, true, true),
        ],
        lb: LoadBalancer {
            mode: LbMode::BuiltIn,
            address: Some("10.0.0.100".into()),
            ..LoadBalancer::default()
        },
        ..Cluster::default()
    }
}

#[test]
fn the_same_cluster_has_no_difference() {
    let c = cluster();
    assert_eq!(diff(&Installed::of(&c, "i1"), &c), vec![]);
}

#[test]
fn added_removed_and_changed_hosts_are_named_with_what_they_will_do() {
    let installed = Installed::of(&cluster(), "i1");
    let mut c = cluster();
    c.hosts.retain(|h| h.name != "node1");
    c.hosts.push(host("node2", "10.0.0.4", false, true, false));
    c.hosts[1].roles.worker = true;
    let d = diff(&installed, &c);
    assert_eq!(
        d.iter().map(Change::what).collect::<Vec<_>>(),
        vec![
            "~ master2: roles master+etcd -> master+worker+etcd",
            "+ node2 (worker) added",
            "- node1 (worker+etcd) no longer in the conf",
        ]
    );
    assert_eq!(
        d[1].what_it_does(),
        "`install` joins as a worker; on the other nodes only the re-wiring steps run"
    );
    assert!(d[2].what_it_does().contains("`kswizard remove node1`"));
    assert!(d[1].is_addition() && !d[0].is_addition());
}

#[test]
fn lb_and_topology_changes_are_differences() {
    let installed = Installed::of(&cluster(), "i1");
    let mut c = cluster();
    c.lb.port = 8443;
    c.settings.etcd_topology = EtcdTopology::Stacked;
    let d = diff(&installed, &c);
    assert_eq!(
        d.iter().map(Change::what).collect::<Vec<_>>(),
        vec![
            "~ load balancer: built-in 10.0.0.100:6443 (lb.kubesphere.local) -> built-in 10.0.0.100:8443 (lb.kubesphere.local)",
            "~ etcd topology: external -> stacked",
        ]
    );
}

#[test]
fn a_leaving_host_is_not_part_of_the_record_and_counts_as_removed() {
    let mut c = cluster();
    let before = Installed::of(&c, "i1");
    c.leaving.insert("master2".into());
    let after = Installed::of(&c, "i1");
    assert_eq!(after.hosts.len(), 2);
    assert_eq!(after.hosts, before.without(&["master2".into()]).hosts);
    assert!(matches!(&diff(&before, &c)[..], [Change::Removed { name, .. }] if name == "master2"));
}

#[test]
fn the_record_is_written_0600_read_back_and_removed_when_empty() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Installed::load(dir.path()).unwrap(), None);
    let rec = Installed::of(&cluster(), "i1");
    rec.save(dir.path()).unwrap();
    let mode = std::fs::metadata(path(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(Installed::load(dir.path()).unwrap(), Some(rec.clone()));
    let names: Vec<String> = rec.hosts.iter().map(|h| h.name.clone()).collect();
    rec.without(&names).save(dir.path()).unwrap();
    assert_eq!(Installed::load(dir.path()).unwrap(), None);
}

#[test]
fn a_damaged_record_names_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path()), "{\"install_id\":").unwrap();
    let e = Installed::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("installed.json"), "{e}");
    assert!(
        e.to_string().contains("rewritten by the next install"),
        "{e}"
    );
}
