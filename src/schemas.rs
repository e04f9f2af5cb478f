//! The JSON Schemas under `schemas/`, embedded in the binary, and what the
//! engine learns from them.
//!
//! The schemas are the public contract of the manifest format. Besides
//! validating documents, they carry fleetform's own annotations, read here
//! once: `x-fleetform` (a kind's category, what it targets, which engine),
//! `x-fleetform-ref` (this string names another manifest object),
//! `x-fleetform-implies` (this string names a database object that another
//! resource on the same target may manage), `x-fleetform-hint` (advice shown
//! when a value there is invalid), `x-fleetform-keyword` (a value equal to
//! this keyword ignoring case is the keyword, as SQL reads `public`) and
//! `format: cron`. A kind is therefore
//! defined by its schema file alone. This module must not read manifests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use include_dir::{Dir, include_dir};
use serde_json::Value;

use crate::yaml::unescape_pointer_token;

static SCHEMA_DIRECTORY: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/schemas");

/// Base URI of every schema's `$id`; relative `$ref`s resolve against it.
pub const SCHEMA_BASE_URI: &str = "https://fleetform.dev/schemas/v1/";
/// File name of the generated union schema that editors use for multi-kind files.
pub const UNION_SCHEMA_FILE: &str = "fleetform.schema.json";
pub const COMMON_SCHEMA_FILE: &str = "common.schema.json";
pub const ENVIRONMENT_KIND: &str = "Environment";
/// The category of the inventory (environments, servers, instances,
/// groups): the targets and their selection, not something converged on one.
pub const INVENTORY_CATEGORY: &str = "Inventory";
/// The kind of the hosts instances run on (and that host kinds target).
pub const SERVER_KIND: &str = "Server";

/// What the objects of a kind apply to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// The object stands alone: one resource, no target.
    None,
    /// `spec.on` selects instances; one resource per selected instance.
    Instances,
    /// `spec.on` selects servers; one resource per selected server.
    Servers,
    /// The object spans the instances or servers its spec names (an
    /// availability group's replicas, a cluster's nodes): one resource per
    /// target named, the others after the lead.
    Spans(Spans),
}

/// Where a spanning kind's spec names its targets and its lead
/// (`x-fleetform.targets: {spans: [...], lead: [...]}`), as JSON pointers in
/// which `*` stands for every item of an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spans {
    /// The pointers as the schema writes them, for documentation.
    pub target_pointers: Vec<String>,
    pub lead_pointers: Vec<String>,
    targets: Vec<Vec<PathToken>>,
    lead: Vec<Vec<PathToken>>,
}

impl Spans {
    fn parse(file: &str, block: &Value) -> Result<Self> {
        let written = |key: &str| -> Vec<String> {
            block
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        let pointers = |key: &str| -> Result<Vec<Vec<PathToken>>> {
            let list = block
                .get(key)
                .and_then(Value::as_array)
                .filter(|list| !list.is_empty())
                .ok_or_else(|| {
                    anyhow!("schema {file}: x-fleetform.targets.{key} is not a list of pointers")
                })?;
            list.iter()
                .map(|pointer| {
                    let pointer = pointer.as_str().unwrap_or_default();
                    let Some(rest) = pointer.strip_prefix('/') else {
                        bail!("schema {file}: x-fleetform.targets.{key}: `{pointer}` is not a JSON pointer");
                    };
                    Ok(rest
                        .split('/')
                        .map(|token| match token {
                            "*" => PathToken::AnyItem,
                            key => PathToken::Key(unescape_pointer_token(key)),
                        })
                        .collect())
                })
                .collect()
        };
        Ok(Spans {
            target_pointers: written("spans"),
            lead_pointers: written("lead"),
            targets: pointers("spans")?,
            lead: pointers("lead")?,
        })
    }

    /// The target names `document` gives, in order, each once, with the
    /// pointer where it is named.
    pub fn targets_of(&self, document: &Value) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = Vec::new();
        for (pointer, name) in strings_at(&self.targets, document) {
            if !found.iter().any(|(_, known)| *known == name) {
                found.push((pointer, name));
            }
        }
        found
    }

    /// The lead target of `document`: the first lead pointer that names one.
    pub fn lead_of(&self, document: &Value) -> Option<String> {
        strings_at(&self.lead, document)
            .into_iter()
            .next()
            .map(|(_, name)| name)
    }
}

/// The strings the patterns reach in `document`, pattern by pattern.
fn strings_at(patterns: &[Vec<PathToken>], document: &Value) -> Vec<(String, String)> {
    let mut strings = Vec::new();
    for pattern in patterns {
        let mut found = Vec::new();
        find_along(pattern, document, String::new(), &mut found);
        strings.extend(
            found
                .into_iter()
                .filter_map(|(pointer, value)| Some((pointer, value.as_str()?.to_string()))),
        );
    }
    strings
}

#[derive(Clone, Debug)]
pub struct KindInfo {
    pub kind: String,
    pub file: String,
    pub description: String,
    pub category: String,
    pub targets: Targets,
    /// The engine whose instances it applies to (`x-fleetform.engine`, an
    /// engine of templates/<engine>/engine.yaml); none: any.
    pub engine: Option<String>,
    /// Objects of this kind are the instances of `engine`
    /// (`x-fleetform.instanceKind`).
    pub instance_kind: bool,
    /// False for definitions that other objects use but that converge
    /// nothing by themselves (a Group, a DiskPreset): they expand to no resource.
    pub is_resource: bool,
}

/// A fleetform annotation found at some path of a kind's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Annotation {
    /// The string names an object of one of these kinds; `*` means `Kind/name`.
    Reference(Vec<String>),
    /// The string is the real name of an object that a resource of this kind
    /// on the same target may create: if there is one, it must come first.
    Implies(String),
    /// The same, with the object on any target (a subscription names a
    /// publication on another instance): `x-fleetform-implies-anywhere`.
    ImpliesAnywhere(String),
    /// The string is a five-field cron expression.
    Cron,
    /// The string is an identifier on the server (`x-fleetform-identifier`):
    /// no NUL, at most `max_bytes` bytes of UTF-8 when the engine counts
    /// bytes (PostgreSQL: 63).
    Identifier { max_bytes: Option<usize> },
}

/// One step of a path pattern through documents of a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathToken {
    Key(String),
    AnyItem,
    AnyKey,
}

#[derive(Clone, Debug)]
pub struct AnnotatedPath {
    pub pattern: Vec<PathToken>,
    pub annotation: Annotation,
}

impl AnnotatedPath {
    /// Whether the path lies inside `spec.on`, the target selector.
    pub fn is_in_selector(&self) -> bool {
        self.pattern
            .starts_with(&[PathToken::Key("spec".into()), PathToken::Key("on".into())])
    }

    /// Every value in `document` this path reaches, with its JSON pointer.
    pub fn find<'a>(&self, document: &'a Value) -> Vec<(String, &'a Value)> {
        let mut found = Vec::new();
        find_along(&self.pattern, document, String::new(), &mut found);
        found
    }
}

fn find_along<'a>(
    pattern: &[PathToken],
    value: &'a Value,
    pointer: String,
    found: &mut Vec<(String, &'a Value)>,
) {
    let Some((token, rest)) = pattern.split_first() else {
        found.push((pointer, value));
        return;
    };
    match (token, value) {
        (PathToken::Key(key), Value::Object(map)) => {
            if let Some(child) = map.get(key) {
                let pointer = format!("{pointer}/{}", crate::yaml::escape_pointer_token(key));
                find_along(rest, child, pointer, found);
            }
        }
        // A pointer's number token reaches that item of an array.
        (PathToken::Key(key), Value::Array(items)) => {
            if let Some(child) = key.parse::<usize>().ok().and_then(|index| items.get(index)) {
                find_along(rest, child, format!("{pointer}/{key}"), found);
            }
        }
        (PathToken::AnyItem, Value::Array(items)) => {
            for (index, child) in items.iter().enumerate() {
                find_along(rest, child, format!("{pointer}/{index}"), found);
            }
        }
        (PathToken::AnyKey, Value::Object(map)) => {
            for (key, child) in map {
                let pointer = format!("{pointer}/{}", crate::yaml::escape_pointer_token(key));
                find_along(rest, child, pointer, found);
            }
        }
        _ => {}
    }
}

/// Every schema, every kind, compiled validators and the annotation index.
pub struct SchemaCatalog {
    files: BTreeMap<String, Arc<Value>>,
    /// Engine name to how messages name it (from the engine profiles).
    engines: BTreeMap<String, String>,
    kinds: Vec<KindInfo>,
    validators: HashMap<String, jsonschema::Validator>,
    annotations: HashMap<String, Vec<AnnotatedPath>>,
}

struct EmbeddedRetriever {
    files: BTreeMap<String, Arc<Value>>,
}

impl jsonschema::Retrieve for EmbeddedRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = uri.as_str();
        let name = text.strip_prefix(SCHEMA_BASE_URI).unwrap_or(text);
        match self.files.get(name) {
            Some(value) => Ok(Value::clone(value)),
            None => Err(format!("schema {text} is not one of fleetform's schemas").into()),
        }
    }
}

impl SchemaCatalog {
    /// Load the schemas embedded in the binary.
    pub fn embedded() -> Result<Self> {
        Self::embedded_with(Vec::new())
    }

    /// The embedded schemas and `extra` ones (`(file name, JSON text)`), as
    /// a test fixture brings the schema of its own kind.
    pub fn embedded_with(extra: Vec<(String, String)>) -> Result<Self> {
        let mut files = BTreeMap::new();
        for (name, text) in extra {
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("schema {name} is not valid JSON"))?;
            files.insert(name, Arc::new(value));
        }
        for file in SCHEMA_DIRECTORY.files() {
            let name = file.path().to_string_lossy().into_owned();
            if !name.ends_with(".schema.json") {
                continue;
            }
            let text = file
                .contents_utf8()
                .with_context(|| format!("schema {name} is not UTF-8"))?;
            let value: Value = serde_json::from_str(text)
                .with_context(|| format!("schema {name} is not valid JSON"))?;
            files.insert(name, Arc::new(value));
        }
        let engines = crate::engines::EngineCatalog::embedded()?
            .iter()
            .map(|profile| (profile.name.clone(), profile.description.clone()))
            .collect();
        Self::from_files(files, engines)
    }

    fn from_files(
        files: BTreeMap<String, Arc<Value>>,
        engines: BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut kinds = Vec::new();
        for (file, schema) in &files {
            let Some(block) = schema.get("x-fleetform") else {
                continue;
            };
            let field = |name: &str| -> Result<String> {
                block
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("schema {file}: x-fleetform.{name} is missing"))
            };
            let targets = match block.get("targets") {
                Some(spans @ Value::Object(_)) => Targets::Spans(Spans::parse(file, spans)?),
                _ => match field("targets")?.as_str() {
                    "none" => Targets::None,
                    "instances" => Targets::Instances,
                    "servers" => Targets::Servers,
                    other => bail!(
                        "schema {file}: unknown x-fleetform.targets `{other}` (none, instances, servers, or {{spans, lead}})"
                    ),
                },
            };
            let engine = match field("engine")?.as_str() {
                "any" => None,
                name if engines.contains_key(name) => Some(name.to_string()),
                other => bail!(
                    "schema {file}: x-fleetform.engine `{other}` is not `any` or an engine ({})",
                    engines.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            let instance_kind = block
                .get("instanceKind")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if instance_kind && engine.is_none() {
                bail!("schema {file}: an instance kind names its engine");
            }
            kinds.push(KindInfo {
                kind: field("kind")?,
                file: file.clone(),
                description: schema
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                category: field("category")?,
                targets,
                engine,
                instance_kind,
                is_resource: block
                    .get("resource")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            });
        }
        kinds.sort_by(|left, right| {
            (category_rank(&left.category), &left.kind)
                .cmp(&(category_rank(&right.category), &right.kind))
        });

        let mut validators = HashMap::new();
        let mut annotations = HashMap::new();
        for info in &kinds {
            let schema = &files[&info.file];
            let validator = jsonschema::options()
                .with_retriever(EmbeddedRetriever {
                    files: files.clone(),
                })
                .should_validate_formats(true)
                .with_format("cron", |_| true)
                .build(schema)
                .map_err(|error| anyhow!("schema {} does not compile: {error}", info.file))?;
            validators.insert(info.kind.clone(), validator);
        }
        let mut catalog = SchemaCatalog {
            files,
            engines,
            kinds,
            validators,
            annotations: HashMap::new(),
        };
        for info in &catalog.kinds {
            let mut found = Vec::new();
            catalog.collect_annotations(
                &info.file,
                &catalog.files[&info.file],
                Vec::new(),
                0,
                &mut found,
            );
            annotations.insert(info.kind.clone(), found);
        }
        catalog.annotations = annotations;
        Ok(catalog)
    }

    /// Kinds in documentation order (by category, then name). Includes `Environment`.
    pub fn kinds(&self) -> &[KindInfo] {
        &self.kinds
    }

    /// Kinds that may appear in manifest files (everything but `Environment`).
    pub fn manifest_kinds(&self) -> impl Iterator<Item = &KindInfo> {
        self.kinds
            .iter()
            .filter(|info| info.kind != ENVIRONMENT_KIND)
    }

    /// The kinds whose objects are instances of `engine` (none: of any engine).
    pub fn instance_kinds(&self, engine: Option<&str>) -> Vec<&str> {
        self.kinds
            .iter()
            .filter(|info| info.instance_kind)
            .filter(|info| engine.is_none() || info.engine.as_deref() == engine)
            .map(|info| info.kind.as_str())
            .collect()
    }

    /// The engine whose instances are objects of `kind`, if it is an instance kind.
    pub fn engine_of_instance_kind(&self, kind: &str) -> Option<&str> {
        self.kind(kind)
            .filter(|info| info.instance_kind)
            .and_then(|info| info.engine.as_deref())
    }

    /// How messages name `engine`'s instances (none: any engine's):
    /// `PostgreSQL`, `PostgreSQL or SQL Server`.
    pub fn describe_engine(&self, engine: Option<&str>) -> String {
        let name = |engine: &str| {
            self.engines
                .get(engine)
                .cloned()
                .unwrap_or_else(|| engine.to_string())
        };
        match engine {
            Some(engine) => name(engine),
            None => self
                .kinds
                .iter()
                .filter(|info| info.instance_kind)
                .filter_map(|info| info.engine.as_deref())
                .map(name)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    pub fn kind(&self, kind: &str) -> Option<&KindInfo> {
        self.kinds.iter().find(|info| info.kind == kind)
    }

    pub fn validator(&self, kind: &str) -> Option<&jsonschema::Validator> {
        self.validators.get(kind)
    }

    pub fn annotations(&self, kind: &str) -> &[AnnotatedPath] {
        self.annotations
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn file(&self, name: &str) -> Option<&Value> {
        self.files.get(name).map(|value| value.as_ref())
    }

    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// An object's spec with the schema's defaults for what it leaves out.
    pub fn spec_with_defaults(&self, kind: &str, given: &Value) -> serde_json::Map<String, Value> {
        let mut spec = self.spec_defaults(kind);
        if let Value::Object(given) = given {
            for (key, value) in given {
                spec.insert(key.clone(), value.clone());
            }
        }
        spec
    }

    /// Write the top-level fields of `spec` that equal their schema's
    /// `x-fleetform-keyword` ignoring case as the keyword itself (`public`
    /// becomes `PUBLIC`): SQL reads a keyword in any case, and everything
    /// after loading compares the one spelling.
    pub fn normalise_keywords(&self, kind: &str, spec: &mut Value) {
        let Some(info) = self.kind(kind) else {
            return;
        };
        let Some(properties) = self
            .file(&info.file)
            .and_then(|schema| schema.pointer("/properties/spec/properties"))
            .and_then(Value::as_object)
        else {
            return;
        };
        let Some(fields) = spec.as_object_mut() else {
            return;
        };
        for (field, node) in properties {
            let Some(keyword) = node.get("x-fleetform-keyword").and_then(Value::as_str) else {
                continue;
            };
            if let Some(Value::String(value)) = fields.get_mut(field)
                && value.eq_ignore_ascii_case(keyword)
            {
                *value = keyword.to_string();
            }
        }
    }

    /// The defaults the schema of `kind` states for the top-level fields of
    /// `spec` (following a `$ref` to a definition that states one).
    pub fn spec_defaults(&self, kind: &str) -> serde_json::Map<String, Value> {
        let mut defaults = serde_json::Map::new();
        let Some(info) = self.kind(kind) else {
            return defaults;
        };
        let Some(properties) = self
            .file(&info.file)
            .and_then(|schema| schema.pointer("/properties/spec/properties"))
            .and_then(Value::as_object)
        else {
            return defaults;
        };
        for (field, node) in properties {
            let node = match node.get("$ref").and_then(Value::as_str) {
                Some(reference) if node.get("default").is_none() => self
                    .resolve_reference(&info.file, reference)
                    .map(|(_, target)| target)
                    .unwrap_or(node),
                _ => node,
            };
            if let Some(default) = node.get("default") {
                defaults.insert(field.clone(), default.clone());
            }
        }
        defaults
    }

    /// Resolve a `$ref` written in `current_file`.
    pub fn resolve_reference<'a>(
        &'a self,
        current_file: &str,
        reference: &str,
    ) -> Option<(String, &'a Value)> {
        let (file_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let file = if file_part.is_empty() {
            current_file.to_string()
        } else {
            let name = file_part.strip_prefix(SCHEMA_BASE_URI).unwrap_or(file_part);
            name.trim_start_matches("./").to_string()
        };
        let document = self.files.get(&file)?;
        let node = if fragment.is_empty() {
            Some(document.as_ref())
        } else {
            document.pointer(fragment)
        }?;
        Some((file, node))
    }

    /// Follow a validator's evaluation path (which includes `$ref` steps)
    /// from the root of `kind`'s schema, returning every schema node visited.
    pub fn nodes_along(&self, kind: &str, evaluation_path: &str) -> Vec<&Value> {
        let Some(info) = self.kind(kind) else {
            return Vec::new();
        };
        let mut file = info.file.clone();
        let mut node: &Value = &self.files[&info.file];
        let mut visited = vec![node];
        for token in evaluation_path.split('/').skip(1) {
            let token = unescape_pointer_token(token);
            let next = if token == "$ref" {
                match node
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|reference| self.resolve_reference(&file, reference))
                {
                    Some((next_file, next_node)) => {
                        file = next_file;
                        Some(next_node)
                    }
                    None => None,
                }
            } else {
                match node {
                    Value::Object(map) => map.get(&token),
                    Value::Array(items) => token
                        .parse::<usize>()
                        .ok()
                        .and_then(|index| items.get(index)),
                    _ => None,
                }
            };
            match next {
                Some(next) => {
                    node = next;
                    visited.push(node);
                }
                None => break,
            }
        }
        visited
    }

    fn collect_annotations(
        &self,
        file: &str,
        node: &Value,
        pattern: Vec<PathToken>,
        depth: usize,
        found: &mut Vec<AnnotatedPath>,
    ) {
        if depth > 40 {
            return;
        }
        let Value::Object(map) = node else {
            return;
        };
        let mut push = |annotation: Annotation| {
            let entry = AnnotatedPath {
                pattern: pattern.clone(),
                annotation,
            };
            if !found.iter().any(|existing| {
                existing.pattern == entry.pattern && existing.annotation == entry.annotation
            }) {
                found.push(entry);
            }
        };
        match map.get("x-fleetform-ref") {
            Some(Value::String(kind)) => push(Annotation::Reference(vec![kind.clone()])),
            Some(Value::Array(kinds)) => push(Annotation::Reference(
                kinds
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            )),
            _ => {}
        }
        if let Some(Value::String(kind)) = map.get("x-fleetform-implies") {
            push(Annotation::Implies(kind.clone()));
        }
        if let Some(Value::String(kind)) = map.get("x-fleetform-implies-anywhere") {
            push(Annotation::ImpliesAnywhere(kind.clone()));
        }
        if map.get("format").and_then(Value::as_str) == Some("cron") {
            push(Annotation::Cron);
        }
        if let Some(identifier) = map.get("x-fleetform-identifier") {
            push(Annotation::Identifier {
                max_bytes: identifier
                    .get("maxBytes")
                    .and_then(Value::as_u64)
                    .map(|bytes| bytes as usize),
            });
        }
        if let Some(reference) = map.get("$ref").and_then(Value::as_str)
            && let Some((next_file, next_node)) = self.resolve_reference(file, reference)
        {
            self.collect_annotations(&next_file, next_node, pattern.clone(), depth + 1, found);
        }
        if let Some(Value::Object(properties)) = map.get("properties") {
            for (key, child) in properties {
                let mut next = pattern.clone();
                next.push(PathToken::Key(key.clone()));
                self.collect_annotations(file, child, next, depth + 1, found);
            }
        }
        if let Some(items) = map.get("items") {
            let mut next = pattern.clone();
            next.push(PathToken::AnyItem);
            self.collect_annotations(file, items, next, depth + 1, found);
        }
        if let Some(additional) = map.get("additionalProperties")
            && additional.is_object()
        {
            let mut next = pattern.clone();
            next.push(PathToken::AnyKey);
            self.collect_annotations(file, additional, next, depth + 1, found);
        }
        for keyword in ["oneOf", "anyOf", "allOf"] {
            if let Some(Value::Array(branches)) = map.get(keyword) {
                for branch in branches {
                    self.collect_annotations(file, branch, pattern.clone(), depth + 1, found);
                }
            }
        }
        for keyword in ["then", "else"] {
            if let Some(branch) = map.get(keyword) {
                self.collect_annotations(file, branch, pattern.clone(), depth + 1, found);
            }
        }
    }
}

/// Categories in the order the reference documentation presents them.
pub const CATEGORY_ORDER: &[&str] = &[
    "Inventory",
    "Windows host",
    "SQL Server",
    "Clustering",
    "PostgreSQL",
    "Policies",
];

fn category_rank(category: &str) -> usize {
    CATEGORY_ORDER
        .iter()
        .position(|known| *known == category)
        .unwrap_or(CATEGORY_ORDER.len())
}

/// The union schema for files that mix kinds: each document is checked
/// against the schema its `kind` names. Generated from the kind schemas.
pub fn union_schema(catalog: &SchemaCatalog) -> Value {
    let kinds: Vec<Value> = catalog
        .manifest_kinds()
        .map(|info| Value::String(info.kind.clone()))
        .collect();
    let branches: Vec<Value> = catalog
        .manifest_kinds()
        .map(|info| {
            serde_json::json!({
                "if": {"properties": {"kind": {"const": info.kind}}, "required": ["kind"]},
                "then": {"$ref": info.file}
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{SCHEMA_BASE_URI}{UNION_SCHEMA_FILE}"),
        "title": "fleetform manifest",
        "description": "Any fleetform manifest document; the `kind` selects the schema that applies. Generated by `fleetform schema --export schemas`: do not edit.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "kind": {"description": "The kind of object this document describes.", "enum": kinds}
        },
        "allOf": branches
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spanning_kind_names_its_members_once_and_its_lead_by_the_first_pointer_set() {
        let catalog = SchemaCatalog::embedded().unwrap();
        let Targets::Spans(group) = &catalog.kind("AvailabilityGroup").unwrap().targets else {
            panic!("an availability group spans its replicas");
        };
        let document = serde_json::json!({"spec": {"replicas": [
            {"instance": "sql-a"}, {"instance": "sql-b"}, {"instance": "sql-a"}
        ]}});
        assert_eq!(
            group.targets_of(&document),
            vec![
                ("/spec/replicas/0/instance".to_string(), "sql-a".to_string()),
                ("/spec/replicas/1/instance".to_string(), "sql-b".to_string()),
            ]
        );
        // No desired primary: the first replica leads.
        assert_eq!(group.lead_of(&document).as_deref(), Some("sql-a"));
        let mut chosen = document.clone();
        chosen["spec"]["desiredPrimary"] = "sql-b".into();
        assert_eq!(group.lead_of(&chosen).as_deref(), Some("sql-b"));

        let Targets::Spans(formation) = &catalog.kind("PostgresHaCluster").unwrap().targets else {
            panic!("a formation spans its monitor and nodes");
        };
        let document = serde_json::json!({"spec": {
            "monitor": {"instance": "mon"},
            "nodes": [{"instance": "pg-1"}, {"instance": "pg-2"}]
        }});
        let names: Vec<String> = formation
            .targets_of(&document)
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(names, ["mon", "pg-1", "pg-2"]);
        assert_eq!(formation.lead_of(&document).as_deref(), Some("mon"));
    }

    #[test]
    fn a_spans_block_that_is_not_pointers_is_refused_naming_the_schema() {
        let block = serde_json::json!({"spans": ["spec/nodes/*"], "lead": ["/spec/nodes/0"]});
        let error = Spans::parse("x.schema.json", &block)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("x.schema.json")
                && error.contains("`spec/nodes/*` is not a JSON pointer"),
            "{error}"
        );
        let error = Spans::parse("x.schema.json", &serde_json::json!({"spans": ["/a"]}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("targets.lead"), "{error}");
    }

    #[test]
    fn every_kind_schema_compiles_and_declares_itself() {
        let catalog = SchemaCatalog::embedded().unwrap();
        assert!(catalog.kind("PostgresRole").is_some());
        for info in catalog.kinds() {
            let schema = catalog.file(&info.file).unwrap();
            assert_eq!(
                schema["title"],
                Value::String(info.kind.clone()),
                "{}",
                info.file
            );
            assert_eq!(
                schema["properties"]["kind"]["const"],
                Value::String(info.kind.clone()),
                "{}",
                info.file
            );
        }
    }

    #[test]
    fn finds_reference_annotations_through_refs() {
        let catalog = SchemaCatalog::embedded().unwrap();
        let role = catalog.annotations("PostgresRole");
        let selector_instances = role.iter().find(|path| {
            path.pattern
                == vec![
                    PathToken::Key("spec".into()),
                    PathToken::Key("on".into()),
                    PathToken::Key("instances".into()),
                    PathToken::AnyItem,
                ]
        });
        assert!(selector_instances.is_some(), "{role:?}");
        assert!(selector_instances.unwrap().is_in_selector());
    }
}
