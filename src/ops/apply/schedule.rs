//! The order an apply converges in, without IO: dependency order,
//! independent work in parallel up to a limit, kinds whose module is
//! `serial` one at a time per target, and prune deletions one at a time
//! after everything else (in the order the plan lists them). What depends
//! on something that did not converge is skipped; what waits for something
//! that can never finish is skipped too.

use std::collections::{BTreeMap, BTreeSet};

/// One piece of work and what the scheduler needs to know about it.
pub(crate) struct Job<T> {
    pub address: String,
    /// Addresses that must converge first.
    pub dependencies: Vec<String>,
    /// Work with the same key never runs at the same time (a serial kind
    /// on one target); none: no such limit.
    pub serial_key: Option<(String, String)>,
    /// A prune deletion: after everything else, one at a time.
    pub deletion: bool,
    pub work: T,
}

/// What to do next.
pub(crate) enum Next<T> {
    /// Start this work.
    Start(T),
    /// Do not run it, for this reason; it counts as not converged.
    Skip(T, String),
    /// Wait for running work to finish, then report it with `finish`.
    Wait,
    /// Nothing is left.
    Done,
}

pub(crate) struct Scheduler<T> {
    remaining: Vec<Job<T>>,
    deletions: Vec<Job<T>>,
    /// Addresses of all the work, to tell a dependency of this apply from
    /// one outside it.
    pending: BTreeSet<String>,
    /// Address to whether it converged.
    finished: BTreeMap<String, bool>,
    /// Running work: address to its serial key.
    running: BTreeMap<String, Option<(String, String)>>,
    limit: usize,
}

impl<T> Scheduler<T> {
    /// `finished`: what is settled already (true: converged), such as
    /// resources that could not be planned.
    pub fn new(jobs: Vec<Job<T>>, limit: usize, finished: BTreeMap<String, bool>) -> Self {
        let pending = jobs.iter().map(|job| job.address.clone()).collect();
        let (deletions, remaining) = jobs.into_iter().partition(|job| job.deletion);
        Scheduler {
            remaining,
            deletions,
            pending,
            finished,
            running: BTreeMap::new(),
            limit: limit.max(1),
        }
    }

    /// Record that the work at `address` finished (or was skipped).
    pub fn finish(&mut self, address: &str, converged: bool) {
        self.running.remove(address);
        self.finished.insert(address.to_string(), converged);
    }

    pub fn next(&mut self) -> Next<T> {
        if self.running.len() < self.limit {
            let startable = self.remaining.iter().position(|job| {
                let waiting = job.dependencies.iter().any(|dependency| {
                    self.pending.contains(dependency) && !self.finished.contains_key(dependency)
                });
                let serial_busy = job.serial_key.as_ref().is_some_and(|key| {
                    self.running
                        .values()
                        .any(|running| running.as_ref() == Some(key))
                });
                !waiting && !serial_busy
            });
            if let Some(index) = startable {
                let job = self.remaining.remove(index);
                let failed = job
                    .dependencies
                    .iter()
                    .find(|dependency| self.finished.get(*dependency) == Some(&false));
                if let Some(dependency) = failed {
                    let reason = format!("depends on {dependency}, which did not converge");
                    self.finished.insert(job.address.clone(), false);
                    return Next::Skip(job.work, reason);
                }
                self.running
                    .insert(job.address.clone(), job.serial_key.clone());
                return Next::Start(job.work);
            }
        }
        if !self.running.is_empty() {
            return Next::Wait;
        }
        if self.remaining.is_empty() {
            if self.deletions.is_empty() {
                return Next::Done;
            }
            // Deletions run one at a time, after everything else.
            let deletion = self.deletions.remove(0);
            self.remaining.push(deletion);
            return self.next();
        }
        // Only blocked work is left: its dependencies can never finish.
        let job = self.remaining.remove(0);
        self.finished.insert(job.address.clone(), false);
        Next::Skip(job.work, "its dependencies never converged".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(address: &str, dependencies: &[&str]) -> Job<String> {
        Job {
            address: address.into(),
            dependencies: dependencies
                .iter()
                .map(|dependency| dependency.to_string())
                .collect(),
            serial_key: None,
            deletion: false,
            work: address.into(),
        }
    }

    /// Run the scheduler to the end; `fails` do not converge. Returns the
    /// events in order: `+a` started, `-a` finished, `!a` skipped; each
    /// wait finishes the work started first.
    fn run(scheduler: &mut Scheduler<String>, fails: &[&str]) -> Vec<String> {
        let mut events = Vec::new();
        let mut running = std::collections::VecDeque::new();
        for _ in 0..100 {
            match scheduler.next() {
                Next::Start(work) => {
                    events.push(format!("+{work}"));
                    running.push_back(work);
                }
                Next::Skip(work, _) => events.push(format!("!{work}")),
                Next::Wait => {
                    let work = running.pop_front().expect("something runs");
                    events.push(format!("-{work}"));
                    scheduler.finish(&work, !fails.contains(&work.as_str()));
                }
                Next::Done => return events,
            }
        }
        panic!("the scheduler did not finish: {events:?}");
    }

    #[test]
    fn dependencies_run_first_and_independent_work_runs_side_by_side() {
        let jobs = vec![
            job("role", &[]),
            job("database", &["role"]),
            job("settings", &[]),
        ];
        let mut scheduler = Scheduler::new(jobs, 2, BTreeMap::new());
        assert_eq!(
            run(&mut scheduler, &[]),
            [
                "+role",
                "+settings",
                "-role",
                "+database",
                "-settings",
                "-database"
            ]
        );
    }

    #[test]
    fn what_depends_on_a_failure_is_skipped_and_the_rest_runs() {
        let jobs = vec![
            job("role", &[]),
            job("database", &["role"]),
            job("schema", &["database"]),
            job("settings", &[]),
        ];
        let mut scheduler = Scheduler::new(jobs, 1, BTreeMap::new());
        assert_eq!(
            run(&mut scheduler, &["role"]),
            [
                "+role",
                "-role",
                "!database",
                "!schema",
                "+settings",
                "-settings"
            ]
        );
        // Something settled before the apply (not plannable) counts too; a
        // dependency outside the apply does not hold anything up.
        let jobs = vec![job("database", &["role"]), job("grant", &["elsewhere"])];
        let mut scheduler = Scheduler::new(jobs, 2, BTreeMap::from([("role".to_string(), false)]));
        assert_eq!(run(&mut scheduler, &[]), ["!database", "+grant", "-grant"]);
    }

    #[test]
    fn serial_kinds_run_one_at_a_time_per_target_within_the_limit() {
        let serial = |address: &str, target: &str| Job {
            serial_key: Some(("SqlConfiguration".into(), target.into())),
            ..job(address, &[])
        };
        let jobs = vec![
            serial("a1", "a"),
            serial("a2", "a"),
            serial("b1", "b"),
            job("x", &[]),
        ];
        let mut scheduler = Scheduler::new(jobs, 3, BTreeMap::new());
        assert_eq!(
            run(&mut scheduler, &[]),
            ["+a1", "+b1", "+x", "-a1", "+a2", "-b1", "-x", "-a2"]
        );
    }

    #[test]
    fn deletions_run_last_one_at_a_time_in_their_order() {
        let deletion = |address: &str| Job {
            deletion: true,
            ..job(address, &[])
        };
        let jobs = vec![deletion("drop-1"), job("create", &[]), deletion("drop-2")];
        let mut scheduler = Scheduler::new(jobs, 4, BTreeMap::new());
        assert_eq!(
            run(&mut scheduler, &[]),
            [
                "+create", "-create", "+drop-1", "-drop-1", "+drop-2", "-drop-2"
            ]
        );
    }

    #[test]
    fn work_waiting_for_something_that_never_finishes_is_skipped() {
        // A cycle cannot come from a validated graph, but must still end.
        let jobs = vec![job("a", &["b"]), job("b", &["a"])];
        let mut scheduler = Scheduler::new(jobs, 2, BTreeMap::new());
        assert_eq!(run(&mut scheduler, &[]), ["!a", "!b"]);
    }
}
