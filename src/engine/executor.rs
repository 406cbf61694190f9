//! Running a plan on a cluster: every node in its own task, steps in file order on a node,
//! `after` barriers across nodes, outputs handed forward, every transition journaled, events out
//! through a bounded channel.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};

use super::control::{Command, Control};
use super::decide::{self, Mode};
use super::deliver::Bundle;
use super::events::{Event, Status, Summary};
use super::installed;
use super::journal::{self, Journal, Record, Replay};
use super::node::NodeRun;
use super::plan::{Delivery, NodePlan, Plan, fingerprint};
use super::preflight;
use super::runner;
use super::shared::{Board, JournalWriter, Secrets, Shared, StepEnd, fail_rest};
use super::transport;
use crate::bundle::{BundleError, Manifest};
use crate::conf::ConfError;
use crate::model::{Cluster, Host, LbMode};

#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    /// Start over even if the journal holds an unfinished install.
    pub restart: bool,
    /// Go on with the last install even if it finished (nothing is run again then); refused
    /// when the journal holds no install.
    pub resume: bool,
    /// Where steps live on the nodes; `{node}` is replaced by the node's name (tests run several
    /// local "nodes" in one temp dir).
    pub state_root: String,
    /// How long a node kswizard lost contact with is tried again before its step counts as lost.
    pub reconnect_for: Duration,
    /// The bundle directory the conf names (`paths::bundle_dir`), for the plan's `deliver` steps.
    pub bundle: Option<PathBuf>,
    /// Bundle files in flight at once, across all nodes.
    pub transfers: usize,
    /// The etcd snapshot file a plan's `deliver: snapshot` step gives its nodes
    /// (`kswizard etcd restore`).
    pub snapshot: Option<PathBuf>,
    /// Ask before going on after a preflight with warnings (and no failures): the install sends
    /// a oneshot here once every node's `preflight` event is out, and waits for its answer before
    /// the journal is touched or any step runs. `true` goes on; `false` or a dropped answer ends
    /// the install with `EngineError::PreflightDeclined`. `None`: warnings never stop it.
    pub confirm_warnings: Option<ConfirmWarnings>,
    /// With `resume`: the operator's decisions from the command line (`--retry NODE[:STEP]`,
    /// `--skip NODE:STEP`), journaled before anything runs.
    pub decisions: Vec<crate::engine::control::Command>,
    /// `None`: the install. `Some(op)`: a day-2 operation's plan (`remove`, `reset`,
    /// `etcd-restore`, ...): its own journal (`journal_for`), the same resume; the installed
    /// record is left to the operation.
    pub operation: Option<String>,
}

/// Where the install asks "continue anyway?" (`Options::confirm_warnings`).
pub type ConfirmWarnings = mpsc::Sender<oneshot::Sender<bool>>;

impl Options {
    pub fn new(state_dir: PathBuf) -> Options {
        Options {
            state_dir,
            restart: false,
            resume: false,
            state_root: runner::STATE_ROOT.to_string(),
            reconnect_for: Duration::from_secs(120),
            bundle: None,
            transfers: 8,
            snapshot: None,
            confirm_warnings: None,
            decisions: Vec::new(),
            operation: None,
        }
    }
}

#[derive(Debug)]
pub enum EngineError {
    /// Another kswizard holds the state directory.
    Busy(PathBuf),
    Io(PathBuf, std::io::Error),
    Journal(crate::conf::ConfError),
    /// `--resume`, and the journal holds no install.
    NothingToResume(PathBuf),
    /// The steps ran, but their record could not be written in full.
    JournalWrite(PathBuf, std::io::Error),
    /// The bundle the plan delivers is missing, damaged or for another version.
    Bundle(BundleError),
    /// A `--retry` / `--skip` that does not apply.
    Decision(String),
    /// The conf differs from the installed cluster in a way `install` does not carry out
    /// (a host gone, roles or IP, LB or topology changed): each change with what to do.
    Membership(Vec<installed::Change>),
    /// Preflight failed on these nodes; no step ran. `table` is every node's checks
    /// (`preflight::table`), the failures with their reasons and fixes.
    Preflight {
        nodes: Vec<String>,
        table: String,
    },
    /// Preflight warned on these nodes and the answer to "continue anyway?" was no; no step ran.
    PreflightDeclined {
        nodes: Vec<String>,
    },
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Io(_, e) | EngineError::JournalWrite(_, e) => Some(e),
            EngineError::Journal(e) => Some(e),
            EngineError::Bundle(e) => Some(e),
            EngineError::Busy(_)
            | EngineError::NothingToResume(_)
            | EngineError::Preflight { .. }
            | EngineError::PreflightDeclined { .. }
            | EngineError::Decision(_)
            | EngineError::Membership(_) => None,
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Busy(p) => write!(
                f,
                "{}: another kswizard is installing from this state directory; wait for it or stop it",
                p.display()
            ),
            EngineError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            EngineError::Journal(e) => write!(f, "{e}"),
            // `bundle check` says the same of a file; only an install can say what it spared.
            EngineError::Bundle(e) => write!(f, "{e} (nothing was copied to any node)"),
            EngineError::Decision(msg) => write!(f, "{msg}"),
            EngineError::Membership(changes) => {
                write!(
                    f,
                    "the conf differs from the installed cluster in ways `install` does not carry out (nothing was changed):"
                )?;
                for c in changes {
                    write!(f, "\n  {}: {}", c.what(), c.what_it_does())?;
                }
                Ok(())
            }
            EngineError::NothingToResume(p) => write!(
                f,
                "{}: there is no install to resume (the journal is missing or holds no install); `kswizard install` without --resume starts one (steps already done on the nodes check before they act)",
                p.display()
            ),
            // The first line stands alone (the wizard's status line shows only it).
            EngineError::Preflight { nodes, table } => write!(
                f,
                "preflight failed on {} (no node was changed); fix what it found and install again\n{table}",
                nodes.join(", ")
            ),
            EngineError::PreflightDeclined { nodes } => write!(
                f,
                "preflight warned on {} and the install was not continued: this run changed nothing",
                nodes.join(", ")
            ),
            EngineError::JournalWrite(p, e) => write!(
                f,
                "{}: the journal could not be written ({e}); steps started after that are not in it, so check the nodes before a resume",
                p.display()
            ),
        }
    }
}

pub fn journal_path(state_dir: &Path) -> PathBuf {
    state_dir.join("journal.jsonl")
}

/// A day-2 operation's journal: `<state>/ops/<op>.jsonl`.
pub fn journal_for(state_dir: &Path, operation: &str) -> PathBuf {
    state_dir.join("ops").join(format!("{operation}.jsonl"))
}

/// The journal `opts` runs with: the install's, or its operation's.
pub fn journal_of(opts: &Options) -> PathBuf {
    match &opts.operation {
        None => journal_path(&opts.state_dir),
        Some(op) => journal_for(&opts.state_dir, op),
    }
}

/// The state directory: created 0700 when it does not exist; an existing one is used as it is
/// (`--state /tmp` must not change /tmp).
pub fn ensure_state_dir(dir: &Path) -> Result<(), EngineError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| EngineError::Io(dir.into(), e))
}

/// The fingerprint of what an install is made of: hosts, roles, LB and the plan's steps.
pub fn config_fingerprint(cluster: &Cluster, plan: &Plan) -> String {
    let mut parts: Vec<String> = cluster
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{} {} {} {:?}",
                h.name,
                h.connect_address(),
                h.node_ip(),
                h.roles
            )
        })
        .collect();
    parts.push(format!(
        "{:?} {:?} {} {}",
        cluster.lb.mode, cluster.lb.address, cluster.lb.port, cluster.lb.domain
    ));
    // Only when not the default, so installs made before the setting existed keep their fingerprint.
    let topology = cluster.settings.etcd_topology;
    if !topology.is_external() {
        parts.push(format!("etcd {}", topology.name()));
    }
    for s in &plan.steps {
        parts.push(format!(
            "{} {:?} {:?} {} {} {}",
            s.id, s.roles, s.after, s.timeout, s.become_root, s.body
        ));
    }
    fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The `KSW_*` environment of DESIGN §6 for one node.
pub fn base_env(cluster: &Cluster, host: &Host, install_id: &str) -> Vec<(String, String)> {
    let ips = |pick: fn(&crate::model::Roles) -> bool| {
        cluster
            .with_role(pick)
            .map(|h| h.node_ip().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let names = |pick: fn(&crate::model::Roles) -> bool| {
        cluster
            .with_role(pick)
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    let first_master = cluster
        .first_master()
        .map(|h| h.node_ip().to_string())
        .unwrap_or_default();
    let lb = &cluster.lb;
    let (lb_address, lb_port) = if lb.is_configured() {
        (lb.address.clone().unwrap_or_default(), lb.port.to_string())
    } else {
        (
            first_master.clone(),
            crate::model::APISERVER_PORT.to_string(),
        )
    };
    let mut env: Vec<(String, String)> = vec![
        ("KSW_INSTALL_ID".into(), install_id.into()),
        ("KSW_NODE".into(), host.name.clone()),
        ("KSW_IP".into(), host.node_ip().into()),
        ("KSW_ROLES".into(), host.roles.names().join(",")),
        ("KSW_MASTERS".into(), ips(|r| r.master)),
        ("KSW_ETCD".into(), ips(|r| r.etcd)),
        ("KSW_WORKERS".into(), ips(|r| r.worker)),
        ("KSW_MASTER_NAMES".into(), names(|r| r.master)),
        ("KSW_ETCD_NAMES".into(), names(|r| r.etcd)),
        ("KSW_WORKER_NAMES".into(), names(|r| r.worker)),
        ("KSW_FIRST_MASTER".into(), first_master),
        ("KSW_LB_ADDRESS".into(), lb_address),
        ("KSW_LB_PORT".into(), lb_port),
        ("KSW_LB_DOMAIN".into(), lb.domain.clone()),
        (
            "KSW_DELIVERY".into(),
            if cluster.settings.bundle.is_some() {
                "bundle"
            } else {
                "packages"
            }
            .into(),
        ),
        (
            "KSW_K8S_VERSION".into(),
            crate::model::KUBERNETES_VERSION.into(),
        ),
    ];
    env.push(("KSW_LB_MODE".into(), lb_mode_name(lb.mode).into()));
    if !cluster.leaving.is_empty() {
        // Only a day-2 operation has hosts leaving: installs keep the environment they had.
        let leaving = cluster.hosts.iter().filter(|h| cluster.is_leaving(h));
        let (ips, names): (Vec<&str>, Vec<&str>) =
            leaving.map(|h| (h.node_ip(), h.name.as_str())).unzip();
        env.push(("KSW_LEAVING".into(), ips.join(",")));
        env.push(("KSW_LEAVING_NAMES".into(), names.join(",")));
    }
    let topology = cluster.settings.etcd_topology;
    if !topology.is_external() {
        // Absent means external: the steps' environment (and fingerprints) of external-etcd
        // installs stay what they were.
        env.push(("KSW_ETCD_TOPOLOGY".into(), topology.name().into()));
    }
    // The CNI's pool and kubeadm's podSubnet: common.yaml's kube_pods_subnet, else KubeSphere's.
    env.push((
        "KSW_POD_CIDR".into(),
        cluster
            .pods_subnet
            .clone()
            .unwrap_or_else(|| crate::model::DEFAULT_POD_CIDR.into()),
    ));
    // The KubeSphere console behind the LB too (a second listener on CONSOLE_PORT).
    env.push((
        "KSW_CONSOLE_LB".into(),
        if cluster.settings.console_lb {
            "1"
        } else {
            "0"
        }
        .into(),
    ));
    if lb.mode == LbMode::BuiltIn {
        // Only the built-in LB's steps read these; other modes' steps keep the environment
        // (and so the fingerprints) they had.
        let router_id = cluster
            .settings
            .keepalived_router_id
            .unwrap_or_else(|| router_id_of(lb.address.as_deref().unwrap_or_default()));
        env.extend([
            (
                "KSW_KEEPALIVED_INTERFACE".into(),
                cluster
                    .settings
                    .keepalived_interface
                    .clone()
                    .unwrap_or_default(),
            ),
            ("KSW_KEEPALIVED_ROUTER_ID".into(), router_id.to_string()),
            (
                "KSW_HAPROXY_STATS_PORT".into(),
                crate::lb_status::HAPROXY_STATS_PORT.to_string(),
            ),
        ]);
    }
    env
}

/// The mode's name as plans and kswizard.yaml spell it.
fn lb_mode_name(mode: LbMode) -> &'static str {
    match mode {
        LbMode::External => "external",
        LbMode::BuiltIn => "built-in",
        LbMode::None => "none",
    }
}

/// A VRRP router id (1..=255) for the VIP when kswizard.yaml names none: the same on every master
/// and every run. For IPv4 the address modulo 255, plus 1: the VIPs of one /24 (other clusters'
/// keepalived on the same network) get different ids. Anything else: a hash of the text.
fn router_id_of(vip: &str) -> u8 {
    let n = match vip.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => u64::from(u32::from(ip)),
        Err(_) => u64::from_str_radix(&fingerprint(&[vip]), 16).unwrap_or(0),
    };
    // In 0..255 before the +1, so it fits.
    u8::try_from(n % 255).map_or(1, |r| r + 1)
}

/// What an install would run, said before it starts: for the question the wizard asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// What an install without `--resume` / `--restart` does: go on with the journal's install,
    /// or start a new one.
    pub mode: Mode,
    /// The journal's install finished with every step ok: a new one would run everything again.
    pub complete: bool,
    /// Steps (and nodes with steps) an install without flags would run.
    pub steps: usize,
    pub nodes: usize,
    /// Steps that finished before and are not run again (when it goes on).
    pub done: usize,
    /// (node, step) pairs the last install finished whose content or configuration changed
    /// since: what `--resume` on a complete install runs.
    pub changed: Vec<(String, String)>,
    /// The conf against the installed cluster (`installed::diff`): added hosts make the install
    /// go on with the installed one; any other change is refused by the install.
    pub day2: Vec<installed::Change>,
}

/// Day 2: whether the conf adds hosts to the installed cluster (`Ok(true)`: the install goes on
/// with it), or changes it in a way an install does not carry out (`Err`, each change).
pub fn day2(
    cluster: &Cluster,
    record: Option<&installed::Installed>,
) -> Result<bool, Vec<installed::Change>> {
    let Some(rec) = record else {
        return Ok(false);
    };
    let changes = installed::diff(rec, cluster);
    let refused: Vec<installed::Change> = changes
        .iter()
        .filter(|c| !c.is_addition())
        .cloned()
        .collect();
    if refused.is_empty() {
        Ok(!changes.is_empty())
    } else {
        Err(refused)
    }
}

/// The command line's decisions checked against the cluster, the plan and the journal, as
/// (node, step, decision) records: refused without a resume, for an unknown node or step, or a
/// skip of a step the plan does not mark skippable or that already finished.
fn operator_decisions(
    cluster: &Cluster,
    plan: &Plan,
    replay: &Replay,
    mode: Mode,
    commands: &[crate::engine::control::Command],
) -> Result<Vec<(String, String, &'static str)>, EngineError> {
    use crate::engine::control::Command;
    let refuse = |msg: String| Err(EngineError::Decision(msg));
    if !commands.is_empty() && mode != Mode::Resume {
        return refuse(
            "--retry and --skip act on an unfinished install: there is none to resume".into(),
        );
    }
    let mut out = Vec::new();
    for c in commands {
        let (node, step, word) = match c {
            Command::Retry { node, step } => (node, step, "retry"),
            Command::Skip { node, step } => (node, step, "skip"),
            Command::AbortNode { .. } | Command::AbortInstall => continue,
        };
        let Some(i) = cluster.hosts.iter().position(|h| h.name == *node) else {
            return refuse(format!("{node}: no such host in hosts.ini"));
        };
        if step != journal::ANY_STEP {
            let Some(s) = plan.step(step).filter(|s| s.targets(cluster, i)) else {
                return refuse(format!("{node}: the plan runs no step '{step}' there"));
            };
            if word == "skip" && !s.skippable {
                return refuse(format!(
                    "{node}:{step}: the plan does not mark '{step}' skippable (later steps build on it); fix its cause and resume"
                ));
            }
            if word == "skip" && replay.is_done(node, step) {
                return refuse(format!("{node}:{step} already finished: nothing to skip"));
            }
        }
        out.push((node.clone(), step.clone(), word));
    }
    Ok(out)
}

/// Each node's step fingerprints. A `deliver` step's covers the bundle files the node gets, so
/// that a changed bundle is delivered again.
fn fingerprints(
    cluster: &Cluster,
    plan: &Plan,
    node_plans: &[NodePlan],
    envs: &[Vec<(String, String)>],
    bundle: Option<&Manifest>,
) -> Vec<HashMap<String, String>> {
    node_plans
        .iter()
        .zip(envs)
        .enumerate()
        .map(|(i, (np, env))| {
            plan.steps
                .iter()
                .filter(|s| np.steps.contains(&s.id))
                .map(|s| {
                    let fp = s.fingerprint(env);
                    let fp = match bundle {
                        Some(m) if s.deliver.is_some() => {
                            let files = crate::bundle::deliver::for_host(m, cluster, i);
                            super::plan::fingerprint(&[
                                &fp,
                                &crate::bundle::deliver::digest(&files),
                            ])
                        }
                        _ => fp,
                    };
                    (s.id.clone(), fp)
                })
                .collect()
        })
        .collect()
}

/// The install's bundle, when its plan delivers one: the manifest read and every file checked
/// against it, before any node is touched. A plan delivering a snapshot gets it as a bundle of one.
async fn checked_bundle(
    cluster: &Cluster,
    plan: &Plan,
    opts: &Options,
) -> Result<Option<Bundle>, EngineError> {
    let delivery = plan
        .steps
        .iter()
        .filter(|s| (0..cluster.hosts.len()).any(|i| s.targets(cluster, i)))
        .find_map(|s| s.deliver);
    match delivery {
        None => return Ok(None),
        Some(Delivery::Snapshot) => return snapshot_bundle(plan, opts).await.map(Some),
        Some(Delivery::Bundle) => {}
    }
    let Some(dir) = opts.bundle.clone() else {
        return Err(EngineError::Bundle(BundleError::Manifest(ConfError::new(
            "kswizard.yaml",
            0,
            "names a bundle, but none was given to the install",
        ))));
    };
    let manifest = tokio::task::spawn_blocking(move || {
        let m = Manifest::load(&dir)?;
        crate::bundle::manifest::verify(&dir, &m)?;
        Ok::<_, BundleError>((dir, m))
    })
    .await
    .map_err(|e| EngineError::Io(PathBuf::from("bundle"), std::io::Error::other(e)))?
    .map_err(EngineError::Bundle)?;
    let (dir, manifest) = manifest;
    if manifest.kubernetes != crate::model::KUBERNETES_VERSION {
        return Err(EngineError::Bundle(BundleError::Manifest(ConfError::new(
            dir.join(crate::bundle::MANIFEST),
            0,
            format!(
                "the bundle is for Kubernetes {}, this kswizard installs {}: `kswizard bundle fetch --version {}`",
                manifest.kubernetes,
                crate::model::KUBERNETES_VERSION,
                crate::model::KUBERNETES_VERSION
            ),
        ))));
    }
    Ok(Some(Bundle {
        dir,
        manifest,
        transfers: tokio::sync::Semaphore::new(opts.transfers.max(1)),
    }))
}

/// `Options::snapshot` as a bundle of one file, for the roles of the plan's `deliver: snapshot`
/// steps: written to `SNAPSHOT_TARGET`, 0600 (it holds the cluster's secrets). Its sha256 is
/// taken here and checked on each node before the file is renamed into place.
async fn snapshot_bundle(plan: &Plan, opts: &Options) -> Result<Bundle, EngineError> {
    let Some(path) = opts.snapshot.clone() else {
        return Err(EngineError::Bundle(BundleError::Manifest(ConfError::new(
            &plan.file,
            0,
            "the plan delivers an etcd snapshot, but none was given (`kswizard etcd restore FILE`)",
        ))));
    };
    let roles = plan
        .steps
        .iter()
        .filter(|s| s.deliver == Some(Delivery::Snapshot))
        .flat_map(|s| s.roles.iter().copied())
        .collect();
    let at = path.clone();
    let (sha256, size) =
        tokio::task::spawn_blocking(move || crate::bundle::manifest::sha256_file(&at))
            .await
            .map_err(|e| EngineError::Io(path.clone(), std::io::Error::other(e)))?
            .map_err(|e| EngineError::Io(path.clone(), e))?;
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Bundle {
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        manifest: Manifest {
            kubernetes: crate::model::KUBERNETES_VERSION.into(),
            arch: String::new(),
            files: vec![crate::bundle::Entry {
                name: "etcd snapshot".into(),
                version: format!("sha256:{}", &sha256[..12]),
                file,
                target: super::plan::SNAPSHOT_TARGET.into(),
                mode: "0600".into(),
                sha256,
                size,
                roles,
                source: None,
                member: None,
                checksum_url: None,
                standin: false,
            }],
        },
        transfers: tokio::sync::Semaphore::new(opts.transfers.max(1)),
    })
}

/// What an install of `plan` on `cluster` would run, given the journal's `replay`. Pure.
pub fn preview(
    cluster: &Cluster,
    plan: &Plan,
    replay: &Replay,
    bundle: Option<&Manifest>,
    record: Option<&installed::Installed>,
) -> Preview {
    let node_plans = plan.expand(cluster);
    let id = replay.install_id.clone().unwrap_or_default();
    let envs: Vec<_> = cluster
        .hosts
        .iter()
        .map(|h| base_env(cluster, h, &id))
        .collect();
    let fps = fingerprints(cluster, plan, &node_plans, &envs, bundle);
    let adds = day2(cluster, record).unwrap_or(false);
    let mode =
        decide::mode(replay, adds && replay.install_id.is_some(), false).unwrap_or(Mode::Fresh);
    let on_journal = decide::schedule(&node_plans, &fps, replay);
    let would = match mode {
        Mode::Resume => on_journal.clone(),
        Mode::Fresh => decide::schedule(&node_plans, &fps, &Replay::default()),
    };
    // A step recalled for its secrets is reported by its node, not run.
    let runs = |n: &decide::NodeTodo| {
        n.steps
            .iter()
            .filter(|t| t.why != decide::Why::Recall)
            .count()
    };
    Preview {
        mode,
        complete: replay.install_id.is_some() && !replay.unfinished(),
        steps: would.nodes.iter().map(runs).sum(),
        nodes: would.nodes.iter().filter(|n| runs(n) > 0).count(),
        done: would.done.len(),
        changed: on_journal.changed,
        day2: record.map_or_else(Vec::new, |r| installed::diff(r, cluster)),
    }
}

/// Run `plan` on `cluster`. Events go to `events`; the returned summary is also the last event.
/// A node whose step fails stops (its later steps are skipped).
pub async fn install(
    cluster: &Cluster,
    plan: &Plan,
    opts: &Options,
    events: mpsc::Sender<Event>,
) -> Result<Summary, EngineError> {
    install_with(cluster, plan, opts, events, None).await
}

/// `install`, taking the operator's decisions from `commands`: a node whose step fails waits
/// (an `Awaiting` event) for a `Command` about it, and steps at barriers on that step wait
/// with it. Once `commands` closes, failed nodes stop as in `install`.
pub async fn install_with(
    cluster: &Cluster,
    plan: &Plan,
    opts: &Options,
    events: mpsc::Sender<Event>,
    commands: Option<mpsc::Receiver<Command>>,
) -> Result<Summary, EngineError> {
    let started = Instant::now();
    ensure_state_dir(&opts.state_dir)?;
    let lock_path = opts.state_dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| EngineError::Io(lock_path.clone(), e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(EngineError::Busy(opts.state_dir.clone()));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(EngineError::Io(lock_path, e)),
    }

    // A bad bundle is refused before the journal or any node hears of this install.
    let bundle = checked_bundle(cluster, plan, opts).await?;
    let jpath = journal_of(opts);
    if let Some(dir) = jpath.parent() {
        ensure_state_dir(dir)?;
    }
    // Day 2: the conf against the installed cluster. Added hosts are what an install carries
    // out (it goes on with the installed one); anything else is refused before anything runs.
    let adds = match &opts.operation {
        None => {
            let rec = installed::Installed::load(&opts.state_dir).map_err(EngineError::Journal)?;
            day2(cluster, rec.as_ref()).map_err(EngineError::Membership)?
        }
        Some(_) => false,
    };
    let previous = if opts.restart {
        Replay::default()
    } else {
        journal::replay(&jpath).map_err(|mut e| {
            e.message
                .push_str("; `kswizard install --restart` starts over");
            EngineError::Journal(e)
        })?
    };
    let config = config_fingerprint(cluster, plan);
    let mode = decide::mode(
        &previous,
        opts.resume || (adds && previous.install_id.is_some()),
        opts.restart,
    )
    .map_err(|decide::Refusal::NothingToResume| EngineError::NothingToResume(jpath.clone()))?;
    let (mut replay, install_id) = match mode {
        Mode::Resume => {
            let id = previous.install_id.clone().unwrap_or_default();
            (previous, id)
        }
        Mode::Fresh => (Replay::default(), new_install_id()),
    };
    let decided = operator_decisions(cluster, plan, &replay, mode, &opts.decisions)?;
    for (node, step, word) in &decided {
        replay.decided(node, step, word);
    }

    // A resumed install began in an earlier run.
    let begun = replay.begun;
    let node_plans = plan.expand(cluster);
    let envs: Vec<Vec<(String, String)>> = cluster
        .hosts
        .iter()
        .map(|h| base_env(cluster, h, &install_id))
        .collect();
    let fps = fingerprints(
        cluster,
        plan,
        &node_plans,
        &envs,
        bundle.as_ref().map(|b| &b.manifest),
    );
    let files: Vec<Vec<crate::bundle::Entry>> = (0..cluster.hosts.len())
        .map(|i| {
            bundle.as_ref().map_or_else(Vec::new, |b| {
                crate::bundle::deliver::for_host(&b.manifest, cluster, i)
                    .into_iter()
                    .cloned()
                    .collect()
            })
        })
        .collect();
    let sched = decide::schedule(&node_plans, &fps, &replay);
    let secrets = Secrets::default();
    secrets.add(cluster.hosts.iter().flat_map(|h| {
        let ssh = match &h.auth {
            crate::model::Auth::Password(p) => Some(p.expose().to_string()),
            _ => None,
        };
        ssh.into_iter()
            .chain(h.become_pass.iter().map(|p| p.expose().to_string()))
    }));
    let _ = events
        .send(Event::Plan {
            install_id: install_id.clone(),
            nodes: node_plans.clone(),
            done: sched.done.clone(),
            changed: sched.changed.clone(),
            left: sched.left.clone(),
            logs: super::step_logs::install_dir(&opts.state_dir, &install_id),
        })
        .await;

    let ctl = transport::control_dir_in(&opts.state_dir)
        .map_err(|e| EngineError::Io(opts.state_dir.join("ctl"), e))?;
    let known_hosts = opts.state_dir.join("known_hosts");
    // Before the journal is touched: a failed preflight leaves it as it was.
    let mut conns = match &plan.preflight {
        Some(script) => {
            let stage = Stage {
                cluster,
                plan,
                envs: &envs,
                script,
                known_hosts: &known_hosts,
                ctl_dir: ctl.path(),
                state_root: &opts.state_root,
                secrets: &secrets,
                events: &events,
            };
            let (conns, warned) = stage.run(&sched.nodes).await?;
            if let (false, Some(ask)) = (warned.is_empty(), &opts.confirm_warnings)
                && !confirmed(ask).await
            {
                for c in conns.into_iter().flatten() {
                    c.close().await;
                }
                return Err(EngineError::PreflightDeclined { nodes: warned });
            }
            conns
        }
        None => Vec::new(),
    };
    conns.resize_with(cluster.hosts.len(), || None);

    let (mut journal, replay) = match mode {
        Mode::Resume => {
            let j = Journal::open(&jpath, false).map_err(|e| EngineError::Io(jpath.clone(), e))?;
            (j, replay)
        }
        Mode::Fresh => {
            let mut j =
                Journal::open(&jpath, true).map_err(|e| EngineError::Io(jpath.clone(), e))?;
            j.append(&Record::Begin {
                install_id: install_id.clone(),
                config: config.clone(),
                // A file's path as an absolute one, so `status` finds it from anywhere; the
                // bundled plan by its name.
                plan: if plan.file.exists() {
                    std::path::absolute(&plan.file).unwrap_or_else(|_| plan.file.clone())
                } else {
                    plan.file.clone()
                }
                .display()
                .to_string(),
                ts: journal::now(),
            })
            .map_err(|e| EngineError::Io(jpath.clone(), e))?;
            (j, replay)
        }
    };
    let append =
        |j: &mut Journal, r: Record| j.append(&r).map_err(|e| EngineError::Io(jpath.clone(), e));
    if mode == Mode::Resume && replay.config.as_deref() != Some(&config) {
        // Later resumes and `status` compare against what runs now.
        append(
            &mut journal,
            Record::Reconfigured {
                config: config.clone(),
                ts: journal::now(),
            },
        )?;
    }
    for (node, step, decision) in decided {
        append(
            &mut journal,
            Record::Decision {
                node,
                step,
                decision: decision.into(),
                ts: journal::now(),
            },
        )?;
    }
    for (node, step) in &sched.left {
        append(
            &mut journal,
            Record::Left {
                node: node.clone(),
                step: step.clone(),
                ts: journal::now(),
            },
        )?;
    }
    let shared = Arc::new(Shared {
        board: Mutex::new(Board {
            remaining: sched.remaining.clone(),
            failed: HashMap::new(),
            outputs: replay.outputs.iter().cloned().collect(),
        }),
        changed: Notify::new(),
        journal: JournalWriter::start(journal, jpath.clone()),
        events,
        install_id: install_id.clone(),
        state_root: opts.state_root.clone(),
        scheduled: sched.scheduled.clone(),
        secrets,
        control: Control::new(commands.is_some()),
        failures: Mutex::new(Vec::new()),
        ended: Mutex::new(HashSet::new()),
        counts: Mutex::new(Summary {
            already_done: sched.done.len(),
            ..Summary::default()
        }),
        bundle,
        step_logs: super::step_logs::StepLogs::new(&opts.state_dir, &install_id),
        turns: plan
            .steps
            .iter()
            .filter(|s| s.serial)
            .map(|s| (s.id.clone(), tokio::sync::Mutex::new(())))
            .collect(),
    });
    // The operator's commands reach waiting nodes through `Control`; the reader ends with the
    // install.
    let reader = commands.map(|mut rx| {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                // A command about no waiting node (sent twice, or late) changes nothing.
                let _ = shared.control.apply(&cmd);
            }
            shared.control.close();
        })
    });
    // Steps of nodes the operator aborted: skipped, so the steps waiting for them skip too.
    for (node, step) in &sched.aborted {
        let reason = format!(
            "{node} was aborted by the operator; `kswizard install --resume --retry {node}` runs it again"
        );
        shared
            .finish(node, step, StepEnd::plain(Status::Skipped, reason))
            .await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut by_task = HashMap::new();
    for (i, (((todo, env), fps), files)) in sched
        .nodes
        .into_iter()
        .zip(envs)
        .zip(fps)
        .zip(files)
        .enumerate()
    {
        let host = cluster.hosts[i].clone();
        let plan = plan.clone();
        let shared = shared.clone();
        let known_hosts = known_hosts.clone();
        let ctl_dir = ctl.path().to_path_buf();
        let reconnect_for = opts.reconnect_for;
        let conn = conns[i].take();
        let steps: Vec<String> = todo.steps.iter().map(|t| t.step.clone()).collect();
        by_task.insert(
            tasks
                .spawn(async move {
                    let run = NodeRun {
                        host: &host,
                        plan: &plan,
                        shared: &shared,
                        known_hosts: &known_hosts,
                        ctl_dir: &ctl_dir,
                        reconnect_for,
                        n: i,
                        conns: usize::from(conn.is_some()),
                        conn,
                        facts_pending: false,
                        env,
                        fps,
                        files,
                    };
                    run.run(todo.steps).await;
                })
                .id(),
            (todo.node, steps),
        );
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        // A node task that panicked (a bug) must not leave other nodes waiting at its barriers:
        // its first unended step fails, the rest are skipped, as for a node that went away.
        if let Err(e) = joined
            && let Some((node, steps)) = by_task.get(&e.id())
        {
            let open: Vec<String> = {
                let ended = shared
                    .ended
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                steps
                    .iter()
                    .filter(|s| !ended.contains(&(node.clone(), (*s).clone())))
                    .cloned()
                    .collect()
            };
            let reason = format!(
                "kswizard stopped working on this node (a bug: {e}); the other nodes went on"
            );
            fail_rest(&shared, node, &open, reason).await;
        }
    }

    if let Some(r) = reader {
        r.abort();
        let _ = r.await;
    }
    let mut summary = shared
        .counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    summary.failures.clone_from(
        &shared
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    summary.install_elapsed_s = begun.map_or(summary.elapsed_ms / 1000, |b| {
        journal::now().saturating_sub(b)
    });
    shared.journal.log(Record::Complete { ts: journal::now() });
    if opts.operation.is_none() && summary.failed == 0 && summary.skipped == 0 {
        // What day 2 compares the conf with. Not writing it loses no step: said, not failed.
        let rec = installed::Installed::of(cluster, &install_id);
        if let Err(e) = rec.save(&opts.state_dir) {
            summary.warnings.push(format!(
                "{}: the record of the installed cluster could not be written ({e}); day 2 compares the conf with the previous one",
                installed::path(&opts.state_dir).display()
            ));
        }
    }
    shared.emit(Event::Summary(summary.clone())).await;
    drop(ctl);
    if let Ok(mut s) = Arc::try_unwrap(shared) {
        s.journal
            .finish()
            .map_err(|e| EngineError::JournalWrite(jpath.clone(), e))?;
    }
    drop(lock);
    Ok(summary)
}

/// The preflight stage: the plan's preflight script on every node that has steps to run, all at
/// once, then the nodes compared (`preflight::compare`); a `preflight` event per node.
struct Stage<'a> {
    cluster: &'a Cluster,
    plan: &'a Plan,
    envs: &'a [Vec<(String, String)>],
    script: &'a str,
    known_hosts: &'a Path,
    ctl_dir: &'a Path,
    state_root: &'a str,
    secrets: &'a Secrets,
    events: &'a mpsc::Sender<Event>,
}

impl Stage<'_> {
    /// Each node's connection (by host index; `None` where it has nothing to run) and the nodes
    /// that warned, or the failures.
    async fn run(&self, todo: &[decide::NodeTodo]) -> Result<StageEnd, EngineError> {
        let hosts: Vec<usize> = (0..self.cluster.hosts.len())
            .filter(|&i| todo.get(i).is_some_and(|t| !t.steps.is_empty()))
            .collect();
        if hosts.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // All at once, each in a task of its own (owned copies: tasks outlive no borrow).
        let mut tasks = tokio::task::JoinSet::new();
        for &i in &hosts {
            let host = self.cluster.hosts[i].clone();
            let mut env = self.envs[i].clone();
            // Where the runner keeps steps: a node with steps of kswizard's there was installed
            // by it, and its components may hold the ports.
            env.push((
                "KSW_STATE_ROOT".into(),
                self.state_root.replace("{node}", &host.name),
            ));
            let script = self.script.to_string();
            // As root when any of its steps becomes root: a plan of login-user steps needs no sudo.
            let root = todo[i]
                .steps
                .iter()
                .any(|t| self.plan.step(&t.step).is_some_and(|s| s.become_root));
            let known_hosts = self.known_hosts.to_path_buf();
            let ctl_dir = self.ctl_dir.to_path_buf();
            tasks.spawn(async move {
                let r =
                    super::node::preflight(&host, &env, &script, root, &known_hosts, &ctl_dir, i)
                        .await;
                (i, r)
            });
        }
        let mut results = HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            // A task that panicked (a bug) leaves its node without a report: failed below.
            if let Ok((i, r)) = joined {
                results.insert(i, r);
            }
        }
        let mut reports = Vec::new();
        let mut windows = HashMap::new();
        let mut conns: Vec<Option<transport::Conn>> =
            (0..self.cluster.hosts.len()).map(|_| None).collect();
        for &i in &hosts {
            let name = &self.cluster.hosts[i].name;
            let (report, window, conn) = results.remove(&i).unwrap_or_else(|| {
                let why = "kswizard's preflight of this node stopped (a bug)";
                (preflight::Report::unreachable(name, why), None, None)
            });
            if let Some(w) = window {
                windows.insert(report.node.clone(), w);
            }
            conns[i] = conn;
            reports.push(report);
        }
        let ips: HashMap<String, String> = hosts
            .iter()
            .map(|&i| {
                let h = &self.cluster.hosts[i];
                (h.name.clone(), h.node_ip().to_string())
            })
            .collect();
        preflight::compare(&mut reports, &windows, &ips);
        for r in &mut reports {
            for c in &mut r.checks {
                c.reason = self.secrets.scrub(&c.reason);
            }
            let _ = self
                .events
                .send(Event::Preflight {
                    node: r.node.clone(),
                    status: r.level(),
                    checks: r.checks.clone(),
                    facts: r.facts.clone(),
                })
                .await;
        }
        let failed: Vec<String> = reports
            .iter()
            .filter(|r| r.level() == preflight::Level::Fail)
            .map(|r| r.node.clone())
            .collect();
        if failed.is_empty() {
            let warned = reports
                .iter()
                .filter(|r| r.level() == preflight::Level::Warn)
                .map(|r| r.node.clone())
                .collect();
            return Ok((conns, warned));
        }
        for c in conns.into_iter().flatten() {
            c.close().await;
        }
        Err(EngineError::Preflight {
            nodes: failed,
            table: preflight::table(&reports),
        })
    }
}

/// What a preflight stage that found no failure hands on: each node's connection, the nodes
/// that warned.
type StageEnd = (Vec<Option<transport::Conn>>, Vec<String>);

/// Ask "continue anyway?" and wait for the answer; a caller gone (either end dropped) is a no.
async fn confirmed(ask: &ConfirmWarnings) -> bool {
    let (answer, rx) = oneshot::channel();
    if ask.send(answer).await.is_err() {
        return false;
    }
    rx.await.unwrap_or(false)
}

fn new_install_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:04x}",
        t.as_secs(),
        (t.subsec_nanos() ^ std::process::id()) & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Role;
    use crate::model::{Host, LbMode};

    fn ha3(mode: LbMode) -> Cluster {
        let mut c = Cluster::default();
        for i in 1..=4 {
            c.hosts
                .push(Host::new(format!("m{i}"), format!("192.168.0.{i}")));
        }
        c.apply_preset();
        c.lb.mode = mode;
        c.lb.address = Some("192.168.0.253".into());
        c.lb.port = 8443;
        c
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn a_snapshot_is_delivered_as_a_private_bundle_of_one_to_the_steps_roles() {
        let plan = super::super::plan::parse(
            "steps:\n- {id: snap, roles: [etcd], deliver: snapshot}\n",
            Path::new("etcd-restore.yaml"),
            |_| Ok(String::new()),
        )
        .unwrap();
        let c = ha3(LbMode::External);
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::new(dir.path().into());
        let Err(EngineError::Bundle(e)) = checked_bundle(&c, &plan, &opts).await else {
            panic!("a snapshot plan without a snapshot must be refused");
        };
        assert!(
            e.to_string().contains("`kswizard etcd restore FILE`"),
            "{e}"
        );
        let file = dir.path().join("snapshot.db");
        std::fs::write(&file, b"abc").unwrap();
        let opts = Options {
            snapshot: Some(file),
            ..opts
        };
        let b = checked_bundle(&c, &plan, &opts).await.unwrap().unwrap();
        let [e] = b.manifest.files.as_slice() else {
            panic!("one entry: {:?}", b.manifest.files);
        };
        assert_eq!(
            (
                e.target.as_str(),
                e.mode.as_str(),
                e.size,
                e.roles.as_slice()
            ),
            (
                super::super::plan::SNAPSHOT_TARGET,
                "0600",
                3,
                [Role::Etcd].as_slice()
            )
        );
        // sha256("abc")
        assert!(e.sha256.starts_with("ba7816bf8f01cfea"), "{}", e.sha256);
        assert_eq!(b.dir, dir.path());
    }

    #[test]
    fn built_in_mode_gives_steps_the_keepalived_settings() {
        let mut c = ha3(LbMode::BuiltIn);
        let env = base_env(&c, &c.hosts[1], "id");
        assert_eq!(get(&env, "KSW_LB_MODE"), Some("built-in"));
        assert_eq!(get(&env, "KSW_LB_PORT"), Some("8443"));
        assert_eq!(get(&env, "KSW_KEEPALIVED_INTERFACE"), Some(""));
        let derived = get(&env, "KSW_KEEPALIVED_ROUTER_ID").unwrap().to_string();
        assert_eq!(derived, router_id_of("192.168.0.253").to_string());
        assert_eq!(
            get(&env, "KSW_HAPROXY_STATS_PORT"),
            Some(crate::lb_status::HAPROXY_STATS_PORT.to_string().as_str())
        );
        c.settings.keepalived_interface = Some("ens3".into());
        c.settings.keepalived_router_id = Some(42);
        let env = base_env(&c, &c.hosts[1], "id");
        assert_eq!(get(&env, "KSW_KEEPALIVED_INTERFACE"), Some("ens3"));
        assert_eq!(get(&env, "KSW_KEEPALIVED_ROUTER_ID"), Some("42"));
    }

    #[test]
    fn other_modes_get_only_the_mode() {
        for (mode, name) in [(LbMode::External, "external"), (LbMode::None, "none")] {
            let c = ha3(mode);
            let env = base_env(&c, &c.hosts[0], "id");
            assert_eq!(get(&env, "KSW_LB_MODE"), Some(name));
            assert!(
                env.iter().all(|(k, _)| !k.starts_with("KSW_KEEPALIVED")
                    && k != "KSW_HAPROXY_STATS_PORT"),
                "{env:?}"
            );
        }
    }

    #[test]
    fn stacked_etcd_changes_the_install_and_tells_the_steps() {
        let mut c = ha3(LbMode::External);
        let plan =
            crate::engine::paths::load_plan(Path::new(crate::engine::paths::BUNDLED)).unwrap();
        let external = config_fingerprint(&c, &plan);
        let env = base_env(&c, &c.hosts[0], "id");
        assert_eq!(get(&env, "KSW_ETCD_TOPOLOGY"), None, "external: as before");
        c.settings.etcd_topology = crate::model::EtcdTopology::Stacked;
        let stacked = config_fingerprint(&c, &plan);
        assert_ne!(external, stacked);
        let env = base_env(&c, &c.hosts[0], "id");
        assert_eq!(get(&env, "KSW_ETCD_TOPOLOGY"), Some("stacked"));
        c.settings.etcd_topology = crate::model::EtcdTopology::External;
        assert_eq!(config_fingerprint(&c, &plan), external);
    }

    #[test]
    fn steps_install_from_packages_unless_a_bundle_is_configured() {
        let mut c = ha3(LbMode::External);
        let env = base_env(&c, &c.hosts[0], "id");
        assert_eq!(get(&env, "KSW_DELIVERY"), Some("packages"));
        assert_eq!(
            get(&env, "KSW_K8S_VERSION"),
            Some(crate::model::KUBERNETES_VERSION)
        );
        c.settings.bundle = Some("/srv/kswizard-bundle".into());
        let env = base_env(&c, &c.hosts[0], "id");
        assert_eq!(get(&env, "KSW_DELIVERY"), Some("bundle"));
    }

    #[test]
    fn steps_get_the_pod_network_and_whether_the_console_is_behind_the_lb() {
        let mut c = ha3(LbMode::External);
        let env = base_env(&c, &c.hosts[0], "id");
        assert_eq!(get(&env, "KSW_POD_CIDR"), Some("10.233.64.0/18"));
        assert_eq!(get(&env, "KSW_CONSOLE_LB"), Some("0"));
        c.pods_subnet = Some("10.100.0.0/16".into());
        c.settings.console_lb = true;
        let env = base_env(&c, &c.hosts[3], "id");
        assert_eq!(get(&env, "KSW_POD_CIDR"), Some("10.100.0.0/16"));
        assert_eq!(get(&env, "KSW_CONSOLE_LB"), Some("1"));
    }

    #[test]
    fn router_ids_are_stable_in_range_and_differ_within_a_subnet() {
        let ids: HashSet<u8> = (1..=254)
            .map(|d| router_id_of(&format!("10.20.30.{d}")))
            .collect();
        assert_eq!(ids.len(), 254, "every VIP of a /24 has its own id");
        assert!(!ids.contains(&0));
        assert_eq!(router_id_of("192.168.0.253"), router_id_of("192.168.0.253"));
        for other in ["fd00::10", "vip.example", ""] {
            assert!(router_id_of(other) >= 1);
        }
    }
}
