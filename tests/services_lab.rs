//! Services as a real host runs them, checked on lab nodes from outside kswizard: containerd, the
//! kubelet and etcd as enabled systemd units after the bundled plan (the lab's bundle delivered by
//! the install), containerd with the systemd cgroup driver, the kubelet
//! restarted by systemd after a kill. And the package-repository path (`KSW_DELIVERY=packages`) on
//! nodes described as Debian-like and RHEL-like, with test fakes of apt-get, apt-mark, dnf, yum,
//! curl and gpg first on their PATH (`tests/fakes/package-tools`): what they were asked (pinned
//! versions, holds, the repository files) is asserted. Needs root and the lab.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::lab::lab_up;
use common::{finished, install, output_of};
use kswizard::lab::Node;

fn manifest(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `systemctl <verb> <units>` on a node: one word per unit.
fn systemctl(node: &Node, verb: &str, units: &str) -> Vec<String> {
    // is-active / is-enabled exit non-zero when a unit is not: the words are what is checked.
    let out = node
        .command("systemctl")
        .unwrap()
        .arg(verb)
        .args(units.split_whitespace())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A file of `node`, read from the taskbox.
fn read(node: &Node, path: &str) -> String {
    std::fs::read_to_string(node.path(path))
        .unwrap_or_else(|e| panic!("{}: {path}: {e}", node.name))
}

fn kubelet_pid(node: &Node) -> String {
    node.exec("systemctl show -p MainPID --value kubelet.service")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs root and the lab"]
fn the_bundled_plan_runs_containerd_kubelet_and_etcd_as_enabled_systemd_services() {
    let g = lab_up(191, 2);
    let (code, events) = install(&g.lab.conf_dir, &manifest("assets/plan.yaml"), &[]);
    assert_eq!(code, 0, "{:?}", finished(&events));
    for n in &g.lab.nodes {
        // The lab says which path it exercised.
        let runtime = output_of(&events, &n.name, "container-runtime");
        assert!(
            runtime.contains("containerd: systemd unit containerd.service (bundle"),
            "{runtime}"
        );
        assert!(runtime.contains("runtime ready (crictl info)"), "{runtime}");
        let kube = output_of(&events, &n.name, "kube-packages");
        assert!(
            kube.contains("kubelet: systemd unit kubelet.service with kubeadm's drop-in (bundle"),
            "{kube}"
        );
        assert!(kube.contains("until kubeadm init/join writes"), "{kube}");

        let units = if n.name == "master1" {
            "containerd kubelet kswizard-etcd"
        } else {
            "containerd kubelet"
        };
        let count = units.split_whitespace().count();
        assert_eq!(
            systemctl(n, "is-active", units),
            vec!["active"; count],
            "{}",
            n.name
        );
        assert_eq!(
            systemctl(n, "is-enabled", units),
            vec!["enabled"; count],
            "{}",
            n.name
        );
        let config = read(n, "/etc/containerd/config.toml");
        assert!(
            config.contains("            SystemdCgroup = true\n"),
            "{config}"
        );
        assert!(config.contains("    systemd_cgroup = false\n"), "{config}");
        assert!(
            read(n, "/etc/systemd/system/containerd.service")
                .contains("ExecStart=/usr/local/bin/containerd\n")
        );
    }

    // crictl reports the runtime only while containerd serves its socket.
    let worker = &g.lab.nodes[1];
    worker.exec("systemctl stop containerd").unwrap();
    let down = worker
        .command("crictl")
        .unwrap()
        .arg("info")
        .output()
        .unwrap();
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("connection error"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    worker.exec("systemctl start containerd").unwrap();
    let up: String = worker
        .exec("crictl info")
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        up.contains(r#""type":"RuntimeReady","status":true"#),
        "{up}"
    );

    // A killed kubelet is restarted by systemd (RestartSec=10) and posts heartbeats again. The
    // bounds are give-up times with room for a loaded machine; the restart's time is printed.
    let before = kubelet_pid(worker);
    worker.exec(&format!("kill -9 {before}")).unwrap();
    let killed = Instant::now();
    let mut after = before.clone();
    while killed.elapsed() < Duration::from_secs(60) {
        after = kubelet_pid(worker);
        if after != before
            && after != "0"
            && systemctl(worker, "is-active", "kubelet") == ["active"]
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        after != before && after != "0",
        "kubelet not restarted: pid {before} -> {after}"
    );
    eprintln!(
        "kubelet restarted by systemd {:.1?} after kill -9",
        killed.elapsed()
    );
    let master = &g.lab.nodes[0];
    let mut listing = String::new();
    while killed.elapsed() < Duration::from_secs(90) {
        listing = master
            .exec("kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
            .unwrap();
        if listing.lines().filter(|l| l.contains(" Ready ")).count() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        listing.lines().filter(|l| l.contains(" Ready ")).count(),
        2,
        "{listing}"
    );
}

const UBUNTU: &str = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n";
const ROCKY: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n";
const CENTOS7: &str = "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\n";
const FEDORA: &str = "NAME=\"Fedora Linux\"\nVERSION=\"39 (Server Edition)\"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME=\"Fedora Linux 39 (Server Edition)\"\n";
const ARCH: &str = "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\n";

const FAKE_LOG: &str = "/var/log/kswizard-fake-packages.log";

/// Describe `node` as another distribution: its /etc/os-release, the test fakes of `tools` first on
/// root's PATH (/usr/local/sbin: sudo's `secure_path` starts there), and the lab bundle's stand-ins
/// where only the fakes take them from (their code, standin.py, where the wrappers run it).
fn describe(node: &Node, bundle: &Path, os_release: &str, tools: &[&str]) {
    let os = node.path("/etc/os-release");
    let _ = std::fs::remove_file(&os); // a link to /usr/lib/os-release in the image
    std::fs::write(&os, os_release).unwrap();
    let fake = node.path("/opt/kswizard-fake");
    std::fs::create_dir_all(fake.join("payload")).unwrap();
    std::fs::create_dir_all(fake.join("units")).unwrap();
    let tools_path = fake.join("package-tools");
    std::fs::copy(manifest("tests/fakes/package-tools"), &tools_path).unwrap();
    std::fs::set_permissions(&tools_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    for unit in ["containerd.service", "kubelet.service", "10-kubeadm.conf"] {
        std::fs::copy(
            manifest(&format!("tests/fakes/units/{unit}")),
            fake.join("units").join(unit),
        )
        .unwrap();
    }
    for tool in tools {
        symlink(
            "/opt/kswizard-fake/package-tools",
            node.path(&format!("/usr/local/sbin/{tool}")),
        )
        .unwrap();
    }
    for name in [
        "kubeadm",
        "kubelet",
        "kubectl",
        "crictl",
        "containerd",
        "runc",
    ] {
        std::fs::copy(
            bundle.join("files").join(name),
            fake.join("payload").join(name),
        )
        .unwrap();
    }
    let code = node.path("/usr/local/bin/standin.py");
    std::fs::copy(bundle.join("files/standin.py"), &code).unwrap();
    std::fs::set_permissions(&code, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The bundled plan cut to container-runtime and kube-packages (scripts by absolute path, no
/// retries: a refusal is final), next to `conf`.
fn runtime_plan(conf: &Path) -> PathBuf {
    let plan: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(manifest("assets/plan.yaml")).unwrap())
            .unwrap();
    let steps: Vec<serde_yaml::Value> = plan["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == "container-runtime" || s["id"] == "kube-packages")
        .map(|s| {
            let mut s = s.clone();
            let script = manifest(&format!("assets/{}", s["script"].as_str().unwrap()));
            s["script"] = script.display().to_string().into();
            s["retries"] = 0.into();
            s
        })
        .collect();
    assert_eq!(steps.len(), 2);
    let path = conf.parent().unwrap().join("plan.yaml");
    let mut cut = serde_yaml::Mapping::new();
    cut.insert("steps".into(), steps.into());
    std::fs::write(&path, serde_yaml::to_string(&cut).unwrap()).unwrap();
    path
}

/// The calls the fakes recorded on `node`, one per line.
fn asked(node: &Node) -> Vec<String> {
    std::fs::read_to_string(node.path(FAKE_LOG))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn position(calls: &[String], call: &str, node: &str) -> usize {
    calls.iter().position(|c| c == call).unwrap_or_else(|| {
        panic!("{node}: `{call}` was not asked; the fakes were asked {calls:#?}")
    })
}

#[test]
#[ignore = "needs root and the lab"]
fn the_package_path_asks_apt_dnf_and_yum_for_pinned_held_packages_and_refuses_other_distributions()
{
    let g = lab_up(192, 6);
    let nodes = &g.lab.nodes;
    let proxy = format!("http://{}.254:3128", g.lab.subnet); // never contacted: curl is the fake
    // Every node gets the fakes of apt-get, curl and gpg too, so that nothing real is ever asked.
    let everywhere = ["apt-get", "apt-mark", "curl", "gpg"];
    let bundle = g.lab.dir.join(kswizard::lab::BUNDLE_DIR);
    describe(&nodes[0], &bundle, UBUNTU, &everywhere);
    std::fs::write(
        nodes[0].path("/etc/apt/apt.conf.d/99kswizard-test-proxy"),
        format!("Acquire::https::Proxy \"{proxy}\";\n"),
    )
    .unwrap();
    describe(
        &nodes[1],
        &bundle,
        ROCKY,
        &[&everywhere[..], &["dnf", "yum"]].concat(),
    );
    describe(
        &nodes[2],
        &bundle,
        CENTOS7,
        &[&everywhere[..], &["yum"]].concat(),
    );
    describe(
        &nodes[3],
        &bundle,
        FEDORA,
        &[&everywhere[..], &["dnf"]].concat(),
    );
    describe(&nodes[4], &bundle, ARCH, &everywhere);
    describe(&nodes[5], &bundle, ROCKY, &everywhere); // without dnf or yum
    let (installed, refused) = nodes.split_at(4);
    for n in nodes {
        // The engine runs steps through sudo: its secure_path finds the fakes first.
        let found = n.exec("sudo -n bash -c 'command -v apt-get curl'").unwrap();
        assert_eq!(
            found, "/usr/local/sbin/apt-get\n/usr/local/sbin/curl\n",
            "{}",
            n.name
        );
    }

    let mut cluster = g.cluster();
    cluster.settings.bundle = None; // KSW_DELIVERY=packages
    let conf = g.conf_dir("packages", &cluster);
    let plan = runtime_plan(&conf);
    let (code, events) = install(&conf, &plan, &[]);
    assert_eq!(code, 1, "two nodes are refused: {:?}", finished(&events));
    let done = finished(&events);
    for n in installed {
        for step in ["container-runtime", "kube-packages"] {
            let (status, reason) = &done[&(n.name.clone(), step.to_string())];
            assert_eq!(
                status,
                "ok",
                "{} {step}: {reason}\n{}",
                n.name,
                output_of(&events, &n.name, step)
            );
        }
    }

    // Debian-like: the key through apt's proxy, the repository of the release's minor version,
    // the distribution's containerd, the Kubernetes packages pinned, then held.
    let (deb, calls) = (&nodes[0], asked(&nodes[0]));
    let key = position(
        &calls,
        &format!(
            "curl -fsSL --proxy {proxy} https://pkgs.k8s.io/core:/stable:/v1.28/deb/Release.key"
        ),
        &deb.name,
    );
    let dearmor = position(
        &calls,
        "gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg",
        &deb.name,
    );
    let update = position(&calls, "apt-get update", &deb.name);
    let runtime = position(&calls, "apt-get install -y containerd cri-tools", &deb.name);
    let kube = position(
        &calls,
        "apt-get install -y kubelet=1.28.2-* kubeadm=1.28.2-* kubectl=1.28.2-*",
        &deb.name,
    );
    let hold = position(&calls, "apt-mark hold kubelet kubeadm kubectl", &deb.name);
    assert!(
        key < update && dearmor < update && update < runtime && runtime < kube && kube < hold,
        "{calls:#?}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("dnf") || c.starts_with("yum")),
        "{calls:#?}"
    );
    assert_eq!(
        read(deb, "/etc/apt/sources.list.d/kubernetes.list"),
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.28/deb/ /\n"
    );
    assert!(
        read(deb, "/etc/apt/keyrings/kubernetes-apt-keyring.gpg").contains("kswizard test fake")
    );
    let out = output_of(&events, &deb.name, "container-runtime");
    assert!(
        out.contains("containerd: the distribution's package"),
        "{out}"
    );

    // RHEL-like: the repository files (the Kubernetes packages excluded, as upstream), dnf or yum
    // asked for Docker's containerd.io (Fedora: its own containerd) and the pinned packages past
    // the exclusion; no curl, no apt.
    let repo = "[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.28/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v1.28/rpm/repodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n";
    for (n, pm, containerd) in [
        (&nodes[1], "dnf", "containerd.io"),
        (&nodes[2], "yum", "containerd.io"),
        (&nodes[3], "dnf", "containerd"),
    ] {
        let calls = asked(n);
        assert_eq!(
            calls,
            [
                format!("{pm} install -y {containerd} cri-tools --disableexcludes=kubernetes"),
                format!(
                    "{pm} install -y kubelet-1.28.2 kubeadm-1.28.2 kubectl-1.28.2 --disableexcludes=kubernetes"
                ),
            ],
            "{}",
            n.name
        );
        assert_eq!(read(n, "/etc/yum.repos.d/kubernetes.repo"), repo);
        let out = output_of(&events, &n.name, "container-runtime");
        if containerd == "containerd" {
            assert!(!n.path("/etc/yum.repos.d/docker-ce.repo").exists());
            assert!(
                out.contains("containerd: the distribution's package"),
                "{out}"
            );
            continue;
        }
        assert!(read(n, "/etc/yum.repos.d/docker-ce.repo").contains(
            "baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable\n"
        ));
        assert!(
            out.contains("containerd.io from Docker's repository"),
            "{out}"
        );
        // containerd.io's own config disabled the CRI: replaced by the default, the old one kept.
        assert!(
            out.contains("disabled the CRI plugin: replaced by the default"),
            "{out}"
        );
        assert!(
            read(n, "/etc/containerd/config.toml.kswizard-old")
                .contains("disabled_plugins = [\"cri\"]")
        );
    }

    // Everywhere it installed: the packages' binaries and units, run by systemd as on a bundle
    // node, with the systemd cgroup driver.
    for n in installed {
        let out = output_of(&events, &n.name, "container-runtime");
        assert!(
            out.contains(
                "containerd: systemd unit containerd.service (packages: the package's own unit)"
            ),
            "{out}"
        );
        assert!(out.contains("runtime ready (crictl info)"), "{out}");
        assert_eq!(
            n.exec("sudo -n bash -c 'command -v containerd runc crictl kubelet'")
                .unwrap(),
            "/usr/bin/containerd\n/usr/sbin/runc\n/usr/bin/crictl\n/usr/bin/kubelet\n"
        );
        assert!(!n.path("/etc/systemd/system/containerd.service").exists());
        assert!(!n.path("/etc/systemd/system/kubelet.service").exists());
        assert_eq!(
            systemctl(n, "is-active", "containerd"),
            ["active"],
            "{}",
            n.name
        );
        assert_eq!(
            systemctl(n, "is-enabled", "containerd kubelet"),
            ["enabled", "enabled"],
            "{}",
            n.name
        );
        let config = read(n, "/etc/containerd/config.toml");
        assert!(config.contains("SystemdCgroup = true\n"), "{config}");
    }

    // Another distribution, or no package manager: refused before anything is asked, saying what
    // to do instead.
    for (n, why) in [
        (
            &refused[0],
            "the distribution (arch) is neither Debian-like (apt) nor RHEL-like (dnf/yum)",
        ),
        (&refused[1], "a RHEL-like node with neither dnf nor yum"),
    ] {
        assert_eq!(
            done[&(n.name.clone(), "container-runtime".to_string())].0,
            "failed"
        );
        let out = output_of(&events, &n.name, "container-runtime");
        assert!(
            out.contains(&format!("FAIL  cannot install from package repositories here: {why}. Configure a bundle instead (`kswizard bundle fetch` on a machine with network, then `bundle: DIR` in conf/kswizard.yaml)")),
            "{out}"
        );
        assert_eq!(asked(n), Vec::<String>::new());
    }

    // Idempotent: run again, the same requests, nothing fails.
    for n in installed {
        std::fs::remove_file(n.path(FAKE_LOG)).unwrap();
    }
    let (_, events) = install(&conf, &plan, &["--restart"]);
    let done = finished(&events);
    for n in installed {
        for step in ["container-runtime", "kube-packages"] {
            assert_eq!(
                done[&(n.name.clone(), step.to_string())].0,
                "ok",
                "{} {step} again",
                n.name
            );
        }
    }
    assert!(asked(&nodes[0]).contains(&"apt-mark hold kubelet kubeadm kubectl".to_string()));
    assert_eq!(asked(&nodes[1]).len(), 2);
}
