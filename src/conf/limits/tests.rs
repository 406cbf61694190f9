//! The bounds: each reader refuses what is over them with the file, the line and the limit, at
//! once (every case here is read in milliseconds; before the bounds some took minutes).

use std::path::Path;

use super::*;
use crate::conf::{self, common_yaml, hosts_ini, settings};
use crate::engine::plan;

fn message<T: std::fmt::Debug>(r: Result<T, ConfError>) -> String {
    r.expect_err("refused").to_string()
}

/// Each YAML reader on `text`, with the error each gives (or "ok").
fn yaml_readers(text: &str) -> Vec<String> {
    let show = |r: Result<(), ConfError>| r.map_or_else(|e| e.to_string(), |()| "ok".into());
    vec![
        show(common_yaml::parse(text, Path::new("conf/common.yaml")).map(drop)),
        show(settings::parse(text, Path::new("conf/kswizard.yaml")).map(drop)),
        show(plan::parse(text, Path::new("plan.yaml"), |_| Ok(String::new())).map(drop)),
    ]
}

const DEEP: &str = "YAML nested more than 64 levels deep; kswizard reads up to 64 (its settings need fewer than 5)";

#[test]
fn yaml_nested_too_deep_is_refused_at_its_line_by_every_yaml_reader() {
    // Flow collections, compact block sequences on one line (a 1 MiB line), indentation.
    let flow = format!("x: 1\nsteps: {}", "[".repeat(100_000));
    let dashes = format!("x: 1\n\n{}", "- ".repeat(1 << 19));
    let indented: String = (0..100)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    for (text, line) in [(flow, 2), (dashes, 3), (indented, 65)] {
        let want = [
            format!("conf/common.yaml:{line}: {DEEP}"),
            format!("conf/kswizard.yaml:{line}: {DEEP}"),
            format!("plan.yaml:{line}: {DEEP}"),
        ];
        assert_eq!(yaml_readers(&text), want);
    }
}

#[test]
fn yaml_nested_up_to_the_limit_is_read() {
    // The top-level mapping is one level: 63 flow levels inside it make 64.
    let text = format!("x: {}{}\n", "[".repeat(63), "]".repeat(63));
    assert_eq!(too_deep(&text), None);
    assert_eq!(
        common_yaml::parse(&text, Path::new("c.yaml")),
        Ok(common_yaml::LbValues::default())
    );
    let text = format!("x: {}{}\n", "[".repeat(64), "]".repeat(64));
    assert_eq!(too_deep(&text), Some(1));
}

#[test]
fn broken_yaml_is_reported_by_the_reader_not_the_depth_check() {
    // The depth check stops at libyaml's first error; the reader then names it as before.
    let text = "a: 1\nb: [1, 2\nc: 3\n";
    assert_eq!(too_deep(text), None);
    assert_eq!(
        message(common_yaml::parse(text, Path::new("conf/common.yaml"))),
        "conf/common.yaml:3: expected valid YAML: did not find expected ',' or ']'"
    );
}

#[test]
fn files_over_4_mib_are_refused_by_every_reader() {
    let big = " ".repeat(8 << 20);
    let want = |f: &str| {
        format!("{f}: the file is 8.0 MiB; kswizard reads files up to 4 MiB: is it the right file?")
    };
    assert_eq!(
        message(hosts_ini::parse(
            big.as_bytes(),
            Path::new("conf/hosts.ini")
        )),
        want("conf/hosts.ini")
    );
    assert_eq!(
        yaml_readers(&big),
        [
            want("conf/common.yaml"),
            want("conf/kswizard.yaml"),
            want("plan.yaml")
        ]
    );
}

#[test]
fn conf_load_refuses_a_large_file_without_reading_it() {
    for name in [conf::HOSTS_INI, conf::COMMON_YAML, conf::SETTINGS_YAML] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        // Sparse: 1 GiB that costs nothing to make, and would cost a second to read.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let err = conf::load(dir.path()).unwrap_err();
        assert_eq!((err.file, err.line), (path, 0));
        assert_eq!(
            err.message,
            "the file is 1024.0 MiB; kswizard reads files up to 4 MiB: is it the right file?"
        );
    }
}

#[test]
fn a_host_line_with_too_many_keys_is_refused_with_its_line() {
    let line = |keys: usize| -> String {
        let kv: Vec<String> = (0..keys).map(|i| format!("k{i}=v")).collect();
        format!("[all]\nnode1 ansible_host=10.0.0.1 {}\n", kv.join(" "))
    };
    let c = hosts_ini::parse(line(999).as_bytes(), Path::new("conf/hosts.ini")).unwrap();
    assert_eq!(c.hosts[0].extra.len(), 999);
    for keys in [1000, 100_000] {
        assert_eq!(
            message(hosts_ini::parse(
                line(keys).as_bytes(),
                Path::new("conf/hosts.ini")
            )),
            format!(
                "conf/hosts.ini:2: host 'node1' has {} keys on this line; kswizard reads up to 1000 on a host line",
                keys + 1
            )
        );
    }
}
