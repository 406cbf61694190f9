//! The built-in LB's install content without a lab: the step's rendered haproxy and keepalived
//! configs for the seeds' 3-master example, checked by the real `haproxy -c` and
//! `keepalived --config-test`, with the console listener when `console_lb` is set; the plan
//! selecting the step by LB mode; kubeadm's endpoint, SANs and `podSubnet`; Calico's pool and
//! `KubeSphere`'s `ClusterConfiguration` as the `cni` and `kubesphere` steps render them; and every
//! step script through shellcheck. Nothing here connects anywhere. Needs the
//! Debian packages haproxy, keepalived (2.2 or later: `--config-test`) and shellcheck.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kswizard::engine::executor::base_env;
use kswizard::engine::paths::{BUNDLED, load_plan};
use kswizard::model::{Cluster, LbMode};

const STEP: &str = "assets/steps/lb-built-in.sh";

/// The repository's conf/ (master1..3, node1..3) with the built-in LB at 192.168.0.253:8443.
fn built_in() -> Cluster {
    let (mut c, _) = kswizard::conf::load(Path::new("conf")).unwrap();
    c.lb.mode = LbMode::BuiltIn;
    c.lb.address = Some("192.168.0.253".into());
    c.lb.port = 8443;
    c
}

/// Run a step script with exactly the environment the engine gives the master `i`.
fn step(c: &Cluster, i: usize, script: &str, args: &[&str]) -> Output {
    let master = c.masters().nth(i).unwrap();
    Command::new("bash")
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(base_env(c, master, "test"))
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A tool the test needs, by its Debian package.
fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: apt-get install {package}");
}

/// A throwaway key and certificate (`key.pem`, `cert.pem` in `d`) for a test "apiserver".
fn self_signed(d: &Path) {
    ok(&Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=apiserver",
        ])
        .args(["-days", "1", "-keyout"])
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .output()
        .unwrap());
}

/// The number after `key` on the line that starts with it (after indentation).
fn value(text: &str, key: &str) -> i64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("no '{key}' in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "needs haproxy"]
fn haproxy_config_passes_haproxy_check_and_says_what_kubeadm_ha_needs() {
    let c = built_in();
    let cfg = ok(&step(&c, 0, STEP, &["--render-haproxy"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, &cfg).unwrap();
    let check = Command::new(tool("haproxy", "haproxy"))
        .args(["-c", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    ok(&check);
    for line in [
        "mode tcp",
        "bind *:8443",
        "balance roundrobin",
        "option httpchk GET /readyz",
        "http-check expect status 200",
        "stats socket ipv4@127.0.0.1:8405 level user",
        "server apiserver-192-168-0-2 192.168.0.2:6443",
    ] {
        assert!(
            cfg.lines().any(|l| l.trim() == line),
            "no '{line}' in\n{cfg}"
        );
    }
    assert!(cfg.contains("check check-ssl verify none"), "{cfg}");
    assert_eq!(cfg.matches(":6443").count(), 3, "one server per master");
    for side in ["client", "server"] {
        let t = cfg
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("timeout {side} ")))
            .unwrap();
        assert_eq!(t, "24h", "kubectl logs -f needs a long {side} timeout");
    }
    // The same on every master: it only names the masters.
    assert_eq!(ok(&step(&c, 2, STEP, &["--render-haproxy"])), cfg);
}

#[test]
#[ignore = "needs root: keepalived runs only check scripts that root owns"]
fn keepalived_configs_pass_config_test_with_unicast_and_a_weight_beyond_the_spread() {
    assert!(
        kswizard::engine::transport::is_root(),
        "run as root: keepalived --config-test disables a check script that root does not own"
    );
    let c = built_in();
    // keepalived refuses loopback for VRRP: any other interface of this machine will do, the
    // config test only checks that it exists.
    let iface = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n != "lo")
        .expect("the config test needs a network interface besides lo");
    let keepalived = tool("keepalived", "keepalived");
    let ips: Vec<String> = c.masters().map(|h| h.node_ip().to_string()).collect();
    let mut priorities = Vec::new();
    let mut weights = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        // keepalived runs only scripts no other user can change, in directories likewise.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        ok(&step(&c, i, STEP, &["--render-keepalived", d, &iface]));
        let conf_file = dir.path().join("keepalived.conf");
        ok(&Command::new(&keepalived)
            .arg("--config-test")
            .arg("-f")
            .arg(&conf_file)
            .output()
            .unwrap());
        let conf = std::fs::read_to_string(&conf_file).unwrap();
        let peers: Vec<&str> = conf
            .split("unicast_peer {")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let others: Vec<&str> = ips
            .iter()
            .filter(|o| *o != ip)
            .map(String::as_str)
            .collect();
        assert_eq!(peers, others, "{conf}");
        assert!(conf.contains(&format!("unicast_src_ip {ip}\n")), "{conf}");
        assert!(conf.contains(&format!("interface {iface}\n")), "{conf}");
        assert!(
            conf.contains(&format!("192.168.0.253/32 dev {iface}\n")),
            "{conf}"
        );
        let id = value(&conf, "virtual_router_id");
        assert!((1..=255).contains(&id), "{conf}");
        priorities.push(value(&conf, "priority"));
        weights.push(-value(&conf, "weight"));
        // The check asks the local haproxy, never an apiserver.
        let check = std::fs::read_to_string(dir.path().join("kswizard-check-haproxy.sh")).unwrap();
        assert!(conf.contains(&format!("script \"{d}/kswizard-check-haproxy.sh\"")));
        assert!(check.contains("/dev/tcp/127.0.0.1/8405") && check.contains("show info"));
        assert!(
            !check.contains("6443") && !check.contains("8443"),
            "{check}"
        );
    }
    let mut distinct = priorities.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "priorities differ per master: {priorities:?}"
    );
    let spread = priorities.iter().max().unwrap() - priorities.iter().min().unwrap();
    assert!(
        weights.iter().all(|w| *w > spread),
        "{weights:?} vs {priorities:?}"
    );
    // A master whose haproxy is down ends below every master whose haproxy runs.
    let lowest_healthy = priorities.iter().min().unwrap();
    assert!(
        priorities
            .iter()
            .zip(&weights)
            .all(|(p, w)| p - w < *lowest_healthy)
    );
}

#[test]
fn the_router_id_comes_from_kswizard_yaml_when_set() {
    let mut c = built_in();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    c.settings.keepalived_router_id = Some(77);
    ok(&step(&c, 1, STEP, &["--render-keepalived", d, "eth0"]));
    let conf = std::fs::read_to_string(dir.path().join("keepalived.conf")).unwrap();
    assert_eq!(value(&conf, "virtual_router_id"), 77);
}

#[test]
fn the_step_refuses_bad_settings_before_touching_the_node() {
    type Change = fn(&mut Cluster);
    let cases: [(&str, Change); 3] = [
        (
            "the LB port is 6443, which the apiserver on this master uses",
            |c| {
                c.lb.port = 6443;
            },
        ),
        (
            "keepalived_router_id 0 in conf/kswizard.yaml: expected 1 to 255",
            |c| c.settings.keepalived_router_id = Some(0),
        ),
        ("the VIP 'lb.example' is not an IPv4 address", |c| {
            c.lb.address = Some("lb.example".into());
        }),
    ];
    for (want, change) in cases {
        let mut c = built_in();
        change(&mut c);
        let out = step(&c, 0, STEP, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.starts_with(&format!("FAIL  {want}")), "{text}");
    }
}

#[test]
fn the_plan_runs_the_lb_step_on_masters_only_in_built_in_mode() {
    let plan = load_plan(Path::new(BUNDLED)).unwrap();
    let mut c = built_in();
    for node in plan.expand(&c) {
        let master = c.host(&node.node).unwrap().roles.master;
        assert_eq!(
            node.steps.iter().any(|s| s == "lb-built-in"),
            master,
            "{node:?}"
        );
    }
    let init = plan.step("kubeadm-init").unwrap();
    assert!(init.after.iter().any(|a| a == "lb-built-in"));
    for mode in [LbMode::External, LbMode::None] {
        c.lb.mode = mode;
        assert!(
            plan.expand(&c)
                .iter()
                .all(|n| !n.steps.iter().any(|s| s == "lb-built-in")),
            "{mode:?}"
        );
    }
}

#[test]
#[ignore = "needs haproxy"]
fn with_console_lb_haproxy_also_serves_the_console_on_the_vip_from_every_node() {
    let mut c = built_in();
    assert!(!ok(&step(&c, 0, STEP, &["--render-haproxy"])).contains("30880"));
    c.settings.console_lb = true;
    let cfg = ok(&step(&c, 0, STEP, &["--render-haproxy"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, &cfg).unwrap();
    ok(&Command::new(tool("haproxy", "haproxy"))
        .args(["-c", "-f"])
        .arg(&file)
        .output()
        .unwrap());
    let console = &cfg[cfg.find("frontend kubesphere-console").unwrap()..];
    for line in [
        "mode http",
        "bind 192.168.0.253:30880 transparent",
        "option httpchk GET /",
        "server console-192-168-0-1 192.168.0.1:30880",
        "server console-192-168-0-6 192.168.0.6:30880",
    ] {
        assert!(
            console.lines().any(|l| l.trim() == line),
            "no '{line}' in\n{cfg}"
        );
    }
    assert_eq!(console.matches(":30880\n").count(), 6, "every node: {cfg}");
}

/// `cni.sh --render FILE` for the cluster `c` (the first master's environment).
fn calico(c: &Cluster, file: &Path) -> Output {
    step(
        c,
        0,
        "assets/steps/cni.sh",
        &["--render", file.to_str().unwrap()],
    )
}

#[test]
fn calico_and_kubeadm_get_the_pod_network_of_common_yaml() {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/lab/bundle");
    let mut c = built_in();
    let default = ok(&calico(&c, &bundle.join("calico.yaml")));
    assert!(
        default.contains(
            "            - name: CALICO_IPV4POOL_CIDR\n              value: \"10.233.64.0/18\"\n"
        ),
        "{default}"
    );
    c.pods_subnet = Some("10.100.0.0/16".into());
    let cfg = ok(&step(&c, 0, "assets/steps/kubeadm-init.sh", &["--render"]));
    let doc: serde_yaml::Value =
        serde_yaml::from_str(cfg.split("\n---\n").nth(1).unwrap()).unwrap();
    assert_eq!(doc["networking"]["podSubnet"], "10.100.0.0/16", "{cfg}");
    let text = ok(&calico(&c, &bundle.join("calico.yaml")));
    // Uncommented in place: the entry's lines and nothing else changed.
    let original = std::fs::read_to_string(bundle.join("calico.yaml")).unwrap();
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [
            (
                "            # - name: CALICO_IPV4POOL_CIDR",
                "            - name: CALICO_IPV4POOL_CIDR"
            ),
            (
                "            #   value: \"192.168.0.0/16\"",
                "              value: \"10.100.0.0/16\""
            ),
        ]
    );
    assert_eq!(original.lines().count(), text.lines().count());
    // An active entry gets the new value: rendering again is rendering once.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("applied.yaml"), &text).unwrap();
    assert_eq!(ok(&calico(&c, &dir.path().join("applied.yaml"))), text);
    // Not Calico's manifest: refused (exit 3), as the step says with its FAIL.
    let out = calico(&c, &bundle.join("kubesphere-installer.yaml"));
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn kubesphere_gets_a_minimal_cluster_configuration_with_the_console_on_30880() {
    let c = built_in();
    let cfg = ok(&step(&c, 0, "assets/steps/kubesphere.sh", &["--render"]));
    let doc: serde_yaml::Value = serde_yaml::from_str(&cfg).unwrap();
    assert_eq!(doc["kind"], "ClusterConfiguration");
    assert_eq!(doc["metadata"]["namespace"], "kubesphere-system");
    assert_eq!(doc["spec"]["common"]["core"]["console"]["port"], 30880);
    assert_eq!(doc["spec"]["common"]["core"]["console"]["type"], "NodePort");
    assert_eq!(
        doc["spec"]["etcd"]["endpointIps"],
        "192.168.0.1,192.168.0.2,192.168.0.3"
    );
    assert_eq!(doc["spec"]["devops"]["enabled"], false);
}

#[test]
fn kubeadm_uses_the_lb_domain_and_port_and_certifies_the_vip_and_domain() {
    let c = built_in();
    let cfg = ok(&step(&c, 0, "assets/steps/kubeadm-init.sh", &["--render"]));
    assert!(
        cfg.contains("controlPlaneEndpoint: lb.kubesphere.local:8443\n"),
        "{cfg}"
    );
    assert!(
        cfg.contains("  certSANs:\n  - 192.168.0.253\n  - lb.kubesphere.local\n"),
        "{cfg}"
    );
    assert!(cfg.contains("bindPort: 6443\n"), "{cfg}");
}

#[test]
#[ignore = "needs shellcheck"]
fn step_scripts_pass_shellcheck() {
    let shellcheck = tool("shellcheck", "shellcheck");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir("assets/steps")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    assert!(scripts.iter().any(|p| p.ends_with("lb-built-in.sh")));
    // The check script keepalived runs is rendered by the step: check it as written.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&step(
        &built_in(),
        0,
        STEP,
        &["--render-keepalived", d, "eth0"],
    ));
    scripts.push(dir.path().join("kswizard-check-haproxy.sh"));
    ok(&Command::new(shellcheck)
        .args(["-S", "warning"])
        .args(&scripts)
        .output()
        .unwrap());
}

/// The step for real, with one master in a private mount and network namespace of its own (its
/// `eth0` a veth, no route out, its /etc/haproxy, /etc/keepalived and /run on tmpfs): run twice,
/// then `kswizard lb status` there until it is healthy, then again with haproxy stopped.
const NAMESPACE_RUN: &str = r#"set -euo pipefail
dir=$1 step=$2 kswizard=$3
mount -t tmpfs none /etc/haproxy
mount -t tmpfs none /etc/keepalived
mount -t tmpfs none /run
stop() {
  for p in /run/kswizard-haproxy.pid /run/kswizard-keepalived.pid "$dir/apiserver.pid"; do
    if [ -s "$p" ]; then kill "$(cat "$p")" 2>/dev/null || true; fi
  done
}
trap stop EXIT
ip link set lo up
ip link add eth0 type veth peer name eth0p
ip link set eth0p up
ip addr add 10.9.0.1/24 dev eth0
ip link set eth0 up
# The apiserver: any TLS server that answers GET /readyz with 200.
openssl s_server -quiet -accept 10.9.0.1:6443 -www -cert "$dir/cert.pem" -key "$dir/key.pem" >/dev/null 2>&1 &
echo $! >"$dir/apiserver.pid"
start=$(date +%s%N)
bash "$step" >"$dir/first.log" 2>&1
pid=$(cat /run/kswizard-haproxy.pid)
bash "$step" >"$dir/second.log" 2>&1
[ "$(cat /run/kswizard-haproxy.pid)" = "$pid" ] || echo "haproxy was restarted" >>"$dir/second.log"
for _ in $(seq 1 60); do
  if "$kswizard" lb status --conf "$dir/conf" --format json >"$dir/ready.json"; then break; fi
  sleep 0.5
done
echo $((($(date +%s%N) - start) / 1000000)) >"$dir/ready_ms"
kill "$(cat /run/kswizard-haproxy.pid)"
sleep 0.5
"$kswizard" lb status --conf "$dir/conf" --format json >"$dir/haproxy-down.json" || true
"#;

#[test]
#[ignore = "needs root: network and mount namespaces, keepalived"]
fn the_step_runs_twice_without_restarting_and_lb_status_sees_vip_and_haproxy() {
    assert!(
        kswizard::engine::transport::is_root(),
        "run as root: the test makes a network namespace"
    );
    tool("haproxy", "haproxy");
    tool("keepalived", "keepalived");
    tool("unshare", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("hosts.ini"),
        "[all]\nmaster1 ansible_connection=local ip=10.9.0.1\n\n[kube-master]\nmaster1\n\n[kube-node]\nmaster1\n\n[etcd]\nmaster1\n\n[k8s-cluster:children]\nkube-node\nkube-master\n",
    )
    .unwrap();
    std::fs::write(
        conf.join("common.yaml"),
        "loadbalancer_apiserver:\n  address: 10.9.0.253\n  port: 8443\napiserver_loadbalancer_domain_name: lb.kubesphere.local\n",
    )
    .unwrap();
    std::fs::write(conf.join("kswizard.yaml"), "lb_mode: built-in\n").unwrap();
    let (c, _) = kswizard::conf::load(&conf).unwrap();
    assert_eq!(c.lb.mode, LbMode::BuiltIn);
    self_signed(d);
    let step = std::fs::canonicalize(STEP).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "bash", "-c"])
        .arg(NAMESPACE_RUN)
        .arg("bash")
        .arg(d)
        .arg(&step)
        .arg(env!("CARGO_BIN_EXE_kswizard"))
        .envs(base_env(&c, &c.hosts[0], "test"))
        .output()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}{}\nfirst run:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        read("first.log")
    );
    let first = read("first.log");
    assert!(first.contains("VIP 10.9.0.253 on eth0"), "{first}");
    assert!(first.contains("haproxy: started"), "{first}");
    assert!(first.contains("keepalived: started"), "{first}");
    let second = read("second.log");
    assert!(second.contains("haproxy: running (pid"), "{second}");
    assert!(second.contains("keepalived: running (pid"), "{second}");
    assert_eq!(second.matches("config unchanged").count(), 2, "{second}");
    assert!(!second.contains("restarted"), "{second}");

    let ready: serde_json::Value = serde_json::from_str(&read("ready.json")).unwrap();
    eprintln!("healthy after {} ms: {ready}", read("ready_ms").trim());
    assert_eq!(ready["mode"], "built-in");
    assert_eq!(ready["frontend"]["address"], "10.9.0.253:8443");
    assert_eq!(ready["frontend"]["state"], "ready", "{ready}");
    assert_eq!(ready["backends"][0]["state"], "ready", "{ready}");
    let built_in = &ready["built_in"];
    assert_eq!(
        built_in["holders"],
        serde_json::json!(["master1"]),
        "{ready}"
    );
    let master = &built_in["masters"][0];
    assert_eq!(master["vip_interface"], "eth0");
    assert_eq!(master["haproxy"][0]["name"], "master1");
    assert_eq!(master["haproxy"][0]["status"], "UP");
    assert_eq!(master["haproxy"][0]["check"], "L7OK");

    // haproxy stopped: the VIP stays (no other master), nothing listens behind it, and the
    // master's haproxy view says why it is missing.
    let down: serde_json::Value = serde_json::from_str(&read("haproxy-down.json")).unwrap();
    assert_eq!(down["frontend"]["state"], "not-listening", "{down}");
    assert_eq!(down["backends"][0]["state"], "ready", "{down}");
    let error = down["built_in"]["masters"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("haproxy's stats socket 127.0.0.1:8405 does not answer"),
        "{error}"
    );
}

/// One master of the failover test, in a mount and network namespace of its own: waits for the
/// hub to give it `eth0`, serves a stand-in apiserver, runs the step, waits for `$dir/stop`.
const FAILOVER_NODE: &str = r#"set -u
i=$1 dir=$2 step=$3
mount -t tmpfs none /etc/haproxy
mount -t tmpfs none /etc/keepalived
mount -t tmpfs none /run
until ip link show eth0 >/dev/null 2>&1; do sleep 0.05; done
ip link set lo up
ip addr add "10.9.0.$i/24" dev eth0
ip link set eth0 up
openssl s_server -quiet -accept "10.9.0.$i:6443" -www -cert "$dir/cert.pem" -key "$dir/key.pem" >/dev/null 2>&1 &
echo $! >/run/apiserver.pid
export KSW_NODE="master$i" KSW_IP="10.9.0.$i"
bash "$step" >"$dir/step$i.log" 2>&1 || echo "step failed" >>"$dir/step$i.log"
touch "$dir/ready$i"
while [ ! -e "$dir/stop" ]; do sleep 0.1; done
kill $(cat /run/kswizard-haproxy.pid /run/kswizard-keepalived.pid /run/apiserver.pid) 2>/dev/null
"#;

/// The hub: a bridge, three masters on it, then haproxy stopped on the VIP holder and started
/// again. Prints `key=value` lines for the test.
const FAILOVER_HUB: &str = r#"set -u
dir=$1
pids=()
stop() {
  touch "$dir/stop"
  wait
}
trap stop EXIT
ip link set lo up
ip link add br0 type bridge
ip addr add 10.9.0.254/24 dev br0
ip link set br0 up
for i in 1 2 3; do
  unshare --mount --net --propagation private bash "$dir/node.sh" "$i" "$dir" "$dir/step.sh" &
  pids[i]=$!
done
sleep 0.3
for i in 1 2 3; do
  ip link add "m$i" type veth peer name eth0 netns "${pids[i]}"
  ip link set "m$i" master br0
  ip link set "m$i" up
done
holders() {
  for i in 1 2 3; do
    nsenter -t "${pids[i]}" -n ip -o addr show 2>/dev/null | grep -q ' 10\.9\.0\.253/' && printf 'master%s ' "$i"
  done
}
now() { date +%s%N; }
until [ -e "$dir/ready1" ] && [ -e "$dir/ready2" ] && [ -e "$dir/ready3" ]; do sleep 0.1; done
# Settled: haproxy's checks have risen (2 x 2 s) and the highest priority holds the VIP.
sleep 6
echo "settled=$(holders)"
(
  last=""
  while [ ! -e "$dir/stop" ]; do
    h=$(holders)
    # Single holders only: during a handover both hold it for a few milliseconds (the new one
    # takes it, then the old one hears its advert and lets go), and none between.
    [ "$h" != "$last" ] && [ "$(wc -w <<<"$h")" = 1 ] && echo "$h" >>"$dir/moves"
    last=$h
    sleep 0.05
  done
) &
sleep 0.2
t=$(now)
nsenter -t "${pids[1]}" -m -n sh -c 'kill $(cat /run/kswizard-haproxy.pid)'
for _ in $(seq 1 300); do
  h=$(holders)
  [ -n "$h" ] && [[ $h != *master1* ]] && break
  sleep 0.02
done
echo "moved_to=$h"
echo "moved_ms=$((($(now) - t) / 1000000))"
for _ in $(seq 1 300); do
  curl -sk --max-time 0.5 -o /dev/null https://10.9.0.253:8443/readyz && break
  sleep 0.05
done
echo "readyz_ms=$((($(now) - t) / 1000000))"
nsenter -t "${pids[1]}" -m -n haproxy -D -p /run/kswizard-haproxy.pid -f /etc/haproxy/haproxy.cfg
sleep 8
echo "back=$(holders)"
echo "moves=$(wc -l <"$dir/moves")"
"#;

#[test]
#[ignore = "needs root: network and mount namespaces, keepalived"]
fn three_masters_hand_the_vip_on_when_haproxy_stops_and_take_it_back_once() {
    assert!(
        kswizard::engine::transport::is_root(),
        "run as root: the test makes network namespaces"
    );
    for (t, p) in [
        ("haproxy", "haproxy"),
        ("keepalived", "keepalived"),
        ("curl", "curl"),
        ("nsenter", "util-linux"),
    ] {
        tool(t, p);
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("node.sh"), FAILOVER_NODE).unwrap();
    std::fs::copy(STEP, d.join("step.sh")).unwrap();
    self_signed(d);
    // The environment the engine gives master1; each node sets its own name and address.
    let mut c = built_in();
    for (i, h) in c.hosts.iter_mut().take(3).enumerate() {
        h.ip = Some(format!("10.9.0.{}", i + 1));
    }
    c.lb.address = Some("10.9.0.253".into());
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "bash", "-c"])
        .arg(FAILOVER_HUB)
        .arg("bash")
        .arg(d)
        .envs(base_env(&c, &c.hosts[0], "test"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let logs: String = (1..=3)
        .map(|i| std::fs::read_to_string(d.join(format!("step{i}.log"))).unwrap_or_default())
        .collect();
    assert!(out.status.success(), "{text}{logs}");
    eprintln!("{text}");
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in\n{text}\n{logs}"))
            .trim()
            .to_string()
    };
    assert_eq!(get("settled"), "master1", "the highest priority holds it");
    assert_eq!(get("moved_to"), "master2", "then the next in priority");
    // Bounds far above the ~4 s keepalived takes (2 failed checks, then 3 missed adverts): they
    // catch a VIP that never moves, not a slow machine.
    assert!(get("moved_ms").parse::<u64>().unwrap() < 10_000, "{text}");
    assert!(get("readyz_ms").parse::<u64>().unwrap() < 15_000, "{text}");
    assert_eq!(get("back"), "master1", "preempted back once haproxy runs");
    assert_eq!(
        get("moves"),
        "3",
        "master1, master2, master1: no flapping\n{text}"
    );
}

#[test]
fn without_the_packages_or_a_package_manager_the_step_says_what_to_install() {
    // A node with the basic tools but neither haproxy nor apt-get, dnf or yum: PATH is a
    // directory of links to just those tools. Its ip= is 127.0.0.1, an address of this machine,
    // so the step gets as far as the packages; it changes nothing before that.
    let bin = tempfile::tempdir().unwrap();
    for t in [
        "bash", "tr", "grep", "ip", "awk", "mktemp", "rm", "head", "cat",
    ] {
        let target = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(t))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{t} is missing"));
        std::os::unix::fs::symlink(target, bin.path().join(t)).unwrap();
    }
    let mut c = built_in();
    c.hosts[0].ip = Some("127.0.0.1".into());
    c.lb.address = Some("127.0.0.253".into());
    let out = Command::new(bin.path().join("bash"))
        .arg(STEP)
        .env_clear()
        .env("PATH", bin.path())
        .envs(base_env(&c, &c.hosts[0], "test"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("VIP 127.0.0.253 on lo"), "{text}");
    assert!(
        text.ends_with("FAIL  haproxy is not installed and this node has neither apt-get nor dnf nor yum: install haproxy on this node, then run the install again\n"),
        "{text}"
    );
}
