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
