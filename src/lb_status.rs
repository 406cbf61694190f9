//! The apiserver load balancer as the taskbox sees it (`kswizard lb status`, the wizard's LB panel).
//!
//! Every mode: the frontend and each master's apiserver are asked `GET /readyz` over HTTPS without
//! checking certificates (a TLS handshake and an HTTP status, not only a TCP connect: a TCP-mode LB
//! accepts connections even when no backend is up). The built-in mode also asks each master, over
//! the engine's own SSH transport, whether it holds the VIP (`ip -o addr`) and what its haproxy
//! thinks of the backends (`show stat` on the stats socket). With `console_lb` set, the `KubeSphere`
//! console too: HTTP `GET /` of the LB's console listener and of every node's `NodePort` (30880),
//! and with the built-in LB each master's haproxy view of its console backends. Probes are bounded
//! and run in parallel; parsing and wording are pure functions below the I/O.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, pki_types};

use crate::engine::transport::{self, Conn, ControlDir};
use crate::model::{APISERVER_PORT, CONSOLE_PORT, Cluster, Host, LbMode};

/// Where the built-in LB's haproxy serves its stats socket on each master (loopback only, read-only
/// level): `lb status` reads `show stat` there over SSH, keepalived's check `show info`.
pub const HAPROXY_STATS_PORT: u16 = 8405;
/// The haproxy proxy (frontend and backend) the built-in LB step writes.
const HAPROXY_PROXY: &str = "kube-apiserver";
/// The haproxy proxy of the console listener (`console_lb`): every node's `NodePort` behind it.
pub const HAPROXY_CONSOLE_PROXY: &str = "kubesphere-console";

/// One HTTPS probe: connect, handshake, request and answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// One master's SSH answer, connecting included.
const SSH_TIMEOUT: Duration = Duration::from_secs(8);
/// Enough of an answer for its status line and the first failed check of /readyz.
const ANSWER_MAX: usize = 16 * 1024;

/// What a probe of `https://address/readyz` found, from nothing to ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeState {
    /// Connection refused.
    NotListening,
    /// No connection within the time (filtered, unreachable, or a host that is down).
    NoAnswer,
    /// TCP accepted, no TLS: what a TCP load balancer does when none of its backends is up.
    NoTls,
    /// TLS up, but what came back is not HTTP.
    NotHttp,
    /// TLS and HTTP, `/readyz` answered with an error status.
    NotReady,
    /// 401 or 403: an apiserver that answers but does not let anonymous requests read `/readyz`.
    AuthRequired,
    Ready,
}

impl ProbeState {
    /// Whether an apiserver answers there (ready, or ready as far as an anonymous probe can tell).
    pub fn up(self) -> bool {
        matches!(self, ProbeState::Ready | ProbeState::AuthRequired)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// A master's name, or "frontend" for the LB's own address.
    pub name: String,
    pub address: String,
    pub state: ProbeState,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The state in words, with what was seen (the error, the first failed check).
    pub detail: String,
}

/// One backend as a master's haproxy sees it (a row of `show stat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaproxyServer {
    /// The master's name when its address is a master's, else haproxy's server name.
    pub name: String,
    pub address: String,
    /// haproxy's words: `UP`, `DOWN`, `UP 1/2` (going down), `MAINT`, `no check`.
    pub status: String,
    pub up: bool,
    /// The last check: `L7OK`, `L4CON` (refused), `L4TOUT`, `L6RSP`, `L7STS` (bad status).
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_code: Option<u16>,
}

/// One master of the built-in LB: does it hold the VIP, and what its haproxy sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MasterView {
    pub name: String,
    /// `None`: the master could not be asked (`error` says why).
    pub holds_vip: Option<bool>,
    /// The interface that holds the VIP there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_interface: Option<String>,
    pub haproxy: Vec<HaproxyServer>,
    /// Its console backends (every node's `NodePort`), with `console_lb`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub console: Vec<HaproxyServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltIn {
    pub vip: String,
    /// The masters holding the VIP now: one when all is well.
    pub holders: Vec<String>,
    /// The VIP's state in words.
    pub detail: String,
    pub masters: Vec<MasterView>,
}

/// The `KubeSphere` console as the taskbox sees it (with `console_lb`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleStatus {
    /// The LB's console listener (`LB address:30880`); `None` when no LB is configured.
    pub listener: Option<Probe>,
    /// Every node's `NodePort`: the listener's backends.
    pub nodes: Vec<Probe>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbStatus {
    pub mode: LbMode,
    /// `None` when no LB is configured (mode none, or no address).
    pub frontend: Option<Probe>,
    pub backends: Vec<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_in: Option<BuiltIn>,
    /// Only with `console_lb` set. Boxed: the wizard's actions carry an `LbStatus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<Box<ConsoleStatus>>,
}

impl LbStatus {
    /// Everything answers: the frontend and every backend are up (the console's too, with
    /// `console_lb`), and with the built-in LB one master holds the VIP and every haproxy could be
    /// read.
    pub fn healthy(&self) -> bool {
        self.frontend.as_ref().is_none_or(|f| f.up)
            && self.backends.iter().all(|b| b.up)
            && self.console.as_ref().is_none_or(|c| {
                c.listener.as_ref().is_none_or(|l| l.up) && c.nodes.iter().all(|n| n.up)
            })
            && self
                .built_in
                .as_ref()
                .is_none_or(|b| b.holders.len() == 1 && b.masters.iter().all(|m| m.error.is_none()))
    }
}

// ---------------------------------------------------------------------------------------------
// Pure: wording and parsing.

/// A probe's state in words; `frontend` because "not listening" means something else there, and
/// `seen` is what the probe saw (an error, an HTTP status, a failed check).
pub fn wording(state: ProbeState, frontend: bool, http_status: Option<u16>, seen: &str) -> String {
    let seen = if seen.is_empty() {
        String::new()
    } else {
        format!(": {seen}")
    };
    let code = http_status.map_or(String::new(), |c| format!("HTTP {c}"));
    match state {
        ProbeState::NotListening if frontend => {
            "not listening — is the load balancer running?".into()
        }
        ProbeState::NotListening => {
            "not listening yet — expected until the apiserver starts".into()
        }
        ProbeState::NoAnswer => format!("no answer within {} s{seen}", PROBE_TIMEOUT.as_secs()),
        ProbeState::NoTls if frontend => {
            format!("accepts connections but no TLS — no apiserver behind it answers{seen}")
        }
        ProbeState::NoTls => format!("accepts connections but no TLS{seen}"),
        ProbeState::NotHttp => format!("TLS up, no HTTP answer to /readyz{seen}"),
        ProbeState::NotReady => format!("TLS up, /readyz not ok ({code}{seen})"),
        ProbeState::AuthRequired => format!("answering, auth required ({code})"),
        ProbeState::Ready => "ready".into(),
    }
}

/// A console probe's state in words (`GET /` over plain HTTP); `listener` for the LB's.
pub fn console_wording(
    state: ProbeState,
    listener: bool,
    http_status: Option<u16>,
    seen: &str,
) -> String {
    let seen = if seen.is_empty() {
        String::new()
    } else {
        format!(": {seen}")
    };
    match (state, http_status) {
        (ProbeState::NotListening, _) if listener => {
            "not listening — does the LB have the console listener (HTTP 30880)?".into()
        }
        (ProbeState::NotListening, _) => {
            "not listening yet — expected until KubeSphere's console runs".into()
        }
        (ProbeState::NoAnswer, _) => {
            format!("no answer within {} s{seen}", PROBE_TIMEOUT.as_secs())
        }
        (ProbeState::NotReady, Some(503)) if listener => {
            "HTTP 503 — no console backend is up behind the LB".into()
        }
        (ProbeState::NotReady | ProbeState::AuthRequired, Some(c)) => format!("HTTP {c}{seen}"),
        (ProbeState::Ready, _) => "console answers".into(),
        _ => format!("no HTTP answer{seen}"),
    }
}

/// A few words for the wizard's narrow LB panel; `frontend` as for `wording`.
pub fn short(p: &Probe, frontend: bool) -> String {
    match (p.state, p.http_status) {
        (ProbeState::NotListening, _) => "not listening".into(),
        (ProbeState::NoAnswer, _) => "no answer".into(),
        (ProbeState::NoTls, _) if frontend => "no TLS: no backend answers".into(),
        (ProbeState::NoTls, _) => "no TLS".into(),
        (ProbeState::NotHttp, _) => "not HTTP".into(),
        (ProbeState::NotReady, Some(c)) => format!("not ready ({c})"),
        (ProbeState::NotReady, None) => "not ready".into(),
        (ProbeState::AuthRequired, _) => "auth required".into(),
        (ProbeState::Ready, _) => "ready".into(),
    }
}

/// The HTTP status of an answer (`HTTP/1.1 500 Internal Server Error`), if it is HTTP.
fn status_of(answer: &str) -> Option<u16> {
    let line = answer.lines().next()?;
    let mut words = line.split_whitespace();
    let version = words.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    words
        .next()?
        .parse()
        .ok()
        .filter(|c| (100..600).contains(c))
}

/// What an answer says about the probed `/readyz`: its state, status and what to show.
fn classify_answer(answer: &str) -> (ProbeState, Option<u16>, String) {
    let Some(code) = status_of(answer) else {
        let first = answer.lines().next().unwrap_or("").trim();
        let seen = if first.is_empty() {
            "closed without answering".to_string()
        } else {
            format!("'{}'", first.chars().take(40).collect::<String>())
        };
        return (ProbeState::NotHttp, None, seen);
    };
    match code {
        200 => (ProbeState::Ready, Some(code), String::new()),
        401 | 403 => (ProbeState::AuthRequired, Some(code), String::new()),
        _ => {
            // /readyz lists its checks as `[+]name ok` / `[-]name failed: reason withheld`.
            let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let failed = body
                .lines()
                .find(|l| l.starts_with("[-]"))
                .map_or(String::new(), |l| l.trim().to_string());
            (ProbeState::NotReady, Some(code), failed)
        }
    }
}

/// `host:port`, bracketing IPv6 addresses.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The interface of `ip -o addr` output (`3: eth0    inet 192.168.0.253/32 scope global eth0…`)
/// that holds `address`, if one does.
pub fn interface_holding(ip_o_addr: &str, address: &str) -> Option<String> {
    ip_o_addr.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (_index, iface, family, cidr) = (f.next()?, f.next()?, f.next()?, f.next()?);
        let ip = cidr.split('/').next()?;
        (matches!(family, "inet" | "inet6") && ip == address).then(|| iface.to_string())
    })
}

/// haproxy's name for a master's apiserver, as the built-in LB step writes it (`server
/// apiserver-192-168-0-1 192.168.0.1:6443`): `show stat` at level user hides addresses.
fn haproxy_server_name(ip: &str) -> String {
    format!("apiserver-{}", ip.replace(['.', ':'], "-"))
}

/// haproxy's name for a node's console `NodePort` (`server console-192-168-0-4 192.168.0.4:30880`),
/// in the built-in LB's and the lab's console backends.
pub fn console_server_name(ip: &str) -> String {
    format!("console-{}", ip.replace(['.', ':'], "-"))
}

/// The servers of `proxy` in haproxy's `show stat` CSV (first line `# pxname,svname,…`), named
/// after the cluster's `hosts` where their haproxy names match (the masters' apiservers, or with
/// `HAPROXY_CONSOLE_PROXY` every node's console).
pub fn parse_show_stat(
    csv: &str,
    proxy: &str,
    hosts: &[&Host],
) -> Result<Vec<HaproxyServer>, String> {
    let (server_name, port): (fn(&str) -> String, u16) = if proxy == HAPROXY_CONSOLE_PROXY {
        (console_server_name, CONSOLE_PORT)
    } else {
        (haproxy_server_name, APISERVER_PORT)
    };
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| {
            let first = csv.lines().next().unwrap_or("").trim();
            format!("not haproxy's 'show stat' (it said '{first}')")
        })?;
    let columns: Vec<&str> = header.split(',').collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(status)) = (col("pxname"), col("svname"), col("status")) else {
        return Err("haproxy's 'show stat' has no pxname, svname or status column".into());
    };
    let (check, code) = (col("check_status"), col("check_code"));
    let mut servers = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
        let svname = get(Some(sv));
        if get(Some(px)) != proxy || matches!(svname, "FRONTEND" | "BACKEND" | "") {
            continue;
        }
        let host = hosts.iter().find(|h| server_name(h.node_ip()) == svname);
        let (name, address) = host.map_or((svname.to_string(), String::new()), |h| {
            (h.name.clone(), host_port(h.node_ip(), port))
        });
        let status = get(Some(status)).to_string();
        servers.push(HaproxyServer {
            name,
            address,
            // "UP 1/2" is still up (it is going down); "DOWN 1/2" still down.
            up: status == "UP" || status.starts_with("UP ") || status == "no check",
            status,
            // "* L4TOUT": a check is under way; the result is the last one's.
            check: get(check).trim_start_matches("* ").to_string(),
            check_code: get(code).parse().ok(),
        });
    }
    if servers.is_empty() {
        return Err(format!("haproxy has no servers in '{proxy}'"));
    }
    Ok(servers)
}

/// The VIP's state in words, from who holds it and who could not be asked.
fn vip_detail(vip: &str, holders: &[String], unknown: &[String]) -> String {
    let not_asked = if unknown.is_empty() {
        String::new()
    } else {
        format!(" ({} could not be asked)", unknown.join(", "))
    };
    match holders {
        [one] => format!("VIP {vip} on {one}{not_asked}"),
        [] => format!(
            "VIP {vip} on no master{not_asked}: keepalived is not running, or no master's haproxy is up"
        ),
        many => format!(
            "VIP {vip} on {} masters ({}): their VRRP adverts do not reach each other",
            many.len(),
            many.join(", ")
        ),
    }
}

/// Who holds the VIP, in a few words for the wizard's narrow LB panel.
pub fn short_vip(b: &BuiltIn) -> String {
    match b.holders.as_slice() {
        [one] => format!("VIP on {one}"),
        [] => "VIP on no master".into(),
        many => format!("VIP on {} masters!", many.len()),
    }
}

/// The line between the two parts of the node command's output.
const STAT_MARK: &str = "KSW-HAPROXY-SHOW-STAT";

/// What a master is asked: its addresses, then its haproxy's `show stat` (bash for `/dev/tcp`:
/// the node needs nothing that a minimal system lacks). Run without root.
fn node_command(stats_port: u16) -> String {
    format!(
        "ip -o addr show 2>&1\necho {STAT_MARK}\ntimeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{stats_port} && printf \"show stat\\n\" >&3 && cat <&3' 2>&1\n"
    )
}

/// One master's view from the node command's output (or why it could not be had); its console
/// backends too when `console_nodes` (every node, with `console_lb`) is not empty.
fn master_view(
    name: &str,
    vip: &str,
    answer: Result<String, String>,
    masters: &[&Host],
    console_nodes: &[&Host],
    stats_port: u16,
) -> MasterView {
    let mut view = MasterView {
        name: name.to_string(),
        holds_vip: None,
        vip_interface: None,
        haproxy: Vec::new(),
        console: Vec::new(),
        error: None,
    };
    let out = match answer {
        Ok(out) => out,
        Err(e) => {
            view.error = Some(e);
            return view;
        }
    };
    let (addrs, stat) = out
        .split_once(&format!("{STAT_MARK}\n"))
        .unwrap_or((&out, ""));
    view.vip_interface = interface_holding(addrs, vip);
    view.holds_vip = Some(view.vip_interface.is_some());
    if !console_nodes.is_empty() {
        // No console proxy (an haproxy configured before console_lb was set) shows as none here.
        view.console =
            parse_show_stat(stat, HAPROXY_CONSOLE_PROXY, console_nodes).unwrap_or_default();
    }
    match parse_show_stat(stat, HAPROXY_PROXY, masters) {
        Ok(servers) => view.haproxy = servers,
        Err(e) => {
            let said = stat.lines().next().unwrap_or("").trim();
            view.error = Some(if stat.starts_with("# ") || said.is_empty() {
                format!("haproxy's stats on 127.0.0.1:{stats_port}: {e}")
            } else {
                format!("haproxy's stats socket 127.0.0.1:{stats_port} does not answer: {said}")
            });
        }
    }
    view
}

// ---------------------------------------------------------------------------------------------
// I/O: the HTTPS probe.

/// A certificate "verifier" that accepts any certificate: the probe asks whether something
/// answers, not who it is (the taskbox may not have the cluster's CA yet, or ever). Handshake
/// signatures are still checked, so the TLS session itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &pki_types::CertificateDer<'_>,
        _intermediates: &[pki_types::CertificateDer<'_>],
        _server_name: &pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

static TLS: LazyLock<Result<TlsConnector, String>> = LazyLock::new(|| {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
});

/// What a probe found when it got no answer to classify: its state, status and what was seen.
type Seen = (ProbeState, Option<u16>, String);

/// A TCP connection to `address` by `deadline`; refused is "not listening", anything else "no
/// answer".
async fn connect(address: &str, deadline: tokio::time::Instant) -> Result<TcpStream, Seen> {
    match timeout_at(deadline, TcpStream::connect(address)).await {
        Err(_) => Err((ProbeState::NoAnswer, None, String::new())),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err((ProbeState::NotListening, None, String::new()))
        }
        Ok(Err(e)) => Err((ProbeState::NoAnswer, None, e.to_string())),
        Ok(Ok(s)) => Ok(s),
    }
}

/// `GET path` on `stream` (to `address`) by `deadline`: the answer up to its end, the size limit
/// or the deadline (the status line is what counts).
async fn get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    address: &str,
    path: &str,
    deadline: tokio::time::Instant,
) -> Result<String, Seen> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kswizard\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    match timeout_at(deadline, stream.write_all(request.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err((ProbeState::NotHttp, None, e.to_string())),
        Err(_) => return Err((ProbeState::NotHttp, None, "no time left to ask".into())),
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while answer.len() < ANSWER_MAX {
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// `GET https://host:port/readyz` within `limit`: what state it is in, its status and what was
/// seen on the way.
async fn readyz(host: &str, port: u16, limit: Duration) -> Seen {
    let deadline = tokio::time::Instant::now() + limit;
    let address = host_port(host, port);
    let tcp = match connect(&address, deadline).await {
        Ok(s) => s,
        Err(seen) => return seen,
    };
    let tls = match &*TLS {
        Ok(t) => t,
        Err(e) => return (ProbeState::NoTls, None, e.clone()),
    };
    let Ok(name) = pki_types::ServerName::try_from(host.to_string()) else {
        return (
            ProbeState::NoTls,
            None,
            format!("'{host}' is not a host name"),
        );
    };
    let mut stream = match timeout_at(deadline, tls.connect(name, tcp)).await {
        Err(_) => {
            return (
                ProbeState::NoTls,
                None,
                "no TLS handshake within the time".into(),
            );
        }
        Ok(Err(e)) => return (ProbeState::NoTls, None, e.to_string()),
        Ok(Ok(s)) => s,
    };
    match get(&mut stream, &address, "/readyz", deadline).await {
        Ok(answer) => classify_answer(&answer),
        Err(seen) => seen,
    }
}

/// Probe `host:port` as `name`.
pub async fn probe(name: String, host: String, port: u16, frontend: bool) -> Probe {
    let started = Instant::now();
    let (state, http_status, seen) = readyz(&host, port, PROBE_TIMEOUT).await;
    let answered = !matches!(state, ProbeState::NotListening | ProbeState::NoAnswer);
    Probe {
        name,
        address: host_port(&host, port),
        state,
        up: state.up(),
        http_status,
        latency_ms: answered.then(|| started.elapsed().as_millis() as u64),
        detail: wording(state, frontend, http_status, &seen),
    }
}

/// `GET http://host:port/` within `limit`: the console's state, status and what was seen.
async fn http_get(host: &str, port: u16, limit: Duration) -> Seen {
    let deadline = tokio::time::Instant::now() + limit;
    let address = host_port(host, port);
    let answer = match connect(&address, deadline).await {
        Ok(mut tcp) => get(&mut tcp, &address, "/", deadline).await,
        Err(seen) => Err(seen),
    };
    match answer {
        Err(seen) => seen,
        Ok(answer) => match status_of(&answer) {
            Some(200) => (ProbeState::Ready, Some(200), String::new()),
            Some(c) => (ProbeState::NotReady, Some(c), String::new()),
            // An HTTP LB holds a request while no backend is up (haproxy's queue).
            None if answer.is_empty() && tokio::time::Instant::now() >= deadline => (
                ProbeState::NoAnswer,
                None,
                "connected, GET / unanswered".into(),
            ),
            None if answer.is_empty() => {
                (ProbeState::NotHttp, None, "closed without answering".into())
            }
            None => (ProbeState::NotHttp, None, String::new()),
        },
    }
}

/// Probe the console at `host:port` as `name`; `listener` for the LB's.
pub async fn console_probe(name: String, host: String, port: u16, listener: bool) -> Probe {
    let started = Instant::now();
    let (state, http_status, seen) = http_get(&host, port, PROBE_TIMEOUT).await;
    let answered = !matches!(state, ProbeState::NotListening | ProbeState::NoAnswer);
    Probe {
        name,
        address: host_port(&host, port),
        state,
        up: state == ProbeState::Ready,
        http_status,
        latency_ms: answered.then(|| started.elapsed().as_millis() as u64),
        detail: console_wording(state, listener, http_status, &seen),
    }
}

// ---------------------------------------------------------------------------------------------
// I/O: the prober, which keeps its SSH connections between probes.

/// One master's connection, kept while it works.
type Slot = tokio::sync::Mutex<Option<Arc<Conn>>>;

struct Ssh {
    known_hosts: PathBuf,
    /// Dropping it stops the SSH masters it holds.
    ctl: Result<ControlDir, String>,
    /// One per master, in the cluster's order of masters.
    conns: Vec<Slot>,
    /// Numbers each connection's control socket: a new one never meets an old one's.
    next: std::sync::atomic::AtomicUsize,
}

/// Probes a cluster's LB, again and again (`--watch`, the wizard): the HTTPS probes are new each
/// time, the SSH connections of the built-in mode are kept.
pub struct Prober {
    cluster: Cluster,
    state_dir: PathBuf,
    ssh: Option<Arc<Ssh>>,
}

impl Prober {
    /// A prober of `cluster`; host keys and control sockets live in the install's `state_dir`.
    pub fn new(cluster: Cluster, state_dir: &Path) -> Prober {
        let ssh = (cluster.lb.mode == LbMode::BuiltIn).then(|| {
            let ctl = crate::engine::executor::ensure_state_dir(state_dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    transport::control_dir_in(state_dir)
                        .map_err(|e| format!("no directory for SSH control sockets: {e}"))
                });
            Arc::new(Ssh {
                known_hosts: state_dir.join("known_hosts"),
                ctl,
                conns: cluster.masters().map(|_| Slot::default()).collect(),
                next: std::sync::atomic::AtomicUsize::new(0),
            })
        });
        Prober {
            cluster,
            state_dir: state_dir.to_path_buf(),
            ssh,
        }
    }

    /// Whether this prober is for `cluster` with its state in `state_dir`.
    pub fn is_for(&self, cluster: &Cluster, state_dir: &Path) -> bool {
        self.cluster == *cluster && self.state_dir == state_dir
    }

    /// Probe everything at once.
    pub async fn check(&self) -> LbStatus {
        let lb = &self.cluster.lb;
        let frontend = match (&lb.address, lb.is_configured(), u16::try_from(lb.port)) {
            (Some(a), true, Ok(port)) => Some(tokio::spawn(probe(
                "frontend".into(),
                a.clone(),
                port,
                true,
            ))),
            _ => None,
        };
        let backends: Vec<_> = self
            .cluster
            .masters()
            .map(|h| {
                tokio::spawn(probe(
                    h.name.clone(),
                    h.node_ip().to_string(),
                    APISERVER_PORT,
                    false,
                ))
            })
            .collect();
        let console = self.cluster.settings.console_lb.then(|| {
            let listener = match (&lb.address, lb.is_configured()) {
                (Some(a), true) => Some(tokio::spawn(console_probe(
                    "console LB".into(),
                    a.clone(),
                    CONSOLE_PORT,
                    true,
                ))),
                _ => None,
            };
            let nodes: Vec<_> = self
                .cluster
                .hosts
                .iter()
                .map(|h| {
                    tokio::spawn(console_probe(
                        h.name.clone(),
                        h.node_ip().to_string(),
                        CONSOLE_PORT,
                        false,
                    ))
                })
                .collect();
            (listener, nodes)
        });
        let built_in = match (&self.ssh, &lb.address) {
            (Some(ssh), Some(vip)) => Some(self.built_in(ssh, vip).await),
            _ => None,
        };
        let mut out = LbStatus {
            mode: lb.mode,
            frontend: None,
            backends: Vec::new(),
            built_in,
            console: None,
        };
        if let Some((listener, nodes)) = console {
            let mut c = ConsoleStatus {
                listener: None,
                nodes: Vec::new(),
            };
            if let Some(l) = listener {
                c.listener = l.await.ok();
            }
            for n in nodes {
                if let Ok(p) = n.await {
                    c.nodes.push(p);
                }
            }
            out.console = Some(Box::new(c));
        }
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

    async fn built_in(&self, ssh: &Arc<Ssh>, vip: &str) -> BuiltIn {
        let tasks: Vec<_> = self
            .cluster
            .masters()
            .enumerate()
            .map(|(i, h)| {
                let (ssh, host) = (ssh.clone(), h.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(SSH_TIMEOUT, ask(&ssh, i, &host)).await {
                        Ok(answer) => answer,
                        Err(_) => Err(format!(
                            "no answer over SSH within {} s",
                            SSH_TIMEOUT.as_secs()
                        )),
                    }
                })
            })
            .collect();
        let masters: Vec<&Host> = self.cluster.masters().collect();
        let console_nodes: Vec<&Host> = if self.cluster.settings.console_lb {
            self.cluster.hosts.iter().collect()
        } else {
            Vec::new()
        };
        let mut views = Vec::new();
        for (task, h) in tasks.into_iter().zip(&masters) {
            let answer = task
                .await
                .unwrap_or_else(|e| Err(format!("the probe stopped: {e}")));
            views.push(master_view(
                &h.name,
                vip,
                answer,
                &masters,
                &console_nodes,
                HAPROXY_STATS_PORT,
            ));
        }
        let holders: Vec<String> = views
            .iter()
            .filter(|v| v.holds_vip == Some(true))
            .map(|v| v.name.clone())
            .collect();
        let unknown: Vec<String> = views
            .iter()
            .filter(|v| v.holds_vip.is_none())
            .map(|v| v.name.clone())
            .collect();
        BuiltIn {
            vip: vip.to_string(),
            detail: vip_detail(vip, &holders, &unknown),
            holders,
            masters: views,
        }
    }
}

/// Run the node command on master `i` over its kept connection (connecting first if needed); a
/// connection that fails is dropped, so the next probe connects again.
async fn ask(ssh: &Ssh, i: usize, host: &Host) -> Result<String, String> {
    let ctl = ssh.ctl.as_ref().map_err(Clone::clone)?;
    let slot = ssh.conns.get(i).ok_or("no such master")?;
    let mut slot = slot.lock().await;
    let conn = if let Some(c) = slot.as_ref() {
        c.clone()
    } else {
        let n = ssh.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let c = transport::connect(host, &ssh.known_hosts, ctl.path(), n)
            .await
            .map_err(|e| e.to_string())?;
        Arc::new(c)
    };
    match conn.run(&node_command(HAPROXY_STATS_PORT), false).await {
        Ok((_, out, _)) => {
            *slot = Some(conn);
            Ok(out)
        }
        Err(lost) => {
            *slot = None;
            Err(conn.redact(&lost.to_string()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text for people.

/// One line per probe, then, for the built-in LB, the VIP and each master's haproxy.
pub fn text(s: &LbStatus) -> String {
    let line = |p: &Probe| {
        let word = if p.up { "UP" } else { "DOWN" };
        let ms = p
            .latency_ms
            .map_or(String::new(), |ms| format!(" ({ms} ms)"));
        format!(
            "{word:<5}{:<14} {:<22} {}{ms}\n",
            p.name, p.address, p.detail
        )
    };
    let mut out = String::new();
    match &s.frontend {
        Some(f) => out.push_str(&line(f)),
        None => out.push_str("no load balancer configured\n"),
    }
    for b in &s.backends {
        out.push_str(&line(b));
    }
    if let Some(b) = &s.built_in {
        out.push_str(&format!("{}\n", b.detail));
        for m in &b.masters {
            out.push_str(&format!("haproxy on {}: {}\n", m.name, haproxy_summary(m)));
        }
    }
    if let Some(c) = &s.console {
        match &c.listener {
            Some(l) => out.push_str(&line(l)),
            None => out.push_str("console LB: no load balancer configured\n"),
        }
        for n in &c.nodes {
            out.push_str(&line(n));
        }
        for m in s.built_in.iter().flat_map(|b| &b.masters) {
            if m.error.is_none() {
                out.push_str(&format!(
                    "console on haproxy of {}: {}\n",
                    m.name,
                    servers_summary(&m.console)
                ));
            }
        }
    }
    out
}

/// A master's haproxy view in one line: each backend's status and last check.
pub fn haproxy_summary(m: &MasterView) -> String {
    if let Some(e) = &m.error {
        return e.clone();
    }
    servers_summary(&m.haproxy)
}

/// haproxy's servers in one line: each one's status and last check.
pub fn servers_summary(servers: &[HaproxyServer]) -> String {
    if servers.is_empty() {
        return "no such listener in its config".into();
    }
    servers
        .iter()
        .map(|s| {
            let code = s.check_code.map_or(String::new(), |c| format!(" {c}"));
            format!("{} {} ({}{code})", s.name, s.status, s.check)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
