//! The command line (DESIGN §5): parse arguments, run one command, map the outcome to an exit code
//! (0 ok, 1 findings or failed steps, 2 unreadable input or usage).

mod bundle_cmd;
mod copy_id_cmd;
mod demo_cmd;
mod etcd_cmd;
mod findings;
mod install_cmd;
mod lab_cmd;
mod lb_cmd;
mod remove_cmd;
mod reset_cmd;
pub(crate) mod validate_cmd;
mod write_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "kswizard",
    version,
    about = "Install a highly available Kubernetes / KubeSphere cluster from a terminal"
)]
pub struct Cli {
    /// The conf directory the wizard opens when no command is given.
    #[arg(long, default_value = "conf")]
    pub conf: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check conf/hosts.ini and conf/common.yaml against the layout rules.
    Validate {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// Output: text for people, json for programs (see README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Warnings fail too (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Write the installer's files for the cluster in --conf into --out, with optional LB changes.
    Write {
        /// The conf directory to read (hosts.ini, common.yaml or vars.yml, kswizard.yaml).
        #[arg(long)]
        conf: PathBuf,
        /// Where to write the files (created; may be --conf itself, old files are kept as .bak).
        #[arg(long)]
        out: PathBuf,
        /// The apiserver load balancer's address (`loadbalancer_apiserver.address`).
        #[arg(long, value_name = "A")]
        lb_address: Option<String>,
        /// Its port (`loadbalancer_apiserver.port`), 1..65535.
        #[arg(long, value_name = "P")]
        lb_port: Option<i64>,
        /// Its domain (`apiserver_loadbalancer_domain_name`), a DNS name.
        #[arg(long, value_name = "D")]
        lb_domain: Option<String>,
    },
    /// Show which steps of the install plan run on which node, in which order.
    Plan {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// A plan file other than the bundled assets/plan.yaml.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Output: text for people, json for programs (see README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Install: facts from every node, then the plan, in parallel over SSH; resumable.
    Install {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// A plan file other than the bundled assets/plan.yaml.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Where the journal and `known_hosts` live (default: .kswizard next to the conf directory).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Do not ask: confirm the install, and resume an unfinished one.
        #[arg(long)]
        yes: bool,
        /// Go on with the unfinished install: finished steps are not run again.
        #[arg(long, conflicts_with = "restart")]
        resume: bool,
        /// Start over, ignoring what an earlier install did.
        #[arg(long)]
        restart: bool,
        /// How long to keep reconnecting to a node that went away mid-step before its step
        /// counts as lost (seconds).
        #[arg(long, default_value_t = 120, value_name = "SECS")]
        reconnect_for: u64,
        /// With --resume: run NODE again (a node aborted from the wizard), or only its STEP
        /// (one skipped earlier). Repeatable.
        #[arg(long, value_name = "NODE[:STEP]", requires = "resume")]
        retry: Vec<String>,
        /// With --resume: go on without NODE's STEP (only a step the plan marks skippable).
        /// Repeatable.
        #[arg(long, value_name = "NODE:STEP", requires = "resume")]
        skip: Vec<String>,
        /// Output: text for people, or json (one event per line, see README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Take installed hosts out of the cluster: drain, kubeadm reset, node object and etcd
    /// member removed (refused when etcd would lose quorum), LB backends and endpoint lists
    /// re-wired, then the hosts removed from the conf. A killed remove goes on when run again.
    Remove {
        /// The hosts to remove, by their hosts.ini names.
        #[arg(value_name = "NODE", required = true)]
        nodes: Vec<String>,
        /// Go on with the unfinished remove without NODE's STEP: `NODE:node-reset` for a leaving
        /// host that cannot be reached (a dead master). Repeatable.
        #[arg(long, value_name = "NODE:STEP")]
        skip: Vec<String>,
        #[command(flatten)]
        op: OpArgs,
    },
    /// Undo the install on hosts (all by default): kubeadm reset, etcd, the built-in LB, the
    /// kubelet and containerd, the bundle's files, /etc/hosts line. Asks for the cluster's name
    /// first; the conf stays; the next install starts over on those hosts.
    Reset {
        /// The hosts to reset, by their hosts.ini names (default: every host).
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
        #[command(flatten)]
        op: OpArgs,
    },
    /// The apiserver load balancer: its frontend and every master's apiserver behind it.
    Lb {
        #[command(subcommand)]
        command: LbCommand,
    },
    /// The seeds' 6-host HA example on a local lab, end to end (needs root). On a terminal: the
    /// lab comes up, then the wizard opens at Review and `i` installs live; an unfinished install
    /// of the same lab is taken up again.
    Demo {
        /// The text run: install without the wizard (also what happens without a terminal).
        #[arg(long)]
        headless: bool,
        /// The apiserver LB: external (a haproxy on the taskbox plays the cloud LB, as in the
        /// `KubeSphere` guides) or built-in (haproxy + keepalived with a VIP on the masters).
        #[arg(long, value_enum, default_value_t = DemoLb::External)]
        lb: DemoLb,
        /// Install missing Debian packages without asking.
        #[arg(long)]
        yes: bool,
        /// Where the demo's lab lives.
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
        /// A.B.C of a private /24 for the lab (default: the first free 10.231.X).
        #[arg(long)]
        subnet: Option<String>,
        /// Take the demo's lab down (everything in --dir) and do nothing else.
        #[arg(long)]
        down: bool,
    },
    /// Per-node state of the last install, from its journal.
    Status {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// Where the journal lives (default: .kswizard next to the conf directory).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Output: text for people, json for programs (see README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Replace password login with key login: authorize the taskbox's public key on each host
    /// with its password once, check that key login works, then drop `ansible_ssh_pass` from
    /// hosts.ini (`ansible_become_pass` stays: sudo still asks for it).
    SshCopyId {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// The public key to install (its private key is the same path without .pub).
        /// Default: ~/.`ssh/id_ed25519.pub`, created with ssh-keygen if missing.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Create the missing key pair without asking.
        #[arg(long)]
        yes: bool,
        /// Host names from hosts.ini (default: every host with `ansible_ssh_pass`).
        #[arg(value_name = "HOST")]
        hosts: Vec<String>,
    },
    /// The artifact bundle: the release files the nodes get from the taskbox (no internet on
    /// the nodes).
    Bundle {
        #[command(subcommand)]
        action: bundle_cmd::BundleAction,
    },
    /// etcd backup and restore: `etcd backup` keeps a snapshot on this machine, `etcd restore`
    /// restores the whole etcd cluster from one.
    Etcd {
        #[command(subcommand)]
        action: etcd_cmd::EtcdAction,
    },
    /// Local SSH nodes for trying kswizard out and for tests (needs root).
    Lab {
        #[command(subcommand)]
        action: lab_cmd::LabAction,
    },
}

/// What every day-2 operation's command takes.
#[derive(clap::Args, Debug)]
pub struct OpArgs {
    /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
    #[arg(long, default_value = "conf")]
    pub conf: PathBuf,
    /// Where the journals and the installed record live (default: .kswizard next to the conf).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Do not ask (remove: the confirmation, needed without a terminal; reset: the cluster's
    /// name, for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Output JSON lines (remove: the quorum check first; then the engine's events).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum LbCommand {
    /// Probe the LB address and each master's apiserver port (exit 1 if any is down).
    Status {
        /// The conf directory: hosts.ini and common.yaml (or vars.yml), kswizard.yaml.
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        /// Probe every 2 seconds until interrupted (JSON: one object per line).
        #[arg(long)]
        watch: bool,
        /// Output: text for people, json for programs (see README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoLb {
    External,
    BuiltIn,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// How a command ended, before it becomes an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Findings with an error, or failed steps.
    Failed,
    /// Unreadable input or bad usage.
    BadInput,
    /// Stopped by Ctrl-C (SIGINT), as shells count it.
    Interrupted,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(match o {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::BadInput => 2,
            Outcome::Interrupted => 130,
        })
    }
}

pub fn main() -> ExitCode {
    // ssh runs kswizard as its askpass helper for password hosts (see engine::transport).
    if let Ok(sock) = std::env::var(crate::engine::transport::ASKPASS_ENV) {
        return crate::engine::transport::askpass_main(&sock);
    }
    let cli = Cli::parse();
    // Once, first: readable reports for every eyre error, and ratatui::init (the wizard) expects
    // the panic hook in place before its own.
    if let Err(e) = color_eyre::install() {
        eprintln!("kswizard: {e}");
    }
    // Reports die quietly when their reader goes away (`| head`), as Unix tools do. An install
    // and the wizard keep running instead: they handle write errors themselves.
    if !matches!(
        cli.command,
        None | Some(Command::Install { .. } | Command::Remove { .. } | Command::Reset { .. })
    ) {
        // SAFETY: setting a signal's disposition to the default at start-up, before any thread
        // exists, has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let outcome = match cli.command {
        None => match crate::tui::run(&cli.conf) {
            Ok(()) => Outcome::Ok,
            Err(e) => {
                eprintln!("kswizard: {e:?}");
                Outcome::BadInput
            }
        },
        Some(Command::Validate {
            conf,
            format,
            strict,
        }) => validate_cmd::run(&conf, format, strict),
        Some(Command::Write {
            conf,
            out,
            lb_address,
            lb_port,
            lb_domain,
        }) => write_cmd::run(
            &conf,
            &out,
            write_cmd::LbOverrides {
                address: lb_address,
                port: lb_port,
                domain: lb_domain,
            },
        ),
        Some(Command::Plan { conf, plan, format }) => {
            install_cmd::plan(&conf, plan.as_deref(), format)
        }
        Some(Command::Install {
            conf,
            plan,
            state,
            yes,
            resume,
            restart,
            reconnect_for,
            retry,
            skip,
            output,
        }) => install_cmd::install(install_cmd::InstallArgs {
            conf: &conf,
            plan: plan.as_deref(),
            state: state.as_deref(),
            yes,
            resume,
            restart,
            reconnect_for: std::time::Duration::from_secs(reconnect_for),
            retry: &retry,
            skip: &skip,
            json: output == Format::Json,
        }),
        Some(Command::Remove { nodes, skip, op }) => remove_cmd::run(&nodes, &skip, &op),
        Some(Command::Reset { nodes, op }) => reset_cmd::run(&nodes, &op),
        Some(Command::Lb {
            command:
                LbCommand::Status {
                    conf,
                    watch,
                    format,
                },
        }) => lb_cmd::status(&conf, watch, format),
        Some(Command::Status {
            conf,
            state,
            format,
        }) => install_cmd::status(&conf, state.as_deref(), format),
        Some(Command::SshCopyId {
            conf,
            key,
            yes,
            hosts,
        }) => copy_id_cmd::run(copy_id_cmd::CopyIdArgs {
            conf: &conf,
            key: key.as_deref(),
            yes,
            hosts: &hosts,
        }),
        Some(Command::Bundle { action }) => bundle_cmd::run(action),
        Some(Command::Etcd { action }) => etcd_cmd::run(action),
        Some(Command::Lab { action }) => lab_cmd::run(action),
        Some(Command::Demo {
            headless,
            lb,
            yes,
            dir,
            subnet,
            down,
        }) => demo_cmd::run(demo_cmd::DemoArgs {
            headless,
            built_in: lb == DemoLb::BuiltIn,
            yes,
            dir,
            subnet,
            down,
        }),
    };
    outcome.into()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_a_line_of_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "kswizard", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
    }
}
