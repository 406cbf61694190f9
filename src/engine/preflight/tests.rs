use super::*;

fn report(node: &str, hostname: &str, machine: &str, addrs: &str, time: f64) -> Report {
    let out = format!(
        "FACT time={time}\nFACT time_end={time}\nFACT hostname={hostname}\nFACT machine_id={machine}\nFACT addresses={addrs}\nCHECK root ok root through sudo ;; \nEND\n"
    );
    parse(node, &out, 0, "")
}

fn check<'a>(r: &'a Report, id: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} in {r:?}"))
}

fn windows(nodes: &[&str], sent: f64, received: f64) -> HashMap<String, Window> {
    nodes
        .iter()
        .map(|n| (n.to_string(), Window { sent, received }))
        .collect()
}

#[test]
fn a_whole_report_parses_into_facts_and_checks() {
    let out = "FACT time=1700000000.25\nFACT hostname=m1\nFACT addresses=10.0.0.1,fd00::1\n\
        CHECK ports fail in use: 6443 (python3) ;; stop what listens there\n\
        CHECK cgroup warn v1 ;; boot with systemd.unified_cgroup_hierarchy=1\n\
        CHECK swap ok off ;; \nEND\n";
    let r = parse("m1", out, 0, "");
    assert_eq!(r.facts["hostname"], "m1");
    assert_eq!(r.facts["addresses"], "10.0.0.1,fd00::1");
    assert_eq!(
        r.checks,
        vec![
            Check::new(
                "ports",
                Level::Fail,
                "in use: 6443 (python3)",
                "stop what listens there"
            ),
            Check::new(
                "cgroup",
                Level::Warn,
                "v1",
                "boot with systemd.unified_cgroup_hierarchy=1"
            ),
            Check::new("swap", Level::Ok, "off", ""),
        ]
    );
    assert_eq!(r.level(), Level::Fail);
}

#[test]
fn a_repeated_check_joins_the_first_with_the_worst_level() {
    let r = parse(
        "n",
        "CHECK disk ok 30 GiB ;; \nCHECK disk fail 1 GiB ;; free space\nEND\n",
        0,
        "",
    );
    assert_eq!(
        r.checks,
        vec![Check::new(
            "disk",
            Level::Fail,
            "30 GiB; 1 GiB",
            "free space"
        )]
    );
}

#[test]
fn malformed_reports_fail_clearly_and_never_panic() {
    for (out, code, said) in [
        (
            "CHECK ports maybe x ;; y\nEND\n",
            0,
            "line 1: expected CHECK",
        ),
        ("FACT novalue\nEND\n", 0, "line 1: expected FACT key=value"),
        ("FACT =x\nEND\n", 0, "expected FACT key=value"),
        ("CHECK\nEND\n", 0, "line 1: not a report line"),
        ("hello\nEND\n", 0, "line 1: not a report line: 'hello'"),
        ("END\nCHECK a ok b ;; \n", 0, "line 2: text after END"),
        ("CHECK a ok b ;; \n", 0, "stopped before its end"),
        ("", 0, "stopped before its end"),
        ("END\n", 2, "exit code 2"),
        ("\u{1e}\u{0}é\nEND", 0, "not a report line"),
    ] {
        let r = parse("n", out, code, "bash: line 3: oops\n");
        let c = check(&r, "report");
        assert_eq!(c.level, Level::Fail, "{out:?}");
        assert!(c.reason.contains(said), "{out:?}: {}", c.reason);
        assert!(
            c.reason.ends_with("it said: bash: line 3: oops"),
            "{}",
            c.reason
        );
        assert!(!c.fix.is_empty());
    }
    // A very long bad line is cut in the reason.
    let r = parse("n", &"x".repeat(10_000), 0, "");
    assert!(check(&r, "report").reason.len() < 300);
}

#[test]
fn skew_is_the_nearest_offset_the_times_allow() {
    let w = Window {
        sent: 100.0,
        received: 110.0,
    };
    let same = |a: f64, b: f64| assert_eq!(a.to_bits(), b.to_bits(), "{a} {b}");
    // Exact in binary floating point: whole seconds.
    same(skew(101.0, 101.0, w), 0.0);
    same(skew(100.0, 110.0, w), 0.0);
    // A script that took 8 of the 10 s: 59 s ahead at least, not 51 (the window alone) nor 55
    // (its midpoint).
    same(skew(161.0, 169.0, w), 59.0);
    same(skew(90.0, 91.0, w), -10.0);
    // Only the time at the start: the window alone.
    same(skew(162.0, 162.0, w), 52.0);
}

#[test]
fn a_clock_60_s_ahead_fails_10_s_warns_and_1_s_passes() {
    let mut rs = vec![
        report("a", "a", "1", "10.0.0.1", 1060.5),
        report("b", "b", "2", "10.0.0.2", 990.0),
        report("c", "c", "3", "10.0.0.3", 1001.0),
    ];
    compare(
        &mut rs,
        &windows(&["a", "b", "c"], 1000.0, 1000.5),
        &HashMap::new(),
    );
    let a = check(&rs[0], "clock");
    assert_eq!(a.level, Level::Fail);
    assert_eq!(a.reason, "60.0 s ahead of the taskbox (more than 30 s)");
    assert!(a.fix.contains("timedatectl set-ntp true"));
    let b = check(&rs[1], "clock");
    assert_eq!(
        (b.level, b.reason.as_str()),
        (Level::Warn, "10.0 s behind the taskbox")
    );
    assert_eq!(check(&rs[2], "clock").level, Level::Ok);
}

#[test]
fn a_missing_or_garbled_time_fails_the_clock() {
    let mut rs = vec![
        parse("a", "FACT time=soon\nEND\n", 0, ""),
        // busybox's date has no %N: the whole seconds still count.
        parse("b", "FACT time=1060.N\nFACT time_end=1060.N\nEND\n", 0, ""),
    ];
    compare(
        &mut rs,
        &windows(&["a", "b"], 1000.0, 1000.5),
        &HashMap::new(),
    );
    assert_eq!(
        check(&rs[0], "clock").reason,
        "the node did not report its time"
    );
    assert_eq!(
        check(&rs[1], "clock").reason,
        "59.5 s ahead of the taskbox (more than 30 s)"
    );
}

#[test]
fn duplicate_hostnames_machines_and_addresses_fail_on_each_node_involved() {
    let mut rs = vec![
        report("m1", "node1", "aa", "10.0.0.1", 1000.0),
        report("m2", "NODE1", "bb", "10.0.0.2", 1000.0),
        report("m3", "node3", "cc", "10.0.0.3,10.0.0.4", 1000.0),
        // hosts.ini's "w1" reaches m3's machine again through another address.
        report("w1", "node3x", "cc", "10.0.0.4,10.0.0.3", 1000.0),
        // A clone of m1's machine, with addresses of its own.
        report("w2", "node5", "aa", "10.0.0.5", 1000.0),
    ];
    let ips: HashMap<String, String> = [
        ("m1", "10.0.0.1"),
        ("m2", "10.0.0.2"),
        ("m3", "10.0.0.3"),
        ("w1", "10.0.0.4"),
        ("w2", "10.0.0.5"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    compare(
        &mut rs,
        &windows(&["m1", "m2", "m3", "w1", "w2"], 1000.0, 1000.0),
        &ips,
    );
    let h = check(&rs[0], "unique-hostname");
    assert_eq!(h.level, Level::Fail);
    assert_eq!(h.reason, "its hostname 'node1' is also the hostname of m2");
    assert!(h.fix.contains("hostnamectl set-hostname"));
    assert_eq!(check(&rs[1], "unique-hostname").level, Level::Fail);
    assert_eq!(check(&rs[2], "unique-hostname").level, Level::Ok);
    let same = check(&rs[3], "same-machine");
    assert_eq!(same.level, Level::Fail);
    assert_eq!(
        same.reason,
        "this entry and m3 reach the same machine (machine-id cc, the same addresses)"
    );
    let clone = check(&rs[0], "same-machine");
    assert_eq!(clone.level, Level::Warn);
    assert_eq!(
        clone.reason,
        "its machine-id aa is also that of w2 (cloned machines?)"
    );
    assert!(clone.fix.contains("systemd-machine-id-setup"));
    assert_eq!(check(&rs[1], "same-machine").level, Level::Ok);
    assert_eq!(
        check(&rs[2], "unique-ip").reason,
        "its ip= 10.0.0.3 is also an address of w1"
    );
    assert_eq!(check(&rs[0], "unique-ip").level, Level::Ok);
}

#[test]
fn unreached_nodes_take_part_in_no_comparison() {
    let mut rs = vec![
        report("a", "x", "1", "10.0.0.1", 5.0),
        Report::unreachable("b", "connection refused"),
    ];
    compare(&mut rs, &windows(&["a"], 5.0, 5.0), &HashMap::new());
    assert_eq!(rs[1].checks.len(), 1);
    assert_eq!(rs[1].level(), Level::Fail);
    assert_eq!(rs[0].level(), Level::Ok);
}

#[test]
fn the_table_has_a_row_per_node_and_the_failures_and_warnings_below() {
    let rs = vec![
        parse(
            "master1",
            "CHECK root ok yes ;; \nCHECK ports fail in use: 6443 (nc) ;; stop it\nEND\n",
            0,
            "",
        ),
        parse(
            "node1",
            "CHECK root ok yes ;; \nCHECK cgroup warn v1 ;; use v2\nEND\n",
            0,
            "",
        ),
    ];
    assert_eq!(
        table(&rs),
        "preflight ports cgroup\n\
         master1   ✗     ·\n\
         node1     ·     !\n\
         preflight ok on all 2 nodes: root\n\
         failed:\n  master1 ports: in use: 6443 (nc) (fix: stop it)\n\
         warnings:\n  node1 cgroup: v1 (fix: use v2)\n"
    );
}
