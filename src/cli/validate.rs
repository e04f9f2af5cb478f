//! `fleetform validate`: flags, then one call into `ops::check_environment`.

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::SourceArgs;
use crate::diagnostics::{self, Diagnostic};
use crate::ops::{self, EnvironmentCheck};
use crate::output::Output;
use crate::schemas::SchemaCatalog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
    pub format: ValidateFormat,
}

pub fn run(arguments: ValidateArgs, output: &mut Output) -> Result<u8> {
    let settings = arguments.source.settings()?;
    let catalog = SchemaCatalog::embedded()?;
    let check = ops::check_environment(&settings.source, &settings.environment, &catalog);
    match arguments.format {
        ValidateFormat::Human => output.result(&render_human(&check)),
        ValidateFormat::Json => output.result(&render_json(&settings.environment, &check)?),
    }
    Ok(if check.is_valid() { 0 } else { 1 })
}

fn render_human(check: &EnvironmentCheck) -> String {
    let mut text = diagnostics::render_human(&check.diagnostics);
    if !check.diagnostics.is_empty() {
        text.push('\n');
    }
    text.push_str(&diagnostics::summary_line(
        &check.diagnostics,
        check.objects,
        check.files,
    ));
    if let Some(fleet) = &check.fleet {
        text.push_str(&format!(", {} resources", fleet.graph.resources.len()));
    }
    text.push('\n');
    text
}

fn render_json(environment: &str, check: &EnvironmentCheck) -> Result<String> {
    let document = serde_json::json!({
        "format_version": 1,
        "environment": environment,
        "valid": check.is_valid(),
        "summary": {
            "errors": diagnostics::count(&check.diagnostics, diagnostics::Severity::Error),
            "warnings": diagnostics::count(&check.diagnostics, diagnostics::Severity::Warning),
            "files": check.files,
            "objects": check.objects,
            "resources": check.fleet.as_ref().map(|fleet| fleet.graph.resources.len()),
        },
        "diagnostics": check.diagnostics.iter().collect::<Vec<&Diagnostic>>(),
    });
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    Ok(text)
}
