//! `fleetform schema`: list kinds, print one schema, export all, or print the manifest reference.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::ops::reference_docs;
use crate::output::Output;
use crate::schemas::{self, SchemaCatalog, UNION_SCHEMA_FILE};
use crate::suggest::did_you_mean;

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the JSON Schema of this kind (e.g. AvailabilityGroup). Without it, list the kinds.
    pub kind: Option<String>,
    /// Write every schema (and the union schema for multi-kind files) into this directory.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kind", "reference"])]
    pub export: Option<PathBuf>,
    /// Print the manifest reference (Markdown) generated from the schemas.
    #[arg(long, conflicts_with = "kind")]
    pub reference: bool,
}

pub fn run(arguments: SchemaArgs, output: &mut Output) -> Result<u8> {
    let catalog = SchemaCatalog::embedded()?;
    if let Some(directory) = &arguments.export {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let mut written = 0;
        for name in catalog.file_names() {
            if name == UNION_SCHEMA_FILE {
                continue;
            }
            let value = catalog.file(name).context("schema vanished")?;
            write_json(&directory.join(name), value)?;
            written += 1;
        }
        write_json(
            &directory.join(UNION_SCHEMA_FILE),
            &schemas::union_schema(&catalog),
        )?;
        output.status(&format!(
            "wrote {} schemas to {}",
            written + 1,
            directory.display()
        ));
        return Ok(0);
    }
    if arguments.reference {
        output.result(&reference_docs::render(&catalog));
        return Ok(0);
    }
    match &arguments.kind {
        Some(kind) => {
            let Some(info) = catalog.kind(kind) else {
                let kinds: Vec<&str> = catalog
                    .kinds()
                    .iter()
                    .map(|info| info.kind.as_str())
                    .collect();
                let hint = did_you_mean(kind, kinds.iter().copied())
                    .unwrap_or_else(|| format!("known kinds: {}", kinds.join(", ")));
                bail!("unknown kind `{kind}`\nhint: {hint}");
            };
            let value = catalog.file(&info.file).context("schema vanished")?;
            output.result(&format!("{}\n", serde_json::to_string_pretty(value)?));
        }
        None => {
            let mut text = String::new();
            for info in catalog.kinds() {
                let targets = match info.targets {
                    schemas::Targets::None => "standalone",
                    schemas::Targets::Instances => "per instance",
                    schemas::Targets::Servers => "per server",
                    schemas::Targets::Spans(_) => "per member",
                };
                text.push_str(&format!(
                    "{:<26} {:<13} {:<13} schemas/{}\n",
                    info.kind, info.category, targets, info.file
                ));
            }
            output.result(&text);
        }
    }
    Ok(0)
}

fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
