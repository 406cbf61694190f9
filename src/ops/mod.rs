//! Day-2 operations.

pub mod etcd;
pub mod etcd_io;
