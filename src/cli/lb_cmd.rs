//! `kswizard lb status [--watch]`: HTTPS `/readyz` of the LB frontend and each master's
//! apiserver; with the built-in LB also the VIP holder and each master's haproxy (over SSH, host
//! keys pinned in the install's state dir).

use std::path::Path;
use std::time::Duration;

use super::{Format, Outcome, findings};
use crate::engine::paths::state_dir;
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
        // One prober for the whole watch: the built-in mode's SSH connections are kept.
        let prober = lb_status::Prober::new(cluster, &state_dir(conf_dir, None));
        loop {
            let s = prober.check().await;
            if json {
                match serde_json::to_string(&s) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("kswizard: the status does not serialise: {e}");
                        return Outcome::Failed;
                    }
                }
            } else {
                print!("{}", lb_status::text(&s));
            }
            if !watch {
                return if s.healthy() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                };
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
