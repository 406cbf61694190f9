//! The Debian packages the lab needs on the taskbox, found by the programs they ship, and installed
//! with apt-get (after `apt-get update`) when the operator agrees (`--yes`, or a yes on a terminal).
//! What runs on the nodes comes from the node image (`image.rs`) and, for etcd, from these through
//! the lab's bundle.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::Command;

use color_eyre::eyre::{Result, bail};

/// (package, a program it installs). A program is the check because it is what the lab runs.
pub const REQUIRED: &[(&str, &str)] = &[
    ("debootstrap", "/usr/sbin/debootstrap"),
    ("systemd-container", "/usr/bin/systemd-nspawn"),
    ("iproute2", "/usr/sbin/ip"),
    ("haproxy", "/usr/sbin/haproxy"),
    ("openssh-client", "/usr/bin/ssh-keygen"),
    ("openssl", "/usr/bin/openssl"),
    ("util-linux", "/usr/bin/nsenter"),
    // The nodes' etcd, delivered through the lab's bundle.
    ("etcd-server", "/usr/bin/etcd"),
    ("etcd-client", "/usr/bin/etcdctl"),
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

/// Go ahead with `what` when `yes`, else ask on a terminal; refuse without one, since nobody could
/// answer. `what` is said in the question and the refusal.
pub fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("the lab needs to {what}: run again with --yes to let it");
    }
    eprint!("the lab needs to {what}. Go ahead? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("the lab needs to {what}; not done (answer y, or pass --yes)");
    }
    Ok(())
}

/// Make sure the packages are there, installing them with the operator's agreement.
pub fn ensure(yes: bool) -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let cmd = apt_command(&missing);
    confirm(
        &format!("run `{cmd}` (missing: {})", missing.join(", ")),
        yes,
    )?;
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
