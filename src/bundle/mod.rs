//! The artifact bundle: the files a node needs (runtime, Kubernetes binaries, etcd, manifests),
//! gathered on the taskbox with a manifest of where each goes and its sha256, so that an install
//! needs no network on the nodes. `manifest` reads and verifies a bundle; `release` is the pinned
//! table of upstream files per Kubernetes version; `fetch` builds a bundle from it.

pub mod deliver;
pub mod fetch;
pub mod manifest;
pub mod release;

pub use manifest::{BundleError, Entry, MANIFEST, Manifest};
