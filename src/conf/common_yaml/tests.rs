//! common.yaml: patching the LB block into the installer's own files changes those lines only.

use super::*;
use crate::model::LbMode;

const FILE: &str = "conf/common.yaml";
const SAMPLES: [&str; 2] = [
    "ks-installer-v2.1.1-common.yaml",
    "ks-installer-v2.1-prerelease-vars.yml",
];

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/samples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lb(address: &str, port: i64, domain: &str) -> LoadBalancer {
    LoadBalancer {
        mode: LbMode::External,
        address: Some(address.into()),
        port,
        domain: domain.into(),
    }
}

fn no_lb() -> LoadBalancer {
    LoadBalancer {
        mode: LbMode::None,
        ..LoadBalancer::default()
    }
}

fn patched(text: &str, lb: &LoadBalancer) -> String {
    patch(text, lb, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"))
}

/// The LB part of what `text` says (the samples also set the pod network; tests of it read it).
fn values(text: &str) -> LbValues {
    let all = parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"));
    LbValues {
        pods_subnet: None,
        ..all
    }
}

fn expect(lb: &LoadBalancer) -> LbValues {
    LbValues {
        address: lb.address.clone(),
        port: Some(lb.port),
        domain: Some(lb.domain.clone()),
        pods_subnet: None,
    }
}

/// The (line number, before, after) of every line that differs; both texts must have as many lines.
fn changed_lines(before: &str, after: &str) -> Vec<(usize, String, String)> {
    let (b, a): (Vec<&str>, Vec<&str>) =
        (before.split('\n').collect(), after.split('\n').collect());
    assert_eq!(b.len(), a.len(), "the number of lines changed");
    b.iter()
        .zip(&a)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i + 1, x.to_string(), y.to_string()))
        .collect()
}

fn after_lines(changes: &[(usize, String, String)]) -> Vec<&str> {
    changes.iter().map(|(_, _, a)| a.as_str()).collect()
}

#[test]
fn samples_have_no_lb_set() {
    for name in SAMPLES {
        assert_eq!(values(&sample(name)), LbValues::default(), "{name}");
    }
}

#[test]
fn the_pod_network_is_read_and_a_wrong_one_named_with_its_line() {
    for name in SAMPLES {
        let v = parse(&sample(name), Path::new(FILE)).unwrap();
        assert_eq!(v.pods_subnet.as_deref(), Some("10.233.64.0/18"), "{name}");
    }
    assert_eq!(
        values_of("kube_pods_subnet: 10.0.0.0/8\n"),
        Some("10.0.0.0/8".into())
    );
    assert_eq!(values_of("a: 1\n"), None);
    for bad in [
        "10.233.64.0",
        "10.233.64.0/33",
        "300.0.0.0/8",
        "fd00::/64",
        "[1, 2]",
        "18",
    ] {
        let err = parse(&format!("a: 1\nkube_pods_subnet: {bad}\n"), Path::new(FILE))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("conf/common.yaml:2: kube_pods_subnet: expected an IPv4 network such as 10.233.64.0/18"),
            "{bad}: {err}"
        );
    }
}

fn values_of(text: &str) -> Option<String> {
    parse(text, Path::new(FILE)).unwrap().pods_subnet
}

#[test]
fn patching_uncomments_the_sample_block_in_place() {
    let want = [
        "apiserver_loadbalancer_domain_name: \"lb.example.com\"",
        "loadbalancer_apiserver:",
        "  address: 10.0.0.100",
        "  port: 8443",
    ];
    for (name, first_line) in [(SAMPLES[0], 72), (SAMPLES[1], 148)] {
        let text = sample(name);
        let want_lb = lb("10.0.0.100", 8443, "lb.example.com");
        let out = patched(&text, &want_lb);
        let changes = changed_lines(&text, &out);
        let lines: Vec<usize> = changes.iter().map(|c| c.0).collect();
        assert_eq!(
            lines,
            (first_line..first_line + 4).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(after_lines(&changes), want, "{name}");
        assert_eq!(values(&out), expect(&want_lb), "{name}");
    }
}

#[test]
fn patching_twice_is_idempotent_and_an_active_block_is_replaced() {
    for name in SAMPLES {
        let first = lb("10.0.0.100", 6443, "lb.kubesphere.local");
        let once = patched(&sample(name), &first);
        assert_eq!(patched(&once, &first), once, "{name}");

        let second = lb("vip.example.com", 7443, "api.example.com");
        let twice = patched(&once, &second);
        let changes = changed_lines(&once, &twice);
        assert_eq!(
            after_lines(&changes),
            [
                "apiserver_loadbalancer_domain_name: \"api.example.com\"",
                "  address: vip.example.com",
                "  port: 7443"
            ],
            "{name}"
        );
        assert_eq!(values(&twice), expect(&second));
    }
}

#[test]
fn a_file_without_the_block_gets_it_appended() {
    let text = "kube_version: v1.16.7\n# no LB here\nenable_nodelocaldns: true";
    let out = patched(text, &lb("10.0.0.100", 6443, "lb.kubesphere.local"));
    assert_eq!(
        out,
        "kube_version: v1.16.7\n# no LB here\nenable_nodelocaldns: true\n\
         apiserver_loadbalancer_domain_name: \"lb.kubesphere.local\"\n\
         loadbalancer_apiserver:\n  address: 10.0.0.100\n  port: 6443\n"
    );
}

#[test]
fn removing_the_lb_comments_the_active_block_out() {
    for name in SAMPLES {
        let text = sample(name);
        let on = patched(&text, &lb("10.0.0.100", 6443, "lb.kubesphere.local"));
        let off = patched(&on, &no_lb());
        let changes = changed_lines(&on, &off);
        assert_eq!(
            after_lines(&changes),
            [
                "# loadbalancer_apiserver:",
                "#   address: 10.0.0.100",
                "#   port: 6443"
            ],
            "{name}"
        );
        assert_eq!(values(&off).address, None);
        // And it can be switched on again from the commented block.
        let again = patched(&off, &lb("10.0.0.101", 6443, "lb.kubesphere.local"));
        assert_eq!(changed_lines(&text, &again).len(), 4, "{name}");
    }
}

#[test]
fn removing_an_lb_that_was_never_set_changes_nothing() {
    let text = sample(SAMPLES[0]);
    assert_eq!(patched(&text, &no_lb()), text);
}

fn all_crlf(text: &str) -> bool {
    text.matches('\n').count() == text.matches("\r\n").count()
}

#[test]
fn crlf_files_keep_crlf() {
    for name in SAMPLES {
        let text = sample(name).replace('\n', "\r\n");
        let out = patched(&text, &lb("10.0.0.100", 6443, "lb.kubesphere.local"));
        assert!(all_crlf(&out), "{name}");
        assert_eq!(
            out.matches('\n').count(),
            text.matches('\n').count(),
            "{name}"
        );
        let off = patched(&out, &no_lb());
        assert!(all_crlf(&off), "{name}");
    }
}

#[test]
fn awkward_addresses_and_domains_are_quoted() {
    let want = lb("1e5", 443, "say \"hi\"\\");
    let out = patched("a: 1\n", &want);
    assert_eq!(values(&out), expect(&want));
}

#[test]
fn words_yaml_reads_as_other_types_are_quoted() {
    // Written plain, `null` read back as no address at all and `0x1F` as 31.
    for word in [
        "null", "Null", "~", "true", "0x1F", "0o17", ".inf", "1e5", "10",
    ] {
        let want = lb(word, 6443, word);
        let out = patched("a: 1\n", &want);
        assert!(out.contains(&format!("  address: \"{word}\"\n")), "{out}");
        assert_eq!(values(&out), expect(&want));
    }
    // Addresses and names stay plain, as in the installer's sample.
    assert!(
        patched("a: 1\n", &lb("192.168.0.10", 6443, "x")).contains("  address: 192.168.0.10\n")
    );
}

#[test]
fn yaml_errors_name_file_and_line() {
    // The unclosed flow sequence of line 2 is noticed where line 3 cannot continue it.
    assert_eq!(
        parse("a: 1\nb: [1, 2\nc: 3\n", Path::new(FILE))
            .unwrap_err()
            .to_string(),
        "conf/common.yaml:3: expected valid YAML: did not find expected ',' or ']'"
    );
}

#[test]
fn wrong_shapes_are_errors_with_lines() {
    let cases = [
        (
            "x: 1\nloadbalancer_apiserver: 10.0.0.1\n",
            "conf/common.yaml:2: loadbalancer_apiserver: expected a mapping with 'address' and 'port' (two-space indented lines)",
        ),
        (
            "loadbalancer_apiserver:\n  address: 10.0.0.1\n  port: http\n",
            "conf/common.yaml:1: loadbalancer_apiserver.port: expected a whole number 1..65535, found 'http'",
        ),
        (
            "apiserver_loadbalancer_domain_name: [a]\n",
            "conf/common.yaml:1: apiserver_loadbalancer_domain_name: expected a domain name such as \"lb.kubesphere.local\"",
        ),
        (
            "- a\n- b\n",
            "conf/common.yaml:1: expected a mapping of settings (key: value lines) at the top level",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text, Path::new(FILE)).unwrap_err().to_string(), want);
    }
}

#[test]
fn an_error_names_the_line_of_the_key_not_of_a_longer_one() {
    // kubespray's all.yml has `loadbalancer_apiserver_port:`; it is not the line to point at.
    let text = "loadbalancer_apiserver_port: 6443\nloadbalancer_apiserver: 5\n";
    assert_eq!(parse(text, Path::new(FILE)).unwrap_err().line, 2);
}

#[test]
fn kubespray_all_yml_block_is_uncommented_in_place() {
    let text = sample("kubespray-v2.11.0-group_vars-all-all.yml");
    let want = lb("10.0.0.100", 6443, "lb.kubesphere.local");
    let changes = changed_lines(&text, &patched(&text, &want));
    assert_eq!(
        changes.iter().map(|c| c.0).collect::<Vec<_>>(),
        [20, 21, 22, 23]
    );
}

#[test]
fn a_second_definition_elsewhere_refuses_the_patch() {
    // Two top-level keys of the same name: YAML rejects the file, and patch writes nothing.
    let text = "loadbalancer_apiserver:\n  address: 10.0.0.1\n  port: 6443\n\nloadbalancer_apiserver:\n  address: 10.0.0.2\n";
    let err = patch(text, &lb("10.0.0.9", 6443, "lb"), Path::new(FILE)).unwrap_err();
    assert!(
        err.message
            .starts_with("kswizard's edit would break the file, nothing written"),
        "{err}"
    );
}

#[test]
fn an_lb_the_file_already_says_is_left_as_written() {
    // Quoted, commented, the port and domain left to their defaults: nothing to change, no byte.
    let text = "## apiserver_loadbalancer_domain_name: \"lb.kubesphere.local\"\r\n\
                loadbalancer_apiserver:\r\n  address: \"10.0.0.1\"   # the VIP\r\n";
    assert_eq!(
        patched(text, &lb("10.0.0.1", 6443, "lb.kubesphere.local")),
        text
    );
    // A real change still rewrites the block and names the domain.
    let out = patched(text, &lb("10.0.0.2", 6443, "lb.kubesphere.local"));
    assert_eq!(
        out,
        "apiserver_loadbalancer_domain_name: \"lb.kubesphere.local\"\r\n\
         loadbalancer_apiserver:\r\n  address: 10.0.0.2\r\n  port: 6443\r\n"
    );
}
