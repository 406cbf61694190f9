//! After the `reset` operation (`kswizard reset` and the wizard's): the hosts its journal says
//! were reset — also after a failure on others — recorded in the install journal (the next
//! install runs their steps again, or starts fresh when every host was reset) and dropped from
//! the installed record. The decisions are `ops::reset`'s (pure).

use std::collections::BTreeSet;
use std::path::Path;

use super::reset;
use crate::engine::executor;
use crate::engine::installed::Installed;
use crate::engine::journal::{self, Journal};
use crate::model::Cluster;

/// The operation's name: its plan `assets/reset.yaml`, its journal `<state>/ops/reset.jsonl`.
pub const RESET: &str = "reset";

/// The step whose end means a host is reset.
const NODE_RESET: &str = "node-reset";

/// Of `hosts`, those the reset's journal in `state` has done, recorded; returns them.
pub fn record(
    state: &Path,
    cluster: &Cluster,
    hosts: &BTreeSet<String>,
) -> Result<BTreeSet<String>, String> {
    let replay =
        journal::replay(&executor::journal_for(state, RESET)).map_err(|e| e.to_string())?;
    let done: BTreeSet<String> = hosts
        .iter()
        .filter(|h| replay.is_done(h, NODE_RESET))
        .cloned()
        .collect();
    if done.is_empty() {
        return Ok(done);
    }
    let jpath = executor::journal_path(state);
    if jpath.exists() {
        Journal::open(&jpath, false)
            .and_then(|mut j| j.append(&reset::record(cluster, &done)))
            .map_err(|e| format!("{}: {e}", jpath.display()))?;
    }
    let names: Vec<String> = done.iter().cloned().collect();
    match Installed::load(state) {
        Ok(Some(rec)) => rec
            .without(&names)
            .save(state)
            .map_err(|e| format!("{}: {e}", crate::engine::installed::path(state).display()))?,
        Ok(None) => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(done)
}
