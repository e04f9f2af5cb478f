//! Loaded manifest objects and the environment they were loaded for.

use serde_json::{Map, Value};

use crate::diagnostics::Diagnostic;
use crate::yaml::{Location, SpanMap};

/// One YAML document of a known kind, after variable substitution.
#[derive(Clone, Debug)]
pub struct ManifestObject {
    pub kind: String,
    pub name: String,
    /// Repository-relative path of the file it came from.
    pub file: String,
    /// Zero-based position of the document in its file.
    pub document_index: usize,
    pub spans: SpanMap,
    pub document: Value,
    /// Pointers of values whose `${var.NAME}` could not be substituted (already
    /// reported); schema errors about those values would only repeat it.
    pub unresolved: Vec<String>,
}

impl ManifestObject {
    /// `Kind/name`, how objects refer to each other in `dependsOn` and how they are shown.
    pub fn id(&self) -> String {
        if self.name.is_empty() {
            format!(
                "{} (unnamed, document {} of its file)",
                self.kind,
                self.document_index + 1
            )
        } else {
            format!("{}/{}", self.kind, self.name)
        }
    }

    pub fn spec(&self) -> &Value {
        self.document.get("spec").unwrap_or(&Value::Null)
    }

    pub fn spec_str(&self, key: &str) -> Option<&str> {
        self.spec().get(key).and_then(Value::as_str)
    }

    pub fn locate(&self, pointer: &str) -> Location {
        self.spans.locate(pointer)
    }

    /// An error about the value at `pointer` of this object.
    pub fn error_at(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message)
            .in_file(&self.file, self.locate(pointer))
            .at_pointer(pointer)
            .for_object(self.id())
    }

    /// A warning about the value at `pointer` of this object.
    pub fn warning_at(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(message)
            .in_file(&self.file, self.locate(pointer))
            .at_pointer(pointer)
            .for_object(self.id())
    }
}

/// An environment: `environments/<name>/environment.yaml`.
#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    /// Repository-relative directory of the environment.
    pub directory: String,
    pub file: String,
    pub description: Option<String>,
    /// The repository's name (`spec.repository`), when several repositories
    /// manage the same servers: ownership is then `<name>@<repository>`.
    pub repository: Option<String>,
    /// Extra manifest directories, repository-relative.
    pub include: Vec<String>,
    pub variables: Map<String, Value>,
    /// Connection defaults per connector (`postgres`, `sqlserver`, `ssh`), as written.
    pub connection_defaults: Value,
}

impl Environment {
    /// Who owns what this environment creates: its name, or
    /// `<name>@<repository>` (an environment name never holds `@`).
    pub fn owner(&self) -> String {
        match &self.repository {
            Some(repository) => format!("{}@{repository}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Everything read for one environment: valid YAML documents of known kinds.
#[derive(Clone, Debug)]
pub struct LoadedManifests {
    pub environment: Environment,
    pub objects: Vec<ManifestObject>,
    /// Every manifest file read, including the environment file.
    pub files: Vec<String>,
}

/// The strings of the list at `key` of `value` (other items, and a missing or
/// non-list value, give nothing): manifests are full of lists of names.
pub fn string_list<'a>(value: Option<&'a Value>, key: &str) -> Vec<&'a str> {
    value
        .and_then(|value| value.get(key))
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
