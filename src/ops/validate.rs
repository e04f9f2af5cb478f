//! Validate: loaded manifests → a validated fleet, or every problem found.
//!
//! Runs every check and collects every diagnostic: the schema of each
//! document (with "did you mean" for unknown keys and enum values), duplicate
//! names, dangling references, cron expressions, the cross-object rules of
//! `rules`, selector expansion and the dependency graph (cycles). Pure: no IO.

use std::collections::{BTreeMap, HashMap};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::{expand, graph, rules};
use crate::diagnostics::Diagnostic;
use crate::model::{LoadedManifests, ManifestObject, ValidatedFleet};
use crate::schemas::{Annotation, SERVER_KIND, SchemaCatalog};
use crate::suggest::did_you_mean;
use crate::yaml::escape_pointer_token;

/// Objects by kind and name, for reference lookups.
pub struct ObjectIndex<'a> {
    pub objects: &'a [ManifestObject],
    by_kind: HashMap<&'a str, BTreeMap<&'a str, usize>>,
}

impl<'a> ObjectIndex<'a> {
    pub fn new(objects: &'a [ManifestObject]) -> Self {
        let mut by_kind: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
        for (index, object) in objects.iter().enumerate() {
            by_kind
                .entry(object.kind.as_str())
                .or_default()
                .entry(object.name.as_str())
                .or_insert(index);
        }
        ObjectIndex { objects, by_kind }
    }

    pub fn find(&self, kind: &str, name: &str) -> Option<usize> {
        self.by_kind.get(kind)?.get(name).copied()
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<&'a ManifestObject> {
        self.find(kind, name).map(|index| &self.objects[index])
    }

    pub fn names(&self, kind: &str) -> impl Iterator<Item = &'a str> + '_ {
        self.by_kind
            .get(kind)
            .into_iter()
            .flat_map(|names| names.keys().copied())
    }

    pub fn of_kind(&self, kind: &str) -> impl Iterator<Item = &'a ManifestObject> + '_ {
        self.by_kind
            .get(kind)
            .into_iter()
            .flat_map(|names| names.values().map(|index| &self.objects[*index]))
    }
}

/// Validate everything. The fleet is returned only when there is no error.
pub fn validate(
    manifests: LoadedManifests,
    catalog: &SchemaCatalog,
) -> (Option<ValidatedFleet>, Vec<Diagnostic>) {
    let mut found = Vec::new();
    let mut schema_valid = Vec::with_capacity(manifests.objects.len());
    for object in &manifests.objects {
        let problems = schema_diagnostics(object, catalog);
        schema_valid
            .push(object.unresolved.is_empty() && !problems.iter().any(Diagnostic::is_error));
        found.extend(problems);
    }
    found.extend(duplicate_names(&manifests.objects, catalog));
    let index = ObjectIndex::new(&manifests.objects);
    for object in &manifests.objects {
        found.extend(reference_diagnostics(object, &index, catalog));
        found.extend(cron_diagnostics(object, catalog));
        found.extend(identifier_diagnostics(object, catalog));
    }
    let valid_objects: Vec<&ManifestObject> = manifests
        .objects
        .iter()
        .zip(&schema_valid)
        .filter_map(|(object, valid)| valid.then_some(object))
        .collect();
    found.extend(rules::check(&valid_objects, &index));

    let (resources, expansion_problems) =
        expand::expand(&manifests.objects, &schema_valid, &index, catalog);
    found.extend(expansion_problems);
    let (resource_graph, graph_problems) =
        graph::build(resources, &manifests.objects, &index, catalog);
    found.extend(graph_problems);

    if found.iter().any(Diagnostic::is_error) {
        (None, found)
    } else {
        (
            Some(ValidatedFleet {
                manifests,
                graph: resource_graph,
            }),
            found,
        )
    }
}

/// Schema problems of one document, worded for a DBA.
pub fn schema_diagnostics(object: &ManifestObject, catalog: &SchemaCatalog) -> Vec<Diagnostic> {
    let Some(validator) = catalog.validator(&object.kind) else {
        return vec![object.error_at("/kind", format!("unknown kind `{}`", object.kind))];
    };
    let mut found = Vec::new();
    // "matches none of the allowed forms" is kept only where nothing more specific was said.
    let mut alternatives: Vec<Diagnostic> = Vec::new();
    for error in validator.iter_errors(&object.document) {
        let pointer = error.instance_path().as_str().to_string();
        if object.unresolved.iter().any(|unresolved| {
            pointer == *unresolved || pointer.starts_with(&format!("{unresolved}/"))
        }) {
            continue;
        }
        let nodes = catalog.nodes_along(&object.kind, error.evaluation_path().as_str());
        let schema_hint = nodes
            .iter()
            .rev()
            .find_map(|node| node.get("x-fleetform-hint").and_then(Value::as_str))
            .map(str::to_string);
        // The schema object that holds the failing keyword (e.g. the one with `properties`).
        let holder = nodes
            .len()
            .checked_sub(2)
            .and_then(|index| nodes.get(index))
            .copied();
        // A value where a secret reference belongs may be a pasted password:
        // it is never echoed back into terminals and CI logs.
        let is_secret = nodes
            .iter()
            .any(|node| node.get("x-fleetform-secret") == Some(&Value::Bool(true)));
        let hidden = Value::String("(hidden)".to_string());
        let instance: &Value = if is_secret { &hidden } else { error.instance() };
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed: Vec<&str> = holder
                    .and_then(|node| node.get("properties"))
                    .and_then(Value::as_object)
                    .map(|properties| properties.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for key in unexpected {
                    let key_pointer = format!("{pointer}/{}", escape_pointer_token(key));
                    let hint = did_you_mean(key, allowed.iter().copied()).or_else(|| {
                        (!allowed.is_empty())
                            .then(|| format!("allowed keys here: {}", allowed.join(", ")))
                    });
                    found.push(
                        object
                            .error_at(&key_pointer, format!("unknown key `{key}`"))
                            .with_optional_hint(hint),
                    );
                }
            }
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                let description = holder
                    .and_then(|node| {
                        node.pointer(&format!("/properties/{}", escape_pointer_token(property)))
                    })
                    .and_then(|node| node.get("description"))
                    .and_then(Value::as_str)
                    .map(first_sentence);
                found.push(
                    object
                        .error_at(&pointer, format!("missing required key `{property}`"))
                        .with_optional_hint(
                            description.map(|text| format!("`{property}`: {text}")),
                        ),
                );
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(single) => article(&single.to_string()),
                    TypeKind::Multiple(set) => {
                        let names: Vec<String> =
                            set.iter().map(|single| single.to_string()).collect();
                        format!("one of {}", names.join(", "))
                    }
                };
                found.push(
                    object
                        .error_at(
                            &pointer,
                            format!(
                                "expected {expected}, found {}",
                                if is_secret {
                                    "a value that is not shown (it may be a secret)".to_string()
                                } else {
                                    describe_value(instance)
                                }
                            ),
                        )
                        .with_optional_hint(schema_hint),
                );
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .map(|items| items.iter().map(short_value).collect())
                    .unwrap_or_default();
                let given = short_value(instance);
                let hint = did_you_mean(
                    given.trim_matches('"'),
                    options.iter().map(|option| option.trim_matches('"')),
                )
                .or(schema_hint);
                found.push(
                    object
                        .error_at(
                            &pointer,
                            format!("{given} is not one of: {}", options.join(", ")),
                        )
                        .with_optional_hint(hint),
                );
            }
            ValidationErrorKind::Constant { expected_value } => {
                found.push(
                    object
                        .error_at(
                            &pointer,
                            format!(
                                "must be {}, found {}",
                                short_value(expected_value),
                                short_value(instance)
                            ),
                        )
                        .with_optional_hint(schema_hint),
                );
            }
            ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
                let description = nodes
                    .iter()
                    .rev()
                    .find_map(|node| node.get("description").and_then(Value::as_str))
                    .map(first_sentence);
                let shown = if is_secret {
                    "the value".to_string()
                } else {
                    short_value(instance)
                };
                let pasted = is_secret && !error.instance().is_object();
                let message = match description {
                    // A scalar where a secret reference belongs: most
                    // likely the secret itself, pasted in.
                    _ if pasted => "expected a secret reference ({fromEnv: ...} or {fromFile: ...}), found a value that is not shown (it may be a secret)".to_string(),
                    Some(description) => {
                        format!("{shown} does not match any allowed form ({description})")
                    }
                    None => format!("{shown} does not match any allowed form"),
                };
                alternatives.push(
                    object
                        .error_at(&pointer, message)
                        .with_optional_hint(schema_hint),
                );
            }
            _ => {
                found.push(
                    object
                        .error_at(
                            &pointer,
                            if is_secret {
                                "invalid secret reference (the value is not shown: it may be a secret)".to_string()
                            } else {
                                error.to_string()
                            },
                        )
                        .with_optional_hint(schema_hint),
                );
            }
        }
    }
    for alternative in alternatives {
        if !found
            .iter()
            .any(|diagnostic| diagnostic.pointer == alternative.pointer)
        {
            found.push(alternative);
        }
    }
    found
}

fn article(type_name: &str) -> String {
    match type_name {
        "array" => "a list".to_string(),
        "object" => "a mapping".to_string(),
        "integer" => "an integer".to_string(),
        "null" => "nothing".to_string(),
        other => format!("a {other}"),
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_string(),
        Value::Bool(_) => format!("a boolean ({value})"),
        Value::Number(_) => format!("a number ({value})"),
        Value::String(_) => format!("a string ({})", short_value(value)),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

/// A value as compact JSON, shortened to keep messages on one line.
fn short_value(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn first_sentence(text: &str) -> String {
    match text.find(". ") {
        Some(end) => text[..=end].to_string(),
        None => text.to_string(),
    }
}

fn duplicate_names(objects: &[ManifestObject], catalog: &SchemaCatalog) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut seen: HashMap<(&str, &str), &ManifestObject> = HashMap::new();
    let mut instances: HashMap<&str, &ManifestObject> = HashMap::new();
    for object in objects {
        if object.name.is_empty() {
            continue;
        }
        if let Some(first) = seen.get(&(object.kind.as_str(), object.name.as_str())) {
            found.push(
                object
                    .error_at(
                        "/metadata/name",
                        format!("duplicate {} named `{}`", object.kind, object.name),
                    )
                    .with_hint(format!(
                        "first defined at {}:{}; names are unique per kind",
                        first.file,
                        first.locate("/metadata/name").line
                    )),
            );
            continue;
        }
        seen.insert((object.kind.as_str(), object.name.as_str()), object);
        // Servers and instances are the targets: plans, locks and ledgers
        // name them without their kind (`Kind/name@target`).
        if catalog.engine_of_instance_kind(&object.kind).is_some() || object.kind == SERVER_KIND {
            if let Some(first) = instances.get(object.name.as_str()) {
                if first.kind != object.kind {
                    found.push(
                        object
                            .error_at(
                                "/metadata/name",
                                format!("target name `{}` is already used by {}", object.name, first.id()),
                            )
                            .with_hint(format!(
                                "{} is defined at {}:{}; selectors, plans and ledgers name servers and instances without their kind, so their names must differ",
                                first.id(),
                                first.file,
                                first.locate("/metadata/name").line
                            )),
                    );
                }
            } else {
                instances.insert(object.name.as_str(), object);
            }
        }
    }
    found
}

fn reference_diagnostics(
    object: &ManifestObject,
    index: &ObjectIndex,
    catalog: &SchemaCatalog,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for path in catalog.annotations(&object.kind) {
        let Annotation::Reference(kinds) = &path.annotation else {
            continue;
        };
        for (pointer, value) in path.find(&object.document) {
            let Some(name) = value.as_str() else {
                continue;
            };
            if kinds.iter().any(|kind| kind == "*") {
                let Some((kind, target)) = name.split_once('/') else {
                    continue;
                };
                if catalog.kind(kind).is_none() {
                    let known: Vec<&str> = catalog
                        .manifest_kinds()
                        .map(|info| info.kind.as_str())
                        .collect();
                    found.push(
                        object
                            .error_at(&pointer, format!("`{name}` names unknown kind `{kind}`"))
                            .with_optional_hint(did_you_mean(kind, known.iter().copied())),
                    );
                } else if index.find(kind, target).is_none() {
                    found.push(
                        object
                            .error_at(&pointer, format!("dependency `{name}` does not exist"))
                            .with_optional_hint(
                                did_you_mean(target, index.names(kind))
                                    .map(|hint| hint.replacen('`', &format!("`{kind}/"), 1)),
                            ),
                    );
                } else if kind == object.kind && target == object.name {
                    found.push(object.error_at(&pointer, format!("`{name}` depends on itself")));
                }
                continue;
            }
            if kinds.iter().any(|kind| index.find(kind, name).is_some()) {
                continue;
            }
            let wanted = kinds.join(" or ");
            let candidates: Vec<&str> = kinds.iter().flat_map(|kind| index.names(kind)).collect();
            let hint = did_you_mean(name, candidates.iter().copied()).or_else(|| {
                if candidates.is_empty() {
                    Some(format!("no {wanted} is defined in this environment"))
                } else {
                    Some(format!("defined: {}", candidates.join(", ")))
                }
            });
            found.push(
                object
                    .error_at(
                        &pointer,
                        format!("`{name}` does not name a {wanted} in this environment"),
                    )
                    .with_optional_hint(hint),
            );
        }
    }
    found
}

fn cron_diagnostics(object: &ManifestObject, catalog: &SchemaCatalog) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for path in catalog.annotations(&object.kind) {
        if path.annotation != Annotation::Cron {
            continue;
        }
        for (pointer, value) in path.find(&object.document) {
            let Some(expression) = value.as_str() else {
                continue;
            };
            if let Err(reason) = crate::cron::check(expression) {
                found.push(
                    object
                        .error_at(&pointer, format!("invalid cron expression `{expression}`: {reason}"))
                        .with_hint("five fields: minute hour day-of-month month day-of-week, e.g. `30 2 * * *` for 02:30 daily"),
                );
            }
        }
    }
    found
}

/// Identifiers the server would refuse or change (a NUL; more bytes than
/// PostgreSQL keeps, which it truncates silently, so that two names become
/// one), and, as warnings, characters a reviewer cannot see or tell apart.
fn identifier_diagnostics(object: &ManifestObject, catalog: &SchemaCatalog) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for path in catalog.annotations(&object.kind) {
        let Annotation::Identifier { max_bytes } = path.annotation else {
            continue;
        };
        for (pointer, value) in path.find(&object.document) {
            let Some(name) = value.as_str() else {
                continue;
            };
            if name.contains('\0') {
                found.push(
                    object
                        .error_at(&pointer, "the name holds a NUL character (U+0000)")
                        .with_hint("no server accepts NUL in a name; remove it"),
                );
                continue;
            }
            if let Some(limit) = max_bytes.filter(|limit| name.len() > *limit) {
                found.push(
                    object
                        .error_at(
                            &pointer,
                            format!(
                                "`{name}` is {} bytes of UTF-8; the server keeps only the first {limit}",
                                name.len()
                            ),
                        )
                        .with_hint(format!(
                            "PostgreSQL counts bytes, not characters (NAMEDATALEN - 1 = {limit}): shorten it, or two names could become one"
                        )),
                );
            }
            if let Some(warning) = confusing(name) {
                found.push(object.warning_at(&pointer, warning));
            }
        }
    }
    found
}

/// Why `name` may not be what a reviewer reads: an invisible or
/// direction-changing character, or Latin letters mixed with Cyrillic or
/// Greek ones that look the same.
fn confusing(name: &str) -> Option<String> {
    let invisible = |c: char| {
        matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
            | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0)
            || c.is_control()
    };
    if let Some(c) = name.chars().find(|c| invisible(*c)) {
        return Some(format!(
            "the name holds an invisible character (U+{:04X}): it reads like a name it is not",
            c as u32
        ));
    }
    let latin = name.chars().any(|c| c.is_ascii_alphabetic());
    let lookalike = name.chars().find(|c| matches!(*c as u32, 0x0370..=0x04FF));
    match lookalike {
        Some(c) if latin => Some(format!(
            "the name mixes Latin letters with `{c}` (U+{:04X}, Greek or Cyrillic), which may look like a Latin letter",
            c as u32
        )),
        _ => None,
    }
}
