//! The install engine: a plan of steps run over SSH on every node, in parallel, journaled.

pub mod batch;
pub mod control;
pub mod copy_id;
pub mod decide;
pub mod deliver;
pub mod eta;
pub mod events;
pub mod executor;
pub mod installed;
pub mod journal;
mod node;
pub mod paths;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod reach;
pub mod report;
pub mod runner;
mod shared;
pub mod status;
pub mod step_logs;
pub mod transport;

pub use node::probe;
