//! Connectors: the narrow contract between the engine and a kind of server.
//!
//! The engine opens a `Session` on an `Endpoint`, runs rendered discovery
//! queries that return one JSON value, and runs rendered scripts. It never
//! looks inside: which protocol, which TLS, which retries is the connector's
//! business. PostgreSQL (tokio-postgres) and SQL Server (tiberius) exist;
//! the shell connector runs local restarts.

pub mod postgres;
pub mod shell;
pub mod sqlserver;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::engines::EngineProfile;
use crate::template::Dialect;

/// A connection failure, and whether trying again may help.
pub(crate) struct Failure {
    pub error: anyhow::Error,
    pub transient: bool,
}

impl Failure {
    pub fn permanent(error: anyhow::Error) -> Failure {
        Failure {
            error,
            transient: false,
        }
    }
}

/// The mark on an error that says the target stopped answering: a connect
/// that still failed transiently (timed out, refused, reset) after the
/// retries, a call the server did not answer within its limit, a session the
/// server closed or shut down. Apply abandons such a target for the rest of
/// its run instead of waiting out the same timeout for every resource.
#[derive(Debug)]
pub struct NotAnswering(pub String);

impl std::fmt::Display for NotAnswering {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for NotAnswering {}

impl NotAnswering {
    /// An error marked as the target not answering, saying `message`.
    pub fn error(message: String) -> anyhow::Error {
        anyhow::Error::new(NotAnswering(message))
    }

    /// Whether `error` (or one of its causes) says the target stopped answering.
    pub fn is_cause_of(error: &anyhow::Error) -> bool {
        error.chain().any(|cause| cause.is::<NotAnswering>())
    }
}

/// How many times a transient connection failure is tried, and the first pause.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Connect with `attempt`, trying again after a growing pause while the
/// failure is transient, at most `ATTEMPTS` times; errors name `described`.
pub(crate) async fn connect_with_retries<T, F, Fut>(
    instance: &str,
    described: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        tracing::debug!(instance = %instance, attempt = tried, "connecting");
        match attempt().await {
            Ok(connected) => return Ok(connected),
            Err(failure) if tried < ATTEMPTS && failure.transient => {
                let pause = FIRST_BACKOFF * 2u32.pow(tried - 1);
                tracing::warn!(
                    instance = %instance,
                    attempt = tried,
                    pause_ms = pause.as_millis() as u64,
                    error = %format!("{:#}", failure.error),
                    "transient connection failure, trying again"
                );
                tokio::time::sleep(pause).await;
            }
            Err(failure) => {
                let error = if failure.transient {
                    NotAnswering::error(format!("{:#}", failure.error))
                } else {
                    failure.error
                };
                return Err(error).with_context(|| format!("cannot connect to {described}"));
            }
        }
    }
}

/// A boxed future, as connector traits return them.
pub type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One way of reaching a target (a PostgreSQL server, a SQL Server
/// instance, a host's shell), built from the manifests by `build` below.
pub trait Connector: std::fmt::Debug + Send + Sync {
    /// How messages name what it reaches (`PostgresInstance pg-a (host:port, user u)`).
    fn describe(&self) -> String;

    /// Check what the target says about itself against the manifests.
    fn check_facts(&self, facts: &serde_json::Map<String, Value>) -> Result<()>;

    /// Open a session; `database` picks another database of the same server.
    fn connect<'a>(&'a self, database: Option<&'a str>) -> Pending<'a, Result<Session>>;

    /// Open a session in which every transaction is read-only, for
    /// discovery: a query with side effects (a custom SQL `test`) fails
    /// instead of changing the server at plan and drift. A connector whose
    /// target has no such session (SQL Server, a shell) opens a normal one.
    fn connect_read_only<'a>(&'a self, database: Option<&'a str>) -> Pending<'a, Result<Session>> {
        self.connect(database)
    }

    /// For tests and diagnostics: the concrete connector.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// An open session of a connector.
pub trait SessionApi: Send + Sync {
    /// Run a query that returns exactly one JSON value, waiting at most
    /// `timeout` (none: the connector's own statement timeout).
    fn query_json<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
    ) -> Pending<'a, Result<Value>>;

    /// Run queries that each return exactly one JSON value, in as few
    /// round trips as the connector can (one, on PostgreSQL): their values
    /// in order, or an error for the batch as a whole (the caller runs
    /// them one by one to tell which failed). By default one at a time.
    fn query_json_batch<'a>(&'a self, scripts: &'a [String]) -> Pending<'a, Result<Vec<Value>>> {
        Box::pin(async move {
            let mut values = Vec::with_capacity(scripts.len());
            for script in scripts {
                values.push(self.query_json(script, None).await?);
            }
            Ok(values)
        })
    }

    /// Whether `query_json_batch` saves round trips (otherwise callers that
    /// can do more with one query at a time run them so).
    fn batches(&self) -> bool {
        false
    }

    /// Run a script, in one transaction when `transaction` is true.
    fn execute<'a>(&'a mut self, script: &'a str, transaction: bool) -> Pending<'a, Result<()>>;
}

/// A target the engine can reach: what its engine is (as data, from
/// `templates/<engine>/engine.yaml`) and the connector that reaches it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub profile: Arc<EngineProfile>,
    pub connector: Arc<dyn Connector>,
}

impl Endpoint {
    pub fn dialect(&self) -> Dialect {
        self.profile.dialect
    }

    /// The engine of the modules that manage what this endpoint reaches.
    pub fn engine(&self) -> &str {
        &self.profile.name
    }

    /// How messages name this endpoint.
    pub fn describe(&self) -> String {
        self.connector.describe()
    }

    /// Check what the server says about itself against the manifests.
    pub fn check_facts(&self, facts: &serde_json::Map<String, Value>) -> Result<()> {
        self.connector.check_facts(facts)
    }

    /// Template folder of the engine-wide scripts (lock, ledger) for this endpoint.
    pub fn template_folder(&self) -> String {
        self.profile.template_folder()
    }

    /// The engine-wide script `name` (`server`, `lock_try`, `ledger/record`...)
    /// in this endpoint's folder and language.
    pub fn script(&self, name: &str) -> String {
        self.profile.script(name)
    }

    /// What to do when the ledger cannot be created.
    pub fn ledger_hint(&self) -> &str {
        &self.profile.ledger_hint
    }

    /// Open a session; `database` picks another database of the same server.
    pub async fn connect(&self, database: Option<&str>) -> Result<Session> {
        self.connector.connect(database).await
    }

    /// Open a session that cannot write, where the target has one.
    pub async fn connect_read_only(&self, database: Option<&str>) -> Result<Session> {
        self.connector.connect_read_only(database).await
    }
}

/// An open session on an endpoint.
pub struct Session(Box<dyn SessionApi>);

impl Session {
    pub fn new(session: impl SessionApi + 'static) -> Session {
        Session(Box::new(session))
    }

    /// Run a query that returns exactly one JSON value.
    pub async fn query_json(&self, script: &str) -> Result<Value> {
        self.0.query_json(script, None).await
    }

    /// Run a query that returns one JSON value, waiting at most `timeout`.
    pub async fn query_json_within(&self, script: &str, timeout: Duration) -> Result<Value> {
        self.0.query_json(script, Some(timeout)).await
    }

    /// Run queries that each return one JSON value, in as few round trips
    /// as the connector can; an error fails the batch as a whole.
    pub async fn query_json_batch(&self, scripts: &[String]) -> Result<Vec<Value>> {
        self.0.query_json_batch(scripts).await
    }

    /// Whether `query_json_batch` saves round trips.
    pub fn batches(&self) -> bool {
        self.0.batches()
    }

    /// Run a script, in one transaction when `transaction` is true.
    pub async fn execute(&mut self, script: &str, transaction: bool) -> Result<()> {
        self.0.execute(script, transaction).await
    }
}
