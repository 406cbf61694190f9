//! The install steps' own guards, run with bash as the engine would run them: what a step refuses
//! before it touches the node.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

/// Run `assets/steps/<script>` with `env` (and nothing else of kswizard's): exit code and output.
/// As root it runs with /etc read-only in a mount namespace of its own, so that a guard that fails
/// to refuse cannot change this machine.
fn run(script: &str, env: &[(&str, &str)]) -> (i32, String) {
    let path = format!("{}/assets/steps/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = if kswizard::engine::transport::is_root() {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind /etc /etc && mount -o remount,bind,ro /etc && exec bash \"$0\"");
        c
    } else {
        Command::new("bash")
    };
    let out = cmd
        .arg(path)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn os_prep_refuses_a_domain_or_address_that_would_add_other_lines_to_etc_hosts() {
    for (address, domain, why) in [
        (
            "10.0.0.250",
            "lb.kubesphere.local\n10.66.66.66 registry.example.com",
            "the LB domain",
        ),
        ("10.0.0.250", "bad domain_x", "the LB domain"),
        (
            "10.0.0.250; reboot",
            "lb.kubesphere.local",
            "the LB address",
        ),
        ("192.168.0.999", "lb.kubesphere.local", "the LB address"),
    ] {
        let (code, out) = run(
            "os-prep.sh",
            &[("KSW_LB_ADDRESS", address), ("KSW_LB_DOMAIN", domain)],
        );
        assert_eq!(code, 2, "{address} {domain}: {out}");
        assert!(
            out.starts_with(&format!("refusing to write /etc/hosts: {why}")),
            "{out}"
        );
    }
}

/// The preflight script and kswizard's reader agree: whatever this machine is, its report reads
/// in full (no `report` failure), with the facts the checks across nodes need and a check of
/// each kind, every one with a level. It only reads, so it runs here as it would on a node.
#[test]
fn the_preflight_report_reads_in_full() {
    use kswizard::engine::preflight;
    let (code, out) = run(
        "preflight.sh",
        &[
            ("KSW_NODE", "node1"),
            ("KSW_IP", "127.0.0.1"),
            ("KSW_ROLES", "master,etcd,worker"),
            ("KSW_LB_MODE", "external"),
            ("KSW_LB_ADDRESS", "192.0.2.250"),
            ("KSW_LB_PORT", "6443"),
            ("KSW_LB_DOMAIN", "lb.kubesphere.local"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let r = preflight::parse("node1", &out, code, "");
    assert!(r.checks.iter().all(|c| c.id != "report"), "{out}");
    for fact in ["time", "time_end", "hostname", "machine_id", "addresses"] {
        assert!(r.facts.contains_key(fact), "{fact}: {out}");
    }
    for id in [
        "root",
        "tools",
        "cpus",
        "memory",
        "disk-containerd",
        "disk-etcd",
        "swap",
        "ip",
        "hostname",
        "cgroup",
        "module-overlay",
        "module-br_netfilter",
        "ports",
        "docker",
        "kubernetes",
        "lb-domain",
    ] {
        let c = r.checks.iter().find(|c| c.id == id);
        let c = c.unwrap_or_else(|| panic!("no check {id}: {out}"));
        // A check that did not pass says what to do.
        assert!(
            c.level == preflight::Level::Ok || !c.fix.is_empty(),
            "{c:?}"
        );
    }
}

#[test]
fn runtime_steps_refuse_an_unknown_delivery_a_bad_version_and_a_node_without_systemd() {
    for script in ["container-runtime.sh", "kube-packages.sh"] {
        let (code, out) = run(script, &[("KSW_K8S_VERSION", "v1.28.2")]);
        assert_eq!(code, 1, "{script}: {out}");
        assert_eq!(
            out,
            "FAIL  KSW_DELIVERY is '', expected bundle or packages (kswizard sets it)\n"
        );
        let (code, out) = run(
            script,
            &[("KSW_DELIVERY", "bundle"), ("KSW_K8S_VERSION", "1.28")],
        );
        assert_eq!(code, 1, "{script}: {out}");
        assert_eq!(
            out,
            "FAIL  KSW_K8S_VERSION is '1.28', expected vMAJOR.MINOR.PATCH\n"
        );
        // This machine (the taskbox) runs no systemd; on one that does, the lab tests cover it.
        if !std::path::Path::new("/run/systemd/system").exists() {
            let (code, out) = run(
                script,
                &[("KSW_DELIVERY", "packages"), ("KSW_K8S_VERSION", "v1.28.2")],
            );
            assert_eq!(code, 1, "{script}: {out}");
            assert!(
                out.starts_with("FAIL  this node does not run systemd (PID 1 is "),
                "{script}: {out}"
            );
        }
    }
}
