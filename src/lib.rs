//! kswizard: a terminal wizard that installs a highly available Kubernetes / `KubeSphere` cluster.
//! See ARCHITECTURE.md for the map.

pub mod bundle;
pub mod cli;
pub mod conf;
pub mod engine;
pub mod lab;
pub mod lb_status;
pub mod model;
pub mod ops;
pub mod tui;
pub mod validate;
