//! `kswizard lab up|down`: the lab of DESIGN §8 from the command line.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;

use super::Outcome;
use crate::lab;

#[derive(Subcommand, Debug)]
pub enum LabAction {
    /// Boot N nodes (systemd containers with their own network on a bridge) and an haproxy LB;
    /// write conf/ and lab.json.
    Up {
        /// How many nodes: the first three are masters with etcd, the rest workers.
        #[arg(long, default_value_t = 6)]
        nodes: usize,
        /// Where the lab lives: its conf/, keys, node directories and lab.json.
        #[arg(long, default_value = lab::DEFAULT_DIR)]
        dir: PathBuf,
        /// A.B.C of a private /24 nothing on this machine uses (default: the first free 10.231.X):
        /// nodes get .1 to .N, the LB .250, this machine .254.
        #[arg(long)]
        subnet: Option<String>,
        /// Install missing packages and build the node image without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Stop the lab in DIR: its containers, namespaces, veths, bridge, mounts; then remove DIR.
    Down {
        /// The lab's directory, as given to `lab up`.
        #[arg(long, default_value = lab::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

pub fn run(action: LabAction) -> Outcome {
    let result = match action {
        LabAction::Up {
            nodes,
            dir,
            subnet,
            yes,
        } => {
            let started = Instant::now();
            lab::up(&lab::Spec { dir, nodes, subnet }, yes).map(|l| {
                println!(
                    "lab up: {} nodes in {:.1?} on {}.0/24 (bridge {}, this machine {}); LB {}:{} (haproxy stats: {})",
                    l.nodes.len(),
                    started.elapsed(),
                    l.subnet,
                    l.bridge,
                    l.host_address,
                    l.lb_address,
                    l.lb_port,
                    l.haproxy_socket.display()
                );
                for n in &l.nodes {
                    println!("  {:<10} {}", n.name, n.ip);
                }
                println!(
                    "conf: {}\nkey: {} (users: {} with passwordless sudo; {} with the password in {})\nlab: {}",
                    l.conf_dir.display(),
                    l.key.display(),
                    l.key_user,
                    l.password_user,
                    l.password_file.display(),
                    l.dir.join("lab.json").display()
                );
            })
        }
        LabAction::Down { dir } => {
            let started = Instant::now();
            lab::down(&dir).map(|()| {
                println!(
                    "lab down: {} removed in {:.1?}",
                    dir.display(),
                    started.elapsed()
                );
            })
        }
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("kswizard lab: {e:#}");
            Outcome::Failed
        }
    }
}
