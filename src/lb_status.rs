//! The apiserver load balancer as the taskbox sees it: can it reach the LB's address, and each
//! master's apiserver behind it? Plain TCP probes, so it works with any LB (cloud, F5, haproxy).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpStream;

use crate::model::{APISERVER_PORT, Cluster};

/// Where the built-in LB's haproxy serves its stats socket on each master (loopback only, read-only
/// level): `lb status` reads `show stat` there over SSH, keepalived's check `show info`.
pub const HAPROXY_STATS_PORT: u16 = 8405;

const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// A node name, or "frontend" for the LB's own address.
    pub name: String,
    pub address: String,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbStatus {
    pub frontend: Option<Probe>,
    pub backends: Vec<Probe>,
}

async fn probe(name: String, address: String) -> Probe {
    let t = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Probe {
            name,
            address,
            up: true,
            latency_ms: Some(t.elapsed().as_millis() as u64),
            error: None,
        },
        Ok(Err(e)) => Probe {
            name,
            address,
            up: false,
            latency_ms: None,
            error: Some(e.kind().to_string()),
        },
        Err(_) => Probe {
            name,
            address,
            up: false,
            latency_ms: None,
            error: Some("no answer within 1.5 s".into()),
        },
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Probe the LB frontend and every master's apiserver, all at once.
pub async fn check(cluster: &Cluster) -> LbStatus {
    let lb = &cluster.lb;
    let frontend = match (&lb.address, lb.is_configured(), u16::try_from(lb.port)) {
        (Some(a), true, Ok(port)) => {
            Some(tokio::spawn(probe("frontend".into(), host_port(a, port))))
        }
        _ => None,
    };
    let backends: Vec<_> = cluster
        .masters()
        .map(|h| {
            tokio::spawn(probe(
                h.name.clone(),
                host_port(h.node_ip(), APISERVER_PORT),
            ))
        })
        .collect();
    let mut out = LbStatus {
        frontend: None,
        backends: Vec::new(),
    };
    if let Some(f) = frontend {
        out.frontend = f.await.ok();
    }
    for b in backends {
        if let Ok(p) = b.await {
            out.backends.push(p);
        }
    }
    out
}

/// Text for people: one line for the frontend, one per backend.
pub fn text(s: &LbStatus) -> String {
    let line = |p: &Probe| {
        let state = if p.up { "UP  " } else { "DOWN" };
        let detail = match (&p.latency_ms, &p.error) {
            (Some(ms), _) => format!("{ms} ms"),
            (_, Some(e)) => e.clone(),
            _ => String::new(),
        };
        format!("{state} {:<14} {:<22} {detail}\n", p.name, p.address)
    };
    let mut out = String::new();
    match &s.frontend {
        Some(f) => out.push_str(&line(f)),
        None => out.push_str("no load balancer configured\n"),
    }
    for b in &s.backends {
        out.push_str(&line(b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Host, LbMode};

    #[tokio::test]
    async fn probes_a_listening_frontend_and_a_closed_backend() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = Cluster::default();
        // 127.0.0.2:6443 is closed on this machine unless a lab runs there.
        let mut h = Host::new("m1", "127.0.99.2");
        h.roles.master = true;
        c.hosts.push(h);
        c.lb.mode = LbMode::External;
        c.lb.address = Some("127.0.0.1".into());
        c.lb.port = i64::from(port);
        let s = check(&c).await;
        assert!(s.frontend.as_ref().unwrap().up);
        assert!(!s.backends[0].up);
        let t = text(&s);
        assert!(t.starts_with("UP   frontend"), "{t}");
        assert!(t.contains("DOWN m1             127.0.99.2:6443"), "{t}");
    }
}
