//! The install engine: a plan of steps run over SSH on every node, in parallel, journaled.

pub mod events;
pub mod executor;
pub mod journal;
pub mod plan;
pub mod report;
pub mod runner;
pub mod status;
pub mod transport;
