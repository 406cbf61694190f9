use super::*;
use crate::model::Roles;

#[test]
fn backup_names_are_utc_times_that_sort() {
    assert_eq!(backup_name(0), "etcd-19700101T000000Z");
    // 2026-12-02 04:30:05 UTC; a leap day; the last second of a year.
    assert_eq!(backup_name(1_796_185_805), "etcd-20261202T043005Z");
    assert_eq!(backup_name(1_709_164_800), "etcd-20240229T000000Z");
    assert_eq!(backup_name(1_735_689_599), "etcd-20241231T235959Z");
    assert_eq!(utc_text(1_796_185_805), "2026-12-02 04:30:05 UTC");
    assert!(is_backup_name(&backup_name(1_796_185_805)));
    for other in [
        "etcd-2026",
        "etcd-20261202T043005",
        "etcd-20261202X043005Z",
        "etcd-2026120aT043005Z",
        "notes",
        "etcd-20261202T043005Z.old",
    ] {
        assert!(!is_backup_name(other), "{other}");
    }
}

#[test]
fn keep_removes_the_oldest_backups_only() {
    let names: Vec<String> = [
        "etcd-20261202T043005Z",
        "etcd-20261130T120000Z",
        "my-notes",
        "etcd-20261201T000000Z",
        "etcd-20261202T050000Z",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        to_prune(&names, 2),
        ["etcd-20261130T120000Z", "etcd-20261201T000000Z"]
    );
    assert_eq!(to_prune(&names, 4), Vec::<String>::new());
    assert_eq!(to_prune(&names, 0).len(), 4);
}

#[test]
fn ages_in_two_units() {
    assert_eq!(age_text(45), "45 s");
    assert_eq!(age_text(723), "12 min 3 s");
    assert_eq!(age_text(3 * 3600 + 12 * 60 + 9), "3 h 12 min");
    assert_eq!(age_text(2 * 86_400 + 4 * 3600 + 5), "2 d 4 h");
}

#[test]
fn sum_lines_read_back() {
    let sha = "ab".repeat(32);
    assert_eq!(parse_sum_line(&sum_line(&sha)), Some(sha.clone()));
    assert_eq!(parse_sum_line(&format!("{sha}  other.db\n")), None);
    assert_eq!(parse_sum_line("xyz  snapshot.db"), None);
}

const STATUS: &str = "MEMBER 10.0.0.1 healthy\nMEMBER 10.0.0.2 unhealthy\nMEMBER 10.0.0.3 healthy\nREVISION 1300\nKEYS 60\n";

#[test]
fn the_status_script_reads_in_full() {
    let live = Live::parse(STATUS);
    assert_eq!(live.members.len(), 3);
    assert_eq!(live.healthy_count(), 2);
    assert!(!live.healthy());
    assert_eq!((live.revision, live.keys), (Some(1300), Some(60)));
    let all = Live::parse("MEMBER 10.0.0.1 healthy\nREVISION \nnoise\n");
    assert!(all.healthy());
    assert_eq!(all.revision, None);
    assert!(
        !Live::parse("").healthy(),
        "no member is not a healthy cluster"
    );
}

fn meta() -> Meta {
    Meta {
        taken: 1_796_185_805,
        node: "node1".into(),
        member: "10.0.0.1".into(),
        revision: Some(1234),
        keys: Some(56),
        size: 2_121_760,
        sha256: "ab".repeat(32),
        install_id: None,
    }
}

#[test]
fn what_a_restore_loses_in_words() {
    let now = 1_796_185_805 + 3 * 3600 + 12 * 60;
    let live = Live::parse(STATUS);
    assert_eq!(
        loss_lines(Some(&meta()), now, Some(&live)),
        [
            "The snapshot: taken 2026-12-02 04:30:05 UTC (3 h 12 min ago) from member 10.0.0.1 by node1, revision 1234, 56 keys, 2121760 bytes.",
            "The cluster now: 2 of 3 members healthy, revision 1300, 60 keys.",
            "Restoring loses the 66 revisions (writes) made since the snapshot: it has 4 keys more now than then.",
        ]
    );
    let same = Live {
        revision: Some(1234),
        ..live.clone()
    };
    assert_eq!(
        loss_lines(Some(&meta()), now, Some(&same))[2],
        "Restoring loses nothing: the cluster is at the snapshot's revision."
    );
    let earlier = Live {
        revision: Some(7),
        ..live.clone()
    };
    assert!(loss_lines(Some(&meta()), now, Some(&earlier))[2].contains("EARLIER revision"));
    let one_more = Live {
        revision: Some(1235),
        keys: Some(57),
        ..live.clone()
    };
    assert_eq!(
        loss_lines(Some(&meta()), now, Some(&one_more))[2],
        "Restoring loses the 1 revision (write) made since the snapshot: it has 1 key more now than then."
    );
    let fewer = Live {
        keys: Some(50),
        ..live.clone()
    };
    assert!(
        loss_lines(Some(&meta()), now, Some(&fewer))[2]
            .ends_with(": 6 keys deleted since come back.")
    );
}

#[test]
fn a_restore_of_an_unreachable_cluster_or_an_unknown_file_says_what_it_cannot_know() {
    let down = Live::parse("MEMBER 10.0.0.1 unhealthy\n");
    for live in [None, Some(&down)] {
        let lines = loss_lines(Some(&meta()), 1_796_185_805 + 30, live);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("(30 s ago)"), "{lines:?}");
        assert!(lines[1].starts_with("The cluster now: no etcd member answered"));
    }
    let lines = loss_lines(None, 0, Some(&Live::parse(STATUS)));
    assert!(lines[0].contains("not a kswizard backup"));
    assert!(lines[2].contains("cannot be compared"));
}

#[test]
fn a_healthy_cluster_is_restored_only_with_force() {
    let healthy = Live::parse("MEMBER 10.0.0.1 healthy\nMEMBER 10.0.0.2 healthy\n");
    let refused = refusal(&healthy, false).unwrap();
    assert!(
        refused.starts_with("etcd is healthy (2 of 2 members)"),
        "{refused}"
    );
    assert!(refused.contains("--force"));
    assert_eq!(refusal(&healthy, true), None);
    // 2 of 3: quorum, it serves.
    let quorum = refusal(&Live::parse(STATUS), false).unwrap();
    assert!(
        quorum.starts_with("etcd has quorum (2 of 3 members healthy)"),
        "{quorum}"
    );
    assert_eq!(refusal(&Live::parse(STATUS), true), None);
    // 1 of 3, 1 of 2, none: no quorum (or no answer), a restore is what it needs.
    for lost in [
        "MEMBER a healthy\nMEMBER b unhealthy\nMEMBER c unhealthy\n",
        "MEMBER a healthy\nMEMBER b unhealthy\n",
        "",
    ] {
        assert_eq!(refusal(&Live::parse(lost), false), None, "{lost}");
    }
}

#[test]
fn a_restore_waits_until_the_conf_lists_the_installed_etcd_members() {
    let roles = |master, etcd| Roles {
        master,
        worker: !master,
        etcd,
    };
    let worker = Change::Added {
        name: "w9".into(),
        roles: roles(false, false),
    };
    let lb = Change::LbChanged {
        from: "a".into(),
        to: "b".into(),
    };
    assert_eq!(membership_refusal(&[worker.clone(), lb]), None);
    let etcd = Change::Added {
        name: "e4".into(),
        roles: roles(false, true),
    };
    let moved = Change::RolesChanged {
        name: "m2".into(),
        from: roles(true, true),
        to: roles(true, false),
    };
    let why = membership_refusal(&[worker, etcd, moved]).unwrap();
    assert!(
        why.starts_with("the conf's etcd members are not the installed cluster's (+ e4 "),
        "{why}"
    );
    assert!(why.contains("; ~ m2: roles "), "{why}");
    assert!(!why.contains("w9"), "{why}");
}
