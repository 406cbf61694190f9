//! The command line (DESIGN §5): parse arguments, run one command, map the outcome to an exit code
//! (0 ok, 1 findings or failed steps, 2 unreadable input or usage).

mod findings;
mod lab_cmd;
mod validate_cmd;
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
    #[command(subcommand)]
    pub command: Command,
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
    /// Local SSH nodes for trying kswizard out and for tests (needs root).
    Lab {
        #[command(subcommand)]
        action: lab_cmd::LabAction,
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
        Command::Validate {
            conf,
            format,
            strict,
        } => validate_cmd::run(&conf, format, strict),
        Command::Write {
            conf,
            out,
            lb_address,
            lb_port,
            lb_domain,
        } => write_cmd::run(
            &conf,
            &out,
            write_cmd::LbOverrides {
                address: lb_address,
                port: lb_port,
                domain: lb_domain,
            },
        ),
        Command::Lab { action } => lab_cmd::run(action),
    };
    outcome.into()
}
