//! The command line: flags per command, each command one call into `ops`.

mod graph;
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
    long_about = "fleetform reads a git repository of YAML manifests that describe a fleet of SQL Server and PostgreSQL servers.\n\nExit codes: 0 success (valid), 1 error or invalid manifests."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an environment's manifests: YAML, schemas, references, cross-object rules and the dependency graph.
    Validate(validate::ValidateArgs),
    /// Print the resource dependency graph of an environment (text, DOT, Mermaid or JSON).
    Graph(graph::GraphArgs),
    /// List the manifest kinds, print one kind's JSON Schema, export all schemas, or print the manifest reference.
    Schema(schema::SchemaArgs),
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

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli, output: &mut Output) -> Result<u8> {
    match cli.command {
        Command::Validate(arguments) => validate::run(arguments, output),
        Command::Graph(arguments) => graph::run(arguments, output),
        Command::Schema(arguments) => schema::run(arguments, output),
    }
}
