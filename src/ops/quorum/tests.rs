use std::collections::BTreeSet;

use super::*;
use crate::model::{Cluster, EtcdTopology, Host};

/// master1..3 (masters and etcd), worker1..3.
fn six() -> Cluster {
    let mut c = Cluster::default();
    for (i, name) in [
        "master1", "master2", "master3", "worker1", "worker2", "worker3",
    ]
    .iter()
    .enumerate()
    {
        c.hosts.push(Host::new(*name, format!("10.0.0.{}", i + 1)));
    }
    c.apply_preset();
    c
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn all_installed(c: &Cluster) -> BTreeSet<String> {
    c.hosts.iter().map(|h| h.name.clone()).collect()
}

fn member(n: u8, healthy: bool) -> Member {
    Member {
        name: format!("etcd-10-0-0-{n}"),
        ip: format!("10.0.0.{n}"),
        healthy,
    }
}

fn ips(v: &[u8]) -> BTreeSet<String> {
    v.iter().map(|n| format!("10.0.0.{n}")).collect()
}

#[test]
fn hosts_that_leave_are_named_in_the_conf_and_installed() {
    let c = six();
    let all = all_installed(&c);
    assert_eq!(
        leaving(&c, &all, &names(&["worker1", "master2", "worker1"])),
        Ok(["master2", "worker1"]
            .iter()
            .map(ToString::to_string)
            .collect())
    );
    assert_eq!(leaving(&c, &all, &[]), Err(Refusal::Nothing));
    assert_eq!(
        leaving(&c, &all, &names(&["worker9", "master1", "node0"])),
        Err(Refusal::NotInConf(names(&["node0", "worker9"])))
    );
    let mut some = all.clone();
    some.remove("worker3");
    assert_eq!(
        leaving(&c, &some, &names(&["worker3"])),
        Err(Refusal::NotInstalled(names(&["worker3"])))
    );
}

#[test]
fn every_master_or_every_etcd_member_never_leaves() {
    let c = six();
    let all = all_installed(&c);
    assert_eq!(
        leaving(&c, &all, &names(&["master1", "master2", "master3"])),
        Err(Refusal::EveryMaster)
    );
    // External etcd on hosts of their own: all of them leaving is refused, masters staying.
    let mut ext = six();
    for h in &mut ext.hosts {
        h.roles.etcd = h.name.starts_with("worker");
    }
    let all = all_installed(&ext);
    assert_eq!(
        leaving(&ext, &all, &names(&["worker1", "worker2", "worker3"])),
        Err(Refusal::EveryEtcd)
    );
    assert!(leaving(&ext, &all, &names(&["worker1", "worker2"])).is_ok());
    // Stacked: the members are the masters; the [etcd] group does not count.
    ext.settings.etcd_topology = EtcdTopology::Stacked;
    assert!(leaving(&ext, &all, &names(&["worker1", "worker2", "worker3"])).is_ok());
}

#[test]
fn the_quorum_arithmetic_of_each_case() {
    // (members healthy?, leaving member numbers) -> keeps quorum?
    let cases: &[(&[bool], &[u8], bool)] = &[
        // 3 healthy, one leaves: 2 staying, quorum 2.
        (&[true, true, true], &[3], true),
        // One of the staying is down: 1 healthy staying < 2.
        (&[true, false, true], &[3], false),
        // The one down is the one leaving: 2 healthy staying of 2.
        (&[true, true, false], &[3], true),
        // 3 -> 1: quorum of one is one.
        (&[true, true, true], &[2, 3], true),
        // 5 -> 3 with all healthy; and with one staying member down (2 of 3 still a quorum).
        (&[true, true, true, true, true], &[4, 5], true),
        (&[true, false, true, true, true], &[4, 5], true),
        // 5 -> 3 with two staying members down: 1 < 2.
        (&[true, false, false, true, true], &[4, 5], false),
        // No quorum now (2 of 5 healthy): nothing can be committed, even removing a dead one.
        (&[true, true, false, false, false], &[5], false),
        // 4 members, one dead leaving: 3 healthy of 3 staying.
        (&[true, true, true, false], &[4], true),
        // A worker leaves: no member goes, whatever the health.
        (&[true, false, false], &[9], true),
    ];
    for (health, going, keeps) in cases {
        let members: Vec<Member> = health
            .iter()
            .enumerate()
            .map(|(i, h)| member(i as u8 + 1, *h))
            .collect();
        let got = check(&members, &ips(going));
        assert_eq!(
            got.is_ok(),
            *keeps,
            "{health:?} removing {going:?}: {got:?}"
        );
    }
}

#[test]
fn the_refusal_shows_the_numbers() {
    let members = [member(1, true), member(2, false), member(3, true)];
    let Err(Refusal::Quorum(a)) = check(&members, &ips(&[3])) else {
        panic!("expected a quorum refusal");
    };
    assert_eq!(
        (
            a.members,
            a.healthy,
            a.staying,
            a.healthy_staying,
            a.quorum_now,
            a.quorum_after
        ),
        (3, 2, 2, 1, 2, 2)
    );
    assert_eq!(
        Refusal::Quorum(a).to_string(),
        "refused: the removal would lose etcd quorum\n\
         \x20 etcd members now      3 (2 healthy; quorum 2)\n\
         \x20 removing              1 (etcd-10-0-0-3)\n\
         \x20 staying               2 (1 healthy)\n\
         \x20 quorum after          2 of 2: 1 healthy staying < 2 needed: refused (bring a member back first)"
    );
}

#[test]
fn an_even_count_left_is_said() {
    let three = [member(1, true), member(2, true), member(3, true)];
    let note = check(&three, &ips(&[3])).unwrap().even_note().unwrap();
    assert!(
        note.contains(
            "2 etcd members tolerate 0 failed member(s), the same as 1: add an etcd host"
        ),
        "{note}"
    );
    assert_eq!(check(&three, &ips(&[2, 3])).unwrap().even_note(), None);
    assert_eq!(check(&three, &ips(&[9])).unwrap().even_note(), None);
}

#[test]
fn unhealthy_members_are_removed_first() {
    let members = [
        member(1, true),
        member(2, true),
        member(3, true),
        member(4, false),
        member(5, true),
    ];
    let a = check(&members, &ips(&[4, 5])).unwrap();
    assert_eq!(a.removing, names(&["etcd-10-0-0-4", "etcd-10-0-0-5"]));
    let a = check(&members, &ips(&[5, 4])).unwrap();
    assert_eq!(a.removing[0], "etcd-10-0-0-4");
}

#[test]
fn removing_the_last_member_is_refused() {
    assert_eq!(
        check(&[member(1, true)], &ips(&[1])),
        Err(Refusal::EveryEtcd)
    );
}

#[test]
fn the_member_report_parses_or_says_what_is_wrong() {
    let ok = "asked https://10.0.0.1:2379\nMEMBER etcd-10-0-0-1 https://10.0.0.1:2380 healthy\n\
              MEMBER - https://[fd00::2]:2380 unhealthy\nEND\n";
    assert_eq!(
        parse_members(ok).unwrap(),
        vec![
            member(1, true),
            Member {
                name: "-".into(),
                ip: "fd00::2".into(),
                healthy: false
            },
        ]
    );
    assert!(
        parse_members("MEMBER a https://10.0.0.1:2380 healthy\n")
            .unwrap_err()
            .contains("without END")
    );
    assert!(parse_members("END\n").unwrap_err().contains("empty"));
    assert!(
        parse_members("MEMBER a 10.0.0.1 healthy\nEND\n")
            .unwrap_err()
            .contains("peer URL")
    );
    assert!(
        parse_members("MEMBER a https://10.0.0.1:2380 maybe\nEND\n")
            .unwrap_err()
            .contains("expected")
    );
    assert_eq!(
        parse_members("FAIL  no etcd endpoint answered\n").unwrap_err(),
        "no etcd endpoint answered"
    );
}
