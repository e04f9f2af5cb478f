//! Targets: how to reach each instance, resolved once from the manifests
//! (the instance's `connection`, then the environment's connection defaults,
//! then the schema's defaults). No IO: secrets stay references here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use std::sync::Arc;

use crate::connector::postgres::PostgresEndpoint;
use crate::connector::tls::SslMode;
use crate::connector::{Connector, Endpoint};
use crate::engines::{EngineCatalog, EngineProfile};
use crate::model::ValidatedFleet;
use crate::schemas::{SERVER_KIND, SchemaCatalog};
use crate::secrets::SecretRef;

/// Every instance of the environment that fleetform can reach, by name:
/// for each engine that manages instances, its instance kind's objects, each
/// reached by the engine's connector. An instance whose connection settings
/// are unusable is an error naming it.
pub fn resolve_endpoints(
    fleet: &ValidatedFleet,
    catalog: &SchemaCatalog,
    engines: &EngineCatalog,
    repository_root: &Path,
) -> Result<BTreeMap<String, Endpoint>> {
    let mut endpoints = BTreeMap::new();
    for profile in engines.iter() {
        let Some(kind) = profile.instance_kind.as_deref() else {
            continue;
        };
        let settings = ConnectionSettings {
            defaults: fleet
                .manifests
                .environment
                .connection_defaults
                .get(&profile.name)
                .cloned()
                .unwrap_or(Value::Null),
            schema: catalog
                .kind(kind)
                .and_then(|info| catalog.file(&info.file))
                .and_then(|schema| schema.pointer("/$defs/connection/properties"))
                .cloned()
                .unwrap_or(Value::Null),
        };
        for object in fleet
            .manifests
            .objects
            .iter()
            .filter(|object| object.kind == kind)
        {
            let connector = build_connector(profile, fleet, object, &settings, repository_root)
                .with_context(|| format!("{kind} {} ({})", object.name, object.file))?;
            endpoints.insert(
                object.name.clone(),
                Endpoint {
                    profile: profile.clone(),
                    connector,
                },
            );
        }
    }
    Ok(endpoints)
}

/// The Servers fleetform can reach as targets of host resources.
#[derive(Default)]
pub struct Hosts {
    /// By Server name: its host engine's profile and a connector.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Servers that cannot be reached yet, and why (for the plan).
    pub unavailable: BTreeMap<String, String>,
    /// By Server name, what host templates see as `server`: name, host,
    /// os and the state directory of the ledger and lock.
    pub contexts: BTreeMap<String, Value>,
}

/// How long one host script may run.
const HOST_SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// Every Server whose `os` a host engine manages: reached through the
/// engine's connector when fleetform has it for the Server's
/// `connection.method` (the local shell today), else listed as unavailable.
pub fn resolve_servers(
    fleet: &ValidatedFleet,
    catalog: &SchemaCatalog,
    engines: &EngineCatalog,
) -> Hosts {
    let default_method = catalog
        .kind(SERVER_KIND)
        .and_then(|info| catalog.file(&info.file))
        .and_then(|schema| schema.pointer("/$defs/connection/properties/method/default"))
        .and_then(Value::as_str)
        .unwrap_or("ssh")
        .to_string();
    let mut hosts = Hosts::default();
    for server in fleet
        .manifests
        .objects
        .iter()
        .filter(|object| object.kind == SERVER_KIND)
    {
        let spec = catalog.spec_with_defaults(SERVER_KIND, server.spec());
        let Some(profile) = spec
            .get("os")
            .and_then(Value::as_str)
            .and_then(|os| engines.of_server_os(os))
        else {
            continue;
        };
        let state_directory = server
            .spec_str("stateDirectory")
            .map(str::to_string)
            .or_else(|| profile.state_directory.clone());
        hosts.contexts.insert(
            server.name.clone(),
            json!({
                "name": server.name,
                "host": spec.get("host"),
                "os": spec.get("os"),
                "state_directory": state_directory,
            }),
        );
        let method = server
            .spec()
            .pointer("/connection/method")
            .and_then(Value::as_str)
            .unwrap_or(&default_method);
        let connector: Arc<dyn Connector> = match (profile.connector.as_str(), method) {
            ("shell", "local") => Arc::new(crate::connector::shell::LocalShell {
                server: server.name.clone(),
                timeout: HOST_SCRIPT_TIMEOUT,
            }),
            (connector, method) => {
                hosts.unavailable.insert(
                    server.name.clone(),
                    format!(
                        "Server {} is a {} reached with `{method}`, and fleetform's {connector} connector over {method} is not built yet",
                        server.name, profile.description
                    ),
                );
                continue;
            }
        };
        hosts.endpoints.insert(
            server.name.clone(),
            Endpoint {
                profile: profile.clone(),
                connector,
            },
        );
    }
    hosts
}

/// Where an instance's connection settings come from beside its own
/// `connection`: the environment's defaults for its engine, then its schema.
struct ConnectionSettings {
    defaults: Value,
    schema: Value,
}

/// The connectors fleetform has, by the name an engine profile gives
/// (`connector:` in templates/<engine>/engine.yaml): the one place a new
/// connector is added.
fn build_connector(
    profile: &EngineProfile,
    fleet: &ValidatedFleet,
    object: &crate::model::ManifestObject,
    settings: &ConnectionSettings,
    repository_root: &Path,
) -> Result<Arc<dyn Connector>> {
    let (defaults, schema) = (&settings.defaults, &settings.schema);
    Ok(match profile.connector.as_str() {
        "postgres" => Arc::new(postgres_endpoint(
            fleet,
            object,
            defaults,
            schema,
            repository_root,
        )?),
        "sqlserver" => Arc::new(sqlserver_endpoint(
            fleet,
            object,
            defaults,
            schema,
            repository_root,
        )?),
        other => anyhow::bail!(
            "the {} engine names connector `{other}`, which fleetform does not have",
            profile.description
        ),
    })
}

/// A setting of an instance's connection: its own, else the environment's
/// default, else the schema's default.
fn connection_setting(
    connection: &Value,
    defaults: &Value,
    connection_schema: &Value,
    field: &str,
) -> Option<Value> {
    connection
        .get(field)
        .or_else(|| defaults.get(field))
        .or_else(|| {
            connection_schema
                .get(field)
                .and_then(|node| node.get("default"))
        })
        .cloned()
}

/// The host of the Server object an instance names.
fn server_host(fleet: &ValidatedFleet, spec: &Value) -> Option<String> {
    spec.get("server")
        .and_then(Value::as_str)
        .and_then(|server| {
            fleet
                .manifests
                .objects
                .iter()
                .find(|candidate| candidate.kind == "Server" && candidate.name == server)
        })
        .and_then(|server| server.spec_str("host"))
        .map(str::to_string)
}

fn sqlserver_endpoint(
    fleet: &ValidatedFleet,
    object: &crate::model::ManifestObject,
    defaults: &Value,
    connection_schema: &Value,
    repository_root: &Path,
) -> Result<crate::connector::sqlserver::SqlServerEndpoint> {
    use crate::connector::sqlserver::{Authentication, Encrypt, SqlServerEndpoint};
    let spec = object.spec();
    let connection = spec.get("connection").cloned().unwrap_or(Value::Null);
    let setting = |field: &str| connection_setting(&connection, defaults, connection_schema, field);
    let text = |field: &str| setting(field).and_then(|value| value.as_str().map(str::to_string));
    let seconds = |field: &str, fallback: u64| {
        Duration::from_secs(
            setting(field)
                .and_then(|value| value.as_u64())
                .unwrap_or(fallback),
        )
    };
    let host = text("host")
        .or_else(|| server_host(fleet, spec))
        .context("no host: give the Server a host or the instance a connection.host")?;
    let instance_name = spec
        .get("instanceName")
        .and_then(Value::as_str)
        .filter(|name| !name.eq_ignore_ascii_case("MSSQLSERVER"))
        .map(str::to_string);
    // A fixed port wins; `dynamic`, or a named instance without a port, is
    // found through SQL Server Browser; the default instance listens on 1433.
    let port = match spec.get("port") {
        Some(Value::Number(number)) => number.as_u64().and_then(|port| u16::try_from(port).ok()),
        Some(Value::String(text)) if text == "dynamic" => None,
        _ if instance_name.is_some() => None,
        _ => Some(1433),
    };
    let authentication = match text("authentication").as_deref() {
        Some("sql") => Authentication::Sql,
        _ => Authentication::Windows,
    };
    let password = setting("password")
        .map(|reference| SecretRef::from_manifest(&reference, repository_root))
        .transpose()?;
    Ok(SqlServerEndpoint {
        instance: object.name.clone(),
        host,
        port,
        instance_name,
        authentication,
        user: text("user"),
        password,
        database: "master".into(),
        encrypt: Encrypt::parse(&text("encrypt").unwrap_or_else(|| "mandatory".into()))?,
        trust_server_certificate: setting("trustServerCertificate")
            .and_then(|value| value.as_bool())
            .unwrap_or(false),
        ca_file: text("caFile").map(|path| repository_root.join(path)),
        host_name_in_certificate: text("hostNameInCertificate"),
        connect_timeout: seconds("connectTimeoutSeconds", 15),
        // 0: without limit.
        statement_timeout: Some(seconds("commandTimeoutSeconds", 600))
            .filter(|limit| !limit.is_zero()),
        application_name: "fleetform".into(),
        declared_version: spec.get("version").and_then(Value::as_u64),
    })
}

fn postgres_endpoint(
    fleet: &ValidatedFleet,
    object: &crate::model::ManifestObject,
    defaults: &Value,
    connection_schema: &Value,
    repository_root: &Path,
) -> Result<PostgresEndpoint> {
    let spec = object.spec();
    let connection = spec.get("connection").cloned().unwrap_or(Value::Null);
    let setting = |field: &str| connection_setting(&connection, defaults, connection_schema, field);
    let text = |field: &str| setting(field).and_then(|value| value.as_str().map(str::to_string));
    let number = |field: &str, fallback: u64| {
        setting(field)
            .and_then(|value| value.as_u64())
            .unwrap_or(fallback)
    };
    let host = text("host")
        .or_else(|| server_host(fleet, spec))
        .context("no host: give the Server a host or the instance a connection.host")?;
    let password = setting("password")
        .map(|reference| SecretRef::from_manifest(&reference, repository_root))
        .transpose()?;
    let ssl_root_certificate = text("sslRootCert").map(|path| repository_root.join(path));
    Ok(PostgresEndpoint {
        instance: object.name.clone(),
        host,
        port: spec
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|port| u16::try_from(port).ok())
            .unwrap_or(5432),
        user: text("user").unwrap_or_else(|| "postgres".into()),
        password,
        database: text("database").unwrap_or_else(|| "postgres".into()),
        ssl_mode: SslMode::parse(&text("sslMode").unwrap_or_else(|| "prefer".into()))?,
        ssl_root_certificate,
        connect_timeout: Duration::from_secs(number("connectTimeoutSeconds", 10)),
        statement_timeout: Duration::from_secs(number("statementTimeoutSeconds", 60)),
        application_name: text("applicationName").unwrap_or_else(|| "fleetform".into()),
        declared_major: spec.get("version").and_then(Value::as_u64),
    })
}

/// Instances that name a discovery snapshot (`spec.snapshot`, relative to
/// the repository root): read from it instead of over the network.
pub fn resolve_snapshots(
    fleet: &ValidatedFleet,
    catalog: &SchemaCatalog,
    repository_root: &Path,
) -> BTreeMap<String, std::path::PathBuf> {
    let instance_kinds = catalog.instance_kinds(None);
    fleet
        .manifests
        .objects
        .iter()
        .filter(|object| instance_kinds.contains(&object.kind.as_str()))
        .filter_map(|object| {
            let path = object.spec_str("snapshot")?;
            Some((object.name.clone(), repository_root.join(path)))
        })
        .collect()
}

/// The Server each instance runs on, by instance name: restarts and the
/// module actions that run `through: host` go through that Server's
/// endpoint.
pub fn resolve_instance_hosts(
    fleet: &ValidatedFleet,
    catalog: &SchemaCatalog,
) -> BTreeMap<String, String> {
    let instance_kinds = catalog.instance_kinds(None);
    fleet
        .manifests
        .objects
        .iter()
        .filter(|object| instance_kinds.contains(&object.kind.as_str()))
        .filter_map(|object| {
            let server = object.spec_str("server")?;
            Some((object.name.clone(), server.to_string()))
        })
        .collect()
}

/// What templates of each instance see as `instance`: its name, engine,
/// spec (with schema defaults; secret references left out), the folders its
/// DiskPreset gives database files (`folders.data`, `.log`... or null) and
/// the availability groups that have a replica on it (`availabilityGroups`:
/// name, databases and the replica's own settings).
pub fn resolve_instance_contexts(
    fleet: &ValidatedFleet,
    catalog: &SchemaCatalog,
) -> BTreeMap<String, Value> {
    let objects = &fleet.manifests.objects;
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|object| object.kind == kind && object.name == name)
    };
    // ServiceAccountProfile name -> the account, for grants that name one.
    let service_accounts: Map<String, Value> = objects
        .iter()
        .filter(|profile| profile.kind == "ServiceAccountProfile")
        .filter_map(|profile| {
            let account = profile.spec().get("accountName")?.clone();
            Some((profile.name.clone(), account))
        })
        .collect();
    let instance_kinds = catalog.instance_kinds(None);
    let mut contexts = BTreeMap::new();
    for object in objects
        .iter()
        .filter(|object| instance_kinds.contains(&object.kind.as_str()))
    {
        let mut spec = catalog.spec_with_defaults(&object.kind, object.spec());
        // What templates need; never a secret reference (the sa password,
        // the connection's password).
        spec.remove("install");
        spec.remove("connection");
        let folders = spec
            .get("diskPreset")
            .and_then(Value::as_str)
            .and_then(|preset| find("DiskPreset", preset))
            .map(|preset| {
                let preset_spec = catalog.spec_with_defaults("DiskPreset", preset.spec());
                let instance_name = spec
                    .get("instanceName")
                    .and_then(Value::as_str)
                    .unwrap_or("MSSQLSERVER");
                preset_folders(&Value::Object(preset_spec), catalog, instance_name)
            })
            .unwrap_or(Value::Null);
        let groups: Vec<Value> = objects
            .iter()
            .filter(|group| group.kind == "AvailabilityGroup")
            .filter_map(|group| {
                let spec = group.spec();
                let replica = spec
                    .get("replicas")
                    .and_then(Value::as_array)?
                    .iter()
                    .find(|replica| {
                        replica.get("instance").and_then(Value::as_str) == Some(&object.name)
                    })?;
                // The replica the group is created on: desiredPrimary, or the first.
                let initial_primary = spec
                    .get("desiredPrimary")
                    .and_then(Value::as_str)
                    .or_else(|| spec.pointer("/replicas/0/instance").and_then(Value::as_str))
                    .unwrap_or_default();
                Some(json!({
                    "name": spec.get("name").and_then(Value::as_str).unwrap_or(&group.name),
                    "databases": spec.get("databases").cloned().unwrap_or(json!([])),
                    "replica": replica,
                    "initialPrimary": initial_primary,
                    "spec": spec,
                }))
            })
            .collect();
        // Database name -> the group that holds it here (templates and
        // module rules look databases up by name).
        let mut group_databases = Map::new();
        for group in &groups {
            for database in group["databases"].as_array().into_iter().flatten() {
                if let Some(database) = database.as_str() {
                    group_databases.insert(
                        database.to_string(),
                        json!({
                            "group": group["name"],
                            "initialPrimary": group["initialPrimary"],
                            "onInitialPrimary": group["initialPrimary"] == json!(object.name),
                        }),
                    );
                }
            }
        }
        contexts.insert(
            object.name.clone(),
            json!({
                "name": object.name,
                "serviceAccounts": &service_accounts,
                "kind": object.kind,
                "spec": spec,
                "folders": folders,
                "availabilityGroups": groups,
                "groupDatabases": group_databases,
            }),
        );
    }
    contexts
}

/// The folder of each purpose (data, log, tempdb, backup, system) under a
/// DiskPreset: the volume serving it (a ready-made layout's drive letter, or
/// a Custom disk's letter or mount path) and the preset's folder, with
/// `\<instance>` appended for a named instance.
fn preset_folders(preset: &Value, catalog: &SchemaCatalog, instance_name: &str) -> Value {
    const PURPOSES: [&str; 5] = ["data", "log", "tempdb", "backup", "system"];
    let folder_defaults = catalog
        .kind("DiskPreset")
        .and_then(|info| catalog.file(&info.file))
        .and_then(|schema| schema.pointer("/$defs/folders/properties").cloned())
        .unwrap_or(Value::Null);
    let layout = preset
        .get("layout")
        .and_then(Value::as_str)
        .unwrap_or("Custom");
    let fixed = |purpose: &str| -> Option<(String, Option<String>)> {
        let letter = match (layout, purpose) {
            ("Minimal", _) => "D",
            ("Basic", "log") | ("Standard", "log") => "L",
            ("Basic", _) => "D",
            ("Standard", "tempdb") => "T",
            ("Standard", "backup") => "S",
            ("Standard", _) => "D",
            _ => return None,
        };
        Some((format!("{letter}:"), None))
    };
    let custom = |purpose: &str| -> Option<(String, Option<String>)> {
        let disks = preset.get("disks").and_then(Value::as_array)?;
        let disk = disks.iter().find(|disk| {
            disk.get("purposes")
                .and_then(Value::as_array)
                .is_some_and(|purposes| purposes.iter().any(|p| p.as_str() == Some(purpose)))
        })?;
        let root = match (
            disk.get("driveLetter").and_then(Value::as_str),
            disk.get("mountPath").and_then(Value::as_str),
        ) {
            (Some(letter), _) => format!("{letter}:"),
            (None, Some(path)) => path.trim_end_matches('\\').to_string(),
            (None, None) => return None,
        };
        let folder = disk
            .get("folder")
            .and_then(Value::as_str)
            .map(str::to_string);
        Some((root, folder))
    };
    let volume = |purpose: &str| {
        fixed(purpose)
            .or_else(|| custom(purpose))
            .or_else(|| match purpose {
                // Unserved purposes live on the data volume.
                "tempdb" | "system" | "backup" => custom("data"),
                _ => None,
            })
    };
    let mut folders = Map::new();
    for purpose in PURPOSES {
        let Some((root, own_folder)) = volume(purpose) else {
            folders.insert(purpose.into(), Value::Null);
            continue;
        };
        let folder = own_folder
            .or_else(|| {
                preset
                    .pointer(&format!("/folders/{purpose}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                folder_defaults
                    .pointer(&format!("/{purpose}/default"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let mut path = root;
        if !folder.is_empty() {
            path.push('\\');
            path.push_str(folder.trim_matches('\\'));
        }
        if !instance_name.eq_ignore_ascii_case("MSSQLSERVER") {
            path.push('\\');
            path.push_str(instance_name);
        }
        folders.insert(purpose.into(), Value::String(path));
    }
    Value::Object(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(preset: Value, instance: &str) -> Value {
        let catalog = SchemaCatalog::embedded().unwrap();
        let preset = Value::Object(catalog.spec_with_defaults("DiskPreset", &preset));
        preset_folders(&preset, &catalog, instance)
    }

    #[test]
    fn ready_made_layouts_place_each_purpose_on_its_drive() {
        assert_eq!(
            folders(json!({"layout": "Basic"}), "MSSQLSERVER"),
            json!({
                "data": "D:\\MSSQL\\Data", "log": "L:\\MSSQL\\Log", "tempdb": "D:\\MSSQL\\TempDB",
                "backup": "D:\\MSSQL\\Backup", "system": "D:\\MSSQL\\System",
            })
        );
        let standard = folders(
            json!({"layout": "Standard", "folders": {"data": "SQLData"}}),
            "SALES",
        );
        assert_eq!(standard["data"], json!("D:\\SQLData\\SALES"));
        assert_eq!(standard["tempdb"], json!("T:\\MSSQL\\TempDB\\SALES"));
        assert_eq!(standard["backup"], json!("S:\\MSSQL\\Backup\\SALES"));
    }

    #[test]
    fn custom_disks_use_letters_mount_paths_and_their_own_folders() {
        let custom = folders(
            json!({"layout": "Custom", "disks": [
                {"diskNumber": 1, "driveLetter": "E", "purposes": ["data", "system"]},
                {"diskNumber": 2, "mountPath": "E:\\Mounts\\Log01\\", "purposes": ["log"], "folder": "Logs"},
            ]}),
            "MSSQLSERVER",
        );
        assert_eq!(custom["data"], json!("E:\\MSSQL\\Data"));
        assert_eq!(custom["log"], json!("E:\\Mounts\\Log01\\Logs"));
        // Unserved purposes live on the data volume.
        assert_eq!(custom["tempdb"], json!("E:\\MSSQL\\TempDB"));
        assert_eq!(custom["backup"], json!("E:\\MSSQL\\Backup"));
    }
}
