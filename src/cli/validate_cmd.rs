//! `kswizard validate`.

use std::path::Path;

use super::{Format, Outcome, findings};
use crate::conf;
use crate::validate::{Severity, validate};

pub fn run(dir: &Path, format: Format, strict: bool) -> Outcome {
    let (cluster, _) = match conf::load(dir) {
        Ok(c) => c,
        Err(e) => {
            match format {
                Format::Text => eprintln!("kswizard: {e}"),
                Format::Json => println!("{}", findings::error_json(&e)),
            }
            return Outcome::BadInput;
        }
    };
    let found = validate(&cluster);
    match format {
        Format::Text => {
            print!("{}", findings::text(&found));
            println!("{}: {}", dir.display(), findings::summary(&cluster, &found));
        }
        Format::Json => println!("{}", findings::json(&found)),
    }
    let fails = found
        .iter()
        .any(|f| f.severity == Severity::Error || (strict && f.severity == Severity::Warning));
    if fails { Outcome::Failed } else { Outcome::Ok }
}
