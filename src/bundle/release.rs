//! The release table: for a Kubernetes version, the upstream files a bundle is built from, pinned.
//! Pure data and string work (no I/O): which versions go together, each file's official URL, where
//! its published checksum is and in which format, and which archive members go to which target.
//!
//! To support another Kubernetes minor: add a row to `PINS` (the versions kubeadm of that minor
//! expects, from its release notes) and its expected URLs to the unit tests.

use crate::engine::plan::Role;

/// Component versions that go with one Kubernetes minor.
struct Pins {
    minor: &'static str,
    /// The newest patch release of the minor (patches up to it are accepted).
    last_patch: u32,
    containerd: &'static str,
    runc: &'static str,
    cni_plugins: &'static str,
    crictl: &'static str,
    /// The etcd kubeadm of this minor deploys (`constants.DefaultEtcdVersion`).
    etcd: &'static str,
    calico: &'static str,
    ks_installer: &'static str,
}

const PINS: &[Pins] = &[
    Pins {
        minor: "1.28",
        last_patch: 15,
        containerd: "1.7.13",
        runc: "v1.1.12",
        cni_plugins: "v1.3.0",
        crictl: "v1.28.0",
        etcd: "v3.5.9",
        calico: "v3.26.4",
        ks_installer: "v3.4.1",
    },
    Pins {
        minor: "1.29",
        last_patch: 15,
        containerd: "1.7.13",
        runc: "v1.1.12",
        cni_plugins: "v1.4.0",
        crictl: "v1.29.0",
        etcd: "v3.5.10",
        calico: "v3.27.2",
        ks_installer: "v3.4.1",
    },
];

/// The architectures the table has URLs for, as Go names them.
pub const ARCHES: &[&str] = &["amd64", "arm64"];

/// The CNI plugins taken from the plugins tarball: what kubeadm clusters with Calico use
/// (Calico installs its own `calico` and `calico-ipam` from its manifest).
const CNI_PLUGINS: &[&str] = &[
    "bandwidth",
    "bridge",
    "firewall",
    "host-local",
    "loopback",
    "portmap",
    "tuning",
];

/// How upstream publishes a file's sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// A file at this URL: either the bare hex digest (dl.k8s.io), or `sha256sum` lines
    /// (`HEX  NAME`, one per release file) in which the line for the file's own name counts.
    Published { url: String },
    /// None (Calico's and `KubeSphere`'s manifests): the sha256 is taken when fetched, and the
    /// manifest and `fetch` say so.
    NotPublished,
}

/// Where one file of the bundle comes from and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The manifest entry's name: `kubeadm`, `cni-bridge`, `calico.yaml`.
    pub name: String,
    /// The member's path inside the archive (`None`: the download is the file itself).
    pub member: Option<String>,
    /// Its path in the bundle.
    pub file: String,
    pub target: String,
    pub mode: &'static str,
    pub roles: Vec<Role>,
}

/// One upstream download and the bundle files it yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The component: `kubeadm`, `containerd`, `etcd`.
    pub component: &'static str,
    pub version: String,
    /// The official URL.
    pub url: String,
    pub checksum: Checksum,
    /// A gzip'd tar whose listed members are extracted; else the download is the one output.
    pub archive: bool,
    pub outputs: Vec<Output>,
}

impl Artifact {
    /// The download's file name (the URL's last segment), as checksum lists name it.
    pub fn file_name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }

    /// A name for the download's partial file, unique per component, version and arch even
    /// where the URL's last segment is not (`kubeadm`).
    pub fn partial_name(&self, arch: &str) -> String {
        let name = self.file_name();
        if name.contains(&self.version) || name.contains(self.version.trim_start_matches('v')) {
            format!("{name}.part")
        } else {
            format!("{name}-{}-{arch}.part", self.version)
        }
    }
}

/// A Kubernetes version with the table's files for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub kubernetes: String,
    pub arch: String,
    pub artifacts: Vec<Artifact>,
}

/// The Kubernetes versions the table supports, for messages: `v1.28.0-v1.28.15, ...`.
pub fn supported() -> String {
    PINS.iter()
        .map(|p| format!("v{0}.0-v{0}.{1}", p.minor, p.last_patch))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The files of a bundle for Kubernetes `version` (`v1.28.2`) on `arch`; refused with the
/// supported versions when the table has none for it.
pub fn release(version: &str, arch: &str) -> Result<Release, String> {
    if !ARCHES.contains(&arch) {
        return Err(format!(
            "architecture '{arch}' is not one the table has files for: use one of {}",
            ARCHES.join(", ")
        ));
    }
    let refuse = || {
        format!(
            "Kubernetes '{version}' is not supported: use one of {} (as v1.28.2)",
            supported()
        )
    };
    let rest = version.strip_prefix('v').ok_or_else(refuse)?;
    let (minor, patch) = rest.rsplit_once('.').ok_or_else(refuse)?;
    let patch: u32 = patch
        .parse()
        .ok()
        .filter(|_| patch.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(refuse)?;
    let pins = PINS
        .iter()
        .find(|p| p.minor == minor && patch <= p.last_patch)
        .ok_or_else(refuse)?;
    Ok(Release {
        kubernetes: version.to_string(),
        arch: arch.to_string(),
        artifacts: artifacts(version, arch, pins),
    })
}

fn output(name: &str, member: Option<String>, dir: &str, target: &str, roles: &[Role]) -> Output {
    let base = target.rsplit('/').next().unwrap_or(name);
    Output {
        name: name.to_string(),
        member,
        file: format!("{dir}/{base}"),
        target: target.to_string(),
        mode: if dir == "addons" { "0644" } else { "0755" },
        roles: roles.to_vec(),
    }
}

fn published(url: String) -> Checksum {
    Checksum::Published { url }
}

fn artifacts(k8s: &str, arch: &str, p: &Pins) -> Vec<Artifact> {
    const ALL: &[Role] = &[Role::All];
    let gh = "https://github.com";
    let mut out: Vec<Artifact> = [
        ("kubeadm", ALL),
        ("kubelet", ALL),
        ("kubectl", &[Role::Master]),
    ]
    .into_iter()
    .map(|(tool, roles)| {
        let url = format!("https://dl.k8s.io/release/{k8s}/bin/linux/{arch}/{tool}");
        Artifact {
            component: tool,
            version: k8s.to_string(),
            checksum: published(format!("{url}.sha256")),
            url,
            archive: false,
            outputs: vec![output(
                tool,
                None,
                "bin",
                &format!("/usr/local/bin/{tool}"),
                roles,
            )],
        }
    })
    .collect();

    let ctd = p.containerd;
    let url = format!(
        "{gh}/containerd/containerd/releases/download/v{ctd}/containerd-{ctd}-linux-{arch}.tar.gz"
    );
    out.push(Artifact {
        component: "containerd",
        version: format!("v{ctd}"),
        checksum: published(format!("{url}.sha256sum")),
        url,
        archive: true,
        outputs: ["containerd", "containerd-shim-runc-v2", "ctr"]
            .iter()
            .map(|b| {
                output(
                    b,
                    Some(format!("bin/{b}")),
                    "bin",
                    &format!("/usr/local/bin/{b}"),
                    ALL,
                )
            })
            .collect(),
    });

    let base = format!("{gh}/opencontainers/runc/releases/download/{}", p.runc);
    out.push(Artifact {
        component: "runc",
        version: p.runc.to_string(),
        url: format!("{base}/runc.{arch}"),
        checksum: published(format!("{base}/runc.sha256sum")),
        archive: false,
        outputs: vec![output("runc", None, "sbin", "/usr/local/sbin/runc", ALL)],
    });

    let cni = p.cni_plugins;
    let url = format!(
        "{gh}/containernetworking/plugins/releases/download/{cni}/cni-plugins-linux-{arch}-{cni}.tgz"
    );
    out.push(Artifact {
        component: "cni-plugins",
        version: cni.to_string(),
        checksum: published(format!("{url}.sha256")),
        url,
        archive: true,
        outputs: CNI_PLUGINS
            .iter()
            .map(|pl| {
                output(
                    &format!("cni-{pl}"),
                    Some(format!("./{pl}")),
                    "cni",
                    &format!("/opt/cni/bin/{pl}"),
                    ALL,
                )
            })
            .collect(),
    });

    let cri = p.crictl;
    let url = format!(
        "{gh}/kubernetes-sigs/cri-tools/releases/download/{cri}/crictl-{cri}-linux-{arch}.tar.gz"
    );
    out.push(Artifact {
        component: "crictl",
        version: cri.to_string(),
        checksum: published(format!("{url}.sha256")),
        url,
        archive: true,
        outputs: vec![output(
            "crictl",
            Some("crictl".into()),
            "bin",
            "/usr/local/bin/crictl",
            ALL,
        )],
    });

    let etcd = p.etcd;
    let base = format!("{gh}/etcd-io/etcd/releases/download/{etcd}");
    // etcdctl on the masters too: they hold etcd client certificates, and checking the external
    // etcd from a master is the first thing to do when its apiserver cannot reach it.
    out.push(Artifact {
        component: "etcd",
        version: etcd.to_string(),
        url: format!("{base}/etcd-{etcd}-linux-{arch}.tar.gz"),
        checksum: published(format!("{base}/SHA256SUMS")),
        archive: true,
        outputs: [
            ("etcd", &[Role::Etcd][..]),
            ("etcdctl", &[Role::Etcd, Role::Master]),
        ]
        .iter()
        .map(|(b, roles)| {
            output(
                b,
                Some(format!("etcd-{etcd}-linux-{arch}/{b}")),
                "bin",
                &format!("/usr/local/bin/{b}"),
                roles,
            )
        })
        .collect(),
    });

    out.push(Artifact {
        component: "calico",
        version: p.calico.to_string(),
        url: format!(
            "https://raw.githubusercontent.com/projectcalico/calico/{}/manifests/calico.yaml",
            p.calico
        ),
        checksum: Checksum::NotPublished,
        archive: false,
        outputs: vec![output(
            "calico.yaml",
            None,
            "addons",
            "/etc/kswizard/addons/calico.yaml",
            &[Role::FirstMaster],
        )],
    });

    out.push(Artifact {
        component: "ks-installer",
        version: p.ks_installer.to_string(),
        url: format!(
            "{gh}/kubesphere/ks-installer/releases/download/{}/kubesphere-installer.yaml",
            p.ks_installer
        ),
        checksum: Checksum::NotPublished,
        archive: false,
        outputs: vec![output(
            "kubesphere-installer.yaml",
            None,
            "addons",
            "/etc/kswizard/addons/kubesphere-installer.yaml",
            &[Role::FirstMaster],
        )],
    });
    out
}

/// The URL a file is fetched from: the official one, or with a mirror base `BASE` the official
/// `https://HOST/PATH` as `BASE/HOST/PATH` (one tree for every upstream host).
pub fn fetch_url(official: &str, base: Option<&str>) -> String {
    match base {
        None => official.to_string(),
        Some(base) => {
            let rest = official
                .strip_prefix("https://")
                .or_else(|| official.strip_prefix("http://"))
                .unwrap_or(official);
            format!("{}/{rest}", base.trim_end_matches('/'))
        }
    }
}

/// The sha256 for `file_name` in a published checksum file: the bare digest (dl.k8s.io), or the
/// line naming the file in `sha256sum` output (`HEX  NAME`, `HEX *NAME`, `./NAME`).
pub fn parse_checksum(text: &str, file_name: &str) -> Result<String, String> {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut words = text.split_whitespace();
    if let (Some(only), None) = (words.next(), words.next())
        && is_hex(only)
    {
        return Ok(only.to_ascii_lowercase());
    }
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(hex), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = name.trim_start_matches('*').trim_start_matches("./");
        let name = name.rsplit('/').next().unwrap_or(name);
        if name == file_name && is_hex(hex) {
            return Ok(hex.to_ascii_lowercase());
        }
    }
    Err(format!(
        "it has no sha256 for {file_name} (expected a 64-hex digest, or a line `HEX  {file_name}`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(r: &Release) -> Vec<(String, String)> {
        r.artifacts
            .iter()
            .map(|a| {
                let sum = match &a.checksum {
                    Checksum::Published { url } => url.clone(),
                    Checksum::NotPublished => "-".into(),
                };
                (a.url.clone(), sum)
            })
            .collect()
    }

    #[test]
    fn v1_28_files_are_the_official_ones() {
        let r = release("v1.28.2", "amd64").unwrap();
        let gh = "https://github.com";
        let want = vec![
            (
                "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubeadm".to_string(),
                "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubeadm.sha256".to_string(),
            ),
            (
                "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubelet".into(),
                "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubelet.sha256".into(),
            ),
            (
                "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubectl".into(),
                "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubectl.sha256".into(),
            ),
            (
                format!("{gh}/containerd/containerd/releases/download/v1.7.13/containerd-1.7.13-linux-amd64.tar.gz"),
                format!("{gh}/containerd/containerd/releases/download/v1.7.13/containerd-1.7.13-linux-amd64.tar.gz.sha256sum"),
            ),
            (
                format!("{gh}/opencontainers/runc/releases/download/v1.1.12/runc.amd64"),
                format!("{gh}/opencontainers/runc/releases/download/v1.1.12/runc.sha256sum"),
            ),
            (
                format!("{gh}/containernetworking/plugins/releases/download/v1.3.0/cni-plugins-linux-amd64-v1.3.0.tgz"),
                format!("{gh}/containernetworking/plugins/releases/download/v1.3.0/cni-plugins-linux-amd64-v1.3.0.tgz.sha256"),
            ),
            (
                format!("{gh}/kubernetes-sigs/cri-tools/releases/download/v1.28.0/crictl-v1.28.0-linux-amd64.tar.gz"),
                format!("{gh}/kubernetes-sigs/cri-tools/releases/download/v1.28.0/crictl-v1.28.0-linux-amd64.tar.gz.sha256"),
            ),
            (
                format!("{gh}/etcd-io/etcd/releases/download/v3.5.9/etcd-v3.5.9-linux-amd64.tar.gz"),
                format!("{gh}/etcd-io/etcd/releases/download/v3.5.9/SHA256SUMS"),
            ),
            (
                "https://raw.githubusercontent.com/projectcalico/calico/v3.26.4/manifests/calico.yaml".into(),
                "-".into(),
            ),
            (
                format!("{gh}/kubesphere/ks-installer/releases/download/v3.4.1/kubesphere-installer.yaml"),
                "-".into(),
            ),
        ];
        assert_eq!(urls(&r), want);
    }

    #[test]
    fn targets_modes_and_roles_follow_the_delivery_contract() {
        let r = release("v1.29.3", "arm64").unwrap();
        let rows: Vec<String> = r
            .artifacts
            .iter()
            .flat_map(|a| &a.outputs)
            .map(|o| {
                let roles: Vec<_> = o.roles.iter().map(|r| r.name()).collect();
                format!(
                    "{} {} <- {} {} {}",
                    o.target,
                    o.mode,
                    o.file,
                    o.member.as_deref().unwrap_or("-"),
                    roles.join(",")
                )
            })
            .collect();
        let want = [
            "/usr/local/bin/kubeadm 0755 <- bin/kubeadm - all",
            "/usr/local/bin/kubelet 0755 <- bin/kubelet - all",
            "/usr/local/bin/kubectl 0755 <- bin/kubectl - master",
            "/usr/local/bin/containerd 0755 <- bin/containerd bin/containerd all",
            "/usr/local/bin/containerd-shim-runc-v2 0755 <- bin/containerd-shim-runc-v2 bin/containerd-shim-runc-v2 all",
            "/usr/local/bin/ctr 0755 <- bin/ctr bin/ctr all",
            "/usr/local/sbin/runc 0755 <- sbin/runc - all",
            "/opt/cni/bin/bandwidth 0755 <- cni/bandwidth ./bandwidth all",
            "/opt/cni/bin/bridge 0755 <- cni/bridge ./bridge all",
            "/opt/cni/bin/firewall 0755 <- cni/firewall ./firewall all",
            "/opt/cni/bin/host-local 0755 <- cni/host-local ./host-local all",
            "/opt/cni/bin/loopback 0755 <- cni/loopback ./loopback all",
            "/opt/cni/bin/portmap 0755 <- cni/portmap ./portmap all",
            "/opt/cni/bin/tuning 0755 <- cni/tuning ./tuning all",
            "/usr/local/bin/crictl 0755 <- bin/crictl crictl all",
            "/usr/local/bin/etcd 0755 <- bin/etcd etcd-v3.5.10-linux-arm64/etcd etcd",
            "/usr/local/bin/etcdctl 0755 <- bin/etcdctl etcd-v3.5.10-linux-arm64/etcdctl etcd,master",
            "/etc/kswizard/addons/calico.yaml 0644 <- addons/calico.yaml - first-master",
            "/etc/kswizard/addons/kubesphere-installer.yaml 0644 <- addons/kubesphere-installer.yaml - first-master",
        ];
        assert_eq!(rows, want);
        assert!(
            r.artifacts[0]
                .url
                .ends_with("/v1.29.3/bin/linux/arm64/kubeadm")
        );
        let versions: Vec<_> = r.artifacts.iter().map(|a| a.version.as_str()).collect();
        assert_eq!(
            versions,
            [
                "v1.29.3", "v1.29.3", "v1.29.3", "v1.7.13", "v1.1.12", "v1.4.0", "v1.29.0",
                "v3.5.10", "v3.27.2", "v3.4.1"
            ]
        );
    }

    #[test]
    fn other_versions_are_refused_with_the_supported_ones() {
        for v in [
            "v1.27.4", "1.28.2", "v1.28", "v1.28.16", "v1.28.x", "v1.30.0", "v1.28.+1", "",
        ] {
            let err = release(v, "amd64").unwrap_err();
            assert!(
                err.contains(&format!("'{v}' is not supported"))
                    && err.contains("v1.28.0-v1.28.15, v1.29.0-v1.29.15"),
                "{v}: {err}"
            );
        }
        let err = release("v1.28.2", "riscv64").unwrap_err();
        assert!(err.contains("amd64, arm64"), "{err}");
        assert!(release("v1.28.0", "amd64").is_ok() && release("v1.29.15", "amd64").is_ok());
    }

    #[test]
    fn a_base_url_takes_the_host_into_its_path() {
        let u = "https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubeadm";
        assert_eq!(fetch_url(u, None), u);
        assert_eq!(
            fetch_url(u, Some("http://127.0.0.1:8080/")),
            "http://127.0.0.1:8080/dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubeadm"
        );
        assert_eq!(
            fetch_url(
                "https://raw.githubusercontent.com/p/c.yaml",
                Some("https://mirror.example/k8s")
            ),
            "https://mirror.example/k8s/raw.githubusercontent.com/p/c.yaml"
        );
    }

    #[test]
    fn partial_names_differ_per_version_and_arch() {
        let a = release("v1.28.2", "amd64").unwrap();
        let b = release("v1.28.3", "arm64").unwrap();
        assert_eq!(
            a.artifacts[0].partial_name("amd64"),
            "kubeadm-v1.28.2-amd64.part"
        );
        assert_eq!(
            b.artifacts[0].partial_name("arm64"),
            "kubeadm-v1.28.3-arm64.part"
        );
        assert_eq!(
            a.artifacts[3].partial_name("amd64"),
            "containerd-1.7.13-linux-amd64.tar.gz.part"
        );
        assert_eq!(
            a.artifacts[4].partial_name("amd64"),
            "runc.amd64-v1.1.12-amd64.part"
        );
    }

    #[test]
    fn checksums_are_read_in_each_upstream_format() {
        let h = "ab".repeat(32);
        let o = "cd".repeat(32);
        assert_eq!(parse_checksum(&format!("{h}\n"), "kubeadm"), Ok(h.clone()));
        assert_eq!(
            parse_checksum(&format!("{}  c.tar.gz\n", h.to_uppercase()), "c.tar.gz"),
            Ok(h.clone())
        );
        let sums = format!("{o}  runc.arm64\n{h}  runc.amd64\n{o} *libseccomp.tar.gz\n");
        assert_eq!(parse_checksum(&sums, "runc.amd64"), Ok(h.clone()));
        assert_eq!(parse_checksum(&sums, "libseccomp.tar.gz"), Ok(o.clone()));
        let etcd =
            format!("{o}  etcd-v3.5.9-darwin-amd64.zip\n{h}  ./etcd-v3.5.9-linux-amd64.tar.gz\n");
        assert_eq!(
            parse_checksum(&etcd, "etcd-v3.5.9-linux-amd64.tar.gz"),
            Ok(h.clone())
        );
        for bad in [
            "",
            "<html>not found</html>",
            &format!("{h}  other\n"),
            "abc  kubeadm",
        ] {
            let err = parse_checksum(bad, "kubeadm").unwrap_err();
            assert!(err.contains("no sha256 for kubeadm"), "{bad}: {err}");
        }
    }
}
