//! The artifact bundle: the files a node needs (runtime, Kubernetes binaries, etcd, manifests),
//! gathered on the taskbox with a manifest of where each goes and its sha256, so that an install
//! needs no network on the nodes. `manifest` reads and verifies a bundle.

pub mod deliver;
pub mod manifest;

pub use manifest::{BundleError, Entry, MANIFEST, Manifest};
