//! Probes against TLS servers of the test's own on 127.0.0.1 (one per state), and the parsing
//! and wording on real outputs of haproxy 2.6 and iproute2.

use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;
use crate::model::Host;

/// A throwaway self-signed certificate, made once per test run by openssl.
fn acceptor() -> TlsAcceptor {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=apiserver",
            ])
            .args(["-days", "1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl makes the test certificate (apt-get install openssl)");
        assert!(made.status.success(), "{made:?}");
        let certs = CertificateDer::pem_file_iter(&cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    });
    TlsAcceptor::from(config.clone())
}

/// What a test server does with a connection.
#[derive(Clone, Copy)]
enum Serve {
    /// TLS, then this HTTP status and body.
    Http(u16, &'static str),
    /// TLS, then a line that is not HTTP.
    NotHttp,
    /// Accept, then close: a TCP load balancer with no backend.
    CloseAtOnce,
    /// Accept and say nothing.
    Silent,
}

/// A server on 127.0.0.1 doing `how` with every connection; its port.
async fn server(how: Serve) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut tcp = tcp;
                match how {
                    Serve::CloseAtOnce => {}
                    Serve::Silent => {
                        let mut buf = [0u8; 1024];
                        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    Serve::Http(..) | Serve::NotHttp => {
                        let Ok(mut s) = tls.accept(tcp).await else {
                            return;
                        };
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf).await;
                        let answer = match how {
                            Serve::Http(code, body) => format!(
                                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            ),
                            _ => "SSH-2.0-OpenSSH_9.2\r\n".into(),
                        };
                        let _ = s.write_all(answer.as_bytes()).await;
                        let _ = s.shutdown().await;
                    }
                }
            });
        }
    });
    port
}

/// A port on 127.0.0.1 that nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn probe_backend(port: u16) -> Probe {
    probe("m1".into(), "127.0.0.1".into(), port, false).await
}

#[tokio::test]
async fn ready_answers_200() {
    let p = probe_backend(server(Serve::Http(200, "ok")).await).await;
    assert_eq!(
        (p.state, p.http_status, p.up),
        (ProbeState::Ready, Some(200), true)
    );
    assert_eq!(p.detail, "ready");
    assert!(p.latency_ms.is_some());
}

#[tokio::test]
async fn not_ready_names_the_status_and_the_first_failed_check() {
    let body = "[+]ping ok\n[-]etcd failed: reason withheld\n[-]poststarthook/x failed\nreadyz check failed\n";
    let p = probe_backend(server(Serve::Http(500, body)).await).await;
    assert_eq!(
        (p.state, p.http_status, p.up),
        (ProbeState::NotReady, Some(500), false)
    );
    assert_eq!(
        p.detail,
        "TLS up, /readyz not ok (HTTP 500: [-]etcd failed: reason withheld)"
    );
    assert_eq!(short(&p, false), "not ready (500)");
}

#[tokio::test]
async fn unauthorized_and_forbidden_answer_with_auth_required() {
    for code in [401, 403] {
        let p = probe_backend(server(Serve::Http(code, "{}")).await).await;
        assert_eq!((p.state, p.up), (ProbeState::AuthRequired, true), "{code}");
        assert_eq!(p.detail, format!("answering, auth required (HTTP {code})"));
    }
}

#[tokio::test]
async fn a_closed_port_is_not_listening_yet() {
    let p = probe_backend(closed_port()).await;
    assert_eq!(
        (p.state, p.up, p.latency_ms),
        (ProbeState::NotListening, false, None)
    );
    assert_eq!(
        p.detail,
        "not listening yet — expected until the apiserver starts"
    );
    let f = probe("frontend".into(), "127.0.0.1".into(), closed_port(), true).await;
    assert_eq!(f.detail, "not listening — is the load balancer running?");
}

#[tokio::test]
async fn a_tcp_lb_without_backends_accepts_but_gives_no_tls() {
    let port = server(Serve::CloseAtOnce).await;
    let f = probe("frontend".into(), "127.0.0.1".into(), port, true).await;
    assert_eq!((f.state, f.up), (ProbeState::NoTls, false));
    assert!(
        f.detail
            .starts_with("accepts connections but no TLS — no apiserver behind it answers: "),
        "{}",
        f.detail
    );
    assert_eq!(short(&f, true), "no TLS: no backend answers");
}

#[tokio::test]
async fn tls_without_http_is_not_http() {
    let p = probe_backend(server(Serve::NotHttp).await).await;
    assert_eq!(p.state, ProbeState::NotHttp);
    assert_eq!(
        p.detail,
        "TLS up, no HTTP answer to /readyz: 'SSH-2.0-OpenSSH_9.2'"
    );
}

#[tokio::test]
async fn a_silent_server_is_bounded_by_the_limit() {
    let port = server(Serve::Silent).await;
    // A loopback connect takes far less than the limit; the handshake never comes.
    let (state, code, seen) = readyz("127.0.0.1", port, Duration::from_millis(500)).await;
    assert_eq!((state, code), (ProbeState::NoTls, None));
    assert_eq!(seen, "no TLS handshake within the time");
}

#[tokio::test]
async fn check_probes_frontend_and_masters_of_an_external_lb() {
    let mut c = Cluster::default();
    let mut h = Host::new("m1", "127.0.0.1");
    h.roles.master = true;
    c.hosts.push(h);
    c.lb.mode = LbMode::External;
    c.lb.address = Some("127.0.0.1".into());
    c.lb.port = i64::from(server(Serve::Http(200, "ok")).await);
    let dir = tempfile::tempdir().unwrap();
    let s = Prober::new(c, dir.path()).check().await;
    assert_eq!(s.frontend.as_ref().unwrap().state, ProbeState::Ready);
    // 127.0.0.1:6443 answers only if something on this machine serves it; either way it was
    // probed as the master's apiserver.
    assert_eq!(s.backends[0].address, "127.0.0.1:6443");
    assert!(s.built_in.is_none());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no SSH, no control dir, for an external LB"
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["mode"], "external");
    assert_eq!(json["frontend"]["state"], "ready");
    assert_eq!(json["frontend"]["http_status"], 200);
    assert_eq!(json["frontend"]["up"], true);
    assert!(json.get("built_in").is_none());
}

fn masters() -> Vec<Host> {
    (1..=3)
        .map(|i| {
            let mut h = Host::new(format!("master{i}"), format!("10.9.0.{i}"));
            h.roles.master = true;
            h
        })
        .collect()
}

const SHOW_STAT: &str = include_str!("testdata/haproxy-2.6-show-stat.csv");
const IP_O_ADDR: &str = include_str!("testdata/ip-o-addr.txt");

#[test]
fn show_stat_of_haproxy_2_6_gives_each_master_as_its_haproxy_sees_it() {
    let hosts = masters();
    let refs: Vec<&Host> = hosts.iter().collect();
    let servers = parse_show_stat(SHOW_STAT, "kube-apiserver", &refs).unwrap();
    let rows: Vec<String> = servers
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {} {} {:?}",
                s.name, s.address, s.status, s.up, s.check, s.check_code
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "master1 10.9.0.1:6443 UP true L7OK Some(200)",
            "master2 10.9.0.2:6443 DOWN false L4TOUT None",
            "master3 10.9.0.3:6443 DOWN false L4TOUT None",
        ]
    );
    let view = MasterView {
        name: "master1".into(),
        holds_vip: Some(true),
        vip_interface: None,
        haproxy: servers,
        console: Vec::new(),
        error: None,
    };
    assert_eq!(
        haproxy_summary(&view),
        "master1 UP (L7OK 200), master2 DOWN (L4TOUT), master3 DOWN (L4TOUT)"
    );
}

#[test]
fn show_stat_that_is_not_one_says_what_it_was() {
    let e = parse_show_stat("Unknown command.\n", "kube-apiserver", &[]).unwrap_err();
    assert_eq!(e, "not haproxy's 'show stat' (it said 'Unknown command.')");
    let e = parse_show_stat(SHOW_STAT, "other", &[]).unwrap_err();
    assert_eq!(e, "haproxy has no servers in 'other'");
    // A server of another name keeps haproxy's name.
    let servers = parse_show_stat(SHOW_STAT, "kube-apiserver", &[]).unwrap();
    assert_eq!(servers[0].name, "apiserver-10-9-0-1");
}

const SHOW_STAT_CONSOLE: &str = include_str!("testdata/haproxy-2.6-show-stat-console.csv");

/// Four nodes: master1 (10.9.0.1), master2, master3 and node4 (10.9.0.4).
fn nodes() -> Vec<Host> {
    let mut hosts = masters();
    hosts.push(Host::new("node4", "10.9.0.4"));
    hosts
}

#[test]
fn show_stat_with_the_console_listener_gives_each_nodes_console_backend() {
    let hosts = nodes();
    let refs: Vec<&Host> = hosts.iter().collect();
    let servers = parse_show_stat(SHOW_STAT_CONSOLE, HAPROXY_CONSOLE_PROXY, &refs).unwrap();
    let rows: Vec<String> = servers
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {} {:?}",
                s.name, s.address, s.status, s.check, s.check_code
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "master1 10.9.0.1:30880 UP L7OK Some(200)",
            "master2 10.9.0.2:30880 DOWN L4CON None",
            "node4 10.9.0.4:30880 DOWN L4CON None",
        ]
    );
    // The apiserver's proxy in the same answer is read as before.
    let apiservers = parse_show_stat(SHOW_STAT_CONSOLE, "kube-apiserver", &refs).unwrap();
    assert_eq!(apiservers.len(), 1);
    assert_eq!(apiservers[0].address, "10.9.0.1:6443");
    assert_eq!(console_server_name("10.9.0.4"), "console-10-9-0-4");
}

#[test]
fn a_masters_view_has_its_console_backends_only_with_console_lb() {
    let hosts = nodes();
    let refs: Vec<&Host> = hosts.iter().collect();
    let out = format!("{IP_O_ADDR}{STAT_MARK}\n{SHOW_STAT_CONSOLE}");
    let v = master_view(
        "master1",
        "10.9.0.253",
        Ok(out.clone()),
        &refs[..3],
        &refs,
        8405,
    );
    assert_eq!((v.console.len(), v.haproxy.len()), (3, 1));
    assert_eq!(
        servers_summary(&v.console),
        "master1 UP (L7OK 200), master2 DOWN (L4CON), node4 DOWN (L4CON)"
    );
    let v = master_view("master1", "10.9.0.253", Ok(out), &refs[..3], &[], 8405);
    assert!(v.console.is_empty());
    // An haproxy without the console proxy (configured before console_lb was set).
    let v = master_view(
        "master1",
        "10.9.0.253",
        Ok(format!("{IP_O_ADDR}{STAT_MARK}\n{SHOW_STAT}")),
        &refs[..3],
        &refs,
        8405,
    );
    assert!(v.console.is_empty() && v.error.is_none());
    assert_eq!(
        servers_summary(&v.console),
        "no such listener in its config"
    );
}

/// An HTTP server on 127.0.0.1 answering every request with `status_line`; its port.
async fn http_server(status_line: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let body = "<html>console</html>";
                let answer = format!(
                    "{status_line}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_console_probe_tells_answering_from_503_and_from_nothing() {
    let ok = http_server("HTTP/1.1 200 OK").await;
    let p = console_probe("node4".into(), "127.0.0.1".into(), ok, false).await;
    assert_eq!(
        (p.state, p.up, p.http_status),
        (ProbeState::Ready, true, Some(200))
    );
    assert_eq!(p.detail, "console answers");
    let lb = http_server("HTTP/1.1 503 Service Unavailable").await;
    let p = console_probe("console LB".into(), "127.0.0.1".into(), lb, true).await;
    assert_eq!(
        (p.state, p.up, p.http_status),
        (ProbeState::NotReady, false, Some(503))
    );
    assert_eq!(
        p.detail,
        "HTTP 503 — no console backend is up behind the LB"
    );
    let p = console_probe("node1".into(), "127.0.0.1".into(), closed_port(), false).await;
    assert_eq!((p.state, p.up), (ProbeState::NotListening, false));
    assert_eq!(
        p.detail,
        "not listening yet — expected until KubeSphere's console runs"
    );
    let p = console_probe("console LB".into(), "127.0.0.1".into(), closed_port(), true).await;
    assert_eq!(
        p.detail,
        "not listening — does the LB have the console listener (HTTP 30880)?"
    );
}

#[test]
fn text_shows_the_console_listener_its_nodes_and_each_haproxys_view() {
    let hosts = nodes();
    let refs: Vec<&Host> = hosts.iter().collect();
    let probe =
        |name: &str, address: &str, state: ProbeState, code: Option<u16>, listener: bool| Probe {
            name: name.into(),
            address: address.into(),
            state,
            up: state == ProbeState::Ready,
            http_status: code,
            latency_ms: None,
            detail: console_wording(state, listener, code, ""),
        };
    let view = master_view(
        "master1",
        "10.9.0.253",
        Ok(format!("{IP_O_ADDR}{STAT_MARK}\n{SHOW_STAT_CONSOLE}")),
        &refs[..3],
        &refs,
        8405,
    );
    let s = LbStatus {
        mode: LbMode::BuiltIn,
        frontend: None,
        backends: Vec::new(),
        built_in: Some(BuiltIn {
            vip: "10.9.0.253".into(),
            holders: vec!["master1".into()],
            detail: "VIP 10.9.0.253 on master1".into(),
            masters: vec![view],
        }),
        console: Some(Box::new(ConsoleStatus {
            listener: Some(probe(
                "console LB",
                "10.9.0.253:30880",
                ProbeState::Ready,
                Some(200),
                true,
            )),
            nodes: vec![
                probe(
                    "master1",
                    "10.9.0.1:30880",
                    ProbeState::Ready,
                    Some(200),
                    false,
                ),
                probe(
                    "node4",
                    "10.9.0.4:30880",
                    ProbeState::NotListening,
                    None,
                    false,
                ),
            ],
        })),
    };
    let text = text(&s);
    assert!(
        text.ends_with(
            "UP   console LB     10.9.0.253:30880       console answers\n\
             UP   master1        10.9.0.1:30880         console answers\n\
             DOWN node4          10.9.0.4:30880         not listening yet — expected until KubeSphere's console runs\n\
             console on haproxy of master1: master1 UP (L7OK 200), master2 DOWN (L4CON), node4 DOWN (L4CON)\n"
        ),
        "{text}"
    );
    assert!(!s.healthy(), "a node's console does not answer");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["console"]["listener"]["state"], "ready");
    assert_eq!(
        json["built_in"]["masters"][0]["console"][2]["name"],
        "node4"
    );
}

#[test]
fn ip_o_addr_finds_the_vip_and_its_interface() {
    assert_eq!(
        interface_holding(IP_O_ADDR, "10.9.0.253").as_deref(),
        Some("eth0")
    );
    assert_eq!(
        interface_holding(IP_O_ADDR, "10.9.0.1").as_deref(),
        Some("eth0")
    );
    // 10.9.0.25 is a prefix of the VIP, not an address here.
    assert_eq!(interface_holding(IP_O_ADDR, "10.9.0.25"), None);
    assert_eq!(interface_holding("", "10.9.0.253"), None);
    assert_eq!(interface_holding("garbage\n1: lo\n", "10.9.0.253"), None);
}

#[test]
fn a_masters_answer_becomes_its_view() {
    let hosts = masters();
    let refs: Vec<&Host> = hosts.iter().collect();
    let out = format!("{IP_O_ADDR}{STAT_MARK}\n{SHOW_STAT}");
    let v = master_view("master1", "10.9.0.253", Ok(out), &refs, &[], 8405);
    assert_eq!(v.holds_vip, Some(true));
    assert_eq!(v.vip_interface.as_deref(), Some("eth0"));
    assert_eq!(v.haproxy.len(), 3);
    assert_eq!(v.error, None);

    let refused = format!(
        "{IP_O_ADDR}{STAT_MARK}\nbash: connect: Connection refused\nbash: line 1: /dev/tcp/127.0.0.1/8405: Connection refused\n"
    );
    let v = master_view("master2", "10.9.0.99", Ok(refused), &refs, &[], 8405);
    assert_eq!(v.holds_vip, Some(false));
    assert_eq!(
        v.error.as_deref(),
        Some(
            "haproxy's stats socket 127.0.0.1:8405 does not answer: bash: connect: Connection refused"
        )
    );

    let v = master_view(
        "master3",
        "10.9.0.253",
        Err("master3: cannot connect (timeout)".into()),
        &refs,
        &[],
        8405,
    );
    assert_eq!((v.holds_vip, v.error.is_some()), (None, true));
}

#[test]
fn the_vip_in_words() {
    let s = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        vip_detail("10.0.0.9", &s(&["m1"]), &[]),
        "VIP 10.0.0.9 on m1"
    );
    assert_eq!(
        vip_detail("10.0.0.9", &s(&["m1"]), &s(&["m3"])),
        "VIP 10.0.0.9 on m1 (m3 could not be asked)"
    );
    assert_eq!(
        vip_detail("10.0.0.9", &[], &[]),
        "VIP 10.0.0.9 on no master: keepalived is not running, or no master's haproxy is up"
    );
    assert_eq!(
        vip_detail("10.0.0.9", &s(&["m1", "m2"]), &[]),
        "VIP 10.0.0.9 on 2 masters (m1, m2): their VRRP adverts do not reach each other"
    );
    let built_in = |holders: &[&str]| BuiltIn {
        vip: "10.0.0.9".into(),
        holders: s(holders),
        detail: String::new(),
        masters: Vec::new(),
    };
    assert_eq!(short_vip(&built_in(&["m1"])), "VIP on m1");
    assert_eq!(short_vip(&built_in(&[])), "VIP on no master");
    assert_eq!(short_vip(&built_in(&["m1", "m2"])), "VIP on 2 masters!");
}

#[test]
fn every_state_in_words() {
    let cases = [
        (
            ProbeState::NotListening,
            false,
            None,
            "",
            "not listening yet — expected until the apiserver starts",
        ),
        (
            ProbeState::NoAnswer,
            false,
            None,
            "",
            "no answer within 2 s",
        ),
        (
            ProbeState::NoAnswer,
            false,
            None,
            "No route to host (os error 113)",
            "no answer within 2 s: No route to host (os error 113)",
        ),
        (
            ProbeState::NoTls,
            false,
            None,
            "eof",
            "accepts connections but no TLS: eof",
        ),
        (
            ProbeState::NotReady,
            false,
            Some(503),
            "",
            "TLS up, /readyz not ok (HTTP 503)",
        ),
        (
            ProbeState::AuthRequired,
            false,
            Some(401),
            "",
            "answering, auth required (HTTP 401)",
        ),
        (ProbeState::Ready, true, Some(200), "", "ready"),
    ];
    for (state, frontend, code, seen, want) in cases {
        assert_eq!(wording(state, frontend, code, seen), want);
    }
}

#[test]
fn answers_are_classified_by_their_status_line() {
    assert_eq!(status_of("HTTP/1.0 200 OK\r\n"), Some(200));
    assert_eq!(status_of("HTTP/1.1 99 Odd\r\n"), None);
    assert_eq!(status_of("ok"), None);
    assert_eq!(status_of(""), None);
    assert_eq!(
        classify_answer(""),
        (ProbeState::NotHttp, None, "closed without answering".into())
    );
}

#[test]
fn text_shows_probes_then_the_vip_and_each_haproxy() {
    let probe = |name: &str, state: ProbeState, code: Option<u16>| Probe {
        name: name.into(),
        address: format!("{name}:6443"),
        state,
        up: state.up(),
        http_status: code,
        latency_ms: state.up().then_some(3),
        detail: wording(state, name == "frontend", code, ""),
    };
    let s = LbStatus {
        mode: LbMode::BuiltIn,
        frontend: Some(probe("frontend", ProbeState::Ready, Some(200))),
        backends: vec![probe("master1", ProbeState::NotListening, None)],
        built_in: Some(BuiltIn {
            vip: "10.9.0.253".into(),
            holders: vec!["master1".into()],
            detail: "VIP 10.9.0.253 on master1".into(),
            masters: vec![MasterView {
                name: "master1".into(),
                holds_vip: None,
                vip_interface: None,
                haproxy: Vec::new(),
                console: Vec::new(),
                error: Some("master1: cannot connect (timeout)".into()),
            }],
        }),
        console: None,
    };
    assert_eq!(
        text(&s),
        "UP   frontend       frontend:6443          ready (3 ms)\n\
         DOWN master1        master1:6443           not listening yet — expected until the apiserver starts\n\
         VIP 10.9.0.253 on master1\n\
         haproxy on master1: master1: cannot connect (timeout)\n"
    );
    assert!(!s.healthy());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["mode"], "built-in");
    assert_eq!(json["built_in"]["holders"][0], "master1");
    assert_eq!(json["backends"][0]["state"], "not-listening");
}
