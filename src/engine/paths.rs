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

const BUNDLED_FILES: &[(&str, &str)] = &[
    ("plan.yaml", include_str!("../../assets/plan.yaml")),
    (
        "steps/preflight.sh",
        include_str!("../../assets/steps/preflight.sh"),
    ),
    (
        "steps/os-prep.sh",
        include_str!("../../assets/steps/os-prep.sh"),
    ),
    (
        "steps/container-runtime.sh",
        include_str!("../../assets/steps/container-runtime.sh"),
    ),
    (
        "steps/kube-packages.sh",
        include_str!("../../assets/steps/kube-packages.sh"),
    ),
    (
        "steps/etcd-ca.sh",
        include_str!("../../assets/steps/etcd-ca.sh"),
    ),
    (
        "steps/etcd-certs.sh",
        include_str!("../../assets/steps/etcd-certs.sh"),
    ),
    (
        "steps/etcd-start.sh",
        include_str!("../../assets/steps/etcd-start.sh"),
    ),
    (
        "steps/etcd-health.sh",
        include_str!("../../assets/steps/etcd-health.sh"),
    ),
    (
        "steps/kubeadm-init.sh",
        include_str!("../../assets/steps/kubeadm-init.sh"),
    ),
    ("steps/join.sh", include_str!("../../assets/steps/join.sh")),
    (
        "steps/verify.sh",
        include_str!("../../assets/steps/verify.sh"),
    ),
];

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

/// Load the plan `plan_path` chose.
pub fn load_plan(path: &Path) -> Result<Plan, ConfError> {
    if path != Path::new(BUNDLED) {
        return super::plan::load(path);
    }
    let file = |name: &str| {
        BUNDLED_FILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
    };
    super::plan::parse(file("plan.yaml").unwrap_or_default(), path, |script| {
        file(script).map(str::to_string).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "not in the bundled plan")
        })
    })
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
        assert!(plan.steps.iter().all(|s| !s.body.is_empty()));
    }
}
