//! The command line (DESIGN §5): parse arguments, run one command, map the outcome to an exit code
//! (0 ok, 1 findings or failed steps, 2 unreadable input or usage).

mod findings;
mod validate_cmd;
mod write_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "kswizard", version, about = "Install a highly available Kubernetes / KubeSphere cluster from a terminal")]
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
        #[arg(long, default_value = "conf")]
        conf: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Warnings fail too (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Write the installer's files for the cluster in --conf into --out, with optional LB changes.
    Write {
        #[arg(long)]
        conf: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_name = "A")]
        lb_address: Option<String>,
        #[arg(long, value_name = "P")]
        lb_port: Option<i64>,
        #[arg(long, value_name = "D")]
        lb_domain: Option<String>,
    },
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
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(match o {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::BadInput => 2,
        })
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    outcome.into()
}
