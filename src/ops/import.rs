//! `fleetform import`: read what an existing instance holds and write it as
//! manifests, so that the next plan is empty. Each module that can be
//! imported has an `import` template returning `[{name, spec}]`; this file
//! only runs those templates and writes the files.
//!
//! Objects the manifests already manage are left out, passwords are never
//! read (a comment in the file says how to manage them), and nothing is
//! written on the server.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::modules::{Module, Scope};
use crate::ops::engine::Engine;

/// One object to write.
#[derive(Clone, Debug)]
pub struct ImportedObject {
    pub kind: String,
    pub name: String,
    pub spec: Map<String, Value>,
}

/// Read every importable kind (or `kinds`) from `instance`.
pub async fn read_instance(
    engine: &Engine,
    instance: &str,
    kinds: &[String],
) -> Result<Vec<ImportedObject>> {
    let endpoint = engine
        .endpoints
        .get(instance)
        .with_context(|| format!("no instance {instance} in the environment"))?;
    let profile = &endpoint.profile;
    for kind in kinds {
        if !importable(engine, &profile.name).contains(kind) {
            bail!(
                "{kind} cannot be imported from {} instance {instance} (kinds that can: {})",
                profile.description,
                importable(engine, &profile.name).join(", ")
            );
        }
    }
    let session = endpoint.connect(None).await?;
    let facts = engine.server_facts(endpoint, &session).await?;
    let databases = crate::ops::engine::databases_of(&facts);
    let mut objects = Vec::new();
    for module in engine
        .modules
        .iter()
        .filter(|module| module.import.is_some() && module.engine == profile.name)
    {
        if !kinds.is_empty() && !kinds.contains(&module.kind) {
            continue;
        }
        let places: Vec<Option<String>> = match module.scope {
            Scope::Instance => vec![None],
            Scope::Database => databases
                .iter()
                .filter(|name| !profile.system_databases.contains(name))
                .cloned()
                .map(Some)
                .collect(),
        };
        for database in places {
            let rows = match &database {
                None => run_import(engine, &session, module, instance, None, &facts).await?,
                Some(name) => {
                    let database_session = endpoint.connect(Some(name)).await?;
                    run_import(
                        engine,
                        &database_session,
                        module,
                        instance,
                        Some(name),
                        &facts,
                    )
                    .await?
                }
            };
            for row in rows {
                let name = row
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let mut spec = row
                    .get("spec")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if already_managed(engine, module, instance, database.as_deref(), &spec) {
                    continue;
                }
                let mut ordered = Map::new();
                ordered.insert("on".into(), json!({"instances": [instance]}));
                if let Some(database) = &database {
                    ordered.insert("database".into(), json!(database));
                }
                ordered.append(&mut spec);
                let handle = match &database {
                    Some(database) => format!("{database}-{name}"),
                    None => name,
                };
                objects.push(ImportedObject {
                    kind: module.kind.clone(),
                    name: handle,
                    spec: ordered,
                });
            }
        }
    }
    Ok(objects)
}

/// Whether a resource of the manifests already describes this live object:
/// the same real name, or (for objects without one, such as grants) the same
/// value for every field the import found.
fn already_managed(
    engine: &Engine,
    module: &Module,
    instance: &str,
    database: Option<&str>,
    spec: &Map<String, Value>,
) -> bool {
    engine.resources.iter().any(|resource| {
        if resource.kind != module.kind
            || resource.target != instance
            || resource.database.as_deref() != database
        {
            return false;
        }
        match spec.get("name") {
            // By the items, or by the spec for a resource that cannot be
            // planned (a secret that is not set has no items).
            Some(name) => {
                resource
                    .items
                    .iter()
                    .any(|item| Some(item.identity.as_str()) == name.as_str())
                    || module
                        .identity
                        .as_ref()
                        .is_some_and(|field| resource.spec.get(field) == Some(name))
            }
            None => spec
                .iter()
                .all(|(field, value)| resource.spec.get(field) == Some(value)),
        }
    })
}

/// The kinds that can be imported from an instance of `engine_name`.
fn importable(engine: &Engine, engine_name: &str) -> Vec<String> {
    engine
        .modules
        .iter()
        .filter(|module| module.import.is_some() && module.engine == engine_name)
        .map(|module| module.kind.clone())
        .collect()
}

async fn run_import(
    engine: &Engine,
    session: &crate::connector::Session,
    module: &Module,
    instance: &str,
    database: Option<&str>,
    facts: &Map<String, Value>,
) -> Result<Vec<Map<String, Value>>> {
    let Some(template) = &module.import else {
        return Ok(Vec::new());
    };
    let mut context = engine.base_context(instance, facts);
    context.insert("database".into(), json!(database));
    let script = engine
        .templates
        .render(&module.template(template), &Value::Object(context))?;
    crate::ops::engine::query_rows(session, &script)
        .await
        .with_context(|| format!("reading {} for import", module.kind))
}

/// The files to write: one per kind, objects in a stable order, each with a
/// manifest name unique within its kind (and not taken by `taken`).
pub fn render_files(
    instance: &str,
    objects: &[ImportedObject],
    taken: &BTreeSet<(String, String)>,
) -> BTreeMap<String, String> {
    let mut by_kind: BTreeMap<&str, Vec<&ImportedObject>> = BTreeMap::new();
    for object in objects {
        by_kind
            .entry(object.kind.as_str())
            .or_default()
            .push(object);
    }
    let mut files = BTreeMap::new();
    for (kind, mut list) in by_kind {
        list.sort_by(|left, right| left.name.cmp(&right.name));
        let mut used: BTreeSet<String> = taken
            .iter()
            .filter(|(taken_kind, _)| taken_kind == kind)
            .map(|(_, name)| name.clone())
            .collect();
        let mut text = format!(
            "# yaml-language-server: $schema=../../../schemas/fleetform.schema.json\n#\n# Imported from {instance} by `fleetform import`: what the instance held, so that\n# the next plan is empty. Review, rename and move objects as you like.\n"
        );
        if kind == "PostgresRole" {
            text.push_str("# Passwords are never read: add `password: {fromEnv: VARIABLE}` to a role to manage its password.\n");
        }
        for object in list {
            let name = unique_name(&manifest_name(&object.name), &mut used);
            let document = json!({
                "apiVersion": "fleetform/v1",
                "kind": kind,
                "metadata": {"name": name},
                "spec": object.spec,
            });
            text.push_str("---\n");
            text.push_str(&crate::yaml::to_yaml(&document));
        }
        files.insert(format!("{}.yaml", file_stem(kind)), text);
    }
    files
}

/// A manifest name (lower case, digits, `-`, `_`, `.`) from a server name.
fn manifest_name(text: &str) -> String {
    let mut name = String::new();
    for character in text.to_lowercase().chars() {
        if character.is_ascii_alphanumeric() || matches!(character, '_' | '.') {
            name.push(character);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut name: String = name.chars().take(55).collect();
    while name.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        name.pop();
    }
    if name.is_empty() {
        "object".into()
    } else {
        name
    }
}

fn unique_name(base: &str, used: &mut BTreeSet<String>) -> String {
    let mut candidate = base.to_string();
    let mut counter = 2;
    while used.contains(&candidate) {
        candidate = format!("{base}-{counter}");
        counter += 1;
    }
    used.insert(candidate.clone());
    candidate
}

/// `PostgresDefaultPrivileges` → `postgres-default-privileges`.
fn file_stem(kind: &str) -> String {
    let mut stem = String::new();
    for (index, character) in kind.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            stem.push('-');
        }
        stem.push(character.to_ascii_lowercase());
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_become_unique_manifest_names() {
        assert_eq!(manifest_name("App Owner"), "app-owner");
        assert_eq!(
            manifest_name("x\"; DROP ROLE postgres; --"),
            "x-drop-role-postgres"
        );
        assert_eq!(manifest_name("数据库"), "object");
        let mut used = BTreeSet::from(["app".to_string()]);
        assert_eq!(unique_name("app", &mut used), "app-2");
        assert_eq!(
            file_stem("PostgresDefaultPrivileges"),
            "postgres-default-privileges"
        );
    }
}
