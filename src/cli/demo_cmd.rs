//! `kswizard demo`: the seeds' 6-host HA example end to end on a local lab: systemd nodes with
//! their own network, real sshd, etcd and haproxy (stand-ins only for the Kubernetes binaries).

use std::io::IsTerminal;
use std::path::PathBuf;

use super::install_cmd::{self, InstallArgs};
use super::{Format, Outcome, lb_cmd};
use crate::lab;

/// The built-in LB's port: not 6443, which the apiservers have on the same masters.
const BUILT_IN_PORT: i64 = 8443;

/// Switch the lab's conf to the built-in LB: a VIP of the lab's subnet that no node has (`.200`),
/// port 8443, written with the product's own writer. The VIP's address.
fn use_built_in_lb(lab: &lab::Lab) -> Result<String, String> {
    let (mut cluster, source) = crate::conf::load(&lab.conf_dir).map_err(|e| e.to_string())?;
    let vip = format!("{}.200", lab.subnet);
    cluster.lb.mode = crate::model::LbMode::BuiltIn;
    cluster.lb.address = Some(vip.clone());
    cluster.lb.port = BUILT_IN_PORT;
    crate::conf::save(&cluster, &source, &lab.conf_dir).map_err(|e| e.to_string())?;
    Ok(vip)
}

pub fn run(headless: bool, built_in: bool, yes: bool) -> Outcome {
    let dir = PathBuf::from(lab::DEFAULT_DIR);
    println!("== 1/4 lab: 6 hosts with their own network on a bridge, an haproxy load balancer");
    if lab::Lab::load(&dir).is_ok()
        && let Err(e) = lab::down(&dir)
    {
        eprintln!("kswizard demo: the previous demo lab would not go down: {e:#}");
        return Outcome::Failed;
    }
    let spec = lab::Spec {
        dir: dir.clone(),
        ..lab::Spec::default()
    };
    let lab = match lab::up(&spec, yes) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kswizard demo: {e:#}");
            return Outcome::Failed;
        }
    };
    for n in &lab.nodes {
        println!("   {:<9} {}", n.name, n.ip);
    }
    if built_in {
        match use_built_in_lb(&lab) {
            Ok(vip) => println!(
                "   LB        built-in: haproxy + keepalived on the masters, VIP {vip}:{BUILT_IN_PORT}"
            ),
            Err(e) => {
                eprintln!("kswizard demo: {e}");
                return Outcome::Failed;
            }
        }
    } else {
        println!("   LB        {}:{}", lab.lb_address, lab.lb_port);
    }

    println!("\n== 2/4 validate {}", lab.conf_dir.display());
    if super::validate_cmd::run(&lab.conf_dir, Format::Text, false) != Outcome::Ok {
        return Outcome::Failed;
    }

    println!(
        "\n== 3/4 install: preflight, OS prep, runtime, etcd (TLS), kubeadm init/join, verify"
    );
    let installed = install_cmd::install(InstallArgs {
        conf: &lab.conf_dir,
        plan: None,
        state: None,
        yes: true,
        resume: false,
        restart: true,
        reconnect_for: std::time::Duration::from_secs(120),
        json: false,
    });

    println!("\n== 4/4 the load balancer: frontend and apiservers, as kswizard probes them");
    if built_in {
        // haproxy marks an apiserver up after two passing checks, 2 s apart: the last joins need
        // that long before every master's haproxy sees every backend.
        println!("   (a few seconds for haproxy's checks to see the last masters that joined)");
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    let lb = lb_cmd::status(&lab.conf_dir, false, Format::Text);
    // The taskbox's haproxy is the external LB only; the built-in one's view is in lb status.
    if !built_in && let Ok(backends) = lab.backends() {
        let states: Vec<String> = backends.iter().map(|(s, st)| format!("{s} {st}")).collect();
        println!("   haproxy's own view: {}", states.join(", "));
    }
    let conf = lab.conf_dir.display();
    println!(
        "\nThe lab stays up. Next:\n  kswizard status --conf {conf}\n  kswizard --conf {conf}            (the wizard on the lab's files)\n  kswizard lab down --dir {}",
        lab.dir.display()
    );
    if !headless && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        println!("\nOpening the wizard on the lab's files (q quits)...");
        if let Err(e) = crate::tui::run(&lab.conf_dir) {
            eprintln!("kswizard: {e:?}");
        }
    }
    match (installed, lb) {
        (Outcome::Ok, Outcome::Ok) => Outcome::Ok,
        _ => Outcome::Failed,
    }
}
