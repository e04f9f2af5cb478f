//! Load: an environment name and a source → the environment and its manifest objects.
//!
//! Reads `environments/<name>/environment.yaml`, every YAML file of the
//! environment directory and of its `include` directories, splits them into
//! documents, substitutes `${var.NAME}` variables and keeps the documents of
//! known kinds. Every YAML error, unknown kind and undefined variable becomes
//! a diagnostic; loading goes on with the other files. Schema checks are the
//! validate stage's job, not this one's.

use serde_json::{Map, Value};

use crate::diagnostics::Diagnostic;
use crate::model::{Environment, LoadedManifests, ManifestObject, string_list};
use crate::schemas::{ENVIRONMENT_KIND, SchemaCatalog};
use crate::source::ManifestSource;
use crate::suggest::did_you_mean;
use crate::yaml::{self, Location, YamlDocument};

pub const ENVIRONMENTS_DIRECTORY: &str = "environments";
pub const ENVIRONMENT_FILE: &str = "environment.yaml";

/// Names of the environments in `source`.
pub fn environment_names(source: &ManifestSource) -> Vec<String> {
    let suffix = format!("/{ENVIRONMENT_FILE}");
    source
        .yaml_files_below(ENVIRONMENTS_DIRECTORY)
        .unwrap_or_default()
        .iter()
        .filter_map(|path| {
            let inner = path.strip_prefix(&format!("{ENVIRONMENTS_DIRECTORY}/"))?;
            let name = inner.strip_suffix(&suffix)?;
            (!name.contains('/')).then(|| name.to_string())
        })
        .collect()
}

/// Load environment `name`. Returns `None` only when there is nothing to
/// validate at all (no such environment, or its environment file is unusable).
pub fn load_environment(
    source: &ManifestSource,
    name: &str,
    catalog: &SchemaCatalog,
) -> (Option<LoadedManifests>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let directory = format!("{ENVIRONMENTS_DIRECTORY}/{name}");
    let environment_file = format!("{directory}/{ENVIRONMENT_FILE}");
    if name.is_empty()
        || name.contains('/')
        || name.contains("..")
        || !source.exists(&environment_file)
    {
        let names = environment_names(source);
        let mut diagnostic = Diagnostic::error(format!(
            "environment `{name}` not found: there is no {environment_file} in {}",
            source.describe()
        ));
        diagnostic = match did_you_mean(name, names.iter().map(String::as_str)) {
            Some(hint) => diagnostic.with_hint(hint),
            None if names.is_empty() => diagnostic.with_hint(format!(
                "create {ENVIRONMENTS_DIRECTORY}/{name}/{ENVIRONMENT_FILE}, or point --repo at the repository that has one"
            )),
            None => diagnostic.with_hint(format!("environments here: {}", names.join(", "))),
        };
        return (None, vec![diagnostic]);
    }

    let Some((environment, environment_object)) = read_environment(
        source,
        name,
        &directory,
        &environment_file,
        catalog,
        &mut diagnostics,
    ) else {
        return (None, diagnostics);
    };

    // Shared include directories first, then the environment's own files, so
    // that a clash is reported in the environment's file, not the shared one.
    let mut files = vec![environment_file.clone()];
    let mut directories = Vec::new();
    for (index, include) in environment.include.iter().enumerate() {
        match normalise_relative(include) {
            Some(path) if source.is_dir(&path) => directories.push(path),
            _ => diagnostics.push(
                environment_object
                    .error_at(
                        &format!("/spec/include/{index}"),
                        format!("include directory `{include}` does not exist"),
                    )
                    .with_hint(
                        "include paths are relative to the repository root, e.g. fleet/base",
                    ),
            ),
        }
    }
    directories.push(directory.clone());
    for include_directory in &directories {
        match source.yaml_files_below(include_directory) {
            Ok(found) => {
                for file in found {
                    if !files.contains(&file) {
                        files.push(file);
                    }
                }
            }
            Err(error) => diagnostics.push(Diagnostic::error(format!("{error:#}"))),
        }
    }

    let mut objects = Vec::new();
    let mut expansion = ExpansionBudget::default();
    for file in files.iter().skip(1) {
        let Some(documents) = read_documents(source, file, &mut diagnostics) else {
            continue;
        };
        for document in documents {
            if let Some(object) = to_object(
                file,
                document,
                &environment.variables,
                &mut expansion,
                catalog,
                &mut diagnostics,
            ) {
                objects.push(object);
            }
        }
    }
    (
        Some(LoadedManifests {
            environment,
            objects,
            files,
        }),
        diagnostics,
    )
}

fn read_documents(
    source: &ManifestSource,
    file: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Vec<YamlDocument>> {
    let text = match source.read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            diagnostics
                .push(Diagnostic::error(format!("{error:#}")).in_file(file, Location::default()));
            return None;
        }
    };
    match yaml::parse_documents(&text) {
        Ok(documents) => Some(documents),
        Err(error) => {
            diagnostics.push(
                Diagnostic::error(format!("YAML syntax error: {}", error.message))
                    .in_file(file, error.location)
                    .with_hint("nothing in this file was loaded; fix the syntax first"),
            );
            None
        }
    }
}

fn read_environment(
    source: &ManifestSource,
    name: &str,
    directory: &str,
    file: &str,
    catalog: &SchemaCatalog,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Environment, ManifestObject)> {
    let documents = read_documents(source, file, diagnostics)?;
    let mut documents = documents.into_iter();
    let Some(document) = documents.next() else {
        diagnostics.push(
            Diagnostic::error("the environment file is empty").in_file(file, Location::default()),
        );
        return None;
    };
    if let Some(extra) = documents.next() {
        diagnostics.push(
            Diagnostic::error("the environment file must hold exactly one document")
                .in_file(file, extra.spans.locate(""))
                .with_hint("put manifests in other files of the environment directory"),
        );
    }
    let object = ManifestObject {
        kind: ENVIRONMENT_KIND.to_string(),
        name: name.to_string(),
        file: file.to_string(),
        document_index: 0,
        spans: document.spans,
        document: document.value,
        unresolved: Vec::new(),
    };
    let schema_problems = super::validate::schema_diagnostics(&object, catalog);
    let valid = !schema_problems.iter().any(Diagnostic::is_error);
    diagnostics.extend(schema_problems);
    if !valid {
        return None;
    }
    let declared = object
        .document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if declared != name {
        diagnostics.push(
            object
                .error_at(
                    "/metadata/name",
                    format!("the environment in directory `{name}` is named `{declared}`; it must be named `{name}`"),
                )
                .with_hint("metadata.name of environment.yaml and the directory name must match"),
        );
    }
    let spec = object.spec();
    let environment = Environment {
        name: name.to_string(),
        directory: directory.to_string(),
        file: file.to_string(),
        description: spec
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        repository: spec
            .get("repository")
            .and_then(Value::as_str)
            .map(str::to_string),
        include: string_list(Some(spec), "include")
            .into_iter()
            .map(str::to_string)
            .collect(),
        variables: spec
            .get("variables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        connection_defaults: spec
            .get("connectionDefaults")
            .cloned()
            .unwrap_or(Value::Null),
    };
    Some((environment, object))
}

/// `a/./b/` → `a/b`; a path that leaves the repository (`..` above the root, or absolute) → None.
fn normalise_relative(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn to_object(
    file: &str,
    mut document: YamlDocument,
    variables: &Map<String, Value>,
    expansion: &mut ExpansionBudget,
    catalog: &SchemaCatalog,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ManifestObject> {
    let start = document.spans.locate("");
    let kind = match document.value.get("kind") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => {
            diagnostics.push(
                Diagnostic::error("`kind` must be a string")
                    .in_file(file, document.spans.locate("/kind"))
                    .at_pointer("/kind"),
            );
            return None;
        }
        None if document.value.is_object() => {
            diagnostics.push(
                Diagnostic::error("document has no `kind`")
                    .in_file(file, start)
                    .with_hint("every document starts with apiVersion: fleetform/v1, kind, metadata and spec"),
            );
            return None;
        }
        None => {
            diagnostics.push(
                Diagnostic::error("a manifest document must be a mapping")
                    .in_file(file, start)
                    .with_hint("every document starts with apiVersion: fleetform/v1, kind, metadata and spec"),
            );
            return None;
        }
    };
    if kind == ENVIRONMENT_KIND {
        diagnostics.push(
            Diagnostic::error(
                "an Environment may only be defined in environments/<name>/environment.yaml",
            )
            .in_file(file, document.spans.locate("/kind"))
            .at_pointer("/kind"),
        );
        return None;
    }
    if catalog.kind(&kind).is_none() {
        let kinds: Vec<&str> = catalog
            .manifest_kinds()
            .map(|info| info.kind.as_str())
            .collect();
        diagnostics.push(
            Diagnostic::error(format!("unknown kind `{kind}`"))
                .in_file(file, document.spans.locate("/kind"))
                .at_pointer("/kind")
                .with_hint(
                    did_you_mean(&kind, kinds.iter().copied())
                        .unwrap_or_else(|| format!("known kinds: {}", kinds.join(", "))),
                ),
        );
        return None;
    }
    let name = document
        .value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let object_id = format!("{kind}/{name}");
    let mut unresolved = Vec::new();
    substitute_variables(
        &mut document.value,
        "",
        variables,
        expansion,
        &mut |pointer, message, hint| {
            unresolved.push(pointer.to_string());
            diagnostics.push(
                Diagnostic::error(message)
                    .in_file(file, document.spans.locate(pointer))
                    .at_pointer(pointer)
                    .for_object(object_id.clone())
                    .with_optional_hint(hint),
            );
        },
    );
    if let Some(spec) = document.value.get_mut("spec") {
        catalog.normalise_keywords(&kind, spec);
    }
    Some(ManifestObject {
        kind,
        name,
        file: file.to_string(),
        document_index: document.index_in_file,
        spans: document.spans,
        document: document.value,
        unresolved,
    })
}

/// How many bytes variables may add to an environment's manifests, all files
/// together: the same limit a single file's aliases have, so a large variable
/// used thousands of times stops with an error instead of exhausting memory.
pub struct ExpansionBudget {
    remaining: usize,
    exhausted: bool,
}

impl Default for ExpansionBudget {
    fn default() -> Self {
        ExpansionBudget {
            remaining: yaml::MAX_EXPANDED_BYTES,
            exhausted: false,
        }
    }
}

/// Replace `${var.NAME}` in every string of `value`. A string that is exactly
/// one reference takes the variable's own type (a port stays a number);
/// otherwise the variable is written into the text. `$${` is a literal `${`.
/// Past the budget nothing more is substituted and the first string that
/// would cross it is reported (once for the whole load).
pub fn substitute_variables(
    value: &mut Value,
    pointer: &str,
    variables: &Map<String, Value>,
    budget: &mut ExpansionBudget,
    report: &mut dyn FnMut(&str, String, Option<String>),
) {
    if budget.exhausted || !contains_placeholder(value) {
        return;
    }
    match value {
        Value::String(text) if text.contains("${") => {
            match interpolate(text, variables, budget.remaining) {
                Ok(replacement) => {
                    budget.remaining -= expanded_len(&replacement);
                    *value = replacement;
                }
                Err(Some((message, hint))) => report(pointer, message, hint),
                Err(None) => {
                    budget.exhausted = true;
                    report(
                        pointer,
                        format!(
                            "variables expand the manifests to more than {} MiB of text",
                            yaml::MAX_EXPANDED_BYTES / (1024 * 1024)
                        ),
                        Some("a large variable is used in too many places; keep large text (scripts, certificates) in one object or a file it names".to_string()),
                    );
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let child = format!("{pointer}/{index}");
                substitute_variables(item, &child, variables, budget, report);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let child = format!("{pointer}/{}", yaml::escape_pointer_token(key));
                substitute_variables(item, &child, variables, budget, report);
            }
        }
        _ => {}
    }
}

/// Whether any string in `value` has a `${`; lets the walk skip (and build no
/// pointers for) the many subtrees that have nothing to substitute.
fn contains_placeholder(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains("${"),
        Value::Array(items) => items.iter().any(contains_placeholder),
        Value::Object(map) => map.values().any(contains_placeholder),
        _ => false,
    }
}

/// The bytes a substituted value adds (a number or boolean counts as a word).
fn expanded_len(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        _ => 8,
    }
}

/// `Err(Some(problem))` for a wrong reference, `Err(None)` when the text
/// would grow past `limit` bytes (checked as it grows, before memory is spent).
fn interpolate(
    text: &str,
    variables: &Map<String, Value>,
    limit: usize,
) -> Result<Value, Option<(String, Option<String>)>> {
    let mut output = String::new();
    let mut rest = text;
    let mut references = 0;
    let mut whole_value = None;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest[..start].ends_with('$') {
            output.push_str(&rest[..start - 1]);
            output.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        output.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(Some((
                format!("unterminated `${{` in `{text}`"),
                Some("write a variable as ${var.NAME}, or $${ for a literal ${".to_string()),
            )));
        };
        let expression = after[..end].trim();
        let Some(variable) = expression.strip_prefix("var.") else {
            return Err(Some((
                format!("`${{{expression}}}` is not a variable reference"),
                Some("write a variable as ${var.NAME}; secrets come from {fromEnv: NAME}, never from variables".to_string()),
            )));
        };
        let Some(value) = variables.get(variable) else {
            let hint = did_you_mean(variable, variables.keys().map(String::as_str)).or_else(|| {
                Some(if variables.is_empty() {
                    "the environment defines no variables; add it under spec.variables of environment.yaml".to_string()
                } else {
                    format!(
                        "variables defined in environment.yaml: {}",
                        variables.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
            });
            return Err(Some((format!("undefined variable `{variable}`"), hint)));
        };
        references += 1;
        if output.len().saturating_add(expanded_len(value)) > limit {
            return Err(None);
        }
        if start == 0 && end + 3 == rest.len() && output.is_empty() && references == 1 {
            whole_value = Some(value.clone());
        }
        match value {
            Value::String(text) => output.push_str(text),
            Value::Number(number) => output.push_str(&number.to_string()),
            Value::Bool(flag) => output.push_str(&flag.to_string()),
            _ => {
                return Err(Some((
                    format!("variable `{variable}` is not a string, number or boolean"),
                    None,
                )));
            }
        }
        rest = &after[end + 1..];
    }
    output.push_str(rest);
    match whole_value {
        Some(value) if references == 1 && rest.is_empty() => Ok(value),
        _ => Ok(Value::String(output)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variables() -> Map<String, Value> {
        json!({"port": 5433, "domain": "corp.example.com", "enabled": true})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn a_whole_reference_keeps_the_variable_type() {
        assert_eq!(
            interpolate("${var.port}", &variables(), usize::MAX).unwrap(),
            json!(5433)
        );
        assert_eq!(
            interpolate("${ var.enabled }", &variables(), usize::MAX).unwrap(),
            json!(true)
        );
    }

    #[test]
    fn references_inside_text_are_written_in() {
        assert_eq!(
            interpolate("host.${var.domain}:${var.port}", &variables(), usize::MAX).unwrap(),
            json!("host.corp.example.com:5433")
        );
        assert_eq!(
            interpolate("cost $${var.port}", &variables(), usize::MAX).unwrap(),
            json!("cost ${var.port}")
        );
    }

    #[test]
    fn undefined_and_malformed_references_are_errors_with_hints() {
        let (message, hint) = interpolate("${var.prot}", &variables(), usize::MAX)
            .unwrap_err()
            .unwrap();
        assert_eq!(message, "undefined variable `prot`");
        assert_eq!(hint.as_deref(), Some("did you mean `port`?"));
        assert!(interpolate("${env.HOME}", &variables(), usize::MAX).is_err());
        assert!(interpolate("${var.port", &variables(), usize::MAX).is_err());
    }

    #[test]
    fn a_large_variable_used_many_times_stops_at_the_budget() {
        // 1 MiB used 5,000 times would be 5 GB: the load stops near 64 MiB
        // with one error, and a string repeating it is refused as it grows.
        let big = json!({"big": "x".repeat(1024 * 1024)});
        let variables = big.as_object().unwrap();
        let mut manifest = json!({"items": vec!["${var.big}"; 5_000]});
        let mut budget = ExpansionBudget::default();
        let mut reported = Vec::new();
        substitute_variables(
            &mut manifest,
            "",
            variables,
            &mut budget,
            &mut |pointer, message, _| reported.push((pointer.to_string(), message)),
        );
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert_eq!(reported[0].0, "/items/64");
        assert!(
            reported[0].1.contains("more than 64 MiB"),
            "{}",
            reported[0].1
        );
        let repeated = "${var.big}".repeat(5_000);
        assert_eq!(interpolate(&repeated, variables, 64 << 20), Err(None));
    }

    #[test]
    fn normalises_include_paths_inside_the_repository() {
        assert_eq!(
            normalise_relative("./fleet//base/").as_deref(),
            Some("fleet/base")
        );
        assert_eq!(
            normalise_relative("environments/../fleet").as_deref(),
            Some("fleet")
        );
        assert_eq!(normalise_relative("../outside"), None);
        assert_eq!(normalise_relative("/etc"), None);
    }
}
