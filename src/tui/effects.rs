//! The I/O behind `Effect`s: reading the conf directory and writing it. Runs on tokio's blocking
//! pool; the result goes back to `update` as an action.

use std::path::Path;

use super::action::{Action, Effect};
use super::state::Disk;
use crate::conf::{self, Source};
use crate::model::Cluster;

pub fn run(effect: Effect) -> Action {
    match effect {
        Effect::Load(dir) => Action::Loaded(Box::new(load(&dir))),
        Effect::TestSsh { host, known_hosts } => Action::Tested {
            host: host.name.clone(),
            result: test_ssh(&host, &known_hosts),
        },
        Effect::Save {
            cluster,
            source,
            dir,
        } => Action::Saved {
            outcome: Box::new(save(&cluster, &source, &dir)),
            written: cluster,
        },
    }
}

/// Read `dir`: the cluster (none without a hosts.ini) and the text of each file kswizard writes.
pub fn load(dir: &Path) -> Result<Disk, String> {
    if !dir.exists() {
        // A new cluster: the directory is made when the files are first written.
        return Ok(Disk {
            cluster: None,
            source: Source {
                dir: dir.to_path_buf(),
                ..Source::default()
            },
            files: Vec::new(),
            install: None,
        });
    }
    let (cluster, source) = conf::load(dir).map_err(|e| e.to_string())?;
    let names = [
        conf::HOSTS_INI,
        source.common_name.as_str(),
        conf::SETTINGS_YAML,
    ];
    let files = names
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            Some((name.to_string(), text))
        })
        .collect();
    let install = crate::engine::status::of_conf(dir, &cluster);
    Ok(Disk {
        install,
        cluster: source.hosts_exists.then_some(cluster),
        source,
        files,
    })
}

/// Write the files, then read them back so the Review diff compares against what is on disk now.
fn save(cluster: &Cluster, source: &Source, dir: &Path) -> Result<Disk, String> {
    conf::save(cluster, source, dir).map_err(|e| e.to_string())?;
    load(dir)
}

/// The SSH test, on this blocking-pool thread: the engine's own connect and facts.
fn test_ssh(
    host: &crate::model::Host,
    known_hosts: &Path,
) -> Result<crate::engine::events::Facts, String> {
    if let Some(dir) = known_hosts.parent() {
        crate::engine::executor::ensure_state_dir(dir).map_err(|e| e.to_string())?;
    }
    tokio::runtime::Handle::current().block_on(crate::engine::probe(host, known_hosts))
}
