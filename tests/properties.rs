//! Properties of the readers and writers: no input makes them panic, and what kswizard writes reads
//! back as the cluster it wrote.
// A test fails by panicking: unwrap and panic are its assertions.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use kswizard::conf::{common_yaml, hosts_ini};
use kswizard::model::{Auth, Cluster, Host, LbMode, LoadBalancer, Roles, Secret};
use proptest::prelude::*;

const HOSTS: &str = "conf/hosts.ini";
const COMMON: &str = "conf/common.yaml";

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/samples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn samples(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| sample(n)).collect()
}

const INI_SAMPLES: &[&str] = &[
    "ks-installer-v2.1.1-hosts.ini",
    "kubespray-v2.11.0-inventory-sample-inventory.ini",
    "kubespray-master-46dbdd39-inventory-sample-inventory.ini",
];
const YAML_SAMPLES: &[&str] = &[
    "ks-installer-v2.1.1-common.yaml",
    "ks-installer-v2.1-prerelease-vars.yml",
    "kubespray-v2.11.0-group_vars-all-all.yml",
];

/// A real file with a few bytes replaced, inserted or removed at random places: inputs close to
/// what people actually have, which random bytes rarely reach.
fn mutated(files: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..8);
    (prop::sample::select(files), edits).prop_map(|(file, edits)| {
        let mut b = file.into_bytes();
        for (at, kind, byte) in edits {
            let i = at.index(b.len() + 1);
            // Mostly characters that mean something in these files.
            let c = b"[]=#;:\"' \t\r\n\\"
                .get(usize::from(byte) % 20)
                .copied()
                .unwrap_or(byte);
            match kind {
                0 if i < b.len() => b[i] = c,
                1 => b.insert(i, c),
                _ if i < b.len() => {
                    b.remove(i);
                }
                _ => {}
            }
        }
        b
    })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn some_lb() -> LoadBalancer {
    LoadBalancer {
        mode: LbMode::External,
        address: Some("10.0.0.100".into()),
        ..LoadBalancer::default()
    }
}

/// Reading and patching must return Ok or Err, never panic; a successful patch must read back.
fn read_and_patch_yaml(text: &str) {
    let file = Path::new(COMMON);
    if common_yaml::parse(text, file).is_ok() {
        for lb in [
            some_lb(),
            LoadBalancer {
                mode: LbMode::None,
                ..LoadBalancer::default()
            },
        ] {
            if let Ok(out) = common_yaml::patch(text, &lb, file) {
                common_yaml::parse(&out, file).expect("a patched file reads back");
            }
        }
    }
}

// Values that stress the writer's quoting: spaces, quotes, comment characters, '=', backslashes,
// unicode (including its whitespace). Newlines are out: an INI value cannot hold one.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._@/-]{1,12}",
        "[ a-z#;='\"\\\\\tüé€\u{a0}\u{3000}]{0,12}",
    ]
}

fn roles() -> impl Strategy<Value = Roles> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(master, worker, etcd)| Roles {
        master,
        worker,
        etcd,
    })
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::Local),
        proptest::option::of(awkward()).prop_map(|file| Auth::Key { file }),
        awkward().prop_map(|p| Auth::Password(Secret::new(p))),
    ]
}

/// Keys kswizard does not interpret (none of the ansible_* keys it reads).
fn extra() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("x_[a-z_]{0,8}", awkward()), 0..4).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(k, _)| seen.insert(k.clone()));
        v
    })
}

fn host(name: String) -> impl Strategy<Value = Host> {
    let user = proptest::option::of(prop_oneof![Just("root".to_string()), "[a-z][a-z0-9_]{0,8}"]);
    (
        proptest::option::of(awkward()),
        proptest::option::of(awkward()),
        proptest::option::of(1u16..),
        user,
        auth(),
        proptest::option::of(awkward()),
        roles(),
        extra(),
        proptest::option::of("# [ -~]{0,10}"),
    )
        .prop_map(
            move |(address, ip, port, user, auth, become_pass, roles, extra, comment)| {
                let mut h = Host {
                    name: name.clone(),
                    address,
                    ip,
                    port,
                    user,
                    auth,
                    become_pass: become_pass.map(Secret::new),
                    roles,
                    extra,
                    comment: comment.map(|c| c.trim_end().to_string()),
                };
                // A non-root line with a become password and no key file means password login to the
                // legacy installer (it copies the become password into ansible_ssh_pass), so the
                // file cannot say "agent key plus sudo password": generate what it can say.
                if !h.is_root()
                    && let (Some(b), Auth::Key { file: None }) = (&h.become_pass, &h.auth)
                {
                    h.auth = Auth::Password(b.clone());
                }
                h
            },
        )
}

fn cluster() -> impl Strategy<Value = Cluster> {
    let names = prop::collection::btree_set("[a-z][a-z0-9-]{0,6}[a-z0-9]", 0..7);
    (names, any::<bool>())
        .prop_flat_map(|(names, crlf)| {
            let hosts: Vec<_> = names.into_iter().map(host).collect();
            (hosts, Just(crlf))
        })
        .prop_map(|(hosts, crlf)| {
            let mut c = Cluster {
                hosts,
                ..Cluster::default()
            };
            c.ini.crlf = crlf;
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hosts_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = hosts_ini::parse(&bytes, Path::new(HOSTS));
    }

    #[test]
    fn hosts_reader_never_panics_on_inventory_like_text(text in "([\\[\\]=#;:\"' \ta-z0-9\r\n]{0,40}\n){0,12}") {
        if let Ok(c) = hosts_ini::parse(text.as_bytes(), Path::new(HOSTS)) {
            // What it read, it can write and read again.
            let out = hosts_ini::render(&c);
            hosts_ini::parse(out.as_bytes(), Path::new(HOSTS)).expect("kswizard's own file reads");
        }
    }

    #[test]
    fn hosts_reader_never_panics_on_mutated_samples(bytes in mutated(samples(INI_SAMPLES))) {
        if let Ok(c) = hosts_ini::parse(&bytes, Path::new(HOSTS)) {
            let _ = kswizard::validate::validate(&c);
        }
    }

    #[test]
    fn yaml_reader_and_patcher_never_panic(text in "\\PC{0,200}") {
        read_and_patch_yaml(&text);
    }

    #[test]
    fn yaml_readers_never_panic_on_nesting(
        text in "([\\[\\]{}:,?&*!|>'\"#a-] {0,3}){0,60}\n( {0,6}[\\[{\\-?:a-z'\"|] {0,2}){0,40}"
    ) {
        // Text made of YAML's structure characters: the depth check (libyaml's scanner) and the
        // readers behind it must end with a value or an error on all of it.
        read_and_patch_yaml(&text);
        let _ = kswizard::conf::settings::parse(&text, Path::new("conf/kswizard.yaml"));
    }

    #[test]
    fn yaml_reader_and_patcher_never_panic_on_mutated_samples(bytes in mutated(samples(YAML_SAMPLES))) {
        read_and_patch_yaml(&lossy(&bytes));
    }

    #[test]
    fn model_file_model_is_the_identity(c in cluster()) {
        let text = hosts_ini::render(&c);
        let back = hosts_ini::parse(text.as_bytes(), Path::new(HOSTS))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &c, "{}", text);
        prop_assert_eq!(&hosts_ini::render(&back), &text);
        for h in &c.hosts {
            prop_assert!(fifth_field_is_the_become_pass(h, &text), "{}", text);
        }
    }

    #[test]
    fn lb_patch_then_parse_gives_the_values(
        name in prop::sample::select(YAML_SAMPLES),
        address in prop_oneof![
            "(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})){3}",
            "[a-z][a-z0-9.-]{0,20}",
            "[ -~]{1,20}",
            // Plain words YAML reads as something other than a string.
            prop::sample::select(&["null", "Null", "NULL", "true", "False", "0x1F", "0o17", ".inf", "-.Inf", ".nan", "1e5", "0"][..]).prop_map(str::to_string),
        ],
        port in 1i64..=65535,
        domain in prop_oneof!["[a-z][a-z0-9.-]{0,30}", "[ -~]{0,20}", Just("null".to_string()), Just("0x1F".to_string())],
        crlf in any::<bool>(),
    ) {
        let mut text = sample(name);
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        let lb = LoadBalancer { mode: LbMode::External, address: Some(address.clone()), port, domain: domain.clone() };
        let out = common_yaml::patch(&text, &lb, Path::new(COMMON))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let v = common_yaml::parse(&out, Path::new(COMMON)).expect("reads back");
        prop_assert_eq!(v.address, Some(address));
        prop_assert_eq!(v.port, Some(port));
        prop_assert_eq!(v.domain, Some(domain));
        prop_assert_eq!(out.lines().count(), text.lines().count());
    }
}

/// install.sh reads a non-root line's fifth whitespace field as the sudo password: where the line
/// has enough fields before `ansible_user` to fill the slots, it must be there.
fn fifth_field_is_the_become_pass(h: &Host, text: &str) -> bool {
    let slots = usize::from(h.address.is_some())
        + usize::from(h.ip.is_some())
        + usize::from(h.is_local())
        + h.extra.len();
    if h.is_root() || h.become_pass.is_none() || slots < 2 {
        return true;
    }
    let Some(line) = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(h.name.as_str()) && l.contains('='))
    else {
        return false;
    };
    // Quoted values may hold spaces; the installer's awk would split those too, so skip them.
    line.contains('"')
        || line
            .split_whitespace()
            .nth(4)
            .is_some_and(|f| f.starts_with("ansible_become_pass="))
}
