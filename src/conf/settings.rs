//! `conf/kswizard.yaml`: kswizard's own settings, next to the installer's files.

use std::path::Path;

use super::error::ConfError;
use crate::model::Settings;

pub fn parse(text: &str, file: &Path) -> Result<Settings, ConfError> {
    super::limits::check_yaml(text, file)?;
    if text.trim().is_empty() {
        return Ok(Settings::default());
    }
    serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ConfError::new(
            file,
            line,
            format!("{msg} (known keys: lb_mode external|built-in|none, keepalived_interface, keepalived_router_id, console_lb, plan, bundle, accept)"),
        )
    })
}

pub fn render(settings: &Settings) -> String {
    let body = serde_yaml::to_string(settings).expect("settings always serialise");
    format!("# kswizard's own settings (the installer does not read this file).\n{body}")
}

#[cfg(test)]
mod tests {
    use crate::conf::{self, SETTINGS_YAML};
    use crate::model::LbMode;

    fn dir_with(settings: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("hosts.ini"),
            "[all]\nm1 ansible_host=10.0.0.1 ip=10.0.0.1\n[kube-master]\nm1\n[kube-node]\nm1\n[etcd]\nm1\n",
        )
        .unwrap();
        std::fs::write(d.path().join(SETTINGS_YAML), settings).unwrap();
        d
    }

    fn settings_file(files: &[(String, String)]) -> Option<&str> {
        files
            .iter()
            .find(|(n, _)| n == SETTINGS_YAML)
            .map(|(_, t)| t.as_str())
    }

    #[test]
    fn a_hand_written_file_with_some_keys_is_kept_as_it_is() {
        let text = "# ours\naccept: [etcd-on-worker]   # we know\n";
        let d = dir_with(text);
        let (cluster, source) = conf::load(d.path()).unwrap();
        assert_eq!(cluster.settings.accept, ["etcd-on-worker"]);
        let files = conf::render_all(&cluster, &source).unwrap();
        assert_eq!(settings_file(&files), Some(text));
    }

    #[test]
    fn a_changed_file_is_written_without_nulls_or_added_defaults() {
        let d = dir_with("accept: [etcd-on-worker]\n");
        let (mut cluster, source) = conf::load(d.path()).unwrap();
        cluster.lb.mode = LbMode::BuiltIn;
        cluster.lb.address = Some("10.0.0.250".into());
        let files = conf::render_all(&cluster, &source).unwrap();
        let written = settings_file(&files).unwrap();
        assert_eq!(
            written,
            "# kswizard's own settings (the installer does not read this file).\nlb_mode: built-in\naccept:\n- etcd-on-worker\n"
        );
    }
}
