//! Where an install's files are: the state directory and the plan, found from the conf directory.

use std::path::{Path, PathBuf};

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

/// The plan to run: `--plan`, else kswizard.yaml's `plan`, else the bundled `assets/plan.yaml`
/// (next to the conf directory's parent, as in this repository, else the build's own).
pub fn plan_path(conf: &Path, cluster: &Cluster, flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = &cluster.settings.plan {
        return conf.join(p);
    }
    let beside = conf.join("..").join("assets").join("plan.yaml");
    if let Ok(found) = beside.canonicalize() {
        return found;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join("plan.yaml")
}
