//! The install engine: a plan of steps run over SSH on every node, in parallel, journaled.

pub mod events;
pub mod journal;
pub mod plan;
pub mod runner;
pub mod transport;
