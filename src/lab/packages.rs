//! The Debian packages the lab needs, found by the programs they ship, and installed with apt-get
//! (after `apt-get update`) when the operator agrees (`--yes`, or a yes on a terminal).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::Command;

use color_eyre::eyre::{Result, bail};

/// (package, a program it installs). A program is the check because it is what the lab runs.
pub const REQUIRED: &[(&str, &str)] = &[
    ("openssh-server", "/usr/sbin/sshd"),
    ("sudo", "/usr/bin/sudo"),
    ("etcd-server", "/usr/bin/etcd"),
    ("etcd-client", "/usr/bin/etcdctl"),
    ("haproxy", "/usr/sbin/haproxy"),
    ("openssh-client", "/usr/bin/ssh-keygen"),
    ("openssl", "/usr/bin/openssl"),
    ("curl", "/usr/bin/curl"),
    ("python3", "/usr/bin/python3"),
    ("iproute2", "/usr/bin/ss"),
];

pub fn missing() -> Vec<&'static str> {
    REQUIRED
        .iter()
        .filter(|(_, program)| !Path::new(program).exists())
        .map(|(package, _)| *package)
        .collect()
}

pub fn apt_command(packages: &[&str]) -> String {
    format!(
        "apt-get update && apt-get install -y {}",
        packages.join(" ")
    )
}

/// Make sure the packages are there: install them when `yes`, else ask on a terminal; refuse
/// without one, since nobody could answer.
pub fn ensure(yes: bool) -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let cmd = apt_command(&missing);
    eprintln!(
        "the lab needs packages that are not installed: {}",
        missing.join(", ")
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("missing packages; install them with `{cmd}`, or run again with --yes");
        }
        eprint!("run `{cmd}` now? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("missing packages; install them with `{cmd}`");
        }
    }
    // A fresh machine has no package lists yet; install would find nothing.
    let updated = Command::new("apt-get").arg("update").status()?;
    if !updated.success() {
        bail!("`apt-get update` failed ({updated})");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("`{cmd}` failed ({status})");
    }
    Ok(())
}
