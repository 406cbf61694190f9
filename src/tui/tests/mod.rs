//! Tests of the pure parts: update paths and snapshots of every screen.

mod snapshots;
mod update;
