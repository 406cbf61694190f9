//! Day-2 operations (issue 12): each a plan under `assets/` run by the install's engine.

pub mod quorum;
pub mod remove;
pub mod reset;
