//! The lab's artifact bundle, made by `lab up` beside its conf: what the nodes get through the
//! install's own `deliver` step, as real machines get a fetched bundle. The Kubernetes binaries
//! and manifests are stand-ins (`assets/lab/stand-ins/`, `assets/lab/bundle/`), named as such in
//! the manifest; etcd and etcdctl are Debian's real ones, from this machine.

use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr, bail};

use crate::bundle::manifest::sha256_file;
use crate::bundle::{Entry, MANIFEST, Manifest};
use crate::engine::paths::ASSETS;
use crate::engine::plan::Role;
use crate::model::KUBERNETES_VERSION;

/// Debian's etcd, delivered to the etcd members and the masters (their health checks use
/// etcdctl); Debian packages them in etcd-server and etcd-client.
pub const ETCD: &[(&str, &str)] = &[("etcd", "/usr/bin/etcd"), ("etcdctl", "/usr/bin/etcdctl")];

/// Where a stand-in or a Debian binary goes on the nodes.
const BIN: &str = "/usr/local/bin";
const SBIN: &str = "/usr/local/sbin";
/// Where the plan's steps take the manifests they apply from.
pub const ADDONS: &str = "/etc/kswizard/addons";

/// Write the bundle into `dir` (created); returns it.
pub fn write(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir.join("files"))?;
    let mut files = Vec::new();
    let mut add = |name: &str,
                   body: &[u8],
                   target: String,
                   mode: &str,
                   roles: Vec<Role>,
                   standin: bool,
                   version: &str|
     -> Result<()> {
        let file = format!("files/{name}");
        let path = dir.join(&file);
        std::fs::write(&path, body).wrap_err_with(|| path.display().to_string())?;
        let (sha256, size) = sha256_file(&path)?;
        files.push(Entry {
            name: name.to_string(),
            version: version.to_string(),
            file,
            target,
            mode: mode.into(),
            sha256,
            size,
            roles,
            source: None,
            member: None,
            checksum_url: None,
            standin,
        });
        Ok(())
    };
    let standin_version = format!("{KUBERNETES_VERSION}-kswizard-lab-standin");
    for (path, body) in ASSETS {
        if let Some(name) = path.strip_prefix("lab/stand-ins/") {
            // Where a real bundle puts the tool: runc in sbin, as its release installs it.
            let dir = if name == "runc" { SBIN } else { BIN };
            add(
                name,
                body,
                format!("{dir}/{name}"),
                "0755",
                vec![Role::All],
                true,
                &standin_version,
            )?;
        } else if let Some(name) = path.strip_prefix("lab/bundle/") {
            let target = format!("{ADDONS}/{name}");
            add(
                name,
                body,
                target,
                "0644",
                vec![Role::FirstMaster],
                true,
                &standin_version,
            )?;
        }
    }
    // One Debian package version for both; etcdctl's own --version is v2-style help in 3.4.
    let etcd_version = etcd_version(ETCD[0].1);
    for (name, from) in ETCD {
        let body = std::fs::read(from).wrap_err_with(|| {
            format!("{from}: the lab's nodes get etcd from this machine; install Debian's etcd-server and etcd-client")
        })?;
        add(
            name,
            &body,
            format!("{BIN}/{name}"),
            "0755",
            vec![Role::Etcd, Role::Master],
            false,
            &etcd_version,
        )?;
    }
    if files.is_empty() {
        bail!("no stand-ins in this kswizard's assets");
    }
    let m = Manifest {
        kubernetes: KUBERNETES_VERSION.into(),
        arch: "amd64".into(),
        files,
    };
    crate::conf::atomic::write_atomic(&dir.join(MANIFEST), m.render().as_bytes(), 0o644)?;
    Ok(dir.to_path_buf())
}

/// `etcd --version`'s first line's version, or "debian" when it cannot be run.
fn etcd_version(bin: &str) -> String {
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.rsplit(' ').next())
                .map(|v| format!("v{v}-debian"))
        })
        .unwrap_or_else(|| "debian".into())
}
