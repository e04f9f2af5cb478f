//! Discovery snapshots: what discovery read on each target, written by
//! `fleetform discover --out`, and read back instead of connecting when an
//! instance names one (`spec.snapshot`). Plans and drift reports then work
//! without network access; apply refuses such targets.
//!
//! A snapshot never holds a secret: sensitive fields are written as null
//! and listed in the row's `unreadable`, which the diff treats like a value
//! it could not read (not compared, marked unverified by the module).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::modules::Module;
use crate::ops::engine::{Engine, LedgerEntry, Observations, Row, TargetObservation};

pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// The largest snapshot read: 512 MiB (hundreds of instances).
pub const SNAPSHOT_LIMIT: u64 = 512 * 1024 * 1024;

/// The row field listing sensitive fields a snapshot left out.
pub const UNREADABLE: &str = "unreadable";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    pub fleetform_version: String,
    pub environment: String,
    pub created_at: String,
    pub targets: BTreeMap<String, TargetSnapshot>,
}

/// One target's discovery.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TargetSnapshot {
    /// Server facts (`server_version_num`, databases...).
    pub facts: Map<String, Value>,
    /// Discovered rows per kind and database (null: instance-wide).
    pub scopes: Vec<ScopeRows>,
    /// Related live things no manifest manages, per kind and database.
    #[serde(default)]
    pub inventory: Vec<ScopeInventory>,
    #[serde(default)]
    pub ledger_exists: bool,
    /// The ledger's last converged entry per resource, and the `started`
    /// entries of interrupted applies (their `result` says which).
    #[serde(default)]
    pub ledger: Vec<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScopeRows {
    pub kind: String,
    #[serde(default)]
    pub database: Option<String>,
    pub rows: Vec<Row>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScopeInventory {
    pub kind: String,
    #[serde(default)]
    pub database: Option<String>,
    pub identities: Vec<String>,
}

impl Snapshot {
    /// The snapshot of `observations` (targets that could not be read are
    /// left out), with every sensitive field removed.
    pub fn record(
        environment: &str,
        created_at: String,
        observations: &Observations,
        engine: &Engine,
    ) -> Snapshot {
        let targets = observations
            .iter()
            .filter_map(|(target, observation)| {
                let observation = observation.as_ref().ok()?;
                Some((
                    target.clone(),
                    TargetSnapshot::record(observation, |kind| engine.module(kind, target)),
                ))
            })
            .collect();
        Snapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            fleetform_version: env!("CARGO_PKG_VERSION").to_string(),
            environment: environment.to_string(),
            created_at,
            targets,
        }
    }

    /// Read a snapshot file, naming it in every error.
    pub fn read(path: &Path) -> Result<Snapshot> {
        let text = crate::source::read_regular_file(path, SNAPSHOT_LIMIT, "snapshot")?;
        // Where and what kind of error, never the content: the message goes
        // into plans and pull-request comments.
        let snapshot: Snapshot = serde_json::from_str(&text).map_err(|error| {
            let problem = match error.classify() {
                serde_json::error::Category::Io => "cannot be read",
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Data => "does not have a snapshot's fields and types",
                serde_json::error::Category::Eof => "ends early",
            };
            anyhow::anyhow!(
                "{}:{}:{}: {problem}: it is not a fleetform discovery snapshot (record it again with `fleetform discover --out`)",
                path.display(),
                error.line(),
                error.column()
            )
        })?;
        if snapshot.format_version != SNAPSHOT_FORMAT_VERSION {
            bail!(
                "{} has snapshot format {}; this fleetform reads format {SNAPSHOT_FORMAT_VERSION}: record it again with `fleetform discover --out`",
                path.display(),
                snapshot.format_version
            );
        }
        Ok(snapshot)
    }
}

impl TargetSnapshot {
    fn record<'a>(
        observation: &TargetObservation,
        module_of: impl Fn(&str) -> Option<&'a Module>,
    ) -> TargetSnapshot {
        let scopes = observation
            .rows
            .iter()
            .map(|((kind, database), rows)| ScopeRows {
                kind: kind.clone(),
                database: database.clone(),
                rows: rows
                    .iter()
                    .map(|row| without_secrets(module_of(kind), row))
                    .collect(),
            })
            .collect();
        let inventory = observation
            .inventory
            .iter()
            .map(|((kind, database), identities)| ScopeInventory {
                kind: kind.clone(),
                database: database.clone(),
                identities: identities.clone(),
            })
            .collect();
        TargetSnapshot {
            facts: observation.facts.clone(),
            scopes,
            inventory,
            ledger_exists: observation.ledger_exists,
            ledger: observation
                .ledger
                .values()
                .chain(observation.interrupted.values())
                .filter_map(|entry| serde_json::to_value(entry).ok())
                .collect(),
        }
    }

    /// The observation this snapshot recorded (orphans and superseded
    /// definitions are computed from its ledger by the engine).
    pub fn observation(&self) -> Result<TargetObservation> {
        let mut observation = TargetObservation {
            facts: self.facts.clone(),
            ledger_exists: self.ledger_exists,
            ..TargetObservation::default()
        };
        for scope in &self.scopes {
            observation.rows.insert(
                (scope.kind.clone(), scope.database.clone()),
                scope.rows.clone(),
            );
        }
        for scope in &self.inventory {
            observation.inventory.insert(
                (scope.kind.clone(), scope.database.clone()),
                scope.identities.clone(),
            );
        }
        let read = LedgerEntry::read_all(Value::Array(self.ledger.clone()), "the snapshot")?;
        observation.ledger = read.latest;
        observation.interrupted = read.interrupted;
        Ok(observation)
    }
}

/// `row` with the module's sensitive fields set to null and listed in
/// `unreadable`.
fn without_secrets(module: Option<&Module>, row: &Row) -> Row {
    let Some(module) = module else {
        return row.clone();
    };
    let mut row = row.clone();
    let mut unreadable = Vec::new();
    for (field, rule) in &module.fields {
        if rule.sensitive
            && let Some(value) = row.get_mut(field)
            && !value.is_null()
        {
            *value = Value::Null;
            unreadable.push(Value::String(field.clone()));
        }
    }
    if !unreadable.is_empty() {
        row.insert(UNREADABLE.into(), Value::Array(unreadable));
    }
    row
}

#[cfg(test)]
mod read_tests {
    use super::Snapshot;

    /// Issue 19, finding 18: a broken snapshot's error names the file and
    /// the position, never what the file holds.
    #[test]
    fn a_broken_snapshot_is_named_with_its_position_never_its_content() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("snapshot.json");
        for (text, problem) in [
            (
                "{\"format_version\": \"hunter2-secret\"}",
                ":1:35: does not have a snapshot's fields and types",
            ),
            (
                "{\n  \"hunter2-secret\" hunter2",
                ":2:20: is not valid JSON",
            ),
            ("{\"hunter2-secret\": ", ":1:19: ends early"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = format!("{:#}", Snapshot::read(&path).unwrap_err());
            assert!(error.contains(problem), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
