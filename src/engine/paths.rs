//! Where an install's files are: the state directory and the plan, found from the conf directory.

use std::path::{Path, PathBuf};

use super::plan::Plan;
use crate::conf::ConfError;
use crate::model::Cluster;

/// Where the install's state lives: `--state`, else `.kswizard/` next to the conf directory.
pub fn state_dir(conf: &Path, state: Option<&Path>) -> PathBuf {
    match state {
        Some(s) => s.to_path_buf(),
        None => conf
            .canonicalize()
            .unwrap_or_else(|_| conf.to_path_buf())
            .parent()
            .unwrap_or(Path::new("."))
            .join(".kswizard"),
    }
}

/// The plan kswizard carries in its binary: `assets/plan.yaml` and its step scripts.
pub const BUNDLED: &str = "<bundled>/plan.yaml";
/// How a plan carried in the binary is named: `<bundled>/remove.yaml`.
const BUNDLED_DIR: &str = "<bundled>/";

/// Every file under `assets/` as (path relative to it, content), found by `build.rs`.
pub const ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// A bundled file by its path relative to `assets/` (`steps/join.sh`, `./steps/join.sh`).
fn bundled(name: &str) -> Option<&'static [u8]> {
    let name = name.trim_start_matches("./");
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

fn bundled_text(name: &str) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let bytes = bundled(name)
        .ok_or_else(|| Error::new(ErrorKind::NotFound, "not in the bundled assets/"))?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// The plan to run: `--plan`, else kswizard.yaml's `plan`, else `assets/plan.yaml` next to the
/// conf directory (as in this repository, where it can be edited), else the bundled one.
pub fn plan_path(conf: &Path, cluster: &Cluster, flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = &cluster.settings.plan {
        return conf.join(p);
    }
    let beside = conf.join("..").join("assets").join("plan.yaml");
    beside
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(BUNDLED))
}

/// A day-2 operation's plan (`remove`, `reset`, `etcd-backup`, `etcd-restore`):
/// `assets/<name>.yaml` next to the conf directory (as in this repository), else the bundled one.
/// Its scripts are read relative to it, so they share `steps/` with the install plan.
pub fn op_plan(conf: &Path, name: &str) -> PathBuf {
    let file = format!("{name}.yaml");
    conf.join("..")
        .join("assets")
        .join(&file)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(format!("{BUNDLED_DIR}{file}")))
}

/// The bundle the conf names (kswizard.yaml's `bundle`, relative to the conf directory).
pub fn bundle_dir(conf: &Path, cluster: &Cluster) -> Option<PathBuf> {
    cluster.settings.bundle.as_ref().map(|b| conf.join(b))
}

/// Load the plan `plan_path` or `op_plan` chose.
pub fn load_plan(path: &Path) -> Result<Plan, ConfError> {
    let Some(name) = path.to_str().and_then(|p| p.strip_prefix(BUNDLED_DIR)) else {
        return super::plan::load(path);
    };
    let text = bundled_text(name).map_err(|e| ConfError::io(path, &e))?;
    super::plan::parse(&text, path, bundled_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_plan_loads_with_every_script() {
        let plan = load_plan(Path::new(BUNDLED)).unwrap();
        let on_disk = super::super::plan::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plan.yaml"),
        )
        .unwrap();
        assert_eq!(plan.steps, on_disk.steps);
        assert!(
            plan.steps
                .iter()
                .all(|s| s.deliver.is_some() || !s.body.is_empty())
        );
    }

    fn files_under(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, root, out);
            } else {
                let name = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.push((name.replace('\\', "/"), std::fs::read(&path).unwrap()));
            }
        }
    }

    #[test]
    fn every_file_under_assets_is_in_the_bundle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut on_disk = Vec::new();
        files_under(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut in_binary: Vec<(String, Vec<u8>)> = ASSETS
            .iter()
            .map(|(n, b)| (n.to_string(), b.to_vec()))
            .collect();
        in_binary.sort();
        assert!(on_disk.iter().any(|(n, _)| n == "lab/stand-ins/standin.py"));
        assert_eq!(in_binary, on_disk);
        assert_eq!(bundled("./steps/join.sh"), bundled("steps/join.sh"));
    }
}
