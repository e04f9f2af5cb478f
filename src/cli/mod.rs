//! The command line: flags per command, each command one call into `ops`.

mod apply;
mod completions;
mod discover;
mod drift;
mod graph;
mod import;
mod plan;
pub mod run;
mod schema;
mod validate;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "fleetform",
    version,
    about = "Declarative desired state for fleets of SQL Server and PostgreSQL servers",
    long_about = "fleetform reads a git repository of YAML manifests that describe a fleet of SQL Server and PostgreSQL servers.\n\nExit codes: 0 success; 1 error or invalid manifests; plan 2 = changes pending; drift 2 = pending changes only, 3 = drift."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Format of the log lines on stderr (their level comes from FLEETFORM_LOG,
    /// e.g. `info` or `fleetform=debug`; default `warn`).
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Whether the log lines are JSON (`--log-format json`).
pub fn json_logs() -> bool {
    LOG_FORMAT.get() == Some(&LogFormat::Json)
}

/// Log lines (tracing) go to stderr: plain text or one JSON object per line.
/// They carry names, addresses and timings, never a script or a secret.
pub fn init_logging(format: LogFormat) {
    let _ = LOG_FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETFORM_LOG")
        // The SQL Server driver's own warnings repeat fleetform's (an
        // unencrypted login) in its words: by default only its errors.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tiberius=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an environment's manifests: YAML, schemas, references, cross-object rules and the dependency graph.
    Validate(validate::ValidateArgs),
    /// Read the live state, compare it with the manifests and show what apply would run.
    /// Exit 0: nothing to do; 2: changes pending; 1: error.
    Plan(plan::PlanCommandArgs),
    /// Converge the fleet: apply a saved plan, or plan, show, ask and apply.
    /// Exit 0: everything converged; 1: something did not.
    Apply(apply::ApplyArgs),
    /// Report drift (read-only). Exit 0: in sync; 2: pending changes only; 3: drift; 1: error.
    Drift(drift::DriftArgs),
    /// Read the live state and write it as a snapshot (JSON, never a secret) that
    /// instances can plan from offline (`spec.snapshot`). Exit 0, or 1 when a target could not be read.
    Discover(discover::DiscoverArgs),
    /// Read an existing PostgreSQL instance and write manifests for what it holds,
    /// so that the next plan is empty (how a team brings a server under management).
    Import(import::ImportArgs),
    /// Print the resource dependency graph of an environment (text, DOT, Mermaid or JSON).
    Graph(graph::GraphArgs),
    /// List the manifest kinds, print one kind's JSON Schema, export all schemas, or print the manifest reference.
    Schema(schema::SchemaArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command with --out.
    Manpage(completions::ManpageArgs),
}

/// Where the manifests come from: shared by every command that reads an environment.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Environment to use: the directory name under environments/.
    #[arg(short = 'e', long = "env", env = "FLEETFORM_ENV", value_name = "ENV")]
    pub environment: String,
    /// Repository root holding environments/ (default: found from the current directory upwards).
    #[arg(long = "repo", value_name = "PATH")]
    pub repository: Option<PathBuf>,
    /// Read the manifests from this git revision (branch, tag, commit) instead of the working tree.
    #[arg(long = "ref", value_name = "REV")]
    pub revision: Option<String>,
}

impl SourceArgs {
    pub fn settings(&self) -> Result<crate::settings::SourceSettings> {
        crate::settings::SourceSettings::resolve(
            &self.environment,
            self.repository.as_deref(),
            self.revision.as_deref(),
        )
    }
}

/// Load and validate the environment; `None` after printing its diagnostics
/// when it is invalid, so the command can exit 1.
pub fn valid_fleet(
    settings: &crate::settings::SourceSettings,
    catalog: &crate::schemas::SchemaCatalog,
    output: &mut Output,
) -> Option<crate::model::ValidatedFleet> {
    let check = crate::ops::check_environment(&settings.source, &settings.environment, catalog);
    match check.fleet {
        Some(fleet) => {
            let warnings: Vec<_> = check
                .diagnostics
                .iter()
                .filter(|diagnostic| !diagnostic.is_error())
                .cloned()
                .collect();
            if !warnings.is_empty() {
                output.status(&crate::diagnostics::render_human(&warnings));
            }
            Some(fleet)
        }
        None => {
            output.status(&crate::diagnostics::render_human(&check.diagnostics));
            output.status(&crate::diagnostics::summary_line(
                &check.diagnostics,
                check.objects,
                check.files,
            ));
            None
        }
    }
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli, output: &mut Output) -> Result<u8> {
    match cli.command {
        Command::Validate(arguments) => validate::run(arguments, output),
        Command::Plan(arguments) => plan::run(arguments, output),
        Command::Discover(arguments) => discover::run(arguments, output),
        Command::Apply(arguments) => apply::run(arguments, output),
        Command::Drift(arguments) => drift::run(arguments, output),
        Command::Import(arguments) => import::run(arguments, output),
        Command::Graph(arguments) => graph::run(arguments, output),
        Command::Schema(arguments) => schema::run(arguments, output),
        Command::Completions(arguments) => completions::completions(arguments, output),
        Command::Manpage(arguments) => completions::manpage(arguments, output),
    }
}
