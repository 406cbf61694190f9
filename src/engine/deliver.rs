//! The `deliver` step, carried out from the taskbox: ask the node for the sha256 of its targets,
//! stream the files it lacks over the install's own connection (at most `Options::transfers` at
//! once across all nodes), and give every target its mode. The decisions are in
//! `bundle::deliver`; this is the shell around them.

use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::Semaphore;

use super::events::Event;
use super::shared::Shared;
use super::transport::{Conn, Lost};
use crate::bundle::deliver as decide;
use crate::bundle::{Entry, Manifest};

/// The install's bundle, checked before any node was touched.
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Bounds the transfers in flight across all nodes.
    pub transfers: Semaphore,
}

/// What a delivery to one node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub files: usize,
    pub bytes: u64,
    pub unchanged: usize,
    pub elapsed_ms: u64,
}

pub enum Failed {
    /// The connection went away: reconnect and deliver again (what arrived stays).
    Lost(Lost),
    /// The node or the taskbox could not do its part.
    Error(String),
}

impl From<Lost> for Failed {
    fn from(l: Lost) -> Self {
        Failed::Lost(l)
    }
}

/// Deliver `entries` of `bundle` to the node behind `conn`, with a line in the step's log for
/// each file sent.
pub(super) async fn deliver(
    conn: &Conn,
    bundle: &Bundle,
    entries: &[&Entry],
    shared: &Shared,
    (node, step): (&str, &str),
    root: bool,
    state_root: &str,
) -> Result<Delivered, Failed> {
    let say = async |line: String| {
        shared
            .emit(Event::Output {
                node: node.to_string(),
                step: step.to_string(),
                line,
            })
            .await;
    };
    let started = Instant::now();
    let (code, out, err) = conn.run(&decide::sums_command(entries), root).await?;
    if code != 0 {
        return Err(Failed::Error(format!(
            "could not read the node's copies (exit {code}): {}",
            err.trim()
        )));
    }
    let (send, unchanged) = decide::to_send(entries, &decide::parse_sums(&out));
    if !unchanged.is_empty() {
        say(format!(
            "{} of {} files already on the node with the bundle's sha256: not sent",
            unchanged.len(),
            entries.len()
        ))
        .await;
    }
    let mut bytes = 0;
    for e in &send {
        let _permit = bundle
            .transfers
            .acquire()
            .await
            .map_err(|e| Failed::Error(e.to_string()))?;
        let t = Instant::now();
        let path = bundle.dir.join(&e.file);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|err| Failed::Error(format!("{}: {err}", path.display())))?;
        let mut r = conn
            .push(&decide::receive_script(e), root, &mut file)
            .await?;
        let mut said = Vec::new();
        while let Some(l) = r.next_line().await {
            said.push(l);
        }
        let (code, err) = r.finish().await?;
        if code != 0 {
            let why = said
                .last()
                .map_or_else(|| err.trim().to_string(), Clone::clone);
            return Err(Failed::Error(format!("{} not delivered: {why}", e.target)));
        }
        bytes += e.size;
        let what = if e.standin { " (lab stand-in)" } else { "" };
        say(format!(
            "{} {}{what} → {}: {}",
            e.name,
            e.version,
            e.target,
            decide::rate(e.size, t.elapsed().as_secs_f64())
        ))
        .await;
    }
    let (code, _, err) = conn
        .run(&decide::modes_command(entries, state_root), root)
        .await?;
    if code != 0 {
        return Err(Failed::Error(format!(
            "could not set the files' modes: {}",
            err.trim()
        )));
    }
    Ok(Delivered {
        files: send.len(),
        bytes,
        unchanged: unchanged.len(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}
