//! `fleetform import`: flags, then read an instance and write its manifests.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::run::{PlanArgs, RunArgs, prepare, runtime};
use crate::ops::import;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The PostgresInstance to read (declared in the environment's manifests).
    #[arg(long, value_name = "NAME")]
    pub instance: String,
    /// Only these kinds (PostgresRole, PostgresDatabase, ...). Repeatable.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Directory to write to (default: environments/ENV/imported-INSTANCE).
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(arguments: ImportArgs, output: &mut Output) -> Result<u8> {
    let plan_arguments = PlanArgs::default();
    let Some(engine) = prepare(&arguments.run, &plan_arguments, output)? else {
        return Ok(1);
    };
    let objects = runtime()?.block_on(import::read_instance(
        &engine,
        &arguments.instance,
        &arguments.kinds,
    ))?;
    let directory = match &arguments.out {
        Some(directory) => directory.clone(),
        None => engine
            .settings
            .repository_root
            .join("environments")
            .join(&engine.environment)
            .join(format!("imported-{}", arguments.instance)),
    };
    let taken: BTreeSet<(String, String)> = engine.manifest_names.clone();
    let files = import::render_files(&arguments.instance, &objects, &taken);
    if files.is_empty() {
        output.status(&format!(
            "nothing to import: the manifests already describe everything importable on {}",
            arguments.instance
        ));
        return Ok(0);
    }
    for name in files.keys() {
        if directory.join(name).exists() {
            bail!(
                "{} exists already: move it away, or write elsewhere with --out",
                directory.join(name).display()
            );
        }
    }
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    for (name, text) in &files {
        let path = directory.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        output.status(&format!("wrote {}", path.display()));
    }
    output.status(&format!(
        "imported {} objects of {} kinds from {}; `fleetform plan -e {}` should now show nothing to do",
        objects.len(),
        files.len(),
        arguments.instance,
        engine.environment
    ));
    Ok(0)
}
