//! `fleetform graph`: flags, then validation and one call into `ops::graph::render`.

use anyhow::{Result, bail};
use clap::Args;

use super::SourceArgs;
use crate::ops::{self, graph::GraphFormat};
use crate::output::Output;
use crate::schemas::SchemaCatalog;

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
    /// Only these resources and what they depend on: a full address (`PostgresRole/app@pg-1`),
    /// an object (`PostgresRole/app`) or a kind (`PostgresRole`). Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
}

pub fn run(arguments: GraphArgs, output: &mut Output) -> Result<u8> {
    let settings = arguments.source.settings()?;
    let catalog = SchemaCatalog::embedded()?;
    let Some(fleet) = super::valid_fleet(&settings, &catalog, output) else {
        return Ok(1);
    };
    let keep = if arguments.targets.is_empty() {
        None
    } else {
        let keep = ops::graph::restrict(&fleet.graph, &arguments.targets);
        if keep.is_empty() {
            bail!(
                "no resource matches --target {}",
                arguments.targets.join(", ")
            );
        }
        Some(keep)
    };
    output.result(&ops::graph::render(
        &fleet.graph,
        keep.as_ref(),
        arguments.format,
    ));
    Ok(0)
}
