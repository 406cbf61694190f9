//! `kswizard bundle fetch`: build a bundle on a machine with internet access. Each file of the
//! release table is downloaded to `DIR/.partial/`, resumed with a Range request after an
//! interruption, checked against its published sha256, and only then renamed into place (archives:
//! only their listed members, each through a temp name). The manifest is written last. A file of
//! an earlier fetch that still matches its entry is kept and not downloaded again.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::manifest::{self, Entry, MANIFEST, Manifest};
use super::release::{self, Artifact, Checksum, Output, Release};
use crate::conf::atomic::write_atomic_mode;

/// The environment variable that gives `--base-url` when the option is not given.
pub const BASE_URL_ENV: &str = "KSWIZARD_BUNDLE_BASE_URL";

/// Where downloads live until they are verified; the progress manifest of an unfinished fetch too.
const PARTIAL: &str = ".partial";

/// Tries per file within one fetch; each resumes where the last one stopped.
const TRIES: u32 = 3;

/// The bundle holds no secrets: files readable by all, as the release files are.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

pub struct Options<'a> {
    pub release: &'a Release,
    pub out: &'a Path,
    /// A mirror: every official `https://HOST/PATH` is fetched as `BASE/HOST/PATH`.
    pub base_url: Option<&'a str>,
}

/// What a fetch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Downloads made (checksum files not counted).
    pub downloaded: usize,
    /// Artifacts kept from an earlier fetch, not downloaded again.
    pub kept: usize,
    pub bytes: u64,
    /// Files whose upstream publishes no checksum.
    pub unpublished: Vec<String>,
}

/// Fetch every file of `opts.release` into `opts.out`, telling progress on `log`. An error names
/// the file and what to do; nothing unverified is ever in the bundle.
pub fn fetch(opts: &Options, log: &mut dyn Write) -> Result<Summary, String> {
    let out = opts.out;
    let partial = out.join(PARTIAL);
    make_dir(out)?;
    // One fetch per bundle at a time: two would write the same partial files. flock(2) on the
    // directory itself, released by the kernel when the holder exits, however it exits.
    let _held = lock(out)?;
    make_dir(&partial)?;
    let agent = agent();
    let known = earlier_entries(out);
    let mut entries: Vec<Entry> = Vec::new();
    let mut summary = Summary::default();
    let r = opts.release;
    for a in &r.artifacts {
        let label = format!("{} {}", a.component, a.version);
        if let Some(kept) = kept_entries(out, a, &known) {
            let _ = writeln!(log, "{label}: already in the bundle, not downloaded");
            entries.extend(kept);
            summary.kept += 1;
        } else {
            let expected = match &a.checksum {
                Checksum::Published { url } => Some(published_sum(&agent, a, url, opts.base_url)?),
                Checksum::NotPublished => None,
            };
            let part = partial.join(a.partial_name(&r.arch));
            let url = release::fetch_url(&a.url, opts.base_url);
            let mut got = download(&agent, &url, &part, &label, log)?;
            if got.resumed && expected.as_ref().is_some_and(|want| *want != got.sha256) {
                // The kept bytes may be of another file (a mirror that changed): once, whole.
                let _ = writeln!(
                    log,
                    "{label}: the resumed file does not match: starting over"
                );
                fs::remove_file(&part).map_err(|e| format!("{}: {e}", part.display()))?;
                got = download(&agent, &url, &part, &label, log)?;
            }
            check_sum(a, &part, &got, expected.as_deref())?;
            summary.downloaded += 1;
            summary.bytes += got.size;
            entries.extend(place(a, &part, &got, out)?);
        }
        if a.checksum == Checksum::NotPublished {
            summary
                .unpublished
                .extend(a.outputs.iter().map(|o| o.name.clone()));
        }
        // Progress of an unfinished fetch, so that a rerun keeps what is done.
        let progress = manifest_of(r, &entries);
        write_atomic_mode(
            &partial.join(MANIFEST),
            progress.render().as_bytes(),
            FILE_MODE,
        )
        .map_err(|e| format!("{}: {e}", partial.join(MANIFEST).display()))?;
    }
    let m = manifest_of(r, &entries);
    write_atomic_mode(&out.join(MANIFEST), m.render().as_bytes(), FILE_MODE)
        .map_err(|e| format!("{}: {e}", out.join(MANIFEST).display()))?;
    let _ = fs::remove_file(partial.join(MANIFEST));
    // Left only when empty: a partial download of another version stays resumable.
    let _ = fs::remove_dir(&partial);
    Ok(summary)
}

fn manifest_of(r: &Release, entries: &[Entry]) -> Manifest {
    Manifest {
        kubernetes: r.kubernetes.clone(),
        arch: r.arch.clone(),
        files: entries.to_vec(),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        // Status codes are answers to read (206, 416, 404 with a message), not transport errors.
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer fails, and the next try resumes it.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn lock(dir: &Path) -> Result<File, String> {
    let f = File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(format!(
            "{}: another `kswizard bundle fetch` is filling this bundle; wait for it to end",
            dir.display()
        )),
        Err(fs::TryLockError::Error(e)) => Err(format!("{}: cannot lock it: {e}", dir.display())),
    }
}

fn make_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Entries of an earlier fetch into this directory: its manifest, then an unfinished fetch's
/// progress. Unreadable ones are ignored: their files are fetched again.
fn earlier_entries(out: &Path) -> HashMap<String, Entry> {
    [out.to_path_buf(), out.join(PARTIAL)]
        .iter()
        .filter_map(|d| Manifest::load(d).ok())
        .flat_map(|m| m.files)
        .map(|e| (e.file.clone(), e))
        .collect()
}

/// The entry a fetch of `a` writes for `o`, given the file's sum and size.
fn entry(a: &Artifact, o: &Output, sha256: String, size: u64) -> Entry {
    Entry {
        name: o.name.clone(),
        version: a.version.clone(),
        file: o.file.clone(),
        target: o.target.clone(),
        mode: o.mode.to_string(),
        sha256,
        size,
        roles: o.roles.clone(),
        source: Some(a.url.clone()),
        member: o.member.clone(),
        checksum_url: match &a.checksum {
            Checksum::Published { url } => Some(url.clone()),
            Checksum::NotPublished => None,
        },
        standin: false,
    }
}

/// The earlier entries of every output of `a`, when each is the same entry as a fetch would
/// write now and its file still matches it.
fn kept_entries(out: &Path, a: &Artifact, known: &HashMap<String, Entry>) -> Option<Vec<Entry>> {
    a.outputs
        .iter()
        .map(|o| {
            let old = known.get(&o.file)?;
            let same = entry(a, o, old.sha256.clone(), old.size) == *old;
            (same && manifest::verify_entry(out, old).is_ok()).then(|| old.clone())
        })
        .collect()
}

/// The sha256 upstream publishes for `a`, read from its checksum file.
fn published_sum(
    agent: &ureq::Agent,
    a: &Artifact,
    sum_url: &str,
    base: Option<&str>,
) -> Result<String, String> {
    let url = release::fetch_url(sum_url, base);
    let refused = |why: String| {
        format!(
            "{} ({} {}): its published checksum {url}: {why}; nothing was downloaded",
            a.file_name(),
            a.component,
            a.version
        )
    };
    let mut resp = agent.get(&url).call().map_err(|e| refused(e.to_string()))?;
    if resp.status() != 200 {
        return Err(refused(format!("HTTP {}", resp.status())));
    }
    let text = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| refused(e.to_string()))?;
    release::parse_checksum(&text, a.file_name()).map_err(refused)
}

/// A finished download: its sha256 and size.
struct Got {
    sha256: String,
    size: u64,
    /// It went on from bytes an earlier try had left.
    resumed: bool,
}

enum TryError {
    /// Stopped on the way (the connection, a timeout): the next try resumes it.
    Interrupted(String),
    Fatal(String),
}

/// Download `url` to `part`, going on from what `part` already holds when the server can
/// (206 to a Range request), else from the start; up to `TRIES` tries.
fn download(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    label: &str,
    log: &mut dyn Write,
) -> Result<Got, String> {
    let mut last = String::new();
    for t in 1..=TRIES {
        let start = Instant::now();
        match try_download(agent, url, part, label, log) {
            Ok((got, fresh)) => {
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                let _ = writeln!(
                    log,
                    "{label}: {} bytes{} in {secs:.1} s ({:.1} MB/s)",
                    got.size,
                    if got.resumed {
                        format!(", {fresh} of them now (resumed)")
                    } else {
                        String::new()
                    },
                    fresh as f64 / secs / 1e6
                );
                return Ok(got);
            }
            Err(TryError::Fatal(e)) => return Err(e),
            Err(TryError::Interrupted(why)) => {
                let _ = writeln!(log, "{label}: interrupted (try {t} of {TRIES}): {why}");
                last = why;
                if t < TRIES {
                    std::thread::sleep(Duration::from_millis(500 * u64::from(t)));
                }
            }
        }
    }
    let held = fs::metadata(part).map_or(0, |m| m.len());
    Err(format!(
        "{label}: {url}: {last}; {held} bytes are kept in {} (not in the bundle): run \
         `kswizard bundle fetch` again to resume",
        part.display()
    ))
}

/// One try: the finished download, and how many bytes this try fetched.
fn try_download(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    label: &str,
    log: &mut dyn Write,
) -> Result<(Got, u64), TryError> {
    let fatal = |e: &dyn std::fmt::Display| TryError::Fatal(format!("{}: {e}", part.display()));
    let have = fs::metadata(part).map_or(0, |m| m.len());
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = req
        .call()
        .map_err(|e| TryError::Interrupted(e.to_string()))?;
    let status = resp.status().as_u16();
    let content_range = resp
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let resumed = have > 0 && status == 206 && content_range.starts_with(&format!("bytes {have}-"));
    match status {
        200 => {}
        206 if resumed => {}
        // The part is the whole file already, or longer than it: start over.
        416 if have > 0 => {
            fs::remove_file(part).map_err(|e| fatal(&e))?;
            return Err(TryError::Interrupted(
                "the server refused the range asked (HTTP 416): starting over".into(),
            ));
        }
        // Another range than the one asked (or one not asked for): the bytes would not line up.
        206 => {
            let _ = fs::remove_file(part);
            return Err(TryError::Interrupted(format!(
                "the server sent another range ({content_range}): starting over"
            )));
        }
        s => {
            return Err(TryError::Fatal(format!(
                "{label}: {url}: HTTP {s} (expected 200): is the version published there?"
            )));
        }
    }
    let mut hasher = Sha256::new();
    let mut size = 0;
    let mut file = if resumed {
        let _ = writeln!(log, "{label}: resuming at byte {have}");
        // The kept bytes count in the sum: read them once more.
        pump(
            &mut File::open(part).map_err(|e| fatal(&e))?,
            &mut io::sink(),
            &mut hasher,
            &mut size,
        )
        .map_err(|e| fatal(&e.0))?;
        OpenOptions::new().append(true).open(part)
    } else {
        if have > 0 {
            let _ = writeln!(
                log,
                "{label}: the server does not resume (HTTP {status}): starting over"
            );
        }
        File::create(part)
    }
    .map_err(|e| fatal(&e))?;
    let before = size;
    let mut body = resp.body_mut().as_reader();
    let r = pump(&mut body, &mut file, &mut hasher, &mut size);
    // What arrived is kept for the next try, even when the transfer broke off.
    file.sync_all().map_err(|e| fatal(&e))?;
    match r {
        Ok(()) => Ok((
            Got {
                sha256: format!("{:x}", hasher.finalize()),
                size,
                resumed,
            },
            size - before,
        )),
        Err(PumpError(e, Side::Read)) => Err(TryError::Interrupted(format!(
            "{e} after {} bytes",
            size - before
        ))),
        Err(PumpError(e, Side::Write)) => Err(fatal(&e)),
    }
}

enum Side {
    Read,
    Write,
}

struct PumpError(io::Error, Side);

/// Copy `r` to `w`, hashing and counting what passes; says which side failed.
fn pump(
    r: &mut dyn Read,
    w: &mut dyn Write,
    hasher: &mut Sha256,
    size: &mut u64,
) -> Result<(), PumpError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError(e, Side::Read)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| PumpError(e, Side::Write))?;
        hasher.update(&buf[..n]);
        *size += n as u64;
    }
}

/// Refuse a download whose sha256 is not the published one, and delete it.
fn check_sum(a: &Artifact, part: &Path, got: &Got, expected: Option<&str>) -> Result<(), String> {
    match expected {
        Some(want) if want != got.sha256 => {
            let _ = fs::remove_file(part);
            let sum_url = match &a.checksum {
                Checksum::Published { url } => url.as_str(),
                Checksum::NotPublished => "",
            };
            Err(format!(
                "{} ({} {}): sha256 {}, but {sum_url} publishes {want}: refused, nothing of it \
                 is in the bundle. A damaged download or a changed mirror: run the fetch again, \
                 and if it says the same, check where the file comes from",
                a.file_name(),
                a.component,
                a.version,
                got.sha256
            ))
        }
        _ => Ok(()),
    }
}

/// Put a verified download's outputs into the bundle and give their entries.
fn place(a: &Artifact, part: &Path, got: &Got, out: &Path) -> Result<Vec<Entry>, String> {
    let entries = if a.archive {
        let entries = extract(a, part, out)?;
        let _ = fs::remove_file(part);
        entries
    } else {
        let o = &a.outputs[0];
        let dest = out.join(&o.file);
        put(part, &dest, o.mode)?;
        vec![entry(a, o, got.sha256.clone(), got.size)]
    };
    Ok(entries)
}

/// Give `tmp` its mode and rename it to `dest`, in a directory of the bundle made if needed.
fn put(tmp: &Path, dest: &Path, mode: &str) -> Result<(), String> {
    if let Some(dir) = dest.parent() {
        make_dir(dir)?;
    }
    let bits = u32::from_str_radix(mode, 8).unwrap_or(FILE_MODE);
    fs::set_permissions(tmp, fs::Permissions::from_mode(bits))
        .and_then(|()| fs::rename(tmp, dest))
        .map_err(|e| format!("{}: {e}", dest.display()))
}

/// A member's path without `./` parts, as the table names it.
fn normal(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Extract the listed members of the archive `part` (gzip'd tar) into the bundle: each to a
/// temp name first, all renamed into place once every one is there.
fn extract(a: &Artifact, part: &Path, out: &Path) -> Result<Vec<Entry>, String> {
    let at = |e: &dyn std::fmt::Display| format!("{} ({}): {e}", a.file_name(), a.component);
    let mut wanted: HashMap<PathBuf, &Output> = a
        .outputs
        .iter()
        .filter_map(|o| Some((normal(Path::new(o.member.as_deref()?)), o)))
        .collect();
    let mut done: Vec<(PathBuf, PathBuf, Entry)> = Vec::new();
    let file = File::open(part).map_err(|e| at(&e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let result = (|| {
        for member in tar.entries().map_err(|e| at(&e))? {
            let mut member = member.map_err(|e| at(&e))?;
            let path = normal(&member.path().map_err(|e| at(&e))?);
            let Some(o) = wanted.remove(&path) else {
                continue;
            };
            if !member.header().entry_type().is_file() {
                return Err(at(&format!("{} is not a regular file", path.display())));
            }
            let dest = out.join(&o.file);
            if let Some(dir) = dest.parent() {
                make_dir(dir)?;
            }
            let tmp = dest.with_file_name(format!(
                ".{}.kswizard-tmp",
                dest.file_name().unwrap_or_default().to_string_lossy()
            ));
            let mut f = File::create(&tmp).map_err(|e| at(&e))?;
            let (mut hasher, mut size) = (Sha256::new(), 0);
            // Record it before writing, so that a failure removes it too.
            done.push((tmp.clone(), dest, entry(a, o, String::new(), 0)));
            pump(&mut member, &mut f, &mut hasher, &mut size).map_err(|e| at(&e.0))?;
            f.sync_all().map_err(|e| at(&e))?;
            if let Some((_, _, e)) = done.last_mut() {
                e.sha256 = format!("{:x}", hasher.finalize());
                e.size = size;
            }
        }
        if let Some(missing) = wanted.keys().next() {
            return Err(at(&format!(
                "the archive has no member {}: is it the release the table names?",
                missing.display()
            )));
        }
        Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _, _) in &done {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    // In the table's order, as the manifest lists them.
    let mut entries = Vec::new();
    for o in &a.outputs {
        if let Some((tmp, dest, e)) = done.iter().find(|(_, _, e)| e.file == o.file) {
            put(tmp, dest, o.mode)?;
            entries.push(e.clone());
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzip'd tar at `path` with `members`: (path, content, symlink target).
    fn tarball(path: &Path, members: &[(&str, &[u8], Option<&str>)]) {
        let gz =
            flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, content, link) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o755);
            if let Some(to) = link {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(to).unwrap();
            }
            h.set_cksum();
            b.append_data(&mut h, name, *content).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    fn etcd() -> Artifact {
        let r = release::release("v1.28.2", "amd64").unwrap();
        r.artifacts
            .into_iter()
            .find(|a| a.component == "etcd")
            .unwrap()
    }

    #[test]
    fn only_listed_members_are_extracted_and_a_missing_one_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let part = d.path().join("etcd.part");
        let out = d.path().join("b");
        let a = etcd();
        tarball(
            &part,
            &[
                ("etcd-v3.5.9-linux-amd64/etcd", b"fixture etcd", None),
                ("etcd-v3.5.9-linux-amd64/README.md", b"not wanted", None),
            ],
        );
        let err = extract(&a, &part, &out).unwrap_err();
        assert!(
            err.contains("has no member etcd-v3.5.9-linux-amd64/etcdctl"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(out.join("bin")).unwrap().count(), 0);

        tarball(
            &part,
            &[
                (
                    "./etcd-v3.5.9-linux-amd64/etcdctl",
                    b"fixture etcdctl",
                    None,
                ),
                ("etcd-v3.5.9-linux-amd64/etcd", b"fixture etcd", None),
                ("etcd-v3.5.9-linux-amd64/README.md", b"not wanted", None),
            ],
        );
        let entries = extract(&a, &part, &out).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["etcd", "etcdctl"], "in the table's order");
        assert_eq!(entries[1].size, 15);
        assert_eq!(
            std::fs::read(out.join("bin/etcdctl")).unwrap(),
            b"fixture etcdctl"
        );
        let mut files: Vec<_> = std::fs::read_dir(out.join("bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["etcd", "etcdctl"]);
    }

    #[test]
    fn a_second_fetch_into_a_bundle_being_filled_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let held = lock(d.path()).unwrap();
        let r = release::release("v1.28.2", "amd64").unwrap();
        let opts = Options {
            release: &r,
            out: d.path(),
            // Never asked: the lock is taken before any download.
            base_url: Some("http://127.0.0.1:9"),
        };
        let err = fetch(&opts, &mut io::sink()).unwrap_err();
        assert!(err.contains("another `kswizard bundle fetch`"), "{err}");
        drop(held);
        assert!(lock(d.path()).is_ok());
    }

    #[test]
    fn a_member_that_is_not_a_regular_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let part = d.path().join("etcd.part");
        let out = d.path().join("b");
        tarball(
            &part,
            &[
                ("etcd-v3.5.9-linux-amd64/etcd", b"", Some("/etc/shadow")),
                ("etcd-v3.5.9-linux-amd64/etcdctl", b"fixture etcdctl", None),
            ],
        );
        let err = extract(&etcd(), &part, &out).unwrap_err();
        assert!(
            err.contains("etcd-v3.5.9-linux-amd64/etcd is not a regular file"),
            "{err}"
        );
        assert!(!out.join("bin/etcd").exists());
    }
}
