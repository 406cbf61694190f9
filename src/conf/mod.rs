//! The installer's files in a conf/ directory: reading them into a `Cluster` and writing it back.

pub mod atomic;
pub mod common_yaml;
pub mod error;
pub mod hosts_ini;
pub mod limits;
pub mod settings;

use std::io;
use std::path::{Path, PathBuf};

pub use error::ConfError;

use crate::model::{Auth, Cluster, LbMode, Settings};

pub const HOSTS_INI: &str = "hosts.ini";
pub const COMMON_YAML: &str = "common.yaml";
pub const VARS_YML: &str = "vars.yml";
pub const SETTINGS_YAML: &str = "kswizard.yaml";

/// Where a cluster came from, and the original common.yaml text to patch when writing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub dir: PathBuf,
    /// The LB file in use: common.yaml, or vars.yml when only that exists.
    pub common_name: String,
    pub common_text: Option<String>,
    pub hosts_exists: bool,
    /// kswizard.yaml as read: given back byte for byte while the settings it says are unchanged.
    pub settings_text: Option<String>,
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, ConfError> {
    match std::fs::File::open(path) {
        Ok(f) => limits::read_all(f, path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfError::io(path, &e)),
    }
}

fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, ConfError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfError::new(path, line, "not UTF-8 text: save the file as UTF-8")
    })
}

/// Read conf/`dir`. Missing files mean a new cluster; unreadable ones are errors naming <file:line>.
pub fn load(dir: &Path) -> Result<(Cluster, Source), ConfError> {
    if !dir.is_dir() {
        return Err(ConfError::new(
            dir,
            0,
            "no such directory: pass --conf with the installer's conf/ directory (it may be empty for a new cluster)",
        ));
    }
    let hosts_path = dir.join(HOSTS_INI);
    let hosts_bytes = read_optional(&hosts_path)?;
    let mut cluster = match &hosts_bytes {
        Some(b) => hosts_ini::parse(b, &hosts_path)?,
        None => Cluster::default(),
    };

    let common_name = if !dir.join(COMMON_YAML).exists() && dir.join(VARS_YML).exists() {
        VARS_YML
    } else {
        COMMON_YAML
    };
    let common_path = dir.join(common_name);
    let common_text = read_optional(&common_path)?
        .map(|b| utf8(b, &common_path))
        .transpose()?;
    if let Some(text) = &common_text {
        let v = common_yaml::parse(text, &common_path)?;
        cluster.lb.address = v.address;
        if let Some(p) = v.port {
            cluster.lb.port = p;
        }
        if let Some(d) = v.domain {
            cluster.lb.domain = d;
        }
        cluster.pods_subnet = v.pods_subnet;
    }

    let settings_path = dir.join(SETTINGS_YAML);
    let settings_text = read_optional(&settings_path)?
        .map(|b| utf8(b, &settings_path))
        .transpose()?;
    if let Some(text) = &settings_text {
        cluster.settings = settings::parse(text, &settings_path)?;
    }
    cluster.lb.mode = cluster
        .settings
        .lb_mode
        .unwrap_or_else(|| implied_lb_mode(&cluster));

    Ok((
        cluster,
        Source {
            dir: dir.to_path_buf(),
            common_name: common_name.to_string(),
            common_text,
            hosts_exists: hosts_bytes.is_some(),
            settings_text,
        },
    ))
}

/// The files `save` would write, as (file name, new content); used by `save` and by the Review
/// screen's diff.
pub fn render_all(cluster: &Cluster, source: &Source) -> Result<Vec<(String, String)>, ConfError> {
    let common_name = if source.common_name.is_empty() {
        COMMON_YAML
    } else {
        &source.common_name
    };
    let common_path = source.dir.join(common_name);
    let common = match &source.common_text {
        Some(text) => common_yaml::patch(text, &cluster.lb, &common_path)?,
        None => common_yaml::fresh(&cluster.lb, &common_path)?,
    };
    let mut files = vec![
        (HOSTS_INI.to_string(), hosts_ini::render(cluster)),
        (common_name.to_string(), common),
    ];
    let settings = settings_to_write(cluster);
    let path = source.dir.join(SETTINGS_YAML);
    match &source.settings_text {
        // The operator's own file, comments and all, while it says the same.
        Some(text) if settings::parse(text, &path).is_ok_and(|s| s == settings) => {
            files.push((SETTINGS_YAML.to_string(), text.clone()));
        }
        Some(_) => files.push((SETTINGS_YAML.to_string(), settings::render(&settings))),
        None if settings != Settings::default() => {
            files.push((SETTINGS_YAML.to_string(), settings::render(&settings)));
        }
        None => {}
    }
    Ok(files)
}

/// The LB mode the installer's files alone imply: an address is an LB kswizard does not manage.
fn implied_lb_mode(cluster: &Cluster) -> LbMode {
    if cluster.lb.address.is_some() {
        LbMode::External
    } else {
        LbMode::None
    }
}

/// The settings as saved: the LB mode is recorded only where the files alone would not imply it.
fn settings_to_write(cluster: &Cluster) -> Settings {
    let mut s = cluster.settings.clone();
    s.lb_mode = (cluster.lb.mode != implied_lb_mode(cluster)).then_some(cluster.lb.mode);
    s
}

fn has_secrets(cluster: &Cluster) -> bool {
    cluster
        .hosts
        .iter()
        .any(|h| matches!(h.auth, Auth::Password(_)) || h.become_pass.is_some())
}

/// Write the files into `out` (which may be the source dir): each atomically, the old one kept as
/// `.bak` (0600). hosts.ini holding passwords is written 0600.
pub fn save(cluster: &Cluster, source: &Source, out: &Path) -> Result<Vec<PathBuf>, ConfError> {
    let files = render_all(cluster, source)?;
    std::fs::create_dir_all(out).map_err(|e| ConfError::io(out, &e))?;
    let mut written = Vec::new();
    for (name, content) in files {
        let path = out.join(&name);
        atomic::backup(&path).map_err(|e| ConfError::io(&path, &e))?;
        // Passwords: 0600 whatever mode the old file had.
        let written_ok = if name == HOSTS_INI && has_secrets(cluster) {
            atomic::write_atomic_mode(&path, content.as_bytes(), 0o600)
        } else {
            atomic::write_atomic(&path, content.as_bytes(), 0o644)
        };
        written_ok.map_err(|e| ConfError::io(&path, &e))?;
        written.push(path);
    }
    Ok(written)
}
