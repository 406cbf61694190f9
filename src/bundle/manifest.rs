//! `manifest.yaml`: what a bundle holds. Each entry names a file in the bundle, the path and mode
//! it gets on the nodes, which roles need it, and its sha256 and size. Loading checks the
//! manifest's own shape; `verify` checks every file against it, before anything is copied.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::conf::ConfError;
use crate::engine::plan::Role;

/// The manifest's name in the bundle directory.
pub const MANIFEST: &str = "manifest.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The Kubernetes version the bundle is for, as `v1.28.2`.
    pub kubernetes: String,
    /// The nodes' architecture, as Go names it (`amd64`, `arm64`).
    pub arch: String,
    pub files: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What it is: `kubeadm`, `containerd`, `cni-bridge`, `calico.yaml`.
    pub name: String,
    pub version: String,
    /// Its path in the bundle, relative to the bundle directory.
    pub file: String,
    /// Its absolute path on the nodes.
    pub target: String,
    /// Octal, as a string (`"0755"`), so the file reads as `chmod` does.
    pub mode: String,
    pub sha256: String,
    pub size: u64,
    /// The nodes that need it, by plan role.
    pub roles: Vec<Role>,
    /// Where it was downloaded from (release files; not the lab's stand-ins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The member of the `source` archive this file was extracted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The published checksum file the download was verified against. A downloaded entry
    /// (`source` set) without one: upstream publishes no checksum, the sha256 was taken when
    /// it was fetched (`unpublished_checksum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_url: Option<String>,
    /// A lab stand-in, not the real tool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub standin: bool,
}

impl Entry {
    /// A file for `/usr/local/bin/NAME` from `bin/NAME` holding `content`, for every role: the
    /// tests' starting point.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, content: &[u8]) -> Entry {
        Entry {
            name: name.into(),
            version: "v1".into(),
            file: format!("bin/{name}"),
            target: format!("/usr/local/bin/{name}"),
            mode: "0755".into(),
            sha256: format!("{:x}", Sha256::digest(content)),
            size: content.len() as u64,
            roles: vec![Role::All],
            source: None,
            member: None,
            checksum_url: None,
            standin: false,
        }
    }

    /// The mode as a number; `load` has checked that it parses.
    pub fn mode_bits(&self) -> u32 {
        u32::from_str_radix(&self.mode, 8).unwrap_or(0o644)
    }

    /// Downloaded without a published checksum to check it against (see `checksum_url`).
    pub fn unpublished_checksum(&self) -> bool {
        self.source.is_some() && self.checksum_url.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// The manifest cannot be read or is not a manifest.
    Manifest(ConfError),
    /// A file of the bundle is missing, or its size or checksum differs from the manifest's.
    File {
        bundle: PathBuf,
        file: String,
        problem: String,
    },
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::Manifest(e) => write!(f, "{e}"),
            BundleError::File {
                bundle,
                file,
                problem,
            } => write!(
                f,
                "{}: {problem}. Fetch the bundle again \
                 (`kswizard bundle fetch`) or restore the file, then `kswizard bundle check {}`",
                bundle.join(file).display(),
                bundle.display()
            ),
        }
    }
}

impl std::error::Error for BundleError {}

impl Manifest {
    /// Read and check `DIR/manifest.yaml` (its shape only; `verify` checks the files).
    pub fn load(dir: &Path) -> Result<Manifest, BundleError> {
        let path = dir.join(MANIFEST);
        let f = std::fs::File::open(&path).map_err(|e| {
            BundleError::Manifest(ConfError::new(
                &path,
                0,
                format!(
                    "{e}: is {} a bundle (made by `kswizard bundle fetch`)?",
                    dir.display()
                ),
            ))
        })?;
        let bytes = crate::conf::limits::read_all(f, &path).map_err(BundleError::Manifest)?;
        let text = String::from_utf8_lossy(&bytes);
        Self::parse(&text, &path).map_err(BundleError::Manifest)
    }

    /// Parse a manifest's text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Manifest, ConfError> {
        crate::conf::limits::check_yaml(text, file)?;
        let m: Manifest = serde_yaml::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            ConfError::new(file, line, format!("not a bundle manifest: {e}"))
        })?;
        m.check().map_err(|msg| ConfError::new(file, 0, msg))?;
        Ok(m)
    }

    /// The manifest's own rules: safe relative files, absolute targets, octal modes, sha256s,
    /// and no two entries for one file or one target.
    fn check(&self) -> Result<(), String> {
        let mut files = HashSet::new();
        let mut targets = HashSet::new();
        for e in &self.files {
            let at = format!("entry '{}'", e.name);
            let rel = Path::new(&e.file);
            if e.file.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(format!(
                    "{at}: file '{}' must be a path inside the bundle (relative, no '..')",
                    e.file
                ));
            }
            let target = Path::new(&e.target);
            if !target.is_absolute()
                || target
                    .components()
                    .any(|c| matches!(c, Component::ParentDir))
                || e.target.ends_with('/')
                || e.target.chars().any(|c| c.is_control() || c == '\'')
            {
                return Err(format!(
                    "{at}: target '{}' must be an absolute file path without '..' or quotes",
                    e.target
                ));
            }
            if u32::from_str_radix(&e.mode, 8).map_or(true, |m| m > 0o7777) {
                return Err(format!(
                    "{at}: mode '{}' must be octal, as chmod takes it (\"0755\")",
                    e.mode
                ));
            }
            if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{at}: sha256 must be 64 hex digits"));
            }
            if e.roles.is_empty() {
                return Err(format!(
                    "{at}: roles must name who needs it (all, master, ...)"
                ));
            }
            if !files.insert(e.file.as_str()) {
                return Err(format!("{at}: file '{}' is listed twice", e.file));
            }
            if !targets.insert(e.target.as_str()) {
                return Err(format!("{at}: target '{}' is listed twice", e.target));
            }
        }
        Ok(())
    }

    pub fn render(&self) -> String {
        let body = serde_yaml::to_string(self).unwrap_or_default();
        format!(
            "# kswizard bundle manifest: `kswizard bundle check DIR` verifies the files.\n{body}"
        )
    }
}

/// The sha256 of a file, as lowercase hex, and its size.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((format!("{:x}", h.finalize()), size))
}

/// Check every file of the bundle in `dir` against `m`: present, the size and sha256 it lists.
pub fn verify(dir: &Path, m: &Manifest) -> Result<(), BundleError> {
    m.files.iter().try_for_each(|e| verify_entry(dir, e))
}

/// Check one file of the bundle in `dir` against its entry.
pub fn verify_entry(dir: &Path, e: &Entry) -> Result<(), BundleError> {
    let bad = |problem: String| BundleError::File {
        bundle: dir.to_path_buf(),
        file: e.file.clone(),
        problem,
    };
    let (sum, size) = sha256_file(&dir.join(&e.file)).map_err(|err| bad(err.to_string()))?;
    if size != e.size {
        return Err(bad(format!(
            "{size} bytes, the manifest says {} (a partial or different file)",
            e.size
        )));
    }
    if !sum.eq_ignore_ascii_case(&e.sha256) {
        return Err(bad(format!(
            "sha256 {sum}, the manifest says {} (a damaged or different file)",
            e.sha256
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, content: &[u8]) -> Entry {
        Entry::for_test(name, content)
    }

    fn bundle(entries: &[(&str, &[u8])]) -> (tempfile::TempDir, Manifest) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("bin")).unwrap();
        let mut m = Manifest {
            kubernetes: "v1.28.2".into(),
            arch: "amd64".into(),
            files: Vec::new(),
        };
        for (name, content) in entries {
            std::fs::write(d.path().join("bin").join(name), content).unwrap();
            m.files.push(entry(name, content));
        }
        std::fs::write(d.path().join(MANIFEST), m.render()).unwrap();
        (d, m)
    }

    #[test]
    fn a_written_manifest_loads_back_and_verifies() {
        let (d, m) = bundle(&[("kubeadm", b"kubeadm bytes"), ("kubectl", b"")]);
        let loaded = Manifest::load(d.path()).unwrap();
        assert_eq!(loaded, m);
        verify(d.path(), &loaded).unwrap();
        assert_eq!(loaded.files[0].mode_bits(), 0o755);
    }

    #[test]
    fn a_changed_file_is_refused_with_its_name() {
        let (d, m) = bundle(&[("kubeadm", b"kubeadm bytes"), ("kubelet", b"kubelet bytes")]);
        std::fs::write(d.path().join("bin/kubelet"), b"kubelet bytez").unwrap();
        let err = verify(d.path(), &m).unwrap_err().to_string();
        assert!(err.contains("bin/kubelet: sha256"), "{err}");
        assert!(err.contains("then `kswizard bundle check"), "{err}");
        std::fs::write(d.path().join("bin/kubelet"), b"kube").unwrap();
        let err = verify(d.path(), &m).unwrap_err().to_string();
        assert!(err.contains("4 bytes, the manifest says 13"), "{err}");
        std::fs::remove_file(d.path().join("bin/kubelet")).unwrap();
        let err = verify(d.path(), &m).unwrap_err().to_string();
        assert!(err.contains("bin/kubelet: No such file"), "{err}");
    }

    #[test]
    fn manifests_that_would_write_outside_their_place_are_refused() {
        let base = entry("kubeadm", b"x");
        let cases: Vec<(Entry, &str)> = vec![
            (
                Entry {
                    file: "../etc/passwd".into(),
                    ..base.clone()
                },
                "inside the bundle",
            ),
            (
                Entry {
                    file: "/etc/passwd".into(),
                    ..base.clone()
                },
                "inside the bundle",
            ),
            (
                Entry {
                    target: "usr/bin/x".into(),
                    ..base.clone()
                },
                "absolute",
            ),
            (
                Entry {
                    target: "/usr/../etc/x".into(),
                    ..base.clone()
                },
                "absolute",
            ),
            (
                Entry {
                    target: "/usr/bin/it's".into(),
                    ..base.clone()
                },
                "quotes",
            ),
            (
                Entry {
                    mode: "0799".into(),
                    ..base.clone()
                },
                "octal",
            ),
            (
                Entry {
                    mode: "17777".into(),
                    ..base.clone()
                },
                "octal",
            ),
            (
                Entry {
                    sha256: "abc".into(),
                    ..base.clone()
                },
                "64 hex",
            ),
            (
                Entry {
                    roles: vec![],
                    ..base.clone()
                },
                "roles",
            ),
        ];
        for (e, want) in cases {
            let m = Manifest {
                kubernetes: "v1".into(),
                arch: "amd64".into(),
                files: vec![e.clone()],
            };
            let err = Manifest::parse(&m.render(), Path::new("b/manifest.yaml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want) && err.contains("b/manifest.yaml"),
                "{e:?}: {err}"
            );
        }
        let m = Manifest {
            kubernetes: "v1".into(),
            arch: "amd64".into(),
            files: vec![
                base.clone(),
                Entry {
                    file: "bin/other".into(),
                    ..base
                },
            ],
        };
        let err = Manifest::parse(&m.render(), Path::new("m"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn unknown_keys_and_missing_manifests_say_where() {
        let err = Manifest::parse(
            "kubernetes: v1\narch: amd64\nfiles: []\nextra: 1\n",
            Path::new("m.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("m.yaml:4") && err.contains("extra"), "{err}");
        let d = tempfile::tempdir().unwrap();
        let err = Manifest::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("is ") && err.contains("a bundle"), "{err}");
    }
}
