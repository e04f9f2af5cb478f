//! Shared helpers for the integration tests: build a repository in memory or
//! on disk, run validation, render diagnostics for snapshots.

#![allow(dead_code)]

pub mod git;
pub mod postgres;
pub mod tds;
pub mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fleetform::diagnostics;
use fleetform::ops::{self, EnvironmentCheck};
use fleetform::schemas::SchemaCatalog;
use fleetform::source::ManifestSource;

pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn catalog() -> SchemaCatalog {
    SchemaCatalog::embedded().expect("embedded schemas load")
}

/// The environment file every corpus case gets unless it brings its own.
pub const CASE_ENVIRONMENT: &str = "apiVersion: fleetform/v1
kind: Environment
metadata:
  name: case
spec:
  description: Broken-manifest corpus case.
  include: [base]
  variables:
    pg_port: 5433
    domain: corp.example.com
";

/// Files of a corpus case as an in-memory repository: the shared base
/// inventory under `base/`, and the case under `environments/case/`.
/// A case is either one YAML file or a directory (which may bring its own
/// environment.yaml).
pub fn corpus_repository(case: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let base = repository_root().join("tests/corpus/base");
    for entry in std::fs::read_dir(&base).expect("corpus base exists") {
        let path = entry.expect("corpus base entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(
            format!("base/{name}"),
            std::fs::read_to_string(&path).unwrap(),
        );
    }
    if case.is_dir() {
        for entry in std::fs::read_dir(case).expect("case directory") {
            let path = entry.expect("case entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(
                format!("environments/case/{name}"),
                std::fs::read_to_string(&path).unwrap(),
            );
        }
    } else {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(
            format!("environments/case/{name}"),
            std::fs::read_to_string(case).unwrap(),
        );
    }
    files
        .entry("environments/case/environment.yaml".to_string())
        .or_insert_with(|| CASE_ENVIRONMENT.to_string());
    files
}

pub fn check_memory(files: BTreeMap<String, String>, environment: &str) -> EnvironmentCheck {
    let source = ManifestSource::Memory { files };
    ops::check_environment(&source, environment, &catalog())
}

/// Diagnostics as a person sees them, plus the summary line.
pub fn render(check: &EnvironmentCheck) -> String {
    let mut text = diagnostics::render_human(&check.diagnostics);
    text.push_str(&diagnostics::summary_line(
        &check.diagnostics,
        check.objects,
        check.files,
    ));
    text.push('\n');
    text
}
