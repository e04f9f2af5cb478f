//! Operations: the verbs of fleetform (load, validate, expand, graph, reference docs).
//!
//! Each operation is a plain function from model types to model types plus
//! diagnostics. Only `load` reads anything (through a `ManifestSource`); the
//! others are pure.

pub mod apply;
pub mod changes;
pub mod diff;
pub mod engine;
pub mod expand;
pub mod graph;
pub mod import;
pub mod load;
pub mod reference_docs;
pub mod rules;
pub mod settings;
pub mod snapshot;
pub mod targets;
pub mod validate;

use crate::diagnostics::{self, Diagnostic};
use crate::model::ValidatedFleet;
use crate::schemas::SchemaCatalog;
use crate::source::ManifestSource;

/// The outcome of loading and validating one environment.
pub struct EnvironmentCheck {
    /// Present only when there is no error.
    pub fleet: Option<ValidatedFleet>,
    pub diagnostics: Vec<Diagnostic>,
    pub files: usize,
    pub objects: usize,
}

impl EnvironmentCheck {
    pub fn is_valid(&self) -> bool {
        self.fleet.is_some()
    }
}

/// Load → validate → expand → graph for environment `name`, collecting every problem.
pub fn check_environment(
    source: &ManifestSource,
    name: &str,
    catalog: &SchemaCatalog,
) -> EnvironmentCheck {
    let (loaded, mut found) = load::load_environment(source, name, catalog);
    let Some(loaded) = loaded else {
        diagnostics::sort(&mut found);
        return EnvironmentCheck {
            fleet: None,
            diagnostics: found,
            files: 0,
            objects: 0,
        };
    };
    finish(loaded, found, catalog)
}

/// Validate already loaded manifests, keeping the diagnostics loading produced.
pub fn finish(
    loaded: crate::model::LoadedManifests,
    mut found: Vec<Diagnostic>,
    catalog: &SchemaCatalog,
) -> EnvironmentCheck {
    let files = loaded.files.len();
    let objects = loaded.objects.len();
    let loading_failed = found.iter().any(Diagnostic::is_error);
    let (fleet, problems) = validate::validate(loaded, catalog);
    found.extend(problems);
    diagnostics::sort(&mut found);
    found.dedup();
    EnvironmentCheck {
        fleet: if loading_failed { None } else { fleet },
        diagnostics: found,
        files,
        objects,
    }
}
