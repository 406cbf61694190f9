//! `kswizard lb status [--watch]`.

use std::path::Path;
use std::time::Duration;

use super::{Format, Outcome, findings};
use crate::{conf, lb_status};

pub fn status(conf_dir: &Path, watch: bool, format: Format) -> Outcome {
    let json = format == Format::Json;
    let (cluster, _) = match conf::load(conf_dir) {
        Ok(c) => c,
        Err(e) => {
            if json {
                println!("{}", findings::error_json(&e));
            } else {
                eprintln!("kswizard: {e}");
            }
            return Outcome::BadInput;
        }
    };
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        eprintln!("kswizard: cannot start the async runtime");
        return Outcome::BadInput;
    };
    rt.block_on(async {
        loop {
            let s = lb_status::check(&cluster).await;
            if json {
                println!("{}", serde_json::to_string(&s).expect("status serialises"));
            } else {
                print!("{}", lb_status::text(&s));
            }
            if !watch {
                let all_up =
                    s.frontend.as_ref().is_none_or(|f| f.up) && s.backends.iter().all(|b| b.up);
                return if all_up { Outcome::Ok } else { Outcome::Failed };
            }
            if !json {
                println!();
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = tokio::signal::ctrl_c() => return Outcome::Ok,
            }
        }
    })
}
