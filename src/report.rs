//! Rendering plans, apply reports and drift reports for people and machines:
//! human text (coloured on a terminal, readable without), JSON, Markdown
//! pull-request comments, JUnit XML and Prometheus text. Pure: strings in,
//! strings out; the output layer prints them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::model::plan::{Action, DriftStatus, Plan, ResourceChange, TargetError, UnmanagedObject};
use crate::ops::apply::{ApplyReport, Outcome};
use crate::ops::diff::display_value;

/// GitHub's limit for one comment is 65,536 characters; stay clear of it.
pub const COMMENT_LIMIT: usize = 65_000;
/// Printed between Markdown comments when a plan needs several.
pub const COMMENT_SEPARATOR: &str = "<!-- fleetform: next comment -->";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftFormat {
    Human,
    Json,
    Markdown,
    Junit,
    Prometheus,
}

/// ANSI colours, or none.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_string()
        }
    }

    fn action(self, action: Action) -> String {
        let code = match action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::NoOp => "0",
        };
        self.paint(code, action.symbol())
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

fn by_target(plan: &Plan) -> BTreeMap<&str, Vec<&ResourceChange>> {
    let mut targets: BTreeMap<&str, Vec<&ResourceChange>> = BTreeMap::new();
    for change in &plan.resource_changes {
        targets
            .entry(change.target.as_str())
            .or_default()
            .push(change);
    }
    targets
}

/// One root cause the reports say once (a secret that is not set, a
/// connection refused): the targets it kept from being read, each with the
/// number of its resources that were not planned, and the other resources
/// it blocks, each with what its own message adds.
struct Problem<'a> {
    cause: &'a str,
    targets: Vec<(&'a TargetError, usize)>,
    resources: Vec<&'a ResourceChange>,
}

/// How many resources a problem names before it counts the rest (the JSON
/// plan lists every one).
const NAMED_RESOURCES: usize = 10;

/// The plan's errors grouped by cause, in the order they first appear:
/// target errors first, then resources blocked by a shared cause.
fn problems(plan: &Plan) -> Vec<Problem<'_>> {
    let mut problems: Vec<Problem<'_>> = Vec::new();
    fn entry<'a, 'p>(problems: &'p mut Vec<Problem<'a>>, cause: &'a str) -> &'p mut Problem<'a> {
        let index = match problems.iter().position(|problem| problem.cause == cause) {
            Some(index) => index,
            None => {
                problems.push(Problem {
                    cause,
                    targets: Vec::new(),
                    resources: Vec::new(),
                });
                problems.len() - 1
            }
        };
        &mut problems[index]
    }
    for error in &plan.target_errors {
        let cause = error.cause.as_deref().unwrap_or(&error.message);
        let blocked = plan
            .resource_changes
            .iter()
            .filter(|change| said_under_target(plan, change) && change.target == error.target)
            .count();
        entry(&mut problems, cause).targets.push((error, blocked));
    }
    for change in &plan.resource_changes {
        if let Some(cause) = &change.cause
            && said_once(change)
            && !said_under_target(plan, change)
        {
            entry(&mut problems, cause).resources.push(change);
        }
    }
    problems
}

/// Whether the reports say `change`'s error once, with others it shares a
/// cause with, instead of under the resource.
fn said_once(change: &ResourceChange) -> bool {
    change.cause.is_some() && change.blocked.as_ref().is_some_and(|b| b.is_error())
}

/// Whether `change` is blocked because its target could not be read: the
/// reports count it under the target's error.
fn said_under_target(plan: &Plan, change: &ResourceChange) -> bool {
    said_once(change)
        && plan.target_errors.iter().any(|error| {
            error.target == change.target && error.cause.as_ref() == change.cause.as_ref()
        })
        && matches!(
            change.blocked,
            Some(crate::model::plan::Blocked::DiscoveryFailed(_))
        )
}

/// What `message` says beyond `cause` (empty when nothing).
fn context_of<'a>(message: &'a str, cause: &str) -> &'a str {
    message
        .strip_suffix(cause)
        .map(|rest| rest.trim_end_matches(": ").trim_end())
        .unwrap_or(message)
}

/// The problems as plain lines: `error: cause` and, indented, each target
/// and resource it stops (`prefix` starts the indented ones).
fn problem_lines(plan: &Plan, style: Style, quote: &str) -> Vec<(String, Vec<String>)> {
    problems(plan)
        .into_iter()
        .map(|problem| {
            let mut lines = Vec::new();
            for (error, blocked) in &problem.targets {
                let context = context_of(&error.message, problem.cause);
                let mut line = format!("{quote}{}{quote}", error.target);
                if !context.is_empty() {
                    let _ = write!(line, ": {}", context.replace('\n', " "));
                }
                line.push_str(&not_planned_count(*blocked));
                lines.push(line);
            }
            for change in problem.resources.iter().take(NAMED_RESOURCES) {
                let message = change.blocked.as_ref().map(|b| b.message()).unwrap_or("");
                let context = context_of(message, problem.cause);
                let mut line = format!("{quote}{}{quote}", change.address);
                if !context.is_empty() {
                    let _ = write!(line, ": {}", context.replace('\n', " "));
                }
                lines.push(line);
            }
            if problem.resources.len() > NAMED_RESOURCES {
                lines.push(format!(
                    "and {} more resources (the JSON plan lists every one)",
                    problem.resources.len() - NAMED_RESOURCES
                ));
            }
            // What stops one target or resource alone: one line, its whole message.
            let single = match (problem.targets.as_slice(), problem.resources.as_slice()) {
                ([(error, blocked)], []) => {
                    Some((error.target.as_str(), error.message.as_str(), *blocked))
                }
                ([], [change]) => Some((
                    change.address.as_str(),
                    change.blocked.as_ref().map(|b| b.message()).unwrap_or(""),
                    0,
                )),
                _ => None,
            };
            if let Some((subject, message, count)) = single {
                let mut line =
                    format!("{} {quote}{subject}{quote}: {message}", style.red("error:"));
                line.push_str(&not_planned_count(count));
                return (line, Vec::new());
            }
            (format!("{} {}", style.red("error:"), problem.cause), lines)
        })
        .collect()
}

/// ` (N resources not planned)`, or nothing for none.
fn not_planned_count(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => " (1 resource not planned)".into(),
        many => format!(" ({many} resources not planned)"),
    }
}

/// What a plan against a base revision covers, as lines: the objects that
/// changed, then each resource planned with why (`quote` marks names).
fn scope_lines(plan: &Plan, quote: &str) -> Vec<String> {
    let Some(scope) = &plan.scope else {
        return Vec::new();
    };
    let base = match &scope.base_commit {
        Some(commit) => format!("{} ({})", scope.base, &commit[..commit.len().min(12)]),
        None => scope.base.clone(),
    };
    let mut lines = Vec::new();
    match &scope.everything {
        Some(reason) => lines.push(format!(
            "Compared with {base}: planning the whole environment, because {reason}"
        )),
        None => {
            let targets: std::collections::BTreeSet<&str> = plan
                .resource_changes
                .iter()
                .map(|change| change.target.as_str())
                .collect();
            let count = |count: usize, one: &str, many: &str| {
                format!("{count} {}", if count == 1 { one } else { many })
            };
            lines.push(format!(
                "Compared with {base}: {} changed; planning {} on {}",
                count(scope.changed_objects.len(), "object", "objects"),
                count(scope.included.len(), "resource", "resources"),
                count(targets.len(), "target", "targets")
            ));
        }
    }
    for object in &scope.changed_objects {
        lines.push(format!("  {} {quote}{}{quote}", object.why, object.address));
    }
    if scope.everything.is_none() {
        for entry in &scope.included {
            lines.push(format!(
                "  planned {quote}{}{quote}: {}",
                entry.address, entry.why
            ));
        }
        for address in &scope.removed {
            lines.push(format!(
                "  removed {quote}{address}{quote}: pruned only with --prune"
            ));
        }
    }
    lines
}

/// The problems as text for a terminal or a CI log.
fn problems_human(plan: &Plan, style: Style, out: &mut String, gap: &str) {
    for (heading, lines) in problem_lines(plan, style, "") {
        let _ = writeln!(out, "{gap}{heading}");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

pub fn summary_sentence(plan: &Plan) -> String {
    let summary = &plan.summary;
    let mut sentence = format!(
        "{} to create, {} to update, {} to replace, {} to delete, {} unchanged",
        summary.create, summary.update, summary.replace, summary.delete, summary.no_op
    );
    if summary.record > 0 {
        let _ = write!(
            sentence,
            " ({} to record, after an interrupted apply)",
            summary.record
        );
    }
    if summary.blocked > 0 {
        let _ = write!(sentence, ", {} blocked", summary.blocked);
    }
    if summary.drifted > 0 {
        let _ = write!(
            sentence,
            "; {} drifted since the last apply",
            summary.drifted
        );
    }
    sentence
}

fn header(plan: &Plan) -> String {
    let mut text = format!("environment {}", plan.environment);
    if let Some(commit) = &plan.commit {
        let _ = write!(text, ", commit {}", &commit[..commit.len().min(12)]);
    }
    text
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

/// The plan for a terminal or a CI log.
/// The heading of the kinds that are validated but not planned.
const NOT_PLANNED_HEADING: &str =
    "Not planned (validated; no module converges them on their targets yet):";

/// One line per kind that is not planned: `Kind (why): resource, resource`.
fn not_planned_lines(plan: &Plan, quote: &str) -> Vec<String> {
    plan.not_planned
        .iter()
        .map(|entry| {
            let resources: Vec<String> = entry
                .resources
                .iter()
                .map(|address| format!("{quote}{address}{quote}"))
                .collect();
            format!(
                "{} ({}): {}",
                entry.kind,
                entry.reason,
                resources.join(", ")
            )
        })
        .collect()
}

pub fn plan_human(plan: &Plan, style: Style, show_unchanged: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("fleetform plan: {}", header(plan)))
    );
    let scope = scope_lines(plan, "");
    if !scope.is_empty() {
        let _ = writeln!(out);
        for line in scope {
            let _ = writeln!(out, "{line}");
        }
    }
    problems_human(plan, style, &mut out, "\n");
    for (target, changes) in by_target(plan) {
        let visible: Vec<_> = changes
            .iter()
            .filter(|change| !said_once(change))
            .filter(|change| {
                show_unchanged
                    || change.action != Action::NoOp
                    || change.record.is_some()
                    || change.blocked.is_some()
                    || change.risks().next().is_some()
            })
            .collect();
        if visible.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", style.bold(target));
        for change in visible {
            resource_human(&mut out, change, style);
        }
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            style.bold("Not in the manifests (listed, never touched):")
        );
        for object in &plan.unmanaged {
            let owned =
                ownership_note(object, " (created by fleetform: deleted only with --prune)");
            let _ = writeln!(
                out,
                "  {} {}@{}{owned}",
                object.kind, object.identity, object.target
            );
        }
    }
    if !plan.not_planned.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold(NOT_PLANNED_HEADING));
        for line in not_planned_lines(plan, "") {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "\n{} {}", style.bold("Plan:"), summary_sentence(plan));
    out
}

fn resource_human(out: &mut String, change: &ResourceChange, style: Style) {
    let drift = match change.drift {
        DriftStatus::Drifted => " (drifted: changed outside fleetform since the last apply)",
        _ => "",
    };
    let prune = if change.prune {
        " (prune: created by fleetform, no longer in the manifests)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  {} {}{}{}",
        style.action(change.action),
        change.address,
        drift,
        prune
    );
    if let Some(blocked) = &change.blocked {
        let label = if blocked.is_error() {
            style.red("error:")
        } else {
            style.dim("note:")
        };
        out.push_str(&indent(&format!("{label} {}", blocked.message()), "      "));
    }
    for check in &change.checked_at_apply {
        out.push_str(&indent(
            &format!("{} {check}", style.dim("note:")),
            "      ",
        ));
    }
    if let Some(record) = &change.record {
        out.push_str(&indent(
            &format!("{} {record}", style.dim("record:")),
            "      ",
        ));
    }
    for item in &change.items {
        let multi = change.items.len() > 1
            || matches!(
                change.kind.as_str(),
                "PostgresSettings" | "PostgresRoleSettings"
            );
        if item.action == Action::NoOp && item.risks.is_empty() {
            continue;
        }
        let prefix = if multi {
            let _ = writeln!(out, "      {} {}", style.action(item.action), item.identity);
            "          "
        } else {
            "      "
        };
        for field in &item.changes {
            let mut line = format!(
                "{}: {} -> {}",
                field.field,
                display_value(&field.before),
                display_value(&field.after)
            );
            let structured =
                field.text_diff.is_some() && (field.after.is_array() || field.after.is_object());
            if structured {
                // The line diff below says what differs.
                line = format!("{}:", field.field);
            }
            if !field.added.is_empty() || !field.removed.is_empty() {
                line = format!(
                    "{}: add {}, remove {}",
                    field.field,
                    serde_json::Value::from(field.added.clone()),
                    serde_json::Value::from(field.removed.clone())
                );
            }
            if let Some(reason) = &field.forces_replace {
                let _ = write!(line, "  (forces replacement: {reason})");
            }
            out.push_str(&indent(&line, prefix));
            if let Some(text_diff) = &field.text_diff {
                out.push_str(&indent(text_diff, &format!("{prefix}  ")));
            }
        }
        for risk in &item.risks {
            out.push_str(&indent(
                &format!("[{}] {}", risk.mark.label(), risk.message),
                prefix,
            ));
        }
        if !item.script.is_empty() {
            out.push_str(&indent(
                &style.dim(item.script.trim_end()),
                &format!("{prefix}| "),
            ));
        }
        if !item.host_script.is_empty() {
            out.push_str(&indent("then, on the host it runs on:", prefix));
            out.push_str(&indent(
                &style.dim(item.host_script.trim_end()),
                &format!("{prefix}| "),
            ));
        }
    }
    if !change.after_script.is_empty() {
        let then = if change.after_through_host {
            "then, once, on the host it runs on:"
        } else {
            "then, once:"
        };
        out.push_str(&indent(then, "      "));
        out.push_str(&indent(
            &style.dim(change.after_script.trim_end()),
            "          | ",
        ));
    }
    if !change.restart_script.is_empty() {
        out.push_str(&indent(
            &format!(
                "[restart] then restart {} (shell on its server):",
                change.target
            ),
            "      ",
        ));
        out.push_str(&indent(
            &style.dim(change.restart_script.trim_end()),
            "          | ",
        ));
    }
}

/// What the plan says of an unmanaged object's ownership (`owned`: how
/// an object this environment owns is listed).
fn ownership_note(object: &UnmanagedObject, owned: &str) -> String {
    match &object.owned_by {
        Some(environment) if environment.is_empty() => " (created by fleetform, for no recorded environment: never pruned; apply it from its environment to record it)".into(),
        Some(environment) => format!(" (owned by environment {environment}: never pruned from this one)"),
        None if object.unrecorded => " (carries this environment's marker, but this instance's ledger never recorded it in this database, as with a copy of a database fleetform created: never pruned)".into(),
        None if object.owned => owned.into(),
        None => String::new(),
    }
}

/// The plan as a pull-request comment, split into comments below the limit;
/// a block (one resource) is never cut.
pub fn plan_markdown(plan: &Plan) -> Vec<String> {
    let mut head = format!(
        "### fleetform plan: {}\n\n**{}**\n",
        header(plan),
        summary_sentence(plan)
    );
    let scope = scope_lines(plan, "`");
    if let Some((first, rest)) = scope.split_first() {
        let _ = write!(head, "\n<details><summary>{first}</summary>\n\n");
        for line in rest {
            let _ = writeln!(head, "- {}", line.trim_start());
        }
        head.push_str("\n</details>\n");
    }
    for (heading, lines) in problem_lines(plan, Style { color: false }, "`") {
        let heading = heading.trim_start_matches("error: ");
        let _ = write!(head, "\n> **error** {}\n", heading.replace('\n', " "));
        for line in lines {
            let _ = writeln!(head, "> - {line}");
        }
    }
    if !plan.resource_drift.is_empty() {
        let _ = write!(
            head,
            "\nDrifted since the last apply: {}\n",
            plan.resource_drift
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut blocks = Vec::new();
    for (target, changes) in by_target(plan) {
        let changing: Vec<_> = changes
            .iter()
            .filter(|change| {
                !said_once(change)
                    && (change.action != Action::NoOp
                        || change.record.is_some()
                        || change.blocked.is_some())
            })
            .collect();
        if changing.is_empty() {
            continue;
        }
        let counts = changing.len();
        let opening = format!(
            "\n<details><summary><b>{target}</b>: {counts} resource(s) to change</summary>\n\n"
        );
        let closing = "\n</details>\n".to_string();
        for change in changing {
            let mut block = String::new();
            let _ = writeln!(
                block,
                "#### `{}` {}",
                change.action.symbol(),
                change.address
            );
            if let Some(blocked) = &change.blocked {
                let _ = writeln!(block, "\n> {}\n", blocked.message().replace('\n', "\n> "));
            }
            for check in &change.checked_at_apply {
                let _ = writeln!(block, "\n> note: {check}\n");
            }
            if let Some(record) = &change.record {
                let _ = writeln!(block, "\n> record: {record}\n");
            }
            let multi = change.items.len() > 1
                || matches!(
                    change.kind.as_str(),
                    "PostgresSettings" | "PostgresRoleSettings"
                );
            for item in &change.items {
                let subject = if multi {
                    format!("**{}** ", item.identity)
                } else {
                    String::new()
                };
                for field in &item.changes {
                    match &field.text_diff {
                        Some(diff) if field.after.is_array() || field.after.is_object() => {
                            let fence = fence_for(diff);
                            let _ = write!(
                                block,
                                "- {subject}`{}`:\n\n{fence}diff\n{diff}{fence}\n",
                                field.field
                            );
                        }
                        _ => {
                            let _ = writeln!(
                                block,
                                "- {subject}`{}`: {} → {}",
                                field.field,
                                display_value(&field.before),
                                display_value(&field.after)
                            );
                        }
                    }
                }
                for risk in &item.risks {
                    let _ = writeln!(block, "- **{}**: {}", risk.mark.label(), risk.message);
                }
                if !item.script.is_empty() {
                    let fence = fence_for(&item.script);
                    let _ = write!(block, "\n{fence}sql\n{}{fence}\n", item.script);
                }
                if !item.host_script.is_empty() {
                    let fence = fence_for(&item.host_script);
                    let _ = write!(
                        block,
                        "\nthen, on the host it runs on:\n\n{fence}\n{}{fence}\n",
                        item.host_script
                    );
                }
            }
            if !change.after_script.is_empty() {
                let fence = fence_for(&change.after_script);
                let (then, language) = if change.after_through_host {
                    ("then, once, on the host it runs on", "")
                } else {
                    ("then, once", "sql")
                };
                let _ = write!(
                    block,
                    "\n{then}:\n\n{fence}{language}\n{}{fence}\n",
                    change.after_script
                );
            }
            if !change.restart_script.is_empty() {
                let fence = fence_for(&change.restart_script);
                let _ = write!(
                    block,
                    "\nthen **restart** `{}`:\n\n{fence}sh\n{}{fence}\n",
                    change.target, change.restart_script
                );
            }
            blocks.push((target.to_string(), opening.clone(), block, closing.clone()));
        }
    }
    if !plan.unmanaged.is_empty() {
        let mut block =
            String::from("\n<details><summary>Not in the manifests (never touched)</summary>\n\n");
        for object in &plan.unmanaged {
            let _ = writeln!(
                block,
                "- {} `{}` on `{}`{}",
                object.kind,
                object.identity,
                object.target,
                ownership_note(object, " (owned: deleted with --prune)")
            );
        }
        block.push_str("\n</details>\n");
        blocks.push((String::new(), String::new(), block, String::new()));
    }
    if !plan.not_planned.is_empty() {
        let mut block = format!("\n<details><summary>{NOT_PLANNED_HEADING}</summary>\n\n");
        for line in not_planned_lines(plan, "`") {
            let _ = writeln!(block, "- {line}");
        }
        block.push_str("\n</details>\n");
        blocks.push((String::new(), String::new(), block, String::new()));
    }
    pack_comments(head, blocks)
}

/// A fence longer than any backtick run inside the text.
fn fence_for(text: &str) -> String {
    let longest = text
        .split(|character| character != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Pack (section, opening, block, closing) into comments under the limit,
/// reopening a section in the next comment when it continues there.
fn pack_comments(head: String, blocks: Vec<(String, String, String, String)>) -> Vec<String> {
    let mut comments = Vec::new();
    let mut current = head;
    let mut open_section: Option<(String, String)> = None;
    for (section, opening, block, closing) in blocks {
        let switching = open_section
            .as_ref()
            .map(|(name, _)| name != &section)
            .unwrap_or(true);
        let needed = block.len()
            + if switching {
                opening.len() + closing.len()
            } else {
                closing.len()
            };
        if current.len() + needed > COMMENT_LIMIT && current.len() > 200 {
            if let Some((_, closing)) = &open_section {
                current.push_str(closing);
            }
            comments.push(std::mem::take(&mut current));
            current = format!(
                "### fleetform plan (continued, part {})\n",
                comments.len() + 1
            );
            open_section = None;
        }
        let switching = open_section
            .as_ref()
            .map(|(name, _)| name != &section)
            .unwrap_or(true);
        if switching {
            if let Some((_, closing)) = open_section.take() {
                current.push_str(&closing);
            }
            current.push_str(&opening);
            open_section = Some((section, closing));
        }
        current.push_str(&block);
    }
    if let Some((_, closing)) = open_section {
        current.push_str(&closing);
    }
    comments.push(current);
    comments
}

pub fn plan_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

pub fn apply_human(report: &ApplyReport, style: Style) -> String {
    let mut out = String::new();
    // What was not attempted on a target that stopped answering is said
    // once for the target, below.
    let failed: Vec<_> = report
        .outcomes
        .iter()
        .filter(|outcome| !outcome.outcome.is_success() && !outcome.not_attempted)
        .collect();
    let _ = writeln!(
        out,
        "\n{} {} converged, {} already converged, {} failed, {} not converged, {} skipped, {} refused (run {})",
        style.bold("Apply:"),
        report.count(Outcome::Converged),
        report.count(Outcome::AlreadyConverged),
        report.count(Outcome::Failed),
        report.count(Outcome::NotConverged),
        report.count(Outcome::Skipped),
        report.count(Outcome::Refused),
        report.run_id,
    );
    for outcome in failed {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            style.red(outcome.outcome.name()),
            outcome.address,
            outcome
                .message
                .as_deref()
                .unwrap_or_default()
                .replace('\n', "\n      ")
        );
    }
    if let Some(interrupted) = &report.interrupted {
        let _ = writeln!(
            out,
            "  {} {}: what was in flight finished and is recorded; {} resources not attempted (recorded as skipped); apply again to converge the rest",
            style.red("stopped by"),
            interrupted.signal,
            interrupted.not_attempted,
        );
    }
    for (target, abandoned) in &report.abandoned {
        let _ = writeln!(
            out,
            "  {} {target} stopped answering ({}): {} resources not attempted, {} outcomes not recorded in its ledger; apply again once it answers (the next apply reads it again and converges the rest)",
            style.red("abandoned:"),
            abandoned.reason,
            abandoned.not_attempted,
            abandoned.unrecorded,
        );
    }
    for entry in &report.unrecorded {
        let _ = writeln!(
            out,
            "  {} {entry}",
            style.red("not recorded in the ledger:")
        );
    }
    out
}

/// The overall drift status: 3 drift, 2 pending only, 0 in sync.
pub fn drift_exit_code(plan: &Plan) -> u8 {
    if plan.has_errors() {
        1
    } else if plan
        .resource_changes
        .iter()
        .any(|change| change.drift == DriftStatus::Drifted)
    {
        3
    } else if plan.has_changes() {
        2
    } else {
        0
    }
}

fn drift_status_name(status: DriftStatus) -> &'static str {
    match status {
        DriftStatus::InSync => "in-sync",
        DriftStatus::Pending => "pending",
        DriftStatus::Drifted => "drifted",
    }
}

fn counts(plan: &Plan) -> (usize, usize, usize, usize) {
    let mut in_sync = 0;
    let mut pending = 0;
    let mut drifted = 0;
    let mut errors = 0;
    for change in &plan.resource_changes {
        if change
            .blocked
            .as_ref()
            .is_some_and(|blocked| blocked.is_error())
        {
            errors += 1;
            continue;
        }
        match change.drift {
            DriftStatus::InSync => in_sync += 1,
            DriftStatus::Pending => pending += 1,
            DriftStatus::Drifted => drifted += 1,
        }
    }
    (in_sync, pending, drifted, errors)
}

pub fn drift_render(plan: &Plan, format: DriftFormat, style: Style) -> String {
    let (in_sync, pending, drifted, errors) = counts(plan);
    match format {
        DriftFormat::Human => {
            let mut out = format!(
                "{}\n",
                style.bold(&format!("fleetform drift: {}", header(plan)))
            );
            problems_human(plan, style, &mut out, "");
            for change in &plan.resource_changes {
                if said_once(change) {
                    continue;
                }
                let has_notes = change.risks().next().is_some();
                if change.drift == DriftStatus::InSync && change.blocked.is_none() && !has_notes {
                    continue;
                }
                let label = match change.drift {
                    DriftStatus::Drifted => style.red("drifted"),
                    DriftStatus::Pending => "pending".to_string(),
                    DriftStatus::InSync if change.blocked.is_some() => "blocked".to_string(),
                    DriftStatus::InSync => "in sync, note:".to_string(),
                };
                let _ = writeln!(out, "  {label} {}", change.address);
                if let Some(blocked) = &change.blocked {
                    out.push_str(&indent(blocked.message(), "      "));
                }
                for item in &change.items {
                    for field in &item.changes {
                        let _ = writeln!(
                            out,
                            "      {} {}: live {} / manifest {}",
                            item.identity,
                            field.field,
                            display_value(&field.before),
                            display_value(&field.after)
                        );
                    }
                    for risk in &item.risks {
                        let _ = writeln!(
                            out,
                            "      {} [{}] {}",
                            item.identity,
                            risk.mark.label(),
                            risk.message
                        );
                    }
                }
            }
            if !plan.not_planned.is_empty() {
                let _ = writeln!(out, "{}", style.bold(NOT_PLANNED_HEADING));
                for line in not_planned_lines(plan, "") {
                    let _ = writeln!(out, "  {line}");
                }
            }
            let _ = writeln!(
                out,
                "{} {drifted} drifted, {pending} pending, {in_sync} in sync, {errors} with errors",
                style.bold("Drift:")
            );
            out
        }
        DriftFormat::Json => {
            let resources: Vec<_> = plan
                .resource_changes
                .iter()
                .map(|change| json!({
                    "address": change.address,
                    "kind": change.kind,
                    "target": change.target,
                    "status": drift_status_name(change.drift),
                    "action": change.action,
                    "blocked": change.blocked,
                    "items": change.items.iter().filter(|item| item.action != Action::NoOp).map(|item| json!({"identity": item.identity, "changes": item.changes})).collect::<Vec<_>>(),
                }))
                .collect();
            let document = json!({
                "format_version": crate::model::plan::PLAN_FORMAT_VERSION,
                "environment": plan.environment,
                "commit": plan.commit,
                "checked_at": plan.created_at,
                "exit_code": drift_exit_code(plan),
                "summary": {"in_sync": in_sync, "pending": pending, "drifted": drifted, "errors": errors},
                "resource_drift": plan.resource_drift,
                "resources": resources,
                "target_errors": plan.target_errors,
                "not_planned": plan.not_planned,
            });
            serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
        }
        DriftFormat::Markdown => {
            let mut out = format!(
                "### fleetform drift: {}\n\n**{drifted} drifted, {pending} pending, {in_sync} in sync, {errors} with errors**\n\n",
                header(plan)
            );
            if drifted + pending + errors > 0 {
                out.push_str("| resource | status | fields |\n|---|---|---|\n");
                for change in &plan.resource_changes {
                    if change.drift == DriftStatus::InSync && change.blocked.is_none() {
                        continue;
                    }
                    let fields = change.changed_fields();
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} |",
                        change.address,
                        drift_status_name(change.drift),
                        fields.join(", ").replace('|', "\\|")
                    );
                }
            }
            if !plan.not_planned.is_empty() {
                let _ = writeln!(out, "\n{NOT_PLANNED_HEADING}\n");
                for line in not_planned_lines(plan, "`") {
                    let _ = writeln!(out, "- {line}");
                }
            }
            out
        }
        DriftFormat::Junit => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            let not_planned: usize = plan
                .not_planned
                .iter()
                .map(|entry| entry.resources.len())
                .sum();
            let _ = writeln!(
                out,
                "<testsuite name=\"fleetform drift {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
                xml_escape(&plan.environment),
                plan.resource_changes.len() + not_planned,
                drifted,
                errors,
                pending + not_planned
            );
            for entry in &plan.not_planned {
                for address in &entry.resources {
                    let _ = writeln!(
                        out,
                        "  <testcase classname=\"{}\" name=\"{}\"><skipped message=\"not planned: {}\"/></testcase>",
                        xml_escape(&entry.kind),
                        xml_escape(address),
                        xml_escape(&entry.reason)
                    );
                }
            }
            for change in &plan.resource_changes {
                let _ = write!(
                    out,
                    "  <testcase classname=\"{}\" name=\"{}\">",
                    xml_escape(&change.kind),
                    xml_escape(&change.address)
                );
                if let Some(blocked) = change.blocked.as_ref().filter(|blocked| blocked.is_error())
                {
                    let _ = write!(
                        out,
                        "<error message=\"{}\"/>",
                        xml_escape(blocked.message())
                    );
                } else if change.drift == DriftStatus::Drifted {
                    let fields = change.changed_fields();
                    let _ = write!(
                        out,
                        "<failure type=\"drift\" message=\"changed outside fleetform: {}\"/>",
                        xml_escape(&fields.join(", "))
                    );
                } else if change.drift == DriftStatus::Pending {
                    out.push_str("<skipped message=\"pending: the manifests changed since the last apply\"/>");
                }
                out.push_str("</testcase>\n");
            }
            out.push_str("</testsuite>\n");
            out
        }
        DriftFormat::Prometheus => {
            let environment = prometheus_label(&plan.environment);
            let mut out = String::new();
            out.push_str("# HELP fleetform_drift_resources Resources of the environment by drift status.\n# TYPE fleetform_drift_resources gauge\n");
            for (status, count) in [
                ("in_sync", in_sync),
                ("pending", pending),
                ("drifted", drifted),
                ("error", errors),
            ] {
                let _ = writeln!(
                    out,
                    "fleetform_drift_resources{{environment=\"{environment}\",status=\"{status}\"}} {count}"
                );
            }
            out.push_str("# HELP fleetform_drift_resource_drifted 1 when the resource's live state moved away from what fleetform applied.\n# TYPE fleetform_drift_resource_drifted gauge\n");
            for change in &plan.resource_changes {
                let _ = writeln!(
                    out,
                    "fleetform_drift_resource_drifted{{environment=\"{environment}\",kind=\"{}\",target=\"{}\",resource=\"{}\"}} {}",
                    prometheus_label(&change.kind),
                    prometheus_label(&change.target),
                    prometheus_label(&change.address),
                    u8::from(change.drift == DriftStatus::Drifted)
                );
            }
            out.push_str("# HELP fleetform_drift_target_errors Instance errors: targets that could not be read, or that cannot do what the manifests ask.\n# TYPE fleetform_drift_target_errors gauge\n");
            let _ = writeln!(
                out,
                "fleetform_drift_target_errors{{environment=\"{environment}\"}} {}",
                plan.target_errors.len()
            );
            out.push_str("# HELP fleetform_drift_not_planned_resources Resources of kinds that no module converges on their targets yet, by kind.\n# TYPE fleetform_drift_not_planned_resources gauge\n");
            for entry in &plan.not_planned {
                let _ = writeln!(
                    out,
                    "fleetform_drift_not_planned_resources{{environment=\"{environment}\",kind=\"{}\",reason=\"{}\"}} {}",
                    prometheus_label(&entry.kind),
                    prometheus_label(&entry.reason),
                    entry.resources.len()
                );
            }
            out.push_str("# HELP fleetform_drift_exit_code The exit code of the drift run (0 in sync, 2 pending, 3 drift, 1 error).\n# TYPE fleetform_drift_exit_code gauge\n");
            let _ = writeln!(
                out,
                "fleetform_drift_exit_code{{environment=\"{environment}\"}} {}",
                drift_exit_code(plan)
            );
            out
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn prometheus_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_split_between_blocks_and_reopen_sections() {
        let block = "x".repeat(30_000);
        let blocks = (0..3)
            .map(|index| {
                (
                    format!("t{}", index / 2),
                    "<details>\n".to_string(),
                    format!("{block}\n"),
                    "</details>\n".to_string(),
                )
            })
            .collect();
        let comments = pack_comments("head\n".into(), blocks);
        assert_eq!(comments.len(), 2);
        for comment in &comments {
            assert!(comment.len() < COMMENT_LIMIT);
            assert_eq!(
                comment.matches("<details>").count(),
                comment.matches("</details>").count()
            );
        }
    }

    #[test]
    fn fences_are_longer_than_backticks_inside() {
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }

    #[test]
    fn prometheus_label_values_are_escaped() {
        assert_eq!(prometheus_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
