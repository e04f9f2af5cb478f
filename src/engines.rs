//! Engine profiles: everything that differs between the engines fleetform
//! manages (PostgreSQL, SQL Server, Linux and Windows hosts), as data read
//! from `templates/<engine>/engine.yaml` and `capabilities.yaml`.
//!
//! The engine and the operations ask a profile (its dialect, template
//! folder, connector, system databases, hints) instead of matching on a
//! product name. This file reads and checks the profiles; it performs no IO
//! beyond the embedded files and knows no SQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::modules::CapabilityRule;
use crate::template::Dialect;

/// What fleetform knows about one engine.
#[derive(Clone, Debug)]
pub struct EngineProfile {
    /// `postgres`, `sqlserver`, `linux`, `windows`: the folder under
    /// `templates/` and `modules/`, and the `engine` of its modules.
    pub name: String,
    /// How messages name it (`PostgreSQL`).
    pub description: String,
    /// For database engines: the manifest kind of their instances.
    pub instance_kind: Option<String>,
    /// For hosts: the `os` of the Servers this engine manages.
    pub server_os: Option<String>,
    /// Which connector reaches its targets (`postgres`, `sqlserver`, `shell`...).
    pub connector: String,
    /// The language (and escaping) of its templates.
    pub dialect: Dialect,
    /// Databases never searched for objects fleetform owns.
    pub system_databases: Vec<String>,
    /// The host script that restarts an instance, in `templates/<engine>/`.
    pub restart: Option<String>,
    /// What to do when the ledger cannot be created.
    pub ledger_hint: String,
    /// The database the ledger's records are written from, when not the
    /// instance's maintenance database (SQL Server: msdb, whose
    /// compatibility level follows upgrades where master's does not).
    pub ledger_database: Option<String>,
    /// For hosts: where fleetform keeps the ledger and lock of the host's
    /// resources, unless the Server's `stateDirectory` says otherwise.
    pub state_directory: Option<String>,
    /// The server facts that tell one server from another (PostgreSQL's
    /// system identifier): a saved plan applies only where they are the
    /// ones it was made with.
    pub identity: Vec<String>,
    /// The server facts that are all equal only when two targets are one
    /// server (declared twice, by two names or addresses).
    pub same_server: Vec<String>,
    /// What instances of this engine must be able to do for the manifests.
    pub capabilities: Vec<CapabilityRule>,
}

impl EngineProfile {
    /// The template folder of the engine's own scripts.
    pub fn template_folder(&self) -> String {
        format!("templates/{}", self.name)
    }

    /// The engine's own script `name` (`server`, `lock_try`, `ledger/record`,
    /// `connector/begin`...) in its folder and language.
    pub fn script(&self, name: &str) -> String {
        format!(
            "{}/{name}.{}",
            self.template_folder(),
            self.dialect.extension()
        )
    }
}

/// The raw `engine.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfileFile {
    name: String,
    description: String,
    #[serde(default)]
    instance_kind: Option<String>,
    #[serde(default)]
    server_os: Option<String>,
    connector: String,
    dialect: String,
    #[serde(default)]
    system_databases: Vec<String>,
    #[serde(default)]
    restart: Option<String>,
    ledger_hint: String,
    #[serde(default)]
    ledger_database: Option<String>,
    #[serde(default)]
    state_directory: Option<String>,
    #[serde(default)]
    identity: Vec<String>,
    #[serde(default)]
    same_server: Vec<String>,
}

/// Every engine profile, by name.
#[derive(Clone, Debug, Default)]
pub struct EngineCatalog {
    profiles: BTreeMap<String, Arc<EngineProfile>>,
}

impl EngineCatalog {
    /// The profiles built into the binary.
    pub fn embedded() -> Result<Self> {
        Self::from_files(crate::template::embedded_template_files())
    }

    /// Profiles from `templates/<engine>/engine.yaml` and
    /// `templates/<engine>/capabilities.yaml` among `files`.
    pub fn from_files(files: Vec<(String, String)>) -> Result<Self> {
        let mut profiles = BTreeMap::new();
        let mut capabilities: BTreeMap<String, Vec<CapabilityRule>> = BTreeMap::new();
        for (name, text) in &files {
            let Some((folder, file)) = name
                .strip_prefix("templates/")
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            match file {
                "engine.yaml" => {
                    let raw: ProfileFile = serde_json::from_value(single_document(name, text)?)
                        .with_context(|| format!("{name} is invalid"))?;
                    if raw.name != folder {
                        bail!("{name}: name `{}` is not its folder `{folder}`", raw.name);
                    }
                    if raw.instance_kind.is_some() == raw.server_os.is_some() {
                        bail!(
                            "{name}: an engine manages either instances (instanceKind) or hosts (serverOs)"
                        );
                    }
                    if raw.server_os.is_some() != raw.state_directory.is_some() {
                        bail!(
                            "{name}: a host engine, and only a host engine, names its stateDirectory"
                        );
                    }
                    let dialect = Dialect::from_extension(&raw.dialect).with_context(|| {
                        format!(
                            "{name}: dialect `{}` is not sql, tsql, ps1 or sh",
                            raw.dialect
                        )
                    })?;
                    profiles.insert(
                        raw.name.clone(),
                        EngineProfile {
                            name: raw.name,
                            description: raw.description,
                            instance_kind: raw.instance_kind,
                            server_os: raw.server_os,
                            connector: raw.connector,
                            dialect,
                            system_databases: raw.system_databases,
                            restart: raw.restart,
                            ledger_hint: raw.ledger_hint,
                            ledger_database: raw.ledger_database,
                            state_directory: raw.state_directory,
                            identity: raw.identity,
                            same_server: raw.same_server,
                            capabilities: Vec::new(),
                        },
                    );
                }
                "capabilities.yaml" => {
                    let rules: Vec<CapabilityRule> =
                        serde_json::from_value(single_document(name, text)?)
                            .with_context(|| format!("{name} is invalid"))?;
                    capabilities.insert(folder.to_string(), rules);
                }
                _ => {}
            }
        }
        for (engine, rules) in capabilities {
            let profile = profiles.get_mut(&engine).with_context(|| {
                format!("templates/{engine}/capabilities.yaml has no engine.yaml beside it")
            })?;
            profile.capabilities = rules;
        }
        Ok(EngineCatalog {
            profiles: profiles
                .into_iter()
                .map(|(name, profile)| (name, Arc::new(profile)))
                .collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<EngineProfile>> {
        self.profiles.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<EngineProfile>> {
        self.profiles.values()
    }

    /// The engine whose instances are objects of `kind`.
    pub fn of_instance_kind(&self, kind: &str) -> Option<&Arc<EngineProfile>> {
        self.iter()
            .find(|profile| profile.instance_kind.as_deref() == Some(kind))
    }

    /// The engine of Servers with this `os`.
    pub fn of_server_os(&self, os: &str) -> Option<&Arc<EngineProfile>> {
        self.iter()
            .find(|profile| profile.server_os.as_deref() == Some(os))
    }
}

impl EngineCatalog {
    /// The engine of a resource's target: its instance's, or its Server's
    /// (by `os`); none for standalone objects.
    pub fn of_target(
        &self,
        fleet: &crate::model::ValidatedFleet,
        target: &crate::model::Target,
    ) -> Option<&Arc<EngineProfile>> {
        let name = target.name()?;
        let object = fleet.manifests.objects.iter().find(|object| {
            object.name == name
                && match target {
                    crate::model::Target::Server(_) => object.kind == crate::schemas::SERVER_KIND,
                    _ => object.kind != crate::schemas::SERVER_KIND,
                }
        })?;
        match target {
            crate::model::Target::Server(_) => self.of_server_os(object.spec_str("os")?),
            _ => self.of_instance_kind(&object.kind),
        }
    }
}

fn single_document(name: &str, text: &str) -> Result<serde_json::Value> {
    let documents = crate::yaml::parse_documents(text).map_err(|error| {
        anyhow::anyhow!(
            "{name}: line {}, column {}: {}",
            error.location.line,
            error.location.column,
            error.message
        )
    })?;
    let [document] = documents.as_slice() else {
        bail!("{name}: expected exactly one YAML document");
    };
    Ok(document.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_load_and_name_their_instance_kinds() {
        let catalog = EngineCatalog::embedded().unwrap();
        let postgres = catalog.of_instance_kind("PostgresInstance").unwrap();
        assert_eq!(postgres.name, "postgres");
        assert_eq!(
            postgres.script("ledger/record"),
            "templates/postgres/ledger/record.sql"
        );
        let sqlserver = catalog.of_instance_kind("SqlInstance").unwrap();
        assert_eq!(
            sqlserver.script("lock_try"),
            "templates/sqlserver/lock_try.tsql"
        );
        assert!(sqlserver.capabilities.len() >= 5);
        assert!(postgres.capabilities.is_empty());
        assert_eq!(
            catalog.of_server_os("linux").unwrap().dialect,
            Dialect::Shell
        );
        assert_eq!(
            catalog.of_server_os("windows").unwrap().dialect,
            Dialect::PowerShell
        );
    }

    #[test]
    fn every_instance_kind_of_the_schemas_has_a_profile_and_back() {
        let catalog = EngineCatalog::embedded().unwrap();
        let schemas = crate::schemas::SchemaCatalog::embedded().unwrap();
        for profile in catalog.iter() {
            if let Some(kind) = &profile.instance_kind {
                assert_eq!(
                    schemas.engine_of_instance_kind(kind),
                    Some(profile.name.as_str()),
                    "{kind}"
                );
            }
        }
        for kind in schemas.instance_kinds(None) {
            assert!(catalog.of_instance_kind(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn a_profile_for_both_instances_and_hosts_is_refused() {
        let files = vec![(
            "templates/x/engine.yaml".to_string(),
            "name: x\ndescription: X\ninstanceKind: XInstance\nserverOs: linux\nconnector: shell\ndialect: sh\nledgerHint: h\n".to_string(),
        )];
        let error = EngineCatalog::from_files(files).unwrap_err();
        assert!(
            format!("{error:#}").contains("either instances"),
            "{error:#}"
        );
    }
}
