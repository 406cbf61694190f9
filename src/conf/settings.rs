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
            format!("{msg} (known keys: lb_mode external|built-in|none, keepalived_interface, keepalived_router_id, console_lb, plan, accept)"),
        )
    })
}

pub fn render(settings: &Settings) -> String {
    let body = serde_yaml::to_string(settings).expect("settings always serialise");
    format!("# kswizard's own settings (the installer does not read this file).\n{body}")
}
