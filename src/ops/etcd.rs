//! **Pure** decisions of `kswizard etcd backup` / `etcd restore` (issue 12 item 4): the names of
//! backup directories and which of them `--keep N` removes, a backup's record (`meta.json`), the
//! cluster's etcd as `steps/etcd-status.sh` reports it, and what a restore will lose, in words.
//! The I/O around them (the op plans, the fetch, the files) is in `cli/etcd_cmd.rs`.

use serde::{Deserialize, Serialize};

use crate::engine::installed::Change;

/// A backup directory under `<state>/backups/` (or `--out`): `etcd-` and the UTC time it was
/// taken, `etcd-20261202T043000Z`, so that names sort as times do.
const PREFIX: &str = "etcd-";

/// In a backup directory: the snapshot, its `sha256sum` line, the record, and copies of the conf
/// and the install's journal and installed record of that moment.
pub const SNAPSHOT: &str = "snapshot.db";
pub const SNAPSHOT_SUM: &str = "snapshot.db.sha256";
pub const META: &str = "meta.json";

/// The backup directory's name for `secs` since the epoch.
pub fn backup_name(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(secs);
    format!("{PREFIX}{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Whether `name` is a backup directory's name (`backup_name`'s form): only those are pruned.
pub fn is_backup_name(name: &str) -> bool {
    let Some(t) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let b = t.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The backups `--keep N` removes: all but the newest `keep`, oldest first. Other names are
/// never touched.
pub fn to_prune(names: &[String], keep: usize) -> Vec<String> {
    let mut backups: Vec<&String> = names.iter().filter(|n| is_backup_name(n)).collect();
    backups.sort();
    let drop = backups.len().saturating_sub(keep);
    backups.into_iter().take(drop).cloned().collect()
}

/// (year, month, day, hour, minute, second) in UTC: the civil-from-days algorithm (H. Hinnant).
fn utc(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-12-02 04:30:00 UTC`.
pub fn utc_text(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// An age in the two largest units: `45 s`, `12 min 3 s`, `3 h 12 min`, `2 d 4 h`.
pub fn age_text(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, ..) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A backup's record (`meta.json`): when and where its snapshot was taken, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Seconds since the epoch, on the taskbox, when the snapshot step ended.
    pub taken: u64,
    /// The node that took it and the member it was taken from (the first healthy one).
    pub node: String,
    pub member: String,
    /// The snapshot's revision (`etcdutl snapshot status`).
    pub revision: Option<u64>,
    /// Keys in the cluster when it was taken (`etcdctl get "" --prefix --count-only`).
    pub keys: Option<u64>,
    pub size: u64,
    pub sha256: String,
    /// The install the cluster came from (the install journal's id), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_id: Option<String>,
}

/// What a backup's snapshot holds, in a line: `12345 bytes, sha256 ab…, revision 812, 431 keys,
/// from member m1 (taken on master1)`; the command prints it and the wizard shows it.
pub fn holds(meta: &Meta) -> String {
    format!(
        "{} bytes, sha256 {}, revision {}, {} keys, from member {} (taken on {})",
        meta.size,
        meta.sha256,
        meta.revision.map_or("?".into(), |r| r.to_string()),
        meta.keys.map_or("?".into(), |k| k.to_string()),
        meta.member,
        meta.node
    )
}

/// The `sha256sum` line kept beside the snapshot (`sha256sum -c` checks it).
pub fn sum_line(sha256: &str) -> String {
    format!("{sha256}  {SNAPSHOT}\n")
}

/// The sha256 of a `sha256sum` line for `SNAPSHOT`, if it is one.
pub fn parse_sum_line(text: &str) -> Option<String> {
    let (sum, file) = text.trim_end().split_once("  ")?;
    (file == SNAPSHOT && sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| sum.to_ascii_lowercase())
}

/// The cluster's etcd as `steps/etcd-status.sh` reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Live {
    /// Each member of `KSW_ETCD` (its IP) and whether it answered healthy.
    pub members: Vec<(String, bool)>,
    /// Revision and key count as the first healthy member gave them.
    pub revision: Option<u64>,
    pub keys: Option<u64>,
}

impl Live {
    /// `MEMBER ip healthy|unhealthy`, `REVISION n`, `KEYS n` lines; anything else is ignored.
    pub fn parse(out: &str) -> Live {
        let mut live = Live::default();
        for line in out.lines() {
            let mut w = line.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("MEMBER"), Some(ip), Some(state)) => {
                    live.members.push((ip.to_string(), state == "healthy"));
                }
                (Some("REVISION"), Some(n), None) => live.revision = n.parse().ok(),
                (Some("KEYS"), Some(n), None) => live.keys = n.parse().ok(),
                _ => {}
            }
        }
        live
    }

    pub fn healthy_count(&self) -> usize {
        self.members.iter().filter(|(_, ok)| *ok).count()
    }

    /// Every member answered healthy.
    pub fn healthy(&self) -> bool {
        !self.members.is_empty() && self.healthy_count() == self.members.len()
    }
}

fn or_unknown(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".into(), |n| n.to_string())
}

/// What a restore from the snapshot `meta` will lose, said before anything changes, given the
/// time `now` and the cluster as it answered (`None`: no member could be asked).
pub fn loss_lines(meta: Option<&Meta>, now: u64, live: Option<&Live>) -> Vec<String> {
    let mut out = Vec::new();
    match meta {
        Some(m) => out.push(format!(
            "The snapshot: taken {} ({} ago) from member {} by {}, revision {}, {} keys, {} bytes.",
            utc_text(m.taken),
            age_text(now.saturating_sub(m.taken)),
            m.member,
            m.node,
            or_unknown(m.revision),
            or_unknown(m.keys),
            m.size
        )),
        None => out.push(
            "The snapshot: not a kswizard backup (no meta.json beside it): its time, revision and keys are unknown.".into(),
        ),
    }
    let Some(live) = live.filter(|l| l.healthy_count() > 0) else {
        out.push(
            "The cluster now: no etcd member answered, so what it holds cannot be compared; everything written since the snapshot is lost.".into(),
        );
        return out;
    };
    out.push(format!(
        "The cluster now: {} of {} members healthy, revision {}, {} keys.",
        live.healthy_count(),
        live.members.len(),
        or_unknown(live.revision),
        or_unknown(live.keys)
    ));
    let (snap_rev, live_rev) = (meta.and_then(|m| m.revision), live.revision);
    out.push(match (snap_rev, live_rev) {
        (Some(s), Some(l)) if l > s => format!(
            "Restoring loses the {} made since the snapshot{}.",
            count(l - s, "revision (write)", "revisions (writes)"),
            keys_change(meta.and_then(|m| m.keys), live.keys)
        ),
        (Some(s), Some(l)) if l == s => {
            "Restoring loses nothing: the cluster is at the snapshot's revision.".into()
        }
        (Some(_), Some(_)) => {
            "The cluster is at an EARLIER revision than the snapshot: it is not the cluster the snapshot was taken from, or it was restored since. Restoring replaces all of its data.".into()
        }
        _ => "Restoring loses everything written since the snapshot (the revisions cannot be compared).".into(),
    });
    out
}

/// `1 key`, `4 keys`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `; the cluster has 4 keys more than the snapshot` and the like, or nothing when unknown.
fn keys_change(snapshot: Option<u64>, live: Option<u64>) -> String {
    match (snapshot, live) {
        (Some(s), Some(l)) if l > s => {
            format!(
                ": it has {} more now than then",
                count(l - s, "key", "keys")
            )
        }
        (Some(s), Some(l)) if l < s => format!(
            ": {} deleted since {} back",
            count(s - l, "key", "keys"),
            if s - l == 1 { "comes" } else { "come" }
        ),
        (Some(_), Some(_)) => ": as many keys now as then, some of them changed".into(),
        _ => String::new(),
    }
}

/// Why a restore is refused on this cluster without `--force`, if it is: while a majority of its
/// members is healthy it has quorum and serves, and a restore would throw away what it holds; a
/// member or two down is mended by replacing them, not by a restore.
pub fn refusal(live: &Live, force: bool) -> Option<String> {
    let (up, all) = (live.healthy_count(), live.members.len());
    if force || up * 2 <= all {
        return None;
    }
    Some(if up == all {
        format!(
            "etcd is healthy ({up} of {all} members): a restore would replace its data with the snapshot's. Back it up first (`kswizard etcd backup`), then pass --force to restore anyway."
        )
    } else {
        format!(
            "etcd has quorum ({up} of {all} members healthy) and serves: a restore would replace its data with the snapshot's. A member down is replaced (`kswizard remove`, then install it again), not restored; pass --force to restore anyway."
        )
    })
}

/// Why a restore is refused while the conf's etcd members are not the installed ones: it
/// rebuilds exactly the members the conf lists (`KSW_ETCD`), so a host added to or removed from
/// `[etcd]` but not yet installed or removed would be given a member that never was, or lose one.
pub fn membership_refusal(changes: &[Change]) -> Option<String> {
    let etcd: Vec<String> = changes
        .iter()
        .filter(|c| match c {
            Change::Added { roles, .. } | Change::Removed { roles, .. } => roles.etcd,
            Change::RolesChanged { from, to, .. } => from.etcd != to.etcd,
            Change::IpChanged { .. } | Change::TopologyChanged { .. } => true,
            Change::LbChanged { .. } => false,
        })
        .map(Change::what)
        .collect();
    (!etcd.is_empty()).then(|| {
        format!(
            "the conf's etcd members are not the installed cluster's ({}): a restore rebuilds the members the conf lists. Install the added hosts or remove the removed ones first (`kswizard status` shows the differences).",
            etcd.join("; ")
        )
    })
}

#[cfg(test)]
mod tests;
