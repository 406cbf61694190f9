//! What the lab benchmarks share: a lab that goes down however the benchmark ends, and medians.

use kswizard::lab::{self, Lab, Spec};

/// Downs its lab when dropped: a lab's containers outlive this process.
pub struct Down(pub std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if let Err(e) = lab::down(&self.0) {
            eprintln!("lab down {}: {e:#}", self.0.display());
        }
    }
}

/// A lab of `n` nodes on the first free subnet, in `dir`, and its guard.
pub fn up(dir: &std::path::Path, n: usize) -> (Lab, Down) {
    let spec = Spec {
        dir: dir.join("lab"),
        nodes: n,
        subnet: None,
    };
    let lab = lab::up(&spec, true).expect("lab up");
    let down = Down(lab.dir.clone());
    (lab, down)
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The node counts to run, from `KSW_BENCH_NODES` (`20,100` by default).
pub fn sizes() -> Vec<usize> {
    std::env::var("KSW_BENCH_NODES")
        .unwrap_or_else(|_| "20,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}
