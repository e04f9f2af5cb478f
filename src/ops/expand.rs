//! Expand: manifest objects → resources, one per object and target.
//!
//! A standalone object (a server, an instance) is one resource. A
//! fleet-wide object (`spec.on`) becomes one resource per selected instance
//! or server, addressed `Kind/name@target`; so does an object that spans
//! the targets its spec names (an availability group's replicas), each
//! resource knowing the lead target that converges first. Selectors that select
//! nothing are warnings; naming an instance of the wrong engine is an error.
//! Pure: no IO.

use std::collections::BTreeSet;

use serde_json::Value;

use super::validate::ObjectIndex;
use crate::diagnostics::Diagnostic;
use crate::model::{ManifestObject, Resource, ResourceAddress, Target, string_list};
use crate::schemas::{SERVER_KIND, SchemaCatalog, Targets};

/// The kind that names a set of instances for `spec.on.group`: it only
/// selects, so what it changes shows as resources added or removed.
pub const GROUP_KIND: &str = "Group";

pub fn expand(
    objects: &[ManifestObject],
    schema_valid: &[bool],
    index: &ObjectIndex,
    catalog: &SchemaCatalog,
) -> (Vec<Resource>, Vec<Diagnostic>) {
    let mut resources = Vec::new();
    let mut found = Vec::new();
    let mut groups = GroupMembers::default();
    // Every kind whose objects are instances (of any engine).
    let instances = catalog.instance_kinds(None);
    for (position, object) in objects.iter().enumerate() {
        if !schema_valid[position] {
            continue;
        }
        let Some(info) = catalog.kind(&object.kind) else {
            continue;
        };
        if !info.is_resource {
            continue;
        }
        let address = |target: Option<&str>| ResourceAddress {
            kind: object.kind.clone(),
            name: object.name.clone(),
            target: target.map(str::to_string),
        };
        match &info.targets {
            Targets::None => resources.push(Resource {
                address: address(None),
                object: position,
                target: Target::None,
                lead: None,
            }),
            Targets::Spans(spans) => {
                let targets: Vec<Target> = spans
                    .targets_of(&object.document)
                    .into_iter()
                    .filter_map(|(_, name)| {
                        if instance_kind(&name, index, &instances).is_some() {
                            Some(Target::Instance(name))
                        } else {
                            // A dangling name is reported by the reference check.
                            index.find(SERVER_KIND, &name).map(|_| Target::Server(name))
                        }
                    })
                    .collect();
                // A lead that is not one of the targets is the kind's own
                // validation error (a desired primary that is no replica).
                let lead = spans.lead_of(&object.document).filter(|lead| {
                    targets
                        .iter()
                        .any(|target| target.name() == Some(lead.as_str()))
                });
                if targets.is_empty() {
                    // Names no target (yet): still one resource, so that
                    // the plan shows it is not converged anywhere.
                    resources.push(Resource {
                        address: address(None),
                        object: position,
                        target: Target::None,
                        lead: None,
                    });
                }
                for target in targets {
                    resources.push(Resource {
                        address: address(target.name()),
                        object: position,
                        target,
                        lead: lead.clone(),
                    });
                }
            }
            Targets::Instances => {
                let wanted = Wanted {
                    kinds: catalog.instance_kinds(info.engine.as_deref()),
                    described: catalog.describe_engine(info.engine.as_deref()),
                };
                let selected =
                    select_instances(object, &wanted, &instances, index, &mut groups, &mut found);
                if selected.is_empty() && !names_dangling(object, index, &instances) {
                    found.push(object.warning_at(
                        "/spec/on",
                        format!(
                            "selector matches no {} instance; this object applies nowhere",
                            wanted.described
                        ),
                    ));
                }
                for instance in selected {
                    resources.push(Resource {
                        address: address(Some(&instance)),
                        object: position,
                        target: Target::Instance(instance),
                        lead: None,
                    });
                }
            }
            Targets::Servers => {
                let selected = select_servers(object, index, &mut groups, &instances);
                if selected.is_empty() && !names_dangling(object, index, &instances) {
                    found.push(object.warning_at(
                        "/spec/on",
                        "selector matches no server; this object applies nowhere",
                    ));
                }
                for server in selected {
                    resources.push(Resource {
                        address: address(Some(&server)),
                        object: position,
                        target: Target::Server(server),
                        lead: None,
                    });
                }
            }
        }
    }
    (resources, found)
}

/// Whether the selector names something that does not exist: that is already
/// an error, and an "applies nowhere" warning on top would only be noise.
fn names_dangling(object: &ManifestObject, index: &ObjectIndex, instances: &[&str]) -> bool {
    let selector = object.spec().get("on");
    let named = |key: &str| string_list(selector, key);
    let group_missing = selector
        .and_then(|selector| selector.get("group"))
        .and_then(Value::as_str)
        .is_some_and(|group| index.find(GROUP_KIND, group).is_none());
    group_missing
        || named("instances")
            .iter()
            .any(|name| instance_kind(name, index, instances).is_none())
        || named("servers")
            .iter()
            .any(|name| index.find(SERVER_KIND, name).is_none())
}

fn labels_match(object: &ManifestObject, wanted: Option<&Value>) -> bool {
    let Some(Value::Object(wanted)) = wanted else {
        return false;
    };
    let labels = object.document.pointer("/metadata/labels");
    wanted.iter().all(|(key, value)| {
        value.is_string() && labels.and_then(|labels| labels.get(key)) == Some(value)
    })
}

/// Group memberships, computed once per group.
#[derive(Default)]
struct GroupMembers {
    members: std::collections::HashMap<String, std::rc::Rc<BTreeSet<String>>>,
}

impl GroupMembers {
    fn of(
        &mut self,
        group: &ManifestObject,
        index: &ObjectIndex,
        instances: &[&str],
    ) -> std::rc::Rc<BTreeSet<String>> {
        self.members
            .entry(group.name.clone())
            .or_insert_with(|| std::rc::Rc::new(group_instances(group, index, instances)))
            .clone()
    }
}

/// Names of the instances in a Group: listed members plus label matches.
fn group_instances(
    group: &ManifestObject,
    index: &ObjectIndex,
    instances: &[&str],
) -> BTreeSet<String> {
    let mut members: BTreeSet<String> = string_list(Some(group.spec()), "members")
        .into_iter()
        .map(str::to_string)
        .collect();
    if let Some(wanted) = group.spec().get("matchLabels") {
        for kind in instances {
            for instance in index.of_kind(kind) {
                if labels_match(instance, Some(wanted)) {
                    members.insert(instance.name.clone());
                }
            }
        }
    }
    members
}

/// The instance named `name`, of any of the `instances` kinds.
fn instance_kind<'a>(
    name: &str,
    index: &ObjectIndex<'a>,
    instances: &[&str],
) -> Option<&'a ManifestObject> {
    instances.iter().find_map(|kind| index.get(kind, name))
}

/// The instances a kind applies to: their kinds, and how messages name them.
struct Wanted<'a> {
    kinds: Vec<&'a str>,
    described: String,
}

fn select_instances(
    object: &ManifestObject,
    wanted: &Wanted,
    instances: &[&str],
    index: &ObjectIndex,
    groups: &mut GroupMembers,
    found: &mut Vec<Diagnostic>,
) -> BTreeSet<String> {
    let selector = object.spec().get("on").unwrap_or(&Value::Null);
    let wanted_kinds = &wanted.kinds;
    let mut selected = BTreeSet::new();
    if let Some(group_name) = selector.get("group").and_then(Value::as_str)
        && let Some(group) = index.get(GROUP_KIND, group_name)
    {
        for member in groups.of(group, index, instances).iter() {
            if instance_kind(member, index, instances)
                .is_some_and(|instance| wanted_kinds.contains(&instance.kind.as_str()))
            {
                selected.insert(member.clone());
            }
        }
    }
    if let Some(wanted) = selector.get("matchLabels") {
        for kind in wanted_kinds {
            for instance in index.of_kind(kind) {
                if labels_match(instance, Some(wanted)) {
                    selected.insert(instance.name.clone());
                }
            }
        }
    }
    for (position, name) in selector
        .get("instances")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(name) = name.as_str() else {
            continue;
        };
        match instance_kind(name, index, instances) {
            Some(instance) if wanted_kinds.contains(&instance.kind.as_str()) => {
                selected.insert(name.to_string());
            }
            Some(instance) => found.push(object.error_at(
                &format!("/spec/on/instances/{position}"),
                format!(
                    "{} applies to {} instances, but `{name}` is a {}",
                    object.kind, wanted.described, instance.kind
                ),
            )),
            // A dangling name is reported by the reference check.
            None => {}
        }
    }
    selected
}

fn select_servers(
    object: &ManifestObject,
    index: &ObjectIndex,
    groups: &mut GroupMembers,
    instances: &[&str],
) -> BTreeSet<String> {
    let selector = object.spec().get("on").unwrap_or(&Value::Null);
    let mut selected = BTreeSet::new();
    let add_host_of = |instance_name: &str, selected: &mut BTreeSet<String>| {
        if let Some(server) = instance_kind(instance_name, index, instances)
            .and_then(|instance| instance.spec_str("server"))
            && index.find(SERVER_KIND, server).is_some()
        {
            selected.insert(server.to_string());
        }
    };
    if let Some(group) = selector
        .get("group")
        .and_then(Value::as_str)
        .and_then(|name| index.get(GROUP_KIND, name))
    {
        for member in groups.of(group, index, instances).iter() {
            add_host_of(member, &mut selected);
        }
    }
    for name in string_list(Some(selector), "instances") {
        add_host_of(name, &mut selected);
    }
    for name in string_list(Some(selector), "servers") {
        if index.find(SERVER_KIND, name).is_some() {
            selected.insert(name.to_string());
        }
    }
    if let Some(wanted) = selector.get("matchLabels") {
        for server in index.of_kind(SERVER_KIND) {
            if labels_match(server, Some(wanted)) {
                selected.insert(server.name.clone());
            }
        }
    }
    selected
}
