//! Settings resolved once from flags and the environment; after this, code
//! receives typed settings, never raw flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ops::load::ENVIRONMENTS_DIRECTORY;
use crate::source::ManifestSource;

/// Where manifests come from and which environment to use.
pub struct SourceSettings {
    pub source: ManifestSource,
    pub environment: String,
}

impl SourceSettings {
    /// `repository`: the `--repo` flag (default: the nearest directory, from the
    /// current one upwards, that has an `environments/` directory; else the
    /// current directory). `revision`: `--ref`, read from git without a checkout.
    pub fn resolve(
        environment: &str,
        repository: Option<&Path>,
        revision: Option<&str>,
    ) -> Result<Self> {
        let root = match repository {
            Some(path) => path.to_path_buf(),
            None => {
                let current =
                    std::env::current_dir().context("cannot read the current directory")?;
                find_repository_root(&current).unwrap_or(current)
            }
        };
        let source = match revision {
            Some(revision) => ManifestSource::git_revision(&root, revision)?,
            None => ManifestSource::directory(&root)?,
        };
        Ok(SourceSettings {
            source,
            environment: environment.to_string(),
        })
    }
}

fn find_repository_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|directory| directory.join(ENVIRONMENTS_DIRECTORY).is_dir())
        .map(Path::to_path_buf)
}
