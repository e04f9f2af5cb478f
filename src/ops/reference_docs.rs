//! The manifest reference (docs/reference/manifests.md), generated from the schemas.
//!
//! One section per kind, grouped by category: what the kind is, what it
//! applies to, and a table of every property (dotted path, type, default,
//! allowed values, description). A test regenerates it and fails when the
//! committed file differs, so the reference cannot fall behind the schemas.

use std::fmt::Write as _;

use serde_json::Value;

use crate::schemas::{CATEGORY_ORDER, KindInfo, SchemaCatalog, Targets};

pub fn render(catalog: &SchemaCatalog) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# Manifest reference\n");
    let _ = writeln!(
        text,
        "Generated from `schemas/` by `fleetform schema --reference`; do not edit by hand.\n\
         Every document has `apiVersion: fleetform/v1`, `kind`, `metadata` and `spec`. `metadata` is the same for every kind:\n\
         `name` (required; lower-case letters, digits, `-`, `_`, `.`), `labels`, `annotations` and `dependsOn` (a list of `Kind/name`).\n\
         Editors validate and complete manifests with a first line `# yaml-language-server: $schema=<path to>/schemas/fleetform.schema.json`.\n"
    );
    let mut categories: Vec<&str> = CATEGORY_ORDER.to_vec();
    for info in catalog.kinds() {
        if !categories.contains(&info.category.as_str()) {
            categories.push(&info.category);
        }
    }
    let _ = writeln!(text, "## Kinds\n");
    for category in &categories {
        let kinds: Vec<&KindInfo> = catalog
            .kinds()
            .iter()
            .filter(|info| info.category == *category)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let names: Vec<String> = kinds
            .iter()
            .map(|info| format!("[{}](#{})", info.kind, info.kind.to_lowercase()))
            .collect();
        let _ = writeln!(text, "- {category}: {}", names.join(", "));
    }
    let _ = writeln!(text);
    for category in &categories {
        let kinds: Vec<&KindInfo> = catalog
            .kinds()
            .iter()
            .filter(|info| info.category == *category)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let _ = writeln!(text, "## {category}\n");
        for info in kinds {
            render_kind(catalog, info, &mut text);
        }
    }
    text
}

/// `a`, `b` and `c`, each as code, joined by `conjunction` before the last.
fn code_list(items: &[String], conjunction: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn render_kind(catalog: &SchemaCatalog, info: &KindInfo, text: &mut String) {
    let _ = writeln!(text, "### {}\n", info.kind);
    let _ = writeln!(text, "{}\n", info.description);
    let applies = match &info.targets {
        Targets::None => "a standalone object (one resource)".to_string(),
        Targets::Instances => format!(
            "every {} instance selected by `spec.on` (one resource per instance, addressed `{}/NAME@INSTANCE`)",
            catalog.describe_engine(info.engine.as_deref()),
            info.kind
        ),
        Targets::Servers => format!(
            "every server selected by `spec.on` (one resource per server, addressed `{}/NAME@SERVER`)",
            info.kind
        ),
        Targets::Spans(spans) => format!(
            "every instance or server its spec names at {} (one resource per target, addressed `{}/NAME@TARGET`); the target named at {} converges first, the others after it",
            code_list(&spans.target_pointers, "and"),
            info.kind,
            code_list(&spans.lead_pointers, "or else"),
        ),
    };
    let engine = match info.engine.as_deref() {
        None => String::new(),
        Some(engine) => format!(" Engine: {}.", catalog.describe_engine(Some(engine))),
    };
    let _ = writeln!(
        text,
        "Applies to: {applies}.{engine} Schema: `schemas/{}`.\n",
        info.file
    );
    let Some(schema) = catalog.file(&info.file) else {
        return;
    };
    let mut rows = Vec::new();
    if let Some(spec) = schema.pointer("/properties/spec") {
        collect_rows(catalog, &info.file, spec, "spec", true, 0, &mut rows);
    }
    let _ = writeln!(
        text,
        "| Property | Type | Required | Default | Description |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            text,
            "| `{}` | {} | {} | {} | {} |",
            row.path,
            escape_cell(&row.type_name),
            if row.required { "yes" } else { "" },
            row.default
                .map(|default| format!("`{}`", escape_cell(&default)))
                .unwrap_or_default(),
            escape_cell(&row.description)
        );
    }
    let _ = writeln!(text);
}

struct Row {
    path: String,
    type_name: String,
    required: bool,
    default: Option<String>,
    description: String,
}

/// Follow `$ref`s to the schema that says what a value is, merging the
/// annotations written next to the `$ref` (which win).
fn resolved<'a>(
    catalog: &'a SchemaCatalog,
    file: &str,
    node: &'a Value,
) -> (String, Vec<&'a Value>) {
    let mut layers = vec![node];
    let mut current_file = file.to_string();
    let mut current = node;
    for _ in 0..8 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some((next_file, next)) = catalog.resolve_reference(&current_file, reference) else {
            break;
        };
        current_file = next_file;
        current = next;
        layers.push(current);
    }
    (current_file, layers)
}

fn first<'a>(layers: &[&'a Value], key: &str) -> Option<&'a Value> {
    layers.iter().find_map(|layer| layer.get(key))
}

fn collect_rows(
    catalog: &SchemaCatalog,
    file: &str,
    node: &Value,
    path: &str,
    required: bool,
    depth: usize,
    rows: &mut Vec<Row>,
) {
    if depth > 12 {
        return;
    }
    let (file, layers) = resolved(catalog, file, node);
    let innermost = layers.last().copied().unwrap_or(node);
    if depth > 0 {
        rows.push(Row {
            path: path.to_string(),
            type_name: describe_type(catalog, &file, &layers),
            required,
            default: first(&layers, "default").map(Value::to_string),
            description: first(&layers, "description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
    // Properties of the object itself and of every oneOf/anyOf/allOf/then branch.
    let mut holders = vec![innermost];
    for keyword in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(branches)) = innermost.get(keyword) {
            holders.extend(branches.iter());
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for holder in holders {
        let (holder_file, holder_layers) = resolved(catalog, &file, holder);
        let holder = holder_layers.last().copied().unwrap_or(holder);
        let required_keys: Vec<&str> = holder
            .get("required")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(properties)) = holder.get("properties") {
            for (key, child) in properties {
                if !seen.insert(key.clone()) {
                    continue;
                }
                let child_path = format!("{path}.{key}");
                collect_rows(
                    catalog,
                    &holder_file,
                    child,
                    &child_path,
                    required_keys.contains(&key.as_str()),
                    depth + 1,
                    rows,
                );
            }
        }
        if let Some(items) = holder.get("items") {
            let (items_file, items_layers) = resolved(catalog, &holder_file, items);
            let items_node = items_layers.last().copied().unwrap_or(items);
            if items_node.get("properties").is_some() || items_node.get("oneOf").is_some() {
                collect_rows(
                    catalog,
                    &items_file,
                    items_node,
                    &format!("{path}[]"),
                    false,
                    depth + 1,
                    rows,
                );
                // The row for the item itself duplicates the list's row; drop it.
                if let Some(position) = rows.iter().position(|row| row.path == format!("{path}[]"))
                {
                    rows.remove(position);
                }
            }
        }
    }
}

fn describe_type(catalog: &SchemaCatalog, file: &str, layers: &[&Value]) -> String {
    if let Some(Value::Array(options)) = first(layers, "enum") {
        let names: Vec<String> = options
            .iter()
            .map(|option| format!("`{}`", option_text(option)))
            .collect();
        return format!("one of {}", names.join(", "));
    }
    if let Some(constant) = first(layers, "const") {
        return format!("`{}`", option_text(constant));
    }
    if let Some(reference) = first(layers, "x-fleetform-ref") {
        let kinds = match reference {
            Value::String(kind) if kind == "*" => "any object".to_string(),
            Value::String(kind) => kind.clone(),
            Value::Array(kinds) => kinds
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" or "),
            _ => String::new(),
        };
        return format!("name of a {kinds}");
    }
    let type_name = match first(layers, "type") {
        Some(Value::String(name)) => name.clone(),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => {
            let innermost = layers.last().copied();
            if let Some(Value::Array(branches)) =
                innermost.and_then(|node| node.get("oneOf").or_else(|| node.get("anyOf")))
            {
                let kinds: Vec<String> = branches
                    .iter()
                    .map(|branch| {
                        let (branch_file, branch_layers) = resolved(catalog, file, branch);
                        describe_type(catalog, &branch_file, &branch_layers)
                    })
                    .collect();
                kinds.join(" or ")
            } else {
                "any".to_string()
            }
        }
    };
    let mut described = match type_name.as_str() {
        "array" => {
            let item = first(layers, "items")
                .map(|items| {
                    let (items_file, items_layers) = resolved(catalog, file, items);
                    describe_type(catalog, &items_file, &items_layers)
                })
                .unwrap_or_else(|| "any".to_string());
            format!("list of {item}")
        }
        "object" if first(layers, "properties").is_none() && first(layers, "oneOf").is_none() => {
            match first(layers, "additionalProperties") {
                Some(value) if value.is_object() => {
                    let (value_file, value_layers) = resolved(catalog, file, value);
                    format!(
                        "map of {}",
                        describe_type(catalog, &value_file, &value_layers)
                    )
                }
                _ => "object".to_string(),
            }
        }
        other => other.to_string(),
    };
    let mut limits = Vec::new();
    if let Some(minimum) = first(layers, "minimum") {
        limits.push(format!("≥ {minimum}"));
    }
    if let Some(maximum) = first(layers, "maximum") {
        limits.push(format!("≤ {maximum}"));
    }
    if let Some(maximum) = first(layers, "maxLength") {
        limits.push(format!("at most {maximum} characters"));
    }
    if first(layers, "format").and_then(Value::as_str) == Some("cron") {
        limits.push("cron".to_string());
    }
    if !limits.is_empty() {
        described.push_str(&format!(" ({})", limits.join(", ")));
    }
    described
}

fn option_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
