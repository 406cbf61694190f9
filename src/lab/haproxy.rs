//! The lab's external load balancer: a real haproxy in front of the masters' apiservers, and in
//! front of every node's `KubeSphere` console (30880, the second listener of the external-LB
//! checklist: always there, as an operator who followed it has it), with a stats socket so tests
//! can read the backends' state.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use color_eyre::eyre::{Result, WrapErr, eyre};

use super::{Lab, run};
use crate::lb_status::console_server_name;
use crate::model::CONSOLE_PORT;

pub fn config(lab: &Lab, masters: &[&str], nodes: &[&str]) -> String {
    let mut s = format!(
        "# kswizard lab: the external LB in front of the apiservers (as DESIGN §4 asks of an LB)\n\
         global\n\
         \x20   daemon\n\
         \x20   pidfile {pid}\n\
         \x20   stats socket {sock} mode 600 level admin\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 3s\n\
         \x20   timeout client 1h\n\
         \x20   timeout server 1h\n\
         frontend apiserver\n\
         \x20   bind {addr}:{port}\n\
         \x20   default_backend masters\n\
         backend masters\n\
         \x20   balance roundrobin\n\
         \x20   # The apiserver's own readiness, over TLS, as kubeadm's HA guide configures it.\n\
         \x20   option httpchk GET /readyz\n\
         \x20   http-check expect status 200\n\
         \x20   default-server check check-ssl verify none inter 1s fall 2 rise 1\n",
        pid = lab.haproxy_pid_file().display(),
        sock = lab.haproxy_socket.display(),
        addr = lab.lb_address,
        port = lab.lb_port,
    );
    for (i, ip) in masters.iter().enumerate() {
        s.push_str(&format!("    server master{} {ip}:6443\n", i + 1));
    }
    s.push_str(&format!(
        "frontend kubesphere-console\n\
         \x20   mode http\n\
         \x20   bind {addr}:{port}\n\
         \x20   timeout client 1m\n\
         \x20   default_backend console\n\
         backend console\n\
         \x20   mode http\n\
         \x20   balance roundrobin\n\
         \x20   timeout server 1m\n\
         \x20   # The console's NodePort on every node answers the same page.\n\
         \x20   option httpchk GET /\n\
         \x20   http-check expect status 200\n\
         \x20   default-server check inter 1s fall 2 rise 1\n",
        addr = lab.lb_address,
        port = CONSOLE_PORT,
    ));
    for ip in nodes {
        s.push_str(&format!(
            "    server {} {ip}:{CONSOLE_PORT}\n",
            console_server_name(ip)
        ));
    }
    s
}

pub fn start(cfg: &Path) -> Result<()> {
    run(Command::new("haproxy").arg("-q").arg("-f").arg(cfg)).wrap_err("starting haproxy")
}

/// The servers of the backend `proxy` in `show stat`: (server name, status such as UP, DOWN).
pub fn backend_status(socket: &Path, proxy: &str) -> Result<Vec<(String, String)>> {
    let mut stream =
        UnixStream::connect(socket).wrap_err_with(|| format!("{}", socket.display()))?;
    stream.write_all(b"show stat\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| eyre!("empty answer from haproxy"))?;
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| eyre!("haproxy stats have no {name} column"))
    };
    let (px, sv, status) = (col("pxname")?, col("svname")?, col("status")?);
    Ok(lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > status && f[px] == proxy && f[sv] != "BACKEND")
        .map(|f| (f[sv].to_string(), f[status].to_string()))
        .collect())
}
