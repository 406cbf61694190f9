//! Install plans (`assets/plan.yaml`): steps as data, checked when loaded, expanded per node.
//!
//! Pure: loading reads the plan and its scripts, everything after that is computation on values.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::conf::ConfError;
use crate::model::{Cluster, EtcdTopology, LbMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    All,
    Master,
    Worker,
    Etcd,
    FirstMaster,
    /// The first staying etcd member (stacked: the first staying master).
    FirstEtcd,
    /// The hosts a day-2 operation takes out of the cluster (`Cluster::leaving`); no other role
    /// selects them.
    Leaving,
}

impl Role {
    /// The name a plan file uses.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Master => "master",
            Role::Worker => "worker",
            Role::Etcd => "etcd",
            Role::FirstMaster => "first-master",
            Role::FirstEtcd => "first-etcd",
            Role::Leaving => "leaving",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    /// The node-side preflight script (relative to the plan), run on every node before any step.
    preflight: Option<String>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    roles: Vec<Role>,
    script: Option<String>,
    run: Option<String>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout: u64,
    #[serde(default)]
    retries: u32,
    #[serde(default = "default_become", rename = "become")]
    become_root: bool,
    #[serde(default)]
    outputs: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    needs: Vec<String>,
    /// The LB modes it runs in (`lb: [built-in]`); absent: every mode.
    lb: Option<Vec<LbMode>>,
    /// The etcd topologies it runs in (`etcd: [external]`); absent: both.
    etcd: Option<Vec<EtcdTopology>>,
    /// `deliver: bundle` / `deliver: snapshot`: kswizard itself copies files to the node (no script).
    deliver: Option<Delivery>,
    /// The operator may skip it when it failed (`skippable: true`): nothing later needs it.
    #[serde(default)]
    skippable: bool,
    /// It depends on who is in the cluster: it runs again on every node when that changes.
    #[serde(default)]
    membership: bool,
    /// One node at a time across the cluster.
    #[serde(default)]
    serial: bool,
}

/// What a `deliver` step delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// The bundle's files each node's roles get (`Options::bundle`); only when the conf names one.
    Bundle,
    /// One etcd snapshot (`Options::snapshot`) to `SNAPSHOT_TARGET`, 0600: `kswizard etcd restore`.
    Snapshot,
}

/// Where a `deliver: snapshot` step puts the snapshot on its nodes (the restore's scripts read it).
pub const SNAPSHOT_TARGET: &str = "/var/lib/kswizard-restore/snapshot.db";

fn default_timeout() -> u64 {
    600
}
fn default_become() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: String,
    pub roles: Vec<Role>,
    /// The shell text to run: the script file's content, or the inline `run`.
    #[serde(skip)]
    pub body: String,
    /// Where the body came from, for people: the script path, or "inline".
    pub source: String,
    pub after: Vec<String>,
    pub timeout: u64,
    pub retries: u32,
    #[serde(rename = "become")]
    pub become_root: bool,
    /// The values it publishes in `$KSW_OUTPUT`; anything else it writes there is dropped.
    pub outputs: Vec<String>,
    /// Those of its outputs that are secret: handed to the steps that need them, never journaled
    /// or shown. Names ending like secrets (`*_KEY`, `*_TOKEN`, ...) are secret too.
    pub secrets: Vec<String>,
    /// The published values it reads: only these reach its environment.
    pub needs: Vec<String>,
    /// The LB modes (`lb:` in the plan) in which it runs; empty: every mode. A step for another
    /// mode is not part of the install at all: no node lists it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lb: Vec<LbMode>,
    /// The etcd topologies (`etcd:` in the plan) in which it runs; empty: both. Like `lb`, a step
    /// for the other topology is not part of the install.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub etcd: Vec<EtcdTopology>,
    /// kswizard copies files to the node itself (`deliver: bundle` or `snapshot`); no body. A
    /// bundle's runs only when the conf names a bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver: Option<Delivery>,
    /// When it failed, the operator may skip it and the node goes on (`skippable: true`): the
    /// plan says nothing later depends on it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skippable: bool,
    /// It depends on who is in the cluster (`membership: true`): its fingerprint holds the
    /// membership variables (`MEMBERSHIP_VARS`), so it runs again on the nodes that stay when
    /// hosts are added or removed. Every other step's fingerprint leaves them out: adding a host
    /// runs no such step on the others.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub membership: bool,
    /// At most one node runs it at a time, nodes taking turns as they come (`serial: true`):
    /// etcd members added one by one, apiservers restarted one by one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub serial: bool,
}

/// The `KSW_*` variables that say who is in the cluster; only `membership` steps' fingerprints
/// hold them.
pub const MEMBERSHIP_VARS: &[&str] = &[
    "KSW_MASTERS",
    "KSW_ETCD",
    "KSW_WORKERS",
    "KSW_FIRST_MASTER",
    "KSW_MASTER_NAMES",
    "KSW_ETCD_NAMES",
    "KSW_WORKER_NAMES",
    "KSW_LEAVING",
    "KSW_LEAVING_NAMES",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub file: PathBuf,
    /// The preflight script's text (`preflight:` in the plan): run on every node before any step
    /// (`engine/preflight.rs`). A plan without one has no preflight stage.
    pub preflight: Option<String>,
    pub steps: Vec<Step>,
}

/// Where each step runs: for every node of the cluster (in host order), the indices of the plan's
/// steps it runs, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    pub node: String,
    pub steps: Vec<String>,
}

fn step_line(text: &str, id: &str) -> usize {
    text.lines()
        .position(|l| {
            l.match_indices("id:").any(|(i, _)| {
                let before = l[..i].chars().last();
                let value = l[i + 3..].trim_start();
                let value = value.split([',', '}', ' ', '#']).next().unwrap_or("");
                matches!(before, None | Some(' ' | '{' | ',' | '-'))
                    && value.trim_matches(['"', '\'']) == id
            })
        })
        .map_or(0, |i| i + 1)
}

/// The line of a top-level `key` (0 when not found).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(key))
        .map_or(0, |i| i + 1)
}

/// Read and check a plan file; scripts are read relative to it.
pub fn load(path: &Path) -> Result<Plan, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfError::io(path, &e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, path, |script| {
        std::fs::read_to_string(base.join(script))
    })
}

/// Parse plan text; `read_script` fetches a script's content by its relative path.
pub fn parse(
    text: &str,
    file: &Path,
    read_script: impl Fn(&str) -> std::io::Result<String>,
) -> Result<Plan, ConfError> {
    crate::conf::limits::check_yaml(text, file)?;
    let raw: RawPlan = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ConfError::new(file, line, format!("expected a plan ('preflight:' script, 'steps:' with id, roles, script or run, after, timeout, retries, become, outputs, secrets, needs, lb, etcd, deliver, skippable, membership, serial): {msg}"))
    })?;
    let err = |id: &str, msg: String| {
        ConfError::new(file, step_line(text, id), format!("step '{id}': {msg}"))
    };
    let raw_preflight = raw.preflight;
    let mut seen = HashSet::new();
    let mut steps = Vec::new();
    for r in raw.steps {
        if r.id.is_empty()
            || !r
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                &r.id,
                "expected an id of letters, digits, '-' and '_'".into(),
            ));
        }
        if !seen.insert(r.id.clone()) {
            return Err(err(&r.id, "the id is used by an earlier step too".into()));
        }
        if r.roles.is_empty() {
            return Err(err(
                &r.id,
                "expected at least one role (all, master, worker, etcd, first-master, first-etcd, leaving)".into(),
            ));
        }
        if r.lb.as_ref().is_some_and(Vec::is_empty) {
            return Err(err(
                &r.id,
                "'lb' lists no mode: name at least one of external, built-in, none, or leave it out to run in every mode".into(),
            ));
        }
        if r.etcd.as_ref().is_some_and(Vec::is_empty) {
            return Err(err(
                &r.id,
                "'etcd' lists no topology: name external, stacked or both, or leave it out to run in both".into(),
            ));
        }
        if r.timeout == 0 {
            return Err(err(&r.id, "timeout must be at least 1 second".into()));
        }
        let (body, source) = match (&r.script, &r.run) {
            (None, None) if r.deliver.is_some() => (
                String::new(),
                format!(
                    "deliver: {}",
                    if r.deliver == Some(Delivery::Bundle) {
                        "bundle"
                    } else {
                        "snapshot"
                    }
                ),
            ),
            (Some(_), _) | (_, Some(_)) if r.deliver.is_some() => {
                return Err(err(
                    &r.id,
                    "'deliver' steps are kswizard's own: leave out 'script' and 'run'".into(),
                ));
            }
            (Some(s), None) => {
                let body = read_script(s)
                    .map_err(|e| err(&r.id, format!("script '{s}' cannot be read: {e}")))?;
                (body, s.clone())
            }
            (None, Some(run)) => (run.clone(), "inline".to_string()),
            _ => {
                return Err(err(
                    &r.id,
                    "expected exactly one of 'script' and 'run'".into(),
                ));
            }
        };
        // The install's deliveries share one transfer budget and one file list per node.
        if let (Some(d), Some(other)) = (r.deliver, steps.iter().find_map(|s: &Step| s.deliver))
            && d != other
        {
            return Err(err(
                &r.id,
                "a plan delivers either the bundle or a snapshot, not both".into(),
            ));
        }
        for name in r.outputs.iter().chain(&r.needs) {
            if !is_value_name(name) {
                return Err(err(
                    &r.id,
                    format!(
                        "'{name}' is not a value name: expected upper-case letters, digits and '_', not starting with KSW_"
                    ),
                ));
            }
        }
        if let Some(s) = r.secrets.iter().find(|s| !r.outputs.contains(s)) {
            return Err(err(
                &r.id,
                format!("'secrets' names '{s}', which is not in its 'outputs'"),
            ));
        }
        for need in &r.needs {
            if !steps.iter().any(|s: &Step| s.outputs.contains(need)) {
                return Err(err(
                    &r.id,
                    format!(
                        "'needs' names '{need}', which no earlier step publishes (in its 'outputs')"
                    ),
                ));
            }
        }
        steps.push(Step {
            id: r.id,
            roles: r.roles,
            body,
            source,
            after: r.after,
            timeout: r.timeout,
            retries: r.retries,
            become_root: r.become_root,
            outputs: r.outputs,
            secrets: r.secrets,
            needs: r.needs,
            lb: r.lb.unwrap_or_default(),
            etcd: r.etcd.unwrap_or_default(),
            deliver: r.deliver,
            skippable: r.skippable,
            membership: r.membership,
            serial: r.serial,
        });
    }
    if steps.is_empty() {
        return Err(ConfError::new(
            file,
            1,
            "expected at least one step under 'steps:'",
        ));
    }
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for s in &steps {
        for a in &s.after {
            if !index.contains_key(a.as_str()) {
                return Err(err(
                    &s.id,
                    format!("'after' names '{a}', which no step of the plan has"),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&steps, &index) {
        return Err(err(
            &cycle[0],
            format!(
                "the steps wait for each other in a cycle: {}",
                cycle.join(" -> ")
            ),
        ));
    }
    let preflight = match &raw_preflight {
        Some(s) => Some(read_script(s).map_err(|e| {
            ConfError::new(
                file,
                key_line(text, "preflight:"),
                format!("preflight script '{s}' cannot be read: {e}"),
            )
        })?),
        None => None,
    };
    Ok(Plan {
        file: file.to_path_buf(),
        preflight,
        steps,
    })
}

/// Dependencies are the `after` barriers plus file order on a node (a step waits for the steps
/// before it). Only `after` edges can form a cycle against file order: a step that waits for a
/// later step, directly or through others.
fn find_cycle(steps: &[Step], index: &HashMap<&str, usize>) -> Option<Vec<String>> {
    // Edge i -> j: step i cannot start before step j is done. File order adds i -> i-1.
    let edges = |i: usize| -> Vec<usize> {
        let mut v: Vec<usize> = steps[i].after.iter().map(|a| index[a.as_str()]).collect();
        if i > 0 {
            v.push(i - 1);
        }
        v
    };
    // Iterative DFS with colours; the path gives the cycle.
    let n = steps.len();
    let mut colour = vec![0u8; n];
    for start in 0..n {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, edges(start))];
        colour[start] = 1;
        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) if colour[next] == 1 => {
                    let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[pos..]
                        .iter()
                        .map(|(n, _)| steps[*n].id.clone())
                        .collect();
                    cycle.push(steps[next].id.clone());
                    return Some(cycle);
                }
                Some(next) if colour[next] == 0 => {
                    colour[next] = 1;
                    stack.push((next, edges(next)));
                }
                Some(_) => {}
                None => {
                    colour[*node] = 2;
                    stack.pop();
                }
            }
        }
    }
    None
}

/// A name a step may publish or read: an environment variable name that is not kswizard's own.
pub fn is_value_name(k: &str) -> bool {
    let mut c = k.chars();
    c.next().is_some_and(|f| f.is_ascii_uppercase() || f == '_')
        && c.all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
        && !k.starts_with("KSW_")
}

/// The safety net under `secrets:`: names ending like secrets (`*_KEY`, `*_TOKEN`, `*_SECRET`,
/// `*_PASSWORD`, `*_PASS`, `*_PASSWD`) are secret even when a plan forgot to say so.
pub fn is_secret_name(k: &str) -> bool {
    let last = k.rsplit('_').next().unwrap_or(k);
    matches!(
        last,
        "KEY" | "TOKEN" | "SECRET" | "PASSWORD" | "PASS" | "PASSWD"
    )
}

impl Step {
    /// Whether its output `name` is secret: declared so, or named like a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name) || is_secret_name(name)
    }

    /// Fingerprint of what the step runs on a node: its content, how, and the node's `KSW_*`
    /// environment (not the install id, and not published values, which change every run).
    pub fn fingerprint(&self, env: &[(String, String)]) -> String {
        let env: Vec<String> = env
            .iter()
            .filter(|(k, _)| {
                k != "KSW_INSTALL_ID" && (self.membership || !MEMBERSHIP_VARS.contains(&k.as_str()))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let timeout = self.timeout.to_string();
        let needs = self.needs.join(",");
        let mut parts = vec![
            self.body.as_str(),
            if self.become_root { "root" } else { "user" },
            &timeout,
            &needs,
        ];
        parts.extend(env.iter().map(String::as_str));
        fingerprint(&parts)
    }

    /// Whether it runs on the cluster's host `host_index`: one of its roles, and the cluster's LB
    /// mode and etcd topology when it names them.
    pub fn targets(&self, cluster: &Cluster, host_index: usize) -> bool {
        if !self.lb.is_empty() && !self.lb.contains(&cluster.lb.mode) {
            return false;
        }
        let topology = cluster.settings.etcd_topology;
        if !self.etcd.is_empty() && !self.etcd.contains(&topology) {
            return false;
        }
        if self.deliver == Some(Delivery::Bundle) && cluster.settings.bundle.is_none() {
            return false;
        }
        holds_any(&self.roles, cluster, host_index)
    }
}

/// Whether the cluster's host `host_index` has one of `roles`.
pub fn holds_any(roles: &[Role], cluster: &Cluster, host_index: usize) -> bool {
    let h = &cluster.hosts[host_index];
    let leaving = cluster.is_leaving(h);
    let is = |first: Option<&crate::model::Host>| first.is_some_and(|f| std::ptr::eq(f, h));
    roles.iter().any(|r| match r {
        Role::Leaving => leaving,
        _ if leaving => false,
        Role::All => true,
        Role::Master => h.roles.master,
        Role::Worker => h.roles.worker,
        Role::Etcd => h.roles.etcd,
        Role::FirstMaster => is(cluster.first_master()),
        Role::FirstEtcd => is(cluster.first_etcd()),
    })
}

impl Plan {
    /// What runs where, node by node, in file order.
    pub fn expand(&self, cluster: &Cluster) -> Vec<NodePlan> {
        (0..cluster.hosts.len())
            .map(|i| NodePlan {
                node: cluster.hosts[i].name.clone(),
                steps: self
                    .steps
                    .iter()
                    .filter(|s| s.targets(cluster, i))
                    .map(|s| s.id.clone())
                    .collect(),
            })
            .collect()
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// FNV-1a: a stable fingerprint of configuration and step content (not a security hash).
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Host;

    fn plan(text: &str) -> Result<Plan, ConfError> {
        parse(text, Path::new("plan.yaml"), |s| {
            if s == "missing.sh" {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "No such file or directory",
                ))
            } else {
                Ok(format!("echo {s}"))
            }
        })
    }

    fn cluster() -> Cluster {
        Cluster::numbered(5)
    }

    #[test]
    fn expands_roles_in_file_order() {
        let p = plan(
            "steps:\n- {id: pre, roles: [all], run: 'true'}\n- {id: init, roles: [first-master], script: init.sh, after: [pre]}\n- {id: join, roles: [worker], run: 'true', after: [init]}\n- {id: etcd, roles: [etcd], run: 'true'}\n",
        )
        .unwrap();
        let e = p.expand(&cluster());
        assert_eq!(e[0].steps, ["pre", "init", "etcd"]);
        assert_eq!(e[1].steps, ["pre", "etcd"]);
        assert_eq!(e[4].steps, ["pre", "join"]);
        assert_eq!(p.step("init").unwrap().body, "echo init.sh");
        assert_eq!(p.step("pre").unwrap().timeout, 600);
        assert!(p.step("pre").unwrap().become_root);
    }

    #[test]
    fn a_snapshot_is_delivered_without_a_bundle_and_never_beside_one() {
        let p = plan("steps:\n- {id: snap, roles: [etcd], deliver: snapshot}\n").unwrap();
        let s = p.step("snap").unwrap();
        assert_eq!(
            (s.deliver, s.source.as_str()),
            (Some(Delivery::Snapshot), "deliver: snapshot")
        );
        // The conf names no bundle: a bundle's delivery would not run, a snapshot's does.
        assert!(s.targets(&cluster(), 0));
        let both = plan(
            "steps:\n- {id: b, roles: [all], deliver: bundle}\n- {id: s, roles: [etcd], deliver: snapshot}\n",
        )
        .unwrap_err();
        assert!(
            both.message.contains("either the bundle or a snapshot"),
            "{both}"
        );
    }

    #[test]
    fn leaving_hosts_have_only_the_leaving_role_and_first_roles_move_past_them() {
        let p = plan(
            "steps:\n- {id: all, roles: [all], run: x}\n- {id: first, roles: [first-master], run: x}\n- {id: etcd1, roles: [first-etcd], run: x}\n- {id: bye, roles: [leaving], run: x}\n",
        )
        .unwrap();
        let mut c = cluster();
        assert_eq!(p.expand(&c)[0].steps, ["all", "first", "etcd1"]);
        c.leaving.insert("n1".into());
        let e = p.expand(&c);
        assert_eq!(e[0].steps, ["bye"]);
        assert_eq!(e[1].steps, ["all", "first", "etcd1"]);
        assert_eq!(e[3].steps, ["all"]);
        c.settings.etcd_topology = EtcdTopology::Stacked;
        c.leaving.clear();
        c.hosts[0].roles.etcd = false;
        // Stacked: the first member is the first master's.
        assert_eq!(p.expand(&c)[0].steps, ["all", "first", "etcd1"]);
    }

    #[test]
    fn only_membership_steps_fingerprint_who_is_in_the_cluster() {
        let p = plan(
            "steps:\n- {id: a, roles: [all], run: x}\n- {id: m, roles: [all], run: x, membership: true, serial: true}\n",
        )
        .unwrap();
        let env = |masters: &str| {
            vec![
                ("KSW_NODE".to_string(), "n1".to_string()),
                ("KSW_MASTERS".to_string(), masters.to_string()),
            ]
        };
        let (a, m) = (p.step("a").unwrap(), p.step("m").unwrap());
        assert!(m.membership && m.serial && !a.membership && !a.serial);
        assert_eq!(a.fingerprint(&env("1")), a.fingerprint(&env("1,2")));
        assert_ne!(m.fingerprint(&env("1")), m.fingerprint(&env("1,2")));
    }

    #[test]
    fn lb_modes_select_steps_for_the_whole_cluster() {
        let p = plan(
            "steps:\n- {id: pre, roles: [all], run: x}\n- {id: lb, roles: [master], run: x, lb: [built-in]}\n- {id: ext, roles: [first-master], run: x, lb: [external, none]}\n",
        )
        .unwrap();
        assert_eq!(p.step("lb").unwrap().lb, [LbMode::BuiltIn]);
        assert!(p.step("pre").unwrap().lb.is_empty());
        let mut c = cluster();
        c.lb.mode = LbMode::BuiltIn;
        let e = p.expand(&c);
        assert_eq!(e[0].steps, ["pre", "lb"]);
        assert_eq!(e[2].steps, ["pre", "lb"]);
        assert_eq!(e[3].steps, ["pre"], "a worker runs no LB step");
        for mode in [LbMode::External, LbMode::None] {
            c.lb.mode = mode;
            let e = p.expand(&c);
            assert_eq!(e[0].steps, ["pre", "ext"], "{mode:?}");
            assert_eq!(e[1].steps, ["pre"], "{mode:?}");
        }
        let json = serde_json::to_value(p.step("lb").unwrap()).unwrap();
        assert_eq!(json["lb"], serde_json::json!(["built-in"]));
        let json = serde_json::to_value(p.step("pre").unwrap()).unwrap();
        assert!(json.get("lb").is_none(), "{json}");
    }

    #[test]
    fn etcd_topologies_select_steps_for_the_whole_cluster() {
        let p = plan(
            "steps:\n- {id: pre, roles: [all], run: x}\n- {id: etcd-start, roles: [etcd], run: x, etcd: [external]}\n- {id: init, roles: [first-master], run: x, etcd: [stacked, external]}\n- {id: lb, roles: [master], run: x, lb: [built-in], etcd: [stacked]}\n",
        )
        .unwrap();
        assert_eq!(p.step("etcd-start").unwrap().etcd, [EtcdTopology::External]);
        assert!(p.step("pre").unwrap().etcd.is_empty());
        let mut c = cluster();
        let e = p.expand(&c);
        assert_eq!(e[0].steps, ["pre", "etcd-start", "init"]);
        assert_eq!(e[1].steps, ["pre", "etcd-start"]);
        c.settings.etcd_topology = EtcdTopology::Stacked;
        let e = p.expand(&c);
        assert_eq!(e[0].steps, ["pre", "init"], "stacked: kubeadm makes etcd");
        assert_eq!(e[1].steps, ["pre"]);
        c.lb.mode = LbMode::BuiltIn;
        assert_eq!(p.expand(&c)[1].steps, ["pre", "lb"], "both selectors hold");
        let json = serde_json::to_value(p.step("etcd-start").unwrap()).unwrap();
        assert_eq!(json["etcd"], serde_json::json!(["external"]));
        let json = serde_json::to_value(p.step("pre").unwrap()).unwrap();
        assert!(json.get("etcd").is_none(), "{json}");
    }

    /// (node, step) -> fingerprint of every step the plan runs on `c`.
    fn fingerprints(p: &Plan, c: &Cluster) -> HashMap<(String, String), String> {
        let mut out = HashMap::new();
        for (h, np) in c.hosts.iter().zip(p.expand(c)) {
            let env = crate::engine::executor::base_env(c, h, "id");
            for s in np.steps {
                let fp = p.step(&s).unwrap().fingerprint(&env);
                out.insert((np.node.clone(), s), fp);
            }
        }
        out
    }

    #[test]
    fn adding_hosts_reruns_only_the_bundled_plans_membership_steps_on_the_others() {
        let p = crate::engine::paths::load_plan(Path::new(crate::engine::paths::BUNDLED)).unwrap();
        let serial: Vec<&str> = p
            .steps
            .iter()
            .filter(|s| s.serial)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(serial, ["etcd-start", "apiserver-etcd"]);
        for mode in [LbMode::External, LbMode::BuiltIn] {
            let mut c = Cluster::default();
            for i in 1..=6 {
                c.hosts
                    .push(Host::new(format!("n{i}"), format!("10.0.0.{i}")));
            }
            c.apply_preset();
            c.lb.mode = mode;
            c.lb.address = Some("10.0.0.200".into());
            c.lb.port = 8443;
            let before = fingerprints(&p, &c);
            // A worker, a master, two etcd hosts.
            for (i, roles) in [(7, "w"), (8, "m"), (9, "e"), (10, "e")] {
                let mut h = Host::new(format!("n{i}"), format!("10.0.0.{i}"));
                h.roles.worker = roles == "w";
                h.roles.master = roles == "m";
                h.roles.etcd = roles == "e";
                c.hosts.push(h);
            }
            let after = fingerprints(&p, &c);
            let mut changed: Vec<&str> = before
                .iter()
                .filter(|(k, fp)| after.get(*k) != Some(*fp))
                .map(|((_, s), _)| s.as_str())
                .collect();
            changed.sort_unstable();
            changed.dedup();
            let mut want = vec!["apiserver-etcd", "etcd-members", "join-token", "verify"];
            if mode == LbMode::BuiltIn {
                want.insert(3, "lb-built-in");
            }
            assert_eq!(changed, want, "{mode:?}");
            assert!(changed.iter().all(|s| p.step(s).unwrap().membership));
        }
    }

    #[test]
    fn the_bundled_plan_runs_its_own_etcd_steps_only_for_external_etcd() {
        let p = crate::engine::paths::load_plan(Path::new(crate::engine::paths::BUNDLED)).unwrap();
        let mut c = cluster();
        let own = [
            "etcd-ca",
            "etcd-certs",
            "etcd-members",
            "etcd-start",
            "etcd-health",
            "apiserver-etcd",
        ];
        let first = &p.expand(&c)[0].steps;
        assert!(
            own.iter().all(|s| first.contains(&s.to_string())),
            "{first:?}"
        );
        c.settings.etcd_topology = EtcdTopology::Stacked;
        for node in p.expand(&c) {
            assert!(
                !node.steps.iter().any(|s| own.contains(&s.as_str())),
                "{node:?}"
            );
        }
        assert!(p.expand(&c)[0].steps.contains(&"kubeadm-init".to_string()));
    }

    #[test]
    fn refuses_bad_plans_naming_file_line_and_step() {
        let cases = [
            (
                "steps:\n- {id: a, roles: [all], run: x, after: [b]}\n- {id: b, roles: [all], run: x}\n",
                "plan.yaml:2: step 'a': the steps wait for each other in a cycle: a -> b -> a",
            ),
            (
                "steps:\n- {id: a, roles: [all], run: x, after: [nope]}\n",
                "plan.yaml:2: step 'a': 'after' names 'nope', which no step of the plan has",
            ),
            (
                "steps:\n- {id: a, roles: [all], script: missing.sh}\n",
                "plan.yaml:2: step 'a': script 'missing.sh' cannot be read: No such file or directory",
            ),
            (
                "steps:\n- {id: a, roles: [all], run: x}\n- {id: a, roles: [all], run: y}\n",
                "plan.yaml:2: step 'a': the id is used by an earlier step too",
            ),
            (
                "steps:\n- {id: a, roles: [all]}\n",
                "plan.yaml:2: step 'a': expected exactly one of 'script' and 'run'",
            ),
            (
                "# a plan\npreflight: missing.sh\nsteps:\n- {id: a, roles: [all], run: x}\n",
                "plan.yaml:2: preflight script 'missing.sh' cannot be read: No such file or directory",
            ),
            (
                "steps:\n- {id: a, roles: [all], run: x, lb: []}\n",
                "plan.yaml:2: step 'a': 'lb' lists no mode: name at least one of external, built-in, none, or leave it out to run in every mode",
            ),
            (
                "steps:\n- {id: a, roles: [all], run: x, etcd: []}\n",
                "plan.yaml:2: step 'a': 'etcd' lists no topology: name external, stacked or both, or leave it out to run in both",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(plan(text).unwrap_err().to_string(), want);
        }
        for text in [
            "steps:\n- {id: a, roles: [boss], run: x}\n",
            "steps:\n- {id: a, roles: [all], run: x, lb: [builtin]}\n",
            "steps:\n- {id: a, roles: [all], run: x, etcd: [local]}\n",
        ] {
            let e = plan(text).unwrap_err();
            assert!(
                e.to_string().starts_with("plan.yaml:2: expected a plan"),
                "{e}"
            );
        }
    }

    #[test]
    fn self_wait_is_a_cycle() {
        let e = plan("steps:\n- {id: a, roles: [all], run: x, after: [a]}\n").unwrap_err();
        assert!(e.message.contains("cycle: a -> a"), "{e}");
    }

    #[test]
    fn needs_outputs_and_secrets_are_checked() {
        let p = plan(
            "steps:\n- {id: init, roles: [all], run: x, outputs: [JOIN_TOKEN, JOIN_URL, CA], secrets: [CA]}\n- {id: join, roles: [all], run: x, needs: [JOIN_TOKEN, CA]}\n",
        )
        .unwrap();
        let init = p.step("init").unwrap();
        assert!(
            init.is_secret("CA") && init.is_secret("JOIN_TOKEN") && !init.is_secret("JOIN_URL")
        );
        assert_eq!(p.step("join").unwrap().needs, ["JOIN_TOKEN", "CA"]);
        let cases = [
            (
                "steps:\n- {id: a, roles: [all], run: x}\n- {id: b, roles: [all], run: x, needs: [TOKEN]}\n",
                "plan.yaml:3: step 'b': 'needs' names 'TOKEN', which no earlier step publishes (in its 'outputs')",
            ),
            (
                "steps:\n- {id: b, roles: [all], run: x, needs: [T]}\n- {id: a, roles: [all], run: x, outputs: [T]}\n",
                "plan.yaml:2: step 'b': 'needs' names 'T', which no earlier step publishes (in its 'outputs')",
            ),
            (
                "steps:\n- {id: a, roles: [all], run: x, outputs: [A], secrets: [B]}\n",
                "plan.yaml:2: step 'a': 'secrets' names 'B', which is not in its 'outputs'",
            ),
            (
                "steps:\n- {id: a, roles: [all], run: x, outputs: [KSW_NODE]}\n",
                "plan.yaml:2: step 'a': 'KSW_NODE' is not a value name: expected upper-case letters, digits and '_', not starting with KSW_",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(plan(text).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn value_names() {
        assert!(is_value_name("JOIN_1") && is_value_name("_X"));
        assert!(!is_value_name("1X") && !is_value_name("a") && !is_value_name("A-B"));
        assert!(!is_value_name("") && !is_value_name("KSW_OUTPUT"));
        assert!(is_secret_name("ETCD_CA_KEY") && is_secret_name("TOKEN"));
        assert!(!is_secret_name("ETCD_CA_CRT") && !is_secret_name("KEYS_DIR"));
    }

    #[test]
    fn fingerprint_is_stable_and_separates_parts() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
    }
}
