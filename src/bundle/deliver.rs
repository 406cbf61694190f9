//! Delivery decisions, pure: which of the bundle's files a node gets, which of them it already
//! has (by the sha256 it reports), and the node-side commands that report and receive them. The
//! engine's `deliver` module carries them out over the install's SSH connections.

use std::collections::HashMap;

use super::manifest::{Entry, Manifest};
use crate::engine::plan::holds_any;
use crate::model::Cluster;

/// The entries the cluster's host `host_index` needs, in manifest order.
pub fn for_host<'a>(m: &'a Manifest, cluster: &Cluster, host_index: usize) -> Vec<&'a Entry> {
    m.files
        .iter()
        .filter(|e| holds_any(&e.roles, cluster, host_index))
        .collect()
}

/// What the deliver step's fingerprint covers on a node: each file's target, mode and sha256, so
/// that a changed bundle delivers again on a resume.
pub fn digest(entries: &[&Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{} {} {}\n", e.target, e.mode, e.sha256))
        .collect()
}

/// The node command that prints `sha256  path` for each target present (as `sha256sum` does).
/// Targets are checked by the manifest to hold no quote.
pub fn sums_command(entries: &[&Entry]) -> String {
    let targets: Vec<String> = entries.iter().map(|e| format!("'{}'", e.target)).collect();
    format!("sha256sum -- {} 2>/dev/null; true\n", targets.join(" "))
}

/// `sha256sum`'s lines as path → sum.
pub fn parse_sums(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let (sum, path) = l.split_once("  ")?;
            (sum.len() == 64).then(|| (path.to_string(), sum.to_ascii_lowercase()))
        })
        .collect()
}

/// The entries to send (missing on the node or different) and those the node already has.
pub fn to_send<'a>(
    entries: &[&'a Entry],
    on_node: &HashMap<String, String>,
) -> (Vec<&'a Entry>, Vec<&'a Entry>) {
    entries
        .iter()
        .partition(|e| on_node.get(&e.target) != Some(&e.sha256.to_ascii_lowercase()))
}

/// The node-side script that takes one file on its standard input: written beside its target,
/// checked against its sha256, given its mode, then renamed into place, so the target is never
/// a partial file and a running binary is replaced, not overwritten. A file for its owner only
/// (an etcd snapshot: 0600) is written under umask 077, so it is never readable by others, even
/// while it arrives, and a directory made for it is 0700.
pub fn receive_script(e: &Entry) -> String {
    // No permission for the group or others: mode & 0o077 is 0.
    let private = e.mode_bits().trailing_zeros() >= 6;
    format!(
        "set -e; umask {umask}; t='{t}'; p=\"$t.ksw-part\"; mkdir -p \"$(dirname \"$t\")\"; \
         head -c {size} >\"$p\"; s=$(sha256sum \"$p\"); s=${{s%% *}}; \
         if [ \"$s\" != {sha} ]; then rm -f \"$p\"; \
         echo \"sha256 of $t is $s after the copy, expected {sha} (the copy was cut or damaged)\"; exit 1; fi; \
         chmod {mode} \"$p\"; mv -f \"$p\" \"$t\"",
        umask = if private { "077" } else { "022" },
        t = e.target,
        size = e.size,
        sha = e.sha256.to_ascii_lowercase(),
        mode = e.mode,
    )
}

/// The node command that gives every target its mode (files the node already had too), then
/// lists the targets in `<root>/bundle-files` (`root`: the runner's state root on the node), so
/// that `kswizard reset` (`node-reset.sh`) knows which files the bundle put there.
pub fn modes_command(entries: &[&Entry], root: &str) -> String {
    let mut cmd: String = entries
        .iter()
        .map(|e| format!("chmod {} '{}'\n", e.mode, e.target))
        .collect();
    let list: String = entries.iter().map(|e| format!("{}\n", e.target)).collect();
    let root = crate::engine::runner::sh_quote(root);
    cmd.push_str(&format!(
        "mkdir -p {root} && printf '%s' {} >{root}/bundle-files\n",
        crate::engine::runner::sh_quote(&list)
    ));
    cmd
}

/// `12.3 MB in 0.4 s (30.8 MB/s)`.
pub fn rate(bytes: u64, secs: f64) -> String {
    let mb = bytes as f64 / 1e6;
    if secs > 0.0 {
        format!("{mb:.1} MB in {secs:.1} s ({:.1} MB/s)", mb / secs)
    } else {
        format!("{mb:.1} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Role;
    use crate::model::Host;

    fn entry(name: &str, roles: Vec<Role>, sha: char) -> Entry {
        Entry {
            sha256: sha.to_string().repeat(64),
            size: 3,
            roles,
            ..Entry::for_test(name, b"")
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            kubernetes: "v1.28.2".into(),
            arch: "amd64".into(),
            files: vec![
                entry("kubelet", vec![Role::All], 'a'),
                entry("kubectl", vec![Role::Master], 'b'),
                entry("etcd", vec![Role::Etcd], 'c'),
                entry("calico.yaml", vec![Role::FirstMaster], 'd'),
            ],
        }
    }

    fn cluster() -> Cluster {
        let mut c = Cluster::default();
        for (name, master, etcd) in [
            ("m1", true, true),
            ("m2", true, false),
            ("w1", false, false),
        ] {
            let mut h = Host::new(name, "10.0.0.1");
            h.roles.master = master;
            h.roles.etcd = etcd;
            h.roles.worker = !master;
            c.hosts.push(h);
        }
        c
    }

    fn names(v: &[&Entry]) -> Vec<String> {
        v.iter().map(|e| e.name.clone()).collect()
    }

    #[test]
    fn each_node_gets_the_files_of_its_roles() {
        let (m, c) = (manifest(), cluster());
        assert_eq!(
            names(&for_host(&m, &c, 0)),
            ["kubelet", "kubectl", "etcd", "calico.yaml"]
        );
        assert_eq!(names(&for_host(&m, &c, 1)), ["kubelet", "kubectl"]);
        assert_eq!(names(&for_host(&m, &c, 2)), ["kubelet"]);
    }

    #[test]
    fn only_missing_or_different_files_are_sent() {
        let m = manifest();
        let all: Vec<&Entry> = m.files.iter().collect();
        let out = format!(
            "{}  /usr/local/bin/kubelet\n{}  /usr/local/bin/kubectl\nsha256sum: x: No such file\n",
            "A".repeat(64),
            "f".repeat(64)
        );
        let (send, kept) = to_send(&all, &parse_sums(&out));
        assert_eq!(names(&send), ["kubectl", "etcd", "calico.yaml"]);
        assert_eq!(names(&kept), ["kubelet"]);
    }

    /// Run for real in a temp dir: every mode set, and the targets listed for `node-reset.sh`.
    #[test]
    fn modes_are_set_and_the_targets_listed_for_reset() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "x").unwrap();
        let e = Entry {
            target: a.display().to_string(),
            mode: "0700".into(),
            ..Entry::for_test("a", b"x")
        };
        let root = dir.path().join("state root");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(modes_command(&[&e], &root.display().to_string()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            std::fs::read_to_string(root.join("bundle-files")).unwrap(),
            format!("{}\n", a.display())
        );
    }

    #[test]
    fn the_digest_changes_with_any_file() {
        let m = manifest();
        let all: Vec<&Entry> = m.files.iter().collect();
        let mut changed = m.files[1].clone();
        changed.sha256 = "e".repeat(64);
        let other: Vec<&Entry> = vec![&m.files[0], &changed, &m.files[2], &m.files[3]];
        assert_ne!(digest(&all), digest(&other));
    }

    #[test]
    fn the_receiving_script_checks_before_it_renames() {
        let m = manifest();
        let s = receive_script(&m.files[0]);
        let check = s.find("!= aaaa").unwrap();
        let rename = s.find("mv -f").unwrap();
        assert!(check < rename, "{s}");
        assert!(s.contains("head -c 3 "), "{s}");
        assert!(s.contains("umask 022;"), "{s}");
        let private = Entry {
            mode: "0600".into(),
            ..m.files[0].clone()
        };
        assert!(receive_script(&private).contains("umask 077;"));
        assert!(sums_command(&[&m.files[0]]).contains("'/usr/local/bin/kubelet'"));
        assert_eq!(rate(30_000_000, 2.0), "30.0 MB in 2.0 s (15.0 MB/s)");
    }
}
