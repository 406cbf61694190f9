//! `kswizard lab up|down`: the lab of DESIGN §8 from the command line.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;

use super::Outcome;
use crate::lab;

#[derive(Subcommand, Debug)]
pub enum LabAction {
    /// Start N nodes (sshd in private mount namespaces) and an haproxy LB; write conf/ and lab.json.
    Up {
        /// How many nodes: the first three are masters with etcd, the rest workers.
        #[arg(long, default_value_t = 6)]
        nodes: usize,
        /// Where the lab lives: its conf/, keys, node directories and lab.json.
        #[arg(long, default_value = lab::DEFAULT_DIR)]
        dir: PathBuf,
        /// 127.0.X: nodes get .1 to .N, the LB .250.
        #[arg(long, default_value = lab::DEFAULT_SUBNET)]
        subnet: String,
        /// Install missing packages without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Stop every process of the lab in DIR and remove DIR.
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
                    "lab up: {} nodes in {:.1?}; LB {}:{} (haproxy stats: {})",
                    l.nodes.len(),
                    started.elapsed(),
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
            lab::down(&dir).map(|()| println!("lab down: {} removed", dir.display()))
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
