//! The node image: one Debian tree made by `assets/lab/node-image.sh` (debootstrap), cached under
//! `/var/cache/kswizard/` by the script's hash (the script holds the package list, so a changed
//! list or setup is a new image), built under a lock so that labs coming up at once build it once.
//! Nodes mount it read-only as the lower layer of their overlays; it is never written after.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};

const SCRIPT: &[u8] = include_bytes!("../../assets/lab/node-image.sh");
pub const CACHE: &str = "/var/cache/kswizard";

/// The image's directory for this version of the script.
pub fn path() -> Result<PathBuf> {
    let mut sha = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .wrap_err("sha256sum (coreutils)")?;
    std::io::Write::write_all(
        &mut sha
            .stdin
            .take()
            .ok_or_else(|| eyre!("sha256sum has no stdin"))?,
        SCRIPT,
    )?;
    let out = sha.wait_with_output()?;
    let hash = String::from_utf8_lossy(&out.stdout);
    let short = hash
        .get(..16)
        .ok_or_else(|| eyre!("sha256sum printed {hash:?}"))?;
    Ok(Path::new(CACHE).join(format!("node-bookworm-{short}")))
}

/// The image, built first if it is not there yet (asking as `packages::ensure` does: it downloads
/// about 100 MB from deb.debian.org).
pub fn ensure(yes: bool) -> Result<PathBuf> {
    // The tree gets its name only once it is complete (built as `.partial`, then renamed).
    let tree = path()?;
    if tree.exists() {
        return Ok(tree);
    }
    std::fs::create_dir_all(CACHE)?;
    std::fs::set_permissions(CACHE, std::fs::Permissions::from_mode(0o700))?;
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(tree.with_extension("lock"))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "lab: waiting for another kswizard building the node image {}",
            tree.display()
        );
        lock.lock()?;
    }
    // Built by whoever held the lock before us.
    if tree.exists() {
        return Ok(tree);
    }
    super::packages::confirm(
        &format!(
            "build the lab's node image in {} (debootstrap from deb.debian.org, about 100 MB, 1-3 min)",
            tree.display()
        ),
        yes,
    )?;
    eprintln!(
        "lab: building the node image {} (once; later labs reuse it)",
        tree.display()
    );
    let partial = tree.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    let script = tree.with_extension("sh");
    std::fs::write(&script, SCRIPT)?;
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(&partial)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .wrap_err("running node-image.sh")?;
    // debootstrap's "I: <Verb> ..." lines, the first of each verb shown (one per phase, not one
    // per package); the last lines say what failed.
    let mut seen = std::collections::HashSet::new();
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(child.stdout.take().ok_or_else(|| eyre!("no stdout"))?).lines() {
        let line = line?;
        let verb = line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        if seen.insert(verb) {
            eprintln!("  {line}");
        }
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait()?;
    std::fs::remove_file(&script)?;
    if !status.success() {
        bail!(
            "building the node image failed ({status}); the last lines:\n{}\n(run `bash` on assets/lab/node-image.sh to see it all)",
            tail.join("\n")
        );
    }
    std::fs::rename(&partial, &tree)?;
    Ok(tree)
}
