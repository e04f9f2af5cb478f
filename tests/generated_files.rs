//! Files generated from the schemas must match what is committed:
//! docs/reference/manifests.md and schemas/fleetform.schema.json.
//! Run with FLEETFORM_BLESS=1 to rewrite them after changing a schema.

mod common;

use fleetform::ops::reference_docs;
use fleetform::schemas::{self, UNION_SCHEMA_FILE};

fn check_generated(relative: &str, expected: &str) {
    let path = common::repository_root().join(relative);
    if std::env::var_os("FLEETFORM_BLESS").is_some() {
        std::fs::write(&path, expected).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{relative} is out of date with schemas/: run `FLEETFORM_BLESS=1 cargo test --test generated_files` and commit the result"
    );
}

#[test]
fn manifest_reference_is_up_to_date() {
    check_generated(
        "docs/reference/manifests.md",
        &reference_docs::render(&common::catalog()),
    );
}

#[test]
fn union_schema_is_up_to_date() {
    let mut text =
        serde_json::to_string_pretty(&schemas::union_schema(&common::catalog())).unwrap();
    text.push('\n');
    check_generated(&format!("schemas/{UNION_SCHEMA_FILE}"), &text);
}

#[test]
fn every_property_of_every_schema_has_a_description() {
    let catalog = common::catalog();
    let mut missing = Vec::new();
    for name in catalog.file_names() {
        let schema = catalog.file(name).unwrap();
        find_undescribed(schema, &format!("{name}#"), &mut missing);
    }
    assert!(
        missing.is_empty(),
        "properties without a description:\n{}",
        missing.join("\n")
    );
}

fn find_undescribed(node: &serde_json::Value, at: &str, missing: &mut Vec<String>) {
    let serde_json::Value::Object(map) = node else {
        return;
    };
    if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
        for (key, property) in properties {
            let described = property.get("description").is_some()
                || property.get("$ref").is_some()
                || property.get("const").is_some() && key == "kind";
            if !described {
                missing.push(format!("{at}/properties/{key}"));
            }
        }
    }
    for (key, child) in map {
        // Conditional constraints restate properties declared (and described) elsewhere.
        if matches!(
            key.as_str(),
            "if" | "then" | "else" | "not" | "contains" | "allOf" | "dependentSchemas"
        ) {
            continue;
        }
        match child {
            serde_json::Value::Object(_) => {
                find_undescribed(child, &format!("{at}/{key}"), missing)
            }
            serde_json::Value::Array(items) => {
                for (position, item) in items.iter().enumerate() {
                    find_undescribed(item, &format!("{at}/{key}/{position}"), missing);
                }
            }
            _ => {}
        }
    }
}
