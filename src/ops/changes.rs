//! What changed between two revisions of an environment's manifests
//! (`--base REV`): the resources a plan must read, each with why it is
//! included. Pure: two validated fleets in, a scope out.
//!
//! Objects are compared as parsed documents (variables substituted, so a
//! changed variable changes the objects that use it; comments and layout do
//! not count). A resource is included when it is new at its address (a new
//! object, or an object a changed selector now puts on another target),
//! when its object changed, when the object of its target (the instance, or
//! the instance's Server) changed, or when it depends on an included
//! resource. A changed environment file, or a changed object that is neither
//! a resource nor a target nor a Group (a definition others refer to),
//! includes everything; a Group only selects, so its change shows as
//! resources new at an instance or removed from one. Resources that left the manifests are listed as removed: their
//! prune needs every resource of their target, so `--prune` with removals
//! plans the whole environment.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Target, ValidatedFleet};

/// What a plan against a base revision covers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// The base revision, as given (`origin/main`), and its commit.
    pub base: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    /// Why the whole environment is planned, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub everything: Option<String>,
    /// Objects that changed: `Kind/name` and how (added, edited, removed).
    pub changed_objects: Vec<Included>,
    /// Resources planned, in dependency order, each with why.
    pub included: Vec<Included>,
    /// Resources of the base that the manifests no longer have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Included {
    pub address: String,
    pub why: String,
}

impl Scope {
    /// The addresses to plan (`RunSettings::only` with the scope's
    /// dependencies), or None for the whole environment.
    pub fn addresses(&self) -> Option<Vec<String>> {
        self.everything.is_none().then(|| {
            self.included
                .iter()
                .map(|entry| entry.address.clone())
                .collect()
        })
    }
}

/// `Kind/name` → the object's document.
fn documents(fleet: &ValidatedFleet) -> BTreeMap<String, &Value> {
    fleet
        .manifests
        .objects
        .iter()
        .map(|object| (object.id(), &object.document))
        .collect()
}

/// Compare the manifests at `base` with `head`; `prune`: the run prunes.
pub fn compare(
    base: &ValidatedFleet,
    head: &ValidatedFleet,
    base_name: &str,
    base_commit: Option<String>,
    prune: bool,
) -> Scope {
    let mut scope = Scope {
        base: base_name.to_string(),
        base_commit,
        ..Scope::default()
    };
    let before = documents(base);
    let after = documents(head);
    let mut changed: BTreeMap<String, &'static str> = BTreeMap::new();
    for (id, document) in &after {
        match before.get(id) {
            None => {
                changed.insert(id.clone(), "added");
            }
            Some(old) if old != document => {
                changed.insert(id.clone(), "edited");
            }
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        changed.insert(id.clone(), "removed");
    }
    scope.changed_objects = changed
        .iter()
        .map(|(id, how)| Included {
            address: id.clone(),
            why: (*how).to_string(),
        })
        .collect();

    let environment = |fleet: &ValidatedFleet| {
        let environment = &fleet.manifests.environment;
        serde_json::json!({
            "repository": environment.repository,
            "include": environment.include,
            "variables": environment.variables,
            "connectionDefaults": environment.connection_defaults,
        })
    };
    if environment(base) != environment(head) {
        scope.everything = Some(format!(
            "the environment file ({}) changed since {base_name}",
            head.manifests.environment.file
        ));
    }

    let address_of = |fleet: &ValidatedFleet| -> BTreeSet<String> {
        fleet
            .graph
            .resources
            .iter()
            .map(|resource| resource.address.to_string())
            .collect()
    };
    let base_addresses = address_of(base);
    let head_addresses = address_of(head);
    scope.removed = base_addresses
        .difference(&head_addresses)
        .cloned()
        .collect();
    if prune && !scope.removed.is_empty() && scope.everything.is_none() {
        scope.everything = Some(format!(
            "--prune with resources removed since {base_name}: what they left is found by reading every instance"
        ));
    }

    // Objects that are targets (servers, instances), and each instance's Server.
    let object_of = |fleet: &ValidatedFleet, index: usize| fleet.manifests.objects[index].id();
    let target_objects: BTreeMap<String, String> = head
        .graph
        .resources
        .iter()
        .filter(|resource| resource.target == Target::None)
        .map(|resource| {
            (
                resource.address.name.clone(),
                object_of(head, resource.object),
            )
        })
        .collect();
    let resource_objects: BTreeSet<String> = head
        .graph
        .resources
        .iter()
        .chain(&base.graph.resources)
        .map(|resource| format!("{}/{}", resource.address.kind, resource.address.name))
        .collect();
    if scope.everything.is_none()
        && let Some(definition) = changed.keys().find(|id| {
            // A group only selects: what it changes shows as resources
            // added at (or removed from) instances.
            !resource_objects.contains(*id)
                && !id.starts_with(&format!("{}/", crate::ops::expand::GROUP_KIND))
        })
    {
        scope.everything = Some(format!(
            "{definition} changed since {base_name}, and what refers to it is not traced: planning everything"
        ));
    }
    let target_change = |target: &str| -> Option<String> {
        let object = target_objects.get(target)?;
        if let Some(how) = changed.get(object) {
            return Some(format!("its target {object} was {how}"));
        }
        let server = after
            .get(object)
            .and_then(|document| document.pointer("/spec/server"))
            .and_then(Value::as_str)?;
        let server_object = target_objects.get(server)?;
        changed
            .get(server_object)
            .map(|how| format!("the Server {server_object} of its target was {how}"))
    };

    let mut why: BTreeMap<usize, String> = BTreeMap::new();
    for (index, resource) in head.graph.resources.iter().enumerate() {
        let address = resource.address.to_string();
        let object = object_of(head, resource.object);
        let reason = if !base_addresses.contains(&address) {
            if before.contains_key(&object) {
                Some(format!(
                    "{object} now selects {}",
                    resource.target.name().unwrap_or("it")
                ))
            } else {
                Some(format!("{object} was added"))
            }
        } else if let Some(how) = changed.get(&object) {
            Some(format!("{object} was {how}"))
        } else {
            resource.target.name().and_then(target_change)
        };
        if let Some(reason) = reason {
            why.insert(index, reason);
        }
    }
    // What depends on an included resource, then what an included one needs.
    let count = head.graph.resources.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, dependencies) in head.graph.dependencies.iter().enumerate() {
        for (dependency, _) in dependencies {
            dependents[*dependency].push(index);
        }
    }
    let mut pending: Vec<usize> = why.keys().copied().collect();
    while let Some(node) = pending.pop() {
        for &dependent in &dependents[node] {
            if let std::collections::btree_map::Entry::Vacant(entry) = why.entry(dependent) {
                entry.insert(format!(
                    "it depends on {}",
                    head.graph.resources[node].address
                ));
                pending.push(dependent);
            }
        }
    }
    let mut pending: Vec<usize> = why.keys().copied().collect();
    while let Some(node) = pending.pop() {
        for (dependency, _) in &head.graph.dependencies[node] {
            if let std::collections::btree_map::Entry::Vacant(entry) = why.entry(*dependency) {
                entry.insert(format!(
                    "{} depends on it",
                    head.graph.resources[node].address
                ));
                pending.push(*dependency);
            }
        }
    }
    scope.included = head
        .graph
        .topological_order()
        .into_iter()
        .filter_map(|index| {
            why.get(&index).map(|reason| Included {
                address: head.graph.resources[index].address.to_string(),
                why: reason.clone(),
            })
        })
        .collect();
    scope
}
