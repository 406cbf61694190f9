//! `kswizard write`: the installer's files for a cluster, into another directory.

use std::path::Path;

use super::{Outcome, findings};
use crate::conf;
use crate::model::LbMode;
use crate::validate::{has_errors, validate};

pub struct LbOverrides {
    pub address: Option<String>,
    pub port: Option<i64>,
    pub domain: Option<String>,
}

pub fn run(dir: &Path, out: &Path, lb: LbOverrides) -> Outcome {
    let (mut cluster, source) = match conf::load(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kswizard: {e}");
            return Outcome::BadInput;
        }
    };
    if let Some(a) = lb.address {
        cluster.lb.address = Some(a);
        if cluster.lb.mode == LbMode::None {
            cluster.lb.mode = LbMode::External;
        }
    }
    if let Some(p) = lb.port {
        cluster.lb.port = p;
    }
    if let Some(d) = lb.domain {
        cluster.lb.domain = d;
    }
    let found = validate(&cluster);
    eprint!("{}", findings::text(&found));
    if has_errors(&found) {
        eprintln!(
            "kswizard: nothing written: {}",
            findings::summary(&cluster, &found)
        );
        return Outcome::Failed;
    }
    match conf::save(&cluster, &source, out) {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            Outcome::Ok
        }
        Err(e) => {
            eprintln!("kswizard: {e}");
            Outcome::BadInput
        }
    }
}
