//! Cross-object rules: what a schema cannot say because it needs two objects
//! (or the whole fleet) to decide.
//!
//! Each rule is a plain function over schema-valid objects and returns its
//! diagnostics; `check` runs them all. Rules read documents defensively (a
//! reference may dangle; that is reported elsewhere) and never do IO.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::validate::ObjectIndex;
use crate::diagnostics::Diagnostic;
use crate::model::ManifestObject;

type Rule = fn(&ManifestObject, &ObjectIndex) -> Vec<Diagnostic>;

/// Rules that look at one object and whatever it refers to, by kind.
const RULES: &[(&str, Rule)] = &[
    ("AvailabilityGroup", replicas_are_cluster_nodes),
    ("AvailabilityGroup", availability_group_consistency),
    ("ServiceAccountProfile", service_account_password),
    ("PostgresHaCluster", ha_cluster_members),
    ("FailoverCluster", cluster_nodes_run_windows),
    ("SqlInstance", sql_instance_on_windows_or_linux),
];

pub fn check(objects: &[&ManifestObject], index: &ObjectIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for object in objects {
        for (kind, rule) in RULES {
            if object.kind == *kind {
                found.extend(rule(object, index));
            }
        }
    }
    found.extend(unique_endpoints(objects));
    found.extend(databases_in_one_availability_group(objects));
    found
}

fn array<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// An AG replica must live on an instance whose server is a node of the AG's cluster.
fn replicas_are_cluster_nodes(group: &ManifestObject, index: &ObjectIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let Some(cluster_name) = text(&group.document, "/spec/cluster") else {
        return found;
    };
    let Some(cluster) = index.get("FailoverCluster", cluster_name) else {
        return found;
    };
    let nodes: BTreeSet<&str> = array(&cluster.document, "/spec/nodes")
        .iter()
        .filter_map(|node| node.as_str().or_else(|| text(node, "/server")))
        .collect();
    for (position, replica) in array(&group.document, "/spec/replicas").iter().enumerate() {
        let Some(instance_name) = text(replica, "/instance") else {
            continue;
        };
        let Some(instance) = index.get("SqlInstance", instance_name) else {
            continue;
        };
        let Some(server) = instance.spec_str("server") else {
            continue;
        };
        if !nodes.contains(server) {
            found.push(
                group
                    .error_at(
                        &format!("/spec/replicas/{position}/instance"),
                        format!(
                            "replica `{instance_name}` runs on server `{server}`, which is not a node of cluster `{cluster_name}`"
                        ),
                    )
                    .with_hint(format!(
                        "add `{server}` to FailoverCluster/{cluster_name} spec.nodes (nodes now: {})",
                        nodes.iter().copied().collect::<Vec<_>>().join(", ")
                    )),
            );
        }
    }
    found
}

/// Replica list, desired primary, routing lists and Basic AG limits agree with each other.
fn availability_group_consistency(group: &ManifestObject, _index: &ObjectIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let replicas = array(&group.document, "/spec/replicas");
    let mut replica_names = BTreeMap::new();
    for (position, replica) in replicas.iter().enumerate() {
        if let Some(name) = text(replica, "/instance")
            && let Some(first) = replica_names.insert(name, position)
        {
            found.push(group.error_at(
                &format!("/spec/replicas/{position}/instance"),
                format!("instance `{name}` is already replica {first} of this availability group"),
            ));
        }
    }
    if let Some(primary) = text(&group.document, "/spec/desiredPrimary")
        && !replica_names.contains_key(primary)
    {
        found.push(
            group
                .error_at(
                    "/spec/desiredPrimary",
                    format!(
                        "desired primary `{primary}` is not a replica of this availability group"
                    ),
                )
                .with_hint(format!(
                    "replicas: {}",
                    replica_names.keys().copied().collect::<Vec<_>>().join(", ")
                )),
        );
    }
    for (position, replica) in replicas.iter().enumerate() {
        for (entry_position, entry) in array(replica, "/primaryRole/readOnlyRoutingList")
            .iter()
            .enumerate()
        {
            let names: Vec<(String, &str)> = match entry {
                Value::String(name) => vec![(format!("/{entry_position}"), name.as_str())],
                Value::Array(set) => set
                    .iter()
                    .enumerate()
                    .filter_map(|(inner, name)| {
                        name.as_str()
                            .map(|name| (format!("/{entry_position}/{inner}"), name))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (suffix, name) in names {
                if !replica_names.contains_key(name) {
                    found.push(group.error_at(
                        &format!("/spec/replicas/{position}/primaryRole/readOnlyRoutingList{suffix}"),
                        format!("read-only routing target `{name}` is not a replica of this availability group"),
                    ));
                }
            }
        }
    }
    let synchronous_secondaries = replicas
        .iter()
        .filter(|replica| text(replica, "/availabilityMode") == Some("SYNCHRONOUS_COMMIT"))
        .count()
        .saturating_sub(1);
    if let Some(required) = group
        .document
        .pointer("/spec/requiredSynchronizedSecondariesToCommit")
        .and_then(Value::as_u64)
        && required as usize > synchronous_secondaries
    {
        found.push(
                group
                    .error_at(
                        "/spec/requiredSynchronizedSecondariesToCommit",
                        format!(
                            "{required} synchronized secondaries are required to commit, but the group has {synchronous_secondaries} synchronous secondary replica(s)"
                        ),
                    )
                    .with_hint("with too few synchronous secondaries the primary stops accepting writes"),
            );
    }
    if group.document.pointer("/spec/basic") == Some(&Value::Bool(true)) {
        if replicas.len() > 2 {
            found.push(
                group
                    .error_at(
                        "/spec/replicas",
                        format!(
                            "a Basic availability group has at most 2 replicas, not {}",
                            replicas.len()
                        ),
                    )
                    .with_hint(
                        "Basic AGs (Standard edition) support two replicas and one database",
                    ),
            );
        }
        let databases = array(&group.document, "/spec/databases");
        if databases.len() > 1 {
            found.push(
                group
                    .error_at(
                        "/spec/databases",
                        format!(
                            "a Basic availability group holds one database, not {}",
                            databases.len()
                        ),
                    )
                    .with_hint(
                        "Basic AGs (Standard edition) support two replicas and one database",
                    ),
            );
        }
    }
    found
}

/// A gMSA never has a password (Windows manages it); domain and local accounts need one.
fn service_account_password(profile: &ManifestObject, _index: &ObjectIndex) -> Vec<Diagnostic> {
    let account_type = profile.spec_str("type").unwrap_or_default();
    let has_password = profile.spec().get("password").is_some();
    match (account_type, has_password) {
        ("gmsa", true) => vec![
            profile
                .error_at("/spec/password", "a gMSA profile must not have a password")
                .with_hint("Active Directory manages gMSA passwords; remove `password` (hosts retrieve it via principalsAllowedToRetrievePassword)"),
        ],
        ("virtual", true) => vec![
            profile
                .error_at("/spec/password", "a virtual account profile must not have a password")
                .with_hint("virtual accounts (NT SERVICE\\...) have no password; remove `password`"),
        ],
        ("domain", false) => vec![
            profile
                .error_at("/spec", "a domain account profile needs a password secret")
                .with_hint("add password: {fromEnv: VARIABLE}, or use type: gmsa to let Active Directory manage it"),
        ],
        _ => Vec::new(),
    }
}

/// The pg_auto_failover monitor is not a data node, and every member is listed once.
fn ha_cluster_members(cluster: &ManifestObject, index: &ObjectIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let monitor = text(&cluster.document, "/spec/monitor/instance");
    let mut seen = BTreeMap::new();
    for (position, node) in array(&cluster.document, "/spec/nodes").iter().enumerate() {
        let Some(instance) = text(node, "/instance") else {
            continue;
        };
        let pointer = format!("/spec/nodes/{position}/instance");
        if Some(instance) == monitor {
            found.push(
                cluster
                    .error_at(&pointer, format!("instance `{instance}` is the monitor and cannot also be a data node"))
                    .with_hint("the pg_auto_failover monitor is a separate PostgreSQL instance that only watches the nodes"),
            );
        }
        if let Some(first) = seen.insert(instance, position) {
            found.push(cluster.error_at(
                &pointer,
                format!("instance `{instance}` is already node {first} of this cluster"),
            ));
        }
    }
    // Two members on one server and port cannot both run.
    let mut endpoints: BTreeMap<(String, String), &str> = BTreeMap::new();
    let members: BTreeSet<&str> = monitor.into_iter().chain(seen.keys().copied()).collect();
    for name in members {
        if let Some(instance) = index.get("PostgresInstance", name) {
            let server = instance.spec_str("server").unwrap_or_default().to_string();
            let port = instance
                .spec()
                .get("port")
                .map(Value::to_string)
                .unwrap_or_else(|| "5432".to_string());
            if let Some(other) = endpoints.insert((server.clone(), port.clone()), name) {
                found.push(cluster.warning_at(
                    "/spec/nodes",
                    format!("`{other}` and `{name}` are both on server `{server}` port {port}; a node failure takes both down"),
                ));
            }
        }
    }
    found
}

/// Windows failover clusters are made of Windows servers.
fn cluster_nodes_run_windows(cluster: &ManifestObject, index: &ObjectIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (position, node) in array(&cluster.document, "/spec/nodes").iter().enumerate() {
        let Some(name) = node.as_str().or_else(|| text(node, "/server")) else {
            continue;
        };
        if let Some(server) = index.get("Server", name)
            && let Some(os) = server.spec_str("os")
            && os != "windows"
        {
            found.push(
                        cluster
                            .error_at(&format!("/spec/nodes/{position}"), format!("server `{name}` runs {os}; a Windows failover cluster needs Windows nodes"))
                            .with_hint("for PostgreSQL high availability use a PostgresHaCluster"),
                    );
        }
    }
    found
}

/// SQL Server runs on Windows or Linux; both are fine, but the server must exist with an OS.
fn sql_instance_on_windows_or_linux(
    instance: &ManifestObject,
    index: &ObjectIndex,
) -> Vec<Diagnostic> {
    let Some(server_name) = instance.spec_str("server") else {
        return Vec::new();
    };
    let Some(server) = index.get("Server", server_name) else {
        return Vec::new();
    };
    let install_media = instance.spec().pointer("/install/media").is_some();
    if server.spec_str("os") == Some("linux") && install_media {
        return vec![
            instance
                .warning_at("/spec/install/media", format!("server `{server_name}` runs Linux; SQL Server on Linux installs from packages, not from setup media"))
                .with_hint("installation media and ConfigurationFile.ini apply to Windows servers"),
        ];
    }
    Vec::new()
}

/// Two instances cannot listen on the same server and port (or be the same named SQL Server instance).
fn unique_endpoints(objects: &[&ManifestObject]) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut taken: BTreeMap<(String, String), &ManifestObject> = BTreeMap::new();
    for object in objects {
        let key = match object.kind.as_str() {
            "PostgresInstance" => {
                let port = object
                    .spec()
                    .get("port")
                    .and_then(Value::as_u64)
                    .unwrap_or(5432);
                format!("port {port}")
            }
            "SqlInstance" => {
                let name = object
                    .spec_str("instanceName")
                    .unwrap_or("MSSQLSERVER")
                    .to_uppercase();
                format!("SQL Server instance {name}")
            }
            _ => continue,
        };
        let Some(server) = object.spec_str("server") else {
            continue;
        };
        if let Some(first) = taken.insert((server.to_string(), key.clone()), object) {
            found.push(
                object
                    .error_at(
                        "/spec/server",
                        format!("{} already uses {key} on server `{server}`", first.id()),
                    )
                    .with_hint(format!(
                        "first defined at {}:{}",
                        first.file,
                        first.locate("/metadata/name").line
                    )),
            );
        }
    }
    found
}

/// A database belongs to at most one availability group on an instance.
fn databases_in_one_availability_group(objects: &[&ManifestObject]) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
    for group in objects
        .iter()
        .filter(|object| object.kind == "AvailabilityGroup")
    {
        let instances: Vec<&str> = array(&group.document, "/spec/replicas")
            .iter()
            .filter_map(|replica| text(replica, "/instance"))
            .collect();
        for (position, database) in array(&group.document, "/spec/databases").iter().enumerate() {
            let Some(database) = database.as_str().or_else(|| text(database, "/name")) else {
                continue;
            };
            for instance in &instances {
                let key = (instance.to_string(), database.to_lowercase());
                if let Some(other) = owners.get(&key) {
                    if other != &group.name {
                        found.push(group.error_at(
                            &format!("/spec/databases/{position}"),
                            format!("database `{database}` on `{instance}` is already in availability group `{other}`"),
                        ));
                    }
                } else {
                    owners.insert(key, group.name.clone());
                }
            }
        }
    }
    found
}
