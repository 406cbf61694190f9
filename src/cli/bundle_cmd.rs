//! `kswizard bundle fetch` (build a bundle from the pinned upstream release files) and
//! `kswizard bundle check DIR` (verify every file of a bundle against its manifest).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::Outcome;
use crate::bundle::fetch::{self, BASE_URL_ENV};
use crate::bundle::{BundleError, Manifest, manifest, release};

#[derive(Subcommand, Debug)]
pub enum BundleAction {
    /// Download the release files for a Kubernetes version, verify them against their published
    /// checksums and write the bundle's manifest (needs internet, or a mirror).
    Fetch {
        /// The Kubernetes version, as v1.28.2.
        #[arg(long)]
        version: String,
        /// The bundle directory (created; a second fetch into it downloads only what is missing).
        #[arg(long, default_value = "bundle")]
        out: PathBuf,
        /// The nodes' architecture.
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// A mirror: each official `https://HOST/PATH` is fetched as `URL/HOST/PATH`
        /// (default: the `KSWIZARD_BUNDLE_BASE_URL` environment variable, else the official hosts).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Verify every file of a bundle (size and sha256) against its manifest.
    Check {
        /// The bundle directory (holding manifest.yaml).
        dir: PathBuf,
    },
}

pub fn run(action: BundleAction) -> Outcome {
    match action {
        BundleAction::Fetch {
            version,
            out,
            arch,
            base_url,
        } => fetch_cmd(&version, &out, &arch, base_url),
        BundleAction::Check { dir } => check(&dir),
    }
}

fn fetch_cmd(version: &str, out: &Path, arch: &str, base_url: Option<String>) -> Outcome {
    let release = match release::release(version, arch) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let base_url = base_url.or_else(|| std::env::var(BASE_URL_ENV).ok().filter(|s| !s.is_empty()));
    if let Some(b) = &base_url
        && !(b.starts_with("http://") || b.starts_with("https://"))
    {
        eprintln!("kswizard: --base-url '{b}' must start with http:// or https://");
        return Outcome::BadInput;
    }
    let opts = fetch::Options {
        release: &release,
        out,
        base_url: base_url.as_deref(),
    };
    match fetch::fetch(&opts, &mut std::io::stdout()) {
        Ok(s) => {
            for name in &s.unpublished {
                println!(
                    "warning: {name}: upstream publishes no checksum for it; its sha256 in the \
                     manifest was taken at fetch time (compare it with a copy you trust)"
                );
            }
            println!(
                "bundle {}: Kubernetes {version} {arch}: {} downloaded ({:.1} MB), {} already there{}",
                out.display(),
                s.downloaded,
                s.bytes as f64 / 1e6,
                s.kept,
                if s.downloaded == 0 {
                    ": nothing downloaded"
                } else {
                    ""
                }
            );
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("kswizard: {e}");
            Outcome::Failed
        }
    }
}

fn check(dir: &Path) -> Outcome {
    let m = match Manifest::load(dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    let mut bad = Vec::new();
    for e in &m.files {
        match manifest::verify_entry(dir, e) {
            Ok(()) => println!(
                "ok    {:<36} {} {} -> {}",
                e.file, e.name, e.version, e.target
            ),
            Err(err) => {
                let problem = match &err {
                    BundleError::File { problem, .. } => problem.clone(),
                    BundleError::Manifest(m) => m.to_string(),
                };
                println!("BAD   {:<36} {problem}", e.file);
                bad.push(err);
            }
        }
        if e.unpublished_checksum() {
            println!(
                "      (upstream publishes no checksum for {}: its sha256 was taken at fetch time)",
                e.name
            );
        }
    }
    println!(
        "{}: Kubernetes {} {}: {} files, {} ok, {} bad",
        dir.display(),
        m.kubernetes,
        m.arch,
        m.files.len(),
        m.files.len() - bad.len(),
        bad.len()
    );
    if let Some(first) = bad.first() {
        eprintln!("kswizard: {first}");
        return Outcome::Failed;
    }
    Outcome::Ok
}
