//! Day-2 operations.

pub mod etcd;
