//! One module a screen: what it is for, its key hints, and how it draws its body. `view` puts the
//! frame around it.

pub mod done;
pub mod help;
pub mod hosts;
pub mod install;
pub mod load_balancer;
pub mod log_view;
pub mod ops;
pub mod preflight;
pub mod review;
pub mod roles;
pub mod start;
