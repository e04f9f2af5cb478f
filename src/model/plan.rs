//! The plan: plain, serialisable data. What each resource needs (action,
//! changed fields, risks, the script shown to people) and the fingerprints
//! that let `apply PLAN` refuse what changed since.
//!
//! Nothing here holds a secret: sensitive values are `(sensitive)` before
//! they reach these types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::modules::RiskMark;

/// Version of the JSON plan document; bumped on any incompatible change.
pub const PLAN_FORMAT_VERSION: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    /// The symbol the plan prints before an address.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    /// Order of precedence when items of one resource need different actions.
    pub fn combine(self, other: Action) -> Action {
        self.max(other)
    }
}

/// One compared field whose observed value differs from the desired one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    /// Observed value (null when absent).
    pub before: Value,
    /// Desired value.
    pub after: Value,
    /// For list fields compared as sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Value>,
    /// A unified line diff, for long text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_diff: Option<String>,
    /// Why this change is not made in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forces_replace: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    pub mark: RiskMark,
    pub message: String,
}

/// One live object of a resource (most resources have exactly one; a
/// PostgresSettings resource has one per parameter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    pub identity: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<Risk>,
    /// The script as shown to people (secrets as `(sensitive)`); empty for no-op.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub script: String,
    /// What the action runs through the host the instance runs on (a module
    /// action `through: host`), after `script`, as shown to people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_script: String,
}

/// Why a resource is not planned normally.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum Blocked {
    /// A fixed field differs and the resource was not named with --replace.
    CannotChange(String),
    /// Its target could not be read.
    DiscoveryFailed(String),
    /// Its desired state could not be read (a secret that is not there).
    Unresolvable(String),
    /// A check of its module refuses it on what the target holds now (an
    /// object it names does not exist).
    Refused(String),
    /// Left to something else on the target (a database on an availability
    /// group's secondary replica is seeded and changed through the group).
    Deferred(String),
}

impl Blocked {
    pub fn message(&self) -> &str {
        match self {
            Blocked::CannotChange(message)
            | Blocked::DiscoveryFailed(message)
            | Blocked::Unresolvable(message)
            | Blocked::Refused(message)
            | Blocked::Deferred(message) => message,
        }
    }

    /// Whether this makes the plan fail (exit 1).
    pub fn is_error(&self) -> bool {
        !matches!(self, Blocked::Deferred(_))
    }
}

/// What happened to the live state since fleetform last converged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftStatus {
    /// Live state is what the ledger recorded (or nothing differs).
    InSync,
    /// The manifests moved away from what was applied (or it was never applied).
    Pending,
    /// The live state moved away from what the ledger recorded after the last apply.
    Drifted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: String,
    pub kind: String,
    pub target: String,
    /// The database the objects live in, for database-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub action: Action,
    pub items: Vec<ItemChange>,
    /// SHA-256 of the observed state of the resource's items (sensitive
    /// values included only as their own hash).
    pub observed_fingerprint: String,
    /// The same, per item: drift compares items that were applied before,
    /// so adding a parameter to the manifests is not mistaken for drift.
    #[serde(default)]
    pub observed_items: std::collections::BTreeMap<String, String>,
    /// SHA-256 of the desired state (a secret as its reference).
    pub desired_fingerprint: String,
    /// SHA-256 over the keyed, slow hashes of the secret values the
    /// resource uses (`Plan::secret_salt`): a secret changed after the plan
    /// makes the resource stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_fingerprint: Option<String>,
    pub drift: DriftStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Blocked>,
    /// What blocks it at the root, when that blocks others too (its target
    /// could not be read, a secret could not be read): reports say it once
    /// for all it blocks; `blocked` keeps this resource's own message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Checks of its module that refuse it on what the target holds now,
    /// while resources it depends on change the target first in this plan
    /// (the schema a grant names is created before it): evaluated again at
    /// apply, just before it runs, and then refusing it if they still do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checked_at_apply: Vec<String>,
    /// Run once after the items' scripts when any item changes (e.g. a reload).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub after_script: String,
    /// Whether `after_script` runs through the instance's host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_through_host: bool,
    /// The restart apply performs afterwards (the module's restart rule allows
    /// it and a parameter waits for one), as shown to people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restart_script: String,
    /// Not in the manifests: a prune deletion of an object fleetform owns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// Nothing to change, but an earlier apply was interrupted while
    /// converging it (its ledger has a `started` row and no outcome): apply
    /// records what it finds, so that drift and prune know it. Says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

impl ResourceChange {
    /// Whether apply has something to do: an action, or a ledger row to
    /// write for what an interrupted apply converged.
    pub fn has_changes(&self) -> bool {
        (self.action != Action::NoOp || self.record.is_some()) && self.blocked.is_none()
    }

    /// `identity field` of every changed field, for one-line summaries.
    pub fn changed_fields(&self) -> Vec<String> {
        self.items
            .iter()
            .flat_map(|item| {
                item.changes
                    .iter()
                    .map(move |change| format!("{} {}", item.identity, change.field))
            })
            .collect()
    }

    /// What still differs, item by item: an item that does not exist, one
    /// that still exists, or its fields (a verification's message).
    pub fn differences(&self) -> Vec<String> {
        self.items
            .iter()
            .flat_map(|item| match item.action {
                Action::Create => vec![format!("{} does not exist", item.identity)],
                Action::Delete => vec![format!("{} still exists", item.identity)],
                _ => item
                    .changes
                    .iter()
                    .map(|change| format!("{} {}", item.identity, change.field))
                    .collect(),
            })
            .collect()
    }

    pub fn risks(&self) -> impl Iterator<Item = &Risk> {
        self.items.iter().flat_map(|item| item.risks.iter())
    }
}

/// A live object of a managed kind that no manifest describes and fleetform
/// does not own: listed, never touched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnmanagedObject {
    pub kind: String,
    pub target: String,
    pub identity: String,
    /// Owned objects that left the manifests are only deleted with --prune.
    pub owned: bool,
    /// Created by fleetform for another environment (its name; empty for a
    /// marker that names none): never this environment's to delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// Carries this environment's marker, but the ledger never recorded it
    /// where it is (a copy): never pruned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unrecorded: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub no_op: usize,
    pub blocked: usize,
    pub drifted: usize,
    /// Unchanged resources whose ledger row apply writes (interrupted apply).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub record: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// A failure to read one target: its resources are blocked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetError {
    pub target: String,
    pub message: String,
    /// The innermost error of `message` (a secret that is not set, a
    /// connection refused), by which reports group the targets it stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub fleetform_version: String,
    pub environment: String,
    /// The git commit of the manifests, when they come from git.
    pub commit: Option<String>,
    pub created_at: String,
    /// The salt of the secrets' hashes (hex, random per plan).
    pub secret_salt: String,
    pub prune: bool,
    /// Resources allowed to be dropped and recreated (`--replace`).
    #[serde(default)]
    pub replace: Vec<String>,
    /// Prunes allowed to drop what they hold (`--destroy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destroy: Vec<String>,
    pub summary: PlanSummary,
    /// Resources whose live state moved away from what fleetform applied.
    pub resource_drift: Vec<String>,
    pub resource_changes: Vec<ResourceChange>,
    pub unmanaged: Vec<UnmanagedObject>,
    pub target_errors: Vec<TargetError>,
    /// Kinds of the manifests that fleetform does not converge on their
    /// targets yet: validated, listed once per kind and kind of target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_planned: Vec<NotPlanned>,
    /// What each target read was, so that a saved plan applies only there.
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, TargetPin>,
    /// `--base REV`: what changed since REV and why each resource is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::ops::changes::Scope>,
}

/// The server a target of the plan was: where it was reached and the facts
/// that tell it from any other (its engine's `identity`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetPin {
    /// How the connector named it (`PostgresInstance pg-a (host:port, user u)`).
    pub endpoint: String,
    #[serde(default)]
    pub identity: serde_json::Map<String, Value>,
}

impl TargetPin {
    /// Why `now` is not the server this pin was made of (None: it is).
    pub fn differs(&self, target: &str, now: &TargetPin) -> Option<String> {
        if self.endpoint != now.endpoint {
            return Some(format!(
                "the plan was made against {}, and the manifests now name {}: plan again",
                self.endpoint, now.endpoint
            ));
        }
        let changed: Vec<String> = self
            .identity
            .iter()
            .filter(|(fact, value)| now.identity.get(*fact) != Some(*value))
            .map(|(fact, value)| {
                let now = now.identity.get(fact).unwrap_or(&Value::Null);
                format!("{fact} {value} in the plan, {now} now")
            })
            .collect();
        (!changed.is_empty()).then(|| {
            format!(
                "{target} is not the server the plan was made against ({}): plan again",
                changed.join(", ")
            )
        })
    }
}

/// One kind that is not planned on one kind of target, and its resources.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotPlanned {
    pub kind: String,
    /// Why, as a person reads it: `no module for SQL Server instances yet`.
    pub reason: String,
    /// The resources (or, for definitions, the objects) that wait.
    pub resources: Vec<String>,
}

impl Plan {
    pub fn summarize(resource_changes: &[ResourceChange]) -> PlanSummary {
        let mut summary = PlanSummary::default();
        for change in resource_changes {
            if change.blocked.as_ref().is_some_and(Blocked::is_error) {
                summary.blocked += 1;
                continue;
            }
            match change.action {
                Action::NoOp => summary.no_op += 1,
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
            }
            if change.drift == DriftStatus::Drifted {
                summary.drifted += 1;
            }
            if change.record.is_some() {
                summary.record += 1;
            }
        }
        summary
    }

    pub fn has_errors(&self) -> bool {
        !self.target_errors.is_empty()
            || self
                .resource_changes
                .iter()
                .any(|change| change.blocked.as_ref().is_some_and(Blocked::is_error))
    }

    pub fn has_changes(&self) -> bool {
        self.resource_changes
            .iter()
            .any(ResourceChange::has_changes)
    }
}
