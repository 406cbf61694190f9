//! `kswizard bundle fetch` and `bundle check` against a local HTTP server (127.0.0.1 only) that
//! serves fixture release files laid out as upstream's: fake binaries, tarballs built here, and
//! checksum files in each upstream's format (bare digest, `HEX  NAME`, lists of several files).
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::http::Server;
use kswizard::bundle::release::{self, Artifact, Checksum};
use kswizard::bundle::{MANIFEST, Manifest};
use sha2::{Digest, Sha256};

const K8S: &str = "v1.28.2";

/// A served path for an official URL: `https://HOST/PATH` → `/HOST/PATH`.
fn served(url: &str) -> String {
    url.strip_prefix("https:/").expect("https URL").to_string()
}

fn hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Fixture content of a fake release file (named as a fixture), `size` bytes or a little more.
fn fixture(what: &str, size: usize) -> Vec<u8> {
    let line = format!("kswizard test fixture: {what}, not the real file\n");
    line.repeat(size / line.len() + 1).into_bytes()
}

/// A gzip'd tar holding `members` (path, content).
fn tarball(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (path, content) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// The checksum file for `a` whose download is `body`, in its upstream's format.
fn checksum_file(a: &Artifact, sum_url: &str, body: &[u8]) -> String {
    let sum = hex(body);
    let name = a.file_name();
    let other = hex(b"another file of the release");
    if sum_url.ends_with("/SHA256SUMS") {
        // etcd: every file of the release, `./` before no name.
        format!(
            "{other}  etcd-{v}-darwin-amd64.zip\n{sum}  {name}\n{other}  etcd-{v}-linux-arm64.tar.gz\n",
            v = a.version
        )
    } else if sum_url.ends_with("/runc.sha256sum") {
        format!("{other}  libseccomp-2.5.4.tar.gz\n{sum}  {name}\n{other}  runc.arm64\n")
    } else if sum_url.starts_with("https://dl.k8s.io/") {
        sum
    } else {
        format!("{sum}  {name}\n")
    }
}

/// Serve every file of the release on `srv`; gives the expected content of each bundle file.
fn serve_release(srv: &Server) -> Vec<(String, Vec<u8>)> {
    let r = release::release(K8S, "amd64").unwrap();
    let mut expected = Vec::new();
    for a in &r.artifacts {
        let body = if a.archive {
            let mut members: Vec<(String, Vec<u8>)> = a
                .outputs
                .iter()
                .map(|o| {
                    let content = fixture(&format!("{} {}", o.name, a.version), 3000);
                    expected.push((o.file.clone(), content.clone()));
                    (o.member.clone().unwrap(), content)
                })
                .collect();
            // A member the table does not list: it must stay out of the bundle.
            members.push(("unlisted-extra".into(), fixture("unlisted", 100)));
            tarball(&members)
        } else {
            // kubelet is the big one: large enough to be cut and resumed several times.
            let size = if a.component == "kubelet" {
                200_000
            } else {
                5000
            };
            let content = fixture(&format!("{} {}", a.component, a.version), size);
            expected.push((a.outputs[0].file.clone(), content.clone()));
            content
        };
        if let Checksum::Published { url } = &a.checksum {
            srv.put(&served(url), checksum_file(a, url, &body).into_bytes());
        }
        srv.put(&served(&a.url), body);
    }
    expected
}

/// A server with the release on it, and a temp dir for the bundle.
struct Setup {
    srv: Server,
    /// Each bundle file and its content.
    expected: Vec<(String, Vec<u8>)>,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let srv = Server::start();
    let expected = serve_release(&srv);
    let dir = tempfile::tempdir().unwrap();
    Setup {
        srv,
        expected,
        out: dir.path().join("bundle"),
        _dir: dir,
    }
}

fn kswizard(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kswizard"));
    c.args(args);
    // Nothing goes through a proxy: the server is on this machine.
    for v in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c.env_remove("KSWIZARD_BUNDLE_BASE_URL");
    c.output().expect("run kswizard")
}

fn fetch(srv: &Server, out: &Path) -> Output {
    kswizard(&[
        "bundle",
        "fetch",
        "--version",
        K8S,
        "--out",
        out.to_str().unwrap(),
        "--base-url",
        &srv.base,
    ])
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Its stdout and stderr, once it is seen to exit with `code`.
fn exits(o: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = text(o);
    assert_eq!(o.status.code(), Some(code), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Every regular file under `dir`, relative, sorted.
fn files_in(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn kubelet_path() -> String {
    served(&format!(
        "https://dl.k8s.io/release/{K8S}/bin/linux/amd64/kubelet"
    ))
}

#[test]
fn a_full_fetch_gives_a_bundle_that_checks_and_a_second_fetch_downloads_nothing() {
    let s = setup();
    let (srv, out) = (&s.srv, &s.out);
    let expected = &s.expected;
    let o = fetch(srv, out);
    let (stdout, _) = exits(&o, 0);
    assert!(stdout.contains("kubelet v1.28.2: 200"), "{stdout}");
    assert!(stdout.contains("MB/s"), "{stdout}");
    for name in ["calico.yaml", "kubesphere-installer.yaml"] {
        assert!(
            stdout.contains(&format!("warning: {name}: upstream publishes no checksum")),
            "{stdout}"
        );
    }

    let m = Manifest::load(out).unwrap();
    assert_eq!((m.kubernetes.as_str(), m.arch.as_str()), (K8S, "amd64"));
    let names: Vec<_> = m.files.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kubeadm",
            "kubelet",
            "kubectl",
            "containerd",
            "containerd-shim-runc-v2",
            "ctr",
            "runc",
            "cni-bandwidth",
            "cni-bridge",
            "cni-firewall",
            "cni-host-local",
            "cni-loopback",
            "cni-portmap",
            "cni-tuning",
            "crictl",
            "etcd",
            "etcdctl",
            "calico.yaml",
            "kubesphere-installer.yaml"
        ]
    );
    for (file, content) in expected {
        let e = m.files.iter().find(|e| &e.file == file).unwrap();
        assert_eq!(e.sha256, hex(content), "{file}");
        assert_eq!(e.size, content.len() as u64, "{file}");
        assert_eq!(std::fs::read(out.join(file)).unwrap(), *content, "{file}");
        let mode = std::fs::metadata(out.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(format!("{mode:04o}"), e.mode, "{file}");
        assert!(
            e.source.as_deref().unwrap().starts_with("https://"),
            "{e:?}"
        );
        assert_eq!(
            e.unpublished_checksum(),
            file.starts_with("addons/"),
            "{e:?}"
        );
    }
    let row = |n: &str| m.files.iter().find(|e| e.name == n).unwrap();
    assert_eq!(row("kubeadm").target, "/usr/local/bin/kubeadm");
    assert_eq!(row("runc").target, "/usr/local/sbin/runc");
    assert_eq!(row("cni-bridge").target, "/opt/cni/bin/bridge");
    assert_eq!(row("calico.yaml").mode, "0644");
    assert_eq!(
        row("etcd").member.as_deref(),
        Some("etcd-v3.5.9-linux-amd64/etcd")
    );
    // Only the listed members, no partial files, no temp names: the files and the manifest.
    let mut want: BTreeSet<String> = expected.iter().map(|(f, _)| f.clone()).collect();
    want.insert(MANIFEST.into());
    assert_eq!(files_in(out), want);
    let meta = std::fs::metadata(out).unwrap().permissions().mode() & 0o777;
    assert_eq!(meta, 0o755);
    assert_eq!(
        std::fs::metadata(out.join(MANIFEST))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );

    let o = kswizard(&["bundle", "check", out.to_str().unwrap()]);
    let (stdout, _) = exits(&o, 0);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 19);
    assert!(stdout.contains("19 files, 19 ok, 0 bad"), "{stdout}");

    srv.take_requests();
    let o = fetch(srv, out);
    let (stdout, _) = exits(&o, 0);
    assert_eq!(
        srv.take_requests(),
        [],
        "a complete bundle asks for nothing"
    );
    assert!(
        stdout.contains("0 downloaded (0.0 MB), 10 already there: nothing downloaded"),
        "{stdout}"
    );
}

#[test]
fn a_wrong_published_checksum_is_refused_naming_the_file_and_nothing_of_it_stays() {
    let s = setup();
    let (srv, out) = (&s.srv, &s.out);
    let wrong = hex(b"not the file");

    // A plain file.
    let sum = format!("{}.sha256", kubelet_path());
    srv.put(&sum, wrong.clone().into_bytes());
    let o = fetch(srv, out);
    let (_, stderr) = exits(&o, 1);
    let got = hex(&srv.get(&kubelet_path()));
    assert!(
        stderr.contains(&format!("kubelet (kubelet v1.28.2): sha256 {got}, but https://dl.k8s.io/release/v1.28.2/bin/linux/amd64/kubelet.sha256 publishes {wrong}: refused")),
        "{stderr}"
    );
    let files = files_in(out);
    assert!(!files.iter().any(|f| f.contains("kubelet")), "{files:?}");
    assert!(!files.contains(MANIFEST), "{files:?}");
    // What came before it is there, verified, and kept for the next run.
    assert!(files.contains("bin/kubeadm"), "{files:?}");

    // An archive: none of its members reach the bundle.
    srv.put(&sum, hex(&srv.get(&kubelet_path())).into_bytes());
    let r = release::release(K8S, "amd64").unwrap();
    let ctd = r
        .artifacts
        .iter()
        .find(|a| a.component == "containerd")
        .unwrap();
    srv.put(
        &served(&format!("{}.sha256sum", ctd.url)),
        format!("{wrong}  {}\n", ctd.file_name()).into_bytes(),
    );
    srv.take_requests();
    let o = fetch(srv, out);
    let (stdout, stderr) = exits(&o, 1);
    assert!(
        stderr.contains("containerd-1.7.13-linux-amd64.tar.gz (containerd v1.7.13): sha256")
            && stderr.contains(&format!("publishes {wrong}: refused")),
        "{stderr}"
    );
    let files = files_in(out);
    assert!(
        !files
            .iter()
            .any(|f| f.contains("containerd") || f.contains("ctr")),
        "{files:?}"
    );
    assert!(
        stdout.contains("kubeadm v1.28.2: already in the bundle"),
        "{stdout}"
    );
    let asked: Vec<_> = srv.take_requests().into_iter().map(|r| r.path).collect();
    assert!(!asked.iter().any(|p| p.ends_with("/kubeadm")), "{asked:?}");
}

#[test]
fn an_interrupted_download_never_reaches_the_bundle_and_the_next_fetch_resumes_it() {
    let s = setup();
    let (srv, out) = (&s.srv, &s.out);
    let expected = &s.expected;
    // As upstream, the official path redirects to where the bytes are (dl.k8s.io to its CDN):
    // the Range header must reach the redirect's target.
    let official = kubelet_path();
    let kubelet = "/cdn.dl.k8s.io/kubelet".to_string();
    srv.put(&kubelet, srv.get(&official));
    srv.redirect(&official, &kubelet);
    srv.cut(&kubelet, Some(1000));
    let o = fetch(srv, out);
    let (_, stderr) = exits(&o, 1);
    assert!(
        stderr.contains("kubelet v1.28.2: http://127.0.0.1")
            && stderr.contains("3000 bytes are kept in")
            && stderr.contains("run `kswizard bundle fetch` again to resume"),
        "{stderr}"
    );
    // Each try went on from the last one.
    let ranges: Vec<_> = srv
        .take_requests()
        .into_iter()
        .filter(|r| r.path == kubelet)
        .map(|r| (r.range, r.status))
        .collect();
    assert_eq!(
        ranges,
        [
            (None, 200),
            (Some("bytes=1000-".into()), 206),
            (Some("bytes=2000-".into()), 206)
        ]
    );
    let files = files_in(out);
    assert!(
        !files.contains("bin/kubelet") && !files.contains(MANIFEST),
        "{files:?}"
    );
    let part = out.join(".partial/kubelet-v1.28.2-amd64.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 3000);

    srv.cut(&kubelet, None);
    let o = fetch(srv, out);
    let (stdout, _) = exits(&o, 0);
    assert!(
        stdout.contains("kubelet v1.28.2: resuming at byte 3000"),
        "{stdout}"
    );
    let asked = srv.take_requests();
    let k: Vec<_> = asked.iter().filter(|r| r.path == kubelet).collect();
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!(
        (k[0].range.as_deref(), k[0].status),
        (Some("bytes=3000-"), 206)
    );
    assert!(
        !asked.iter().any(|r| r.path.ends_with("/kubeadm")),
        "kept from the first run"
    );
    let want = &expected.iter().find(|(f, _)| f == "bin/kubelet").unwrap().1;
    assert_eq!(std::fs::read(out.join("bin/kubelet")).unwrap(), *want);
    assert!(!out.join(".partial").exists());
    let o = kswizard(&["bundle", "check", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[test]
fn a_server_without_ranges_makes_the_download_start_over() {
    let s = setup();
    let (srv, out) = (&s.srv, &s.out);
    let expected = &s.expected;
    let kubelet = kubelet_path();
    srv.cut(&kubelet, Some(1500));
    assert_eq!(fetch(srv, out).status.code(), Some(1));
    srv.cut(&kubelet, None);
    srv.no_range(true);
    srv.take_requests();
    let o = fetch(srv, out);
    let (stdout, _) = exits(&o, 0);
    assert!(
        stdout.contains("kubelet v1.28.2: the server does not resume (HTTP 200): starting over"),
        "{stdout}"
    );
    let k: Vec<_> = srv
        .take_requests()
        .into_iter()
        .filter(|r| r.path == kubelet)
        .collect();
    assert_eq!(
        (k.len(), k[0].range.as_deref(), k[0].status),
        (1, Some("bytes=4500-"), 200)
    );
    let want = &expected.iter().find(|(f, _)| f == "bin/kubelet").unwrap().1;
    assert_eq!(std::fs::read(out.join("bin/kubelet")).unwrap(), *want);
}

#[test]
fn check_names_a_damaged_file_and_exits_1() {
    let s = setup();
    let (srv, out) = (&s.srv, &s.out);
    assert_eq!(fetch(srv, out).status.code(), Some(0));
    let bridge = out.join("cni/bridge");
    let mut bytes = std::fs::read(&bridge).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&bridge, bytes).unwrap();
    let o = kswizard(&["bundle", "check", out.to_str().unwrap()]);
    let (stdout, stderr) = exits(&o, 1);
    assert!(
        stdout.contains("BAD   cni/bridge") && stdout.contains("a damaged or different file"),
        "{stdout}"
    );
    assert!(stdout.contains("19 files, 18 ok, 1 bad"), "{stdout}");
    assert!(
        stderr.contains(&format!("{}: sha256", bridge.display())),
        "{stderr}"
    );
}

#[test]
fn unsupported_versions_and_bad_base_urls_are_refused_before_any_download() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("b");
    let o = kswizard(&[
        "bundle",
        "fetch",
        "--version",
        "v1.27.3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("'v1.27.3' is not supported: use one of v1.28.0-v1.28.15, v1.29.0-v1.29.15"),
        "{stderr}"
    );
    let o = kswizard(&[
        "bundle",
        "fetch",
        "--version",
        K8S,
        "--out",
        out.to_str().unwrap(),
        "--base-url",
        "ftp://x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists());
    let o = kswizard(&["bundle", "check", d.path().to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("manifest.yaml"), "{stderr}");
}

#[test]
fn a_file_the_server_does_not_have_is_named_and_the_bundle_gets_no_manifest() {
    let s = setup();
    let (srv, out) = (&s.srv, &s.out);
    let kubectl = served(&format!(
        "https://dl.k8s.io/release/{K8S}/bin/linux/amd64/kubectl"
    ));
    srv.redirect(&kubectl, "/nowhere/kubectl");
    let o = fetch(srv, out);
    let (_, stderr) = exits(&o, 1);
    assert!(
        stderr.contains(&format!(
            "kubectl v1.28.2: {}{kubectl}: HTTP 404 (expected 200)",
            srv.base
        )),
        "{stderr}"
    );
    let files = files_in(out);
    assert!(
        !files.contains(MANIFEST) && !files.contains("bin/kubectl"),
        "{files:?}"
    );
}
