//! `fleetform completions SHELL` and `fleetform manpage`: both generated
//! from the command-line definition, so they cannot fall behind it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use crate::output::Output;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in. Load it with, for bash:
    /// `source <(fleetform completions bash)`; for zsh, write it as `_fleetform`
    /// into a directory of `$fpath`; for fish, into `~/.config/fish/completions/fleetform.fish`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write fleetform.1 and one page per command (fleetform-plan.1, ...) into
    /// this directory instead of printing fleetform.1.
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(arguments: CompletionsArgs, output: &mut Output) -> Result<u8> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(arguments.shell, &mut command, "fleetform", &mut script);
    output.result(&String::from_utf8_lossy(&script));
    Ok(0)
}

pub fn manpage(arguments: ManpageArgs, output: &mut Output) -> Result<u8> {
    let command = super::Cli::command();
    match arguments.out {
        Some(directory) => {
            std::fs::create_dir_all(&directory)
                .with_context(|| format!("cannot create {}", directory.display()))?;
            clap_mangen::generate_to(command, &directory).with_context(|| {
                format!("cannot write the manual pages into {}", directory.display())
            })?;
            output.status(&format!(
                "wrote the manual pages into {}",
                directory.display()
            ));
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the manual page")?;
            output.result(&String::from_utf8_lossy(&page));
        }
    }
    Ok(0)
}
