//! The SQL Server connector (tiberius over tokio, TLS with rustls).
//!
//! Encryption follows the Encrypt keyword of Microsoft's drivers: `strict`
//! (TDS 8.0: TLS before anything else, the certificate always verified),
//! `mandatory` (the whole session encrypted), `optional` (the login packet
//! only, unless the server insists) and `off`. The certificate is verified
//! against `caFile`, else the system's trust store, unless
//! `trustServerCertificate` (never with `strict`).
//!
//! Discovery queries return one JSON document (`FOR JSON PATH`), which SQL
//! Server splits over rows of one column: the session joins them. Scripts are
//! batches separated by `GO` lines, as in sqlcmd. Connections that fail for a
//! transient reason (a reset, a failover in progress) are tried again a
//! bounded number of times with a growing pause. A query or a transactional
//! script chosen as a deadlock victim (Msg 1205: the server rolled it back)
//! is run again, a bounded number of times; a script that is not one
//! transaction is not, since part of it may have run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::Failure;
use crate::secrets::SecretRef;

/// The Encrypt setting of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encrypt {
    Strict,
    Mandatory,
    Optional,
    Off,
}

impl Encrypt {
    pub fn parse(text: &str) -> Result<Encrypt> {
        match text {
            "strict" => Ok(Encrypt::Strict),
            "mandatory" => Ok(Encrypt::Mandatory),
            "optional" => Ok(Encrypt::Optional),
            "off" => Ok(Encrypt::Off),
            other => Err(anyhow!(
                "encrypt `{other}` is not strict, mandatory, optional or off"
            )),
        }
    }

    fn level(self) -> EncryptionLevel {
        match self {
            Encrypt::Strict => EncryptionLevel::Strict,
            Encrypt::Mandatory => EncryptionLevel::Required,
            // Encrypt=Optional: TLS for the login packet, the rest as the
            // server wants.
            Encrypt::Optional => EncryptionLevel::Off,
            Encrypt::Off => EncryptionLevel::NotSupported,
        }
    }
}

/// How the connection logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// A SQL Server login and its password.
    Sql,
    /// Windows authentication (Kerberos or NTLM).
    Windows,
}

#[derive(Clone, Debug)]
pub struct SqlServerEndpoint {
    /// The SqlInstance's name, used in every message.
    pub instance: String,
    pub host: String,
    /// The TCP port; none for a named instance found through SQL Server Browser.
    pub port: Option<u16>,
    /// The instance name behind SQL Server Browser (a dynamic port).
    pub instance_name: Option<String>,
    pub authentication: Authentication,
    pub user: Option<String>,
    pub password: Option<SecretRef>,
    pub database: String,
    pub encrypt: Encrypt,
    pub trust_server_certificate: bool,
    pub ca_file: Option<PathBuf>,
    pub host_name_in_certificate: Option<String>,
    pub connect_timeout: Duration,
    /// How long one statement may run; none: without limit (commandTimeoutSeconds 0).
    pub statement_timeout: Option<Duration>,
    pub application_name: String,
    /// The SQL Server release the manifest declares (`spec.version`: 2019...).
    pub declared_version: Option<u64>,
}

/// Server errors at login worth trying again: the codes Azure SQL and
/// availability groups return while a database moves or recovers (and a
/// deadlock victim, which a login can be too).
const TRANSIENT_CODES: &[u32] = &[
    1205, 4060, 4221, 40197, 40501, 40613, 49918, 49919, 49920, 10928, 10929, 10053, 10054, 10060,
    233, 64,
];

pub type SqlServerClient = Client<Compat<TcpStream>>;

pub struct SqlServerSession {
    /// One request at a time on a TDS connection.
    client: tokio::sync::Mutex<SqlServerClient>,
    instance: String,
    statement_timeout: Option<Duration>,
}

impl SqlServerEndpoint {
    /// Refuse a server whose major version is not the declared one.
    pub fn check_facts(&self, facts: &serde_json::Map<String, Value>) -> Result<()> {
        // The instance that answered is the one the manifest names.
        if let Some(answering) = facts.get("instance_name").and_then(Value::as_str) {
            let declared = self.instance_name.as_deref().unwrap_or("MSSQLSERVER");
            if !answering.eq_ignore_ascii_case(declared) {
                anyhow::bail!(
                    "{} is declared as instance {declared} but {answering} answered: check instanceName and port",
                    self.describe()
                );
            }
        }
        let (Some(declared), Some(running)) = (
            self.declared_version,
            facts.get("product_major_version").and_then(Value::as_u64),
        ) else {
            return Ok(());
        };
        let expected = match declared {
            2016 => 13,
            2017 => 14,
            2019 => 15,
            2022 => 16,
            2025 => 17,
            _ => return Ok(()),
        };
        if running != expected {
            let release = facts
                .get("product_version")
                .and_then(Value::as_str)
                .unwrap_or_default();
            anyhow::bail!(
                "{} is declared as SQL Server {declared} (spec.version) but runs {release} (major version {running}): correct spec.version, or check that the address reaches the right instance",
                self.describe()
            );
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        // Where fleetform connects: a fixed port, else the instance name
        // SQL Server Browser resolves.
        let address = match (self.port, &self.instance_name) {
            (Some(port), _) => format!("{}:{}", self.host, port),
            (None, Some(name)) => format!("{}\\{}", self.host, name),
            (None, None) => format!("{}:1433", self.host),
        };
        let login = match (&self.authentication, &self.user) {
            (Authentication::Sql, Some(user)) => format!("login {user}"),
            (Authentication::Windows, Some(user)) => format!("Windows user {user}"),
            _ => "Windows authentication".to_string(),
        };
        format!("SqlInstance {} ({address}, {login})", self.instance)
    }

    /// Open a session; `database` picks another database of the instance.
    pub async fn connect(&self, database: Option<&str>) -> Result<SqlServerSession> {
        super::connect_with_retries(&self.instance, &self.describe(), || {
            self.connect_once(database)
        })
        .await
    }

    /// The tiberius configuration (no IO but reading the password).
    fn config(&self, database: Option<&str>) -> Result<Config> {
        let mut config = Config::new();
        config.host(&self.host);
        if let Some(port) = self.port {
            config.port(port);
        }
        if let Some(name) = &self.instance_name {
            config.instance_name(name);
        }
        config.database(database.unwrap_or(&self.database));
        config.application_name(&self.application_name);
        config.encryption(self.encrypt.level());
        config.handshake_timeout(Some(self.connect_timeout));
        // Statements are bounded by the session (which cancels them on the
        // server), not per network round trip by the driver.
        config.command_timeout(None);
        // Strict mode always verifies the certificate.
        if self.trust_server_certificate && self.encrypt != Encrypt::Strict {
            config.trust_cert();
        } else if let Some(ca_file) = &self.ca_file {
            config.trust_cert_ca(ca_file.display().to_string());
        }
        if let Some(name) = &self.host_name_in_certificate {
            config.hostname_in_certificate(name);
        }
        match self.authentication {
            Authentication::Sql => {
                let user = self.user.as_deref().with_context(|| {
                    format!(
                        "{} uses SQL authentication but has no user",
                        self.describe()
                    )
                })?;
                let password = match &self.password {
                    Some(secret) => secret.resolve().context("reading its password")?,
                    None => anyhow::bail!(
                        "{} uses SQL authentication but has no password",
                        self.describe()
                    ),
                };
                config.authentication(AuthMethod::sql_server(user, password));
            }
            // NTLM with the given account (sspi-rs on Unix). Integrated
            // authentication as the account fleetform runs as (Kerberos)
            // needs GSSAPI, which this build does not include.
            Authentication::Windows => {
                let (Some(user), Some(secret)) = (self.user.as_deref(), &self.password) else {
                    anyhow::bail!(
                        "{}: Windows authentication as the account fleetform runs as (Kerberos) is not available in this build; give `user` (DOMAIN\\name) and `password` for NTLM, or use `authentication: sql`",
                        self.describe()
                    );
                };
                if !user.contains('\\') && !user.contains('@') {
                    anyhow::bail!(
                        "{}: the Windows user {user:?} names no domain; write it DOMAIN\\name (or name@domain)",
                        self.describe()
                    );
                }
                let password = secret.resolve().context("reading its password")?;
                config.authentication(AuthMethod::windows(user, password));
            }
        }
        Ok(config)
    }

    async fn connect_once(&self, database: Option<&str>) -> Result<SqlServerSession, Failure> {
        let config = self.config(database).map_err(Failure::permanent)?;
        // Said once per instance and run, not per session.
        static WARNED: std::sync::Mutex<std::collections::BTreeSet<String>> =
            std::sync::Mutex::new(std::collections::BTreeSet::new());
        if self.encrypt == Encrypt::Off
            && WARNED
                .lock()
                .is_ok_and(|mut warned| warned.insert(self.instance.clone()))
        {
            tracing::warn!(
                instance = %self.instance,
                "encrypt: off sends the login, password included, without TLS"
            );
        }
        let deadline = self.connect_timeout;
        let tcp = match &self.instance_name {
            Some(_) if self.port.is_none() => {
                use tiberius::SqlBrowser;
                tokio::time::timeout(deadline, TcpStream::connect_named(&config))
                    .await
                    .map_err(|_| self.timed_out("SQL Server Browser (UDP 1434) and the instance"))?
                    .map_err(|error| self.describe_driver_error(error))?
            }
            _ => tokio::time::timeout(deadline, TcpStream::connect(config.get_addr()))
                .await
                .map_err(|_| self.timed_out("the port"))?
                .map_err(|error| self.describe_socket_error(error))?,
        };
        tcp.set_nodelay(true)
            .map_err(|error| Failure::permanent(error.into()))?;
        // The TLS handshake and the login, bounded too: a port that accepts
        // and never answers must not hang fleetform.
        let client = tokio::time::timeout(deadline, Client::connect(config, tcp.compat_write()))
            .await
            .map_err(|_| self.timed_out("the login"))?
            .map_err(|error| self.describe_driver_error(error))?;
        let mut session = SqlServerSession {
            client: tokio::sync::Mutex::new(client),
            instance: self.instance.clone(),
            statement_timeout: self.statement_timeout,
        };
        let statements = TransactionStatements::embedded().map_err(Failure::permanent)?;
        session
            .run_batch(&statements.open)
            .await
            .map_err(|error| Failure::permanent(error.context("setting the session's options")))?;
        Ok(session)
    }

    fn timed_out(&self, what: &str) -> Failure {
        Failure {
            error: anyhow!(
                "no answer from {what} within {} s (connectTimeoutSeconds): a firewall dropping packets, or something else listening there",
                self.connect_timeout.as_secs()
            ),
            transient: true,
        }
    }

    fn describe_socket_error(&self, error: std::io::Error) -> Failure {
        use std::io::ErrorKind;
        let (message, transient) = match error.kind() {
            ErrorKind::ConnectionRefused => (
                format!(
                    "connection refused: nothing listens there ({error}); is the instance running, TCP/IP enabled, the port right?"
                ),
                false,
            ),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::TimedOut => {
                (format!("the connection broke: {error}"), true)
            }
            _ => (format!("cannot reach the instance: {error}"), false),
        };
        Failure {
            error: anyhow!(message),
            transient,
        }
    }

    fn describe_driver_error(&self, error: tiberius::error::Error) -> Failure {
        use tiberius::error::Error as Driver;
        match &error {
            Driver::Server(token) if token.code() == 18456 => Failure::permanent(anyhow!(
                "login failed ({}): a wrong password, a disabled or missing login, or an instance that does not accept SQL authentication (mixed mode)",
                token.message()
            )),
            Driver::Server(token) => Failure {
                transient: TRANSIENT_CODES.contains(&token.code()),
                error: anyhow!("SQL Server error {}: {}", token.code(), token.message()),
            },
            Driver::Tls(message) => {
                // The driver's own advice names its API; ours names the settings.
                let reason = message
                    .split(". To connect anyway")
                    .next()
                    .unwrap_or(message);
                Failure::permanent(anyhow!("TLS failed: {reason}; {}", self.tls_hint()))
            }
            Driver::Io {
                kind: std::io::ErrorKind::TimedOut,
                ..
            } => self.timed_out("the login"),
            Driver::Io { kind, message } if self.encrypt == Encrypt::Strict => Failure {
                transient: false,
                error: anyhow!(
                    "the connection failed: {message} ({kind:?}); strict encryption needs SQL Server 2022 or later with a certificate configured"
                ),
            },
            Driver::Io { kind, message } => Failure {
                transient: matches!(
                    kind,
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof
                ),
                error: anyhow!("the connection failed: {message}"),
            },
            Driver::Routing { host, port } => Failure::permanent(anyhow!(
                "the server redirects to {host}:{port} (Azure SQL gateway routing), which fleetform does not follow"
            )),
            _ => Failure::permanent(anyhow!("{error}")),
        }
    }

    fn tls_hint(&self) -> String {
        let trust = if self.encrypt == Encrypt::Strict {
            "give the CA that signed the server's certificate in caFile (strict always verifies)"
        } else {
            "give the CA that signed the server's certificate in caFile, or (test systems only) trustServerCertificate: true"
        };
        format!(
            "{trust}; when connecting by another name than the certificate's (an IP address, an alias), set hostNameInCertificate"
        )
    }
}

/// The connector's own statements around a script run in one transaction,
/// from `templates/sqlserver/connector/` (parsed by tests/tsql_grammar.rs
/// like every template).
pub struct TransactionStatements {
    /// Run once after every login (session options such as XACT_ABORT).
    pub open: String,
    pub begin: String,
    pub open_transactions: String,
    pub rollback: String,
    pub commit: String,
}

impl TransactionStatements {
    const FOLDER: &'static str = "templates/sqlserver/connector";

    /// Render the statements from the templates in `files`.
    pub fn from_files(files: Vec<(String, String)>) -> Result<TransactionStatements> {
        let files = files
            .into_iter()
            .filter(|(name, _)| name.starts_with(Self::FOLDER))
            .collect();
        let templates = crate::template::Templates::from_files(files)?;
        let render = |name: &str| {
            templates.render(
                &format!("{}/{name}.tsql", Self::FOLDER),
                &serde_json::json!({}),
            )
        };
        Ok(TransactionStatements {
            open: render("open")?,
            begin: render("begin")?,
            open_transactions: render("open_transactions")?,
            rollback: render("rollback")?,
            commit: render("commit")?,
        })
    }

    /// The statements built into the binary, rendered once.
    pub fn embedded() -> Result<&'static TransactionStatements> {
        static STATEMENTS: std::sync::OnceLock<Result<TransactionStatements, String>> =
            std::sync::OnceLock::new();
        STATEMENTS
            .get_or_init(|| {
                Self::from_files(crate::template::embedded_template_files())
                    .map_err(|error| format!("{error:#}"))
            })
            .as_ref()
            .map_err(|error| anyhow!("{error}"))
    }
}

/// How long cancelling a statement that ran out of time may take.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(30);

impl SqlServerSession {
    /// `work`, given at most `timeout` (none: without limit). When time runs
    /// out the server is told to stop (a TDS attention), so nothing keeps
    /// running behind fleetform's back; the error is the limit in seconds.
    async fn bounded<T>(
        &self,
        timeout: Option<Duration>,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, u64> {
        let Some(limit) = timeout else {
            return Ok(work.await);
        };
        match tokio::time::timeout(limit, work).await {
            Ok(done) => Ok(done),
            Err(_) => {
                let mut client = self.client.lock().await;
                match tokio::time::timeout(CANCEL_TIMEOUT, client.cancel_query()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(instance = %self.instance, error = %error, "cancelling a statement failed")
                    }
                    Err(_) => {
                        tracing::warn!(instance = %self.instance, "cancelling a statement did not finish")
                    }
                }
                Err(limit.as_secs())
            }
        }
    }

    /// Run a query that returns one JSON document (`FOR JSON`, possibly split
    /// over several rows of its first column).
    pub async fn query_json(&self, script: &str) -> Result<Value> {
        self.query_json_bounded(script, self.statement_timeout)
            .await
    }

    pub async fn query_json_within(&self, script: &str, timeout: Duration) -> Result<Value> {
        self.query_json_bounded(script, Some(timeout)).await
    }

    async fn query_json_bounded(&self, script: &str, timeout: Option<Duration>) -> Result<Value> {
        let mut attempt = 1;
        loop {
            match self.query_json_once(script, timeout).await {
                Err(error) if is_deadlock_victim(&error) && attempt < DEADLOCK_ATTEMPTS => {
                    tracing::warn!(instance = %self.instance, attempt, "a query was chosen as a deadlock victim; running it again");
                    tokio::time::sleep(DEADLOCK_PAUSE * attempt).await;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn query_json_once(&self, script: &str, timeout: Option<Duration>) -> Result<Value> {
        let instance = self.instance.clone();
        let rows = self
            .bounded(timeout, async {
                let mut client = self.client.lock().await;
                client.simple_query(script).await?.into_first_result().await
            })
            .await
            .map_err(|seconds| {
                anyhow!("{instance}: the query did not finish within {seconds} s and was cancelled")
            })?
            .map_err(|error| server_error(&instance, error))?;
        let mut text = String::new();
        for row in &rows {
            match row.try_get::<&str, _>(0) {
                Ok(Some(part)) => text.push_str(part),
                Ok(None) => {}
                Err(error) => {
                    anyhow::bail!(
                        "{instance}: the query returned no text in its first column ({error})"
                    )
                }
            }
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{instance}: the query did not return JSON"))
    }

    /// Run a script: batches separated by `GO` lines, in one transaction when
    /// `transaction` is true (XACT_ABORT: any error rolls everything back).
    /// Either way no transaction stays open after it: a script that leaves
    /// one is rolled back and fails.
    pub async fn execute(&mut self, script: &str, transaction: bool) -> Result<()> {
        let batches = split_batches(script);
        let statements = TransactionStatements::embedded()?;
        if !transaction {
            for batch in &batches {
                self.run_batch(batch).await?;
            }
            return self.expect_open(statements, 0, "the script").await;
        }
        let mut attempt = 1;
        loop {
            match self.execute_transaction(statements, &batches).await {
                Err(error) if is_deadlock_victim(&error) && attempt < DEADLOCK_ATTEMPTS => {
                    tracing::warn!(instance = %self.instance, attempt, "a script was chosen as a deadlock victim and rolled back; running it again");
                    tokio::time::sleep(DEADLOCK_PAUSE * attempt).await;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn execute_transaction(
        &mut self,
        statements: &TransactionStatements,
        batches: &[String],
    ) -> Result<()> {
        self.run_batch(&statements.begin).await?;
        for (index, batch) in batches.iter().enumerate() {
            let outcome = match self.run_batch(batch).await {
                Ok(()) => {
                    let after = format!("batch {} of the script", index + 1);
                    self.expect_open(statements, 1, &after).await
                }
                failed => failed,
            };
            if let Err(error) = outcome {
                // Whatever failed (the batch or the check after it), nothing
                // of the script stays open or half done.
                self.roll_back(statements).await;
                return Err(error);
            }
        }
        if let Err(error) = self.run_batch(&statements.commit).await {
            // A commit that failed (or timed out) may or may not have
            // committed: say which, and leave nothing open.
            return Err(match self.open_transactions(statements).await {
                Ok(0) => error.context("the commit failed; no transaction is open, so it either committed or was rolled back by the server: discovery will tell"),
                Ok(_) => {
                    self.roll_back(statements).await;
                    error.context("the commit failed; the transaction was rolled back")
                }
                Err(_) => error.context("the commit failed and the session cannot say whether it committed: discovery will tell"),
            });
        }
        self.expect_open(statements, 0, "the commit").await
    }

    async fn roll_back(&mut self, statements: &TransactionStatements) {
        if let Err(rollback) = self.run_batch(&statements.rollback).await {
            tracing::warn!(instance = %self.instance, error = %format!("{rollback:#}"), "rolling back a failed script failed; the server rolls back when the session ends");
        }
    }

    /// How many transactions the session has open (`@@TRANCOUNT`).
    async fn open_transactions(&self, statements: &TransactionStatements) -> Result<u64> {
        let open = self.query_json(&statements.open_transactions).await?;
        open.get("open").and_then(Value::as_u64).ok_or_else(|| {
            anyhow!(
                "{}: the transaction check returned {open}, not a count",
                self.instance
            )
        })
    }

    /// After `after`, exactly `expected` transactions are open (1 inside a
    /// transactional script, 0 outside). A batch that ended the transaction
    /// itself (a ROLLBACK in a CATCH) would leave the next batches to commit
    /// one by one; one that opened another would make the connector's COMMIT
    /// only lower the count, and the work be lost when the session ends.
    async fn expect_open(
        &mut self,
        statements: &TransactionStatements,
        expected: u64,
        after: &str,
    ) -> Result<()> {
        let open = self.open_transactions(statements).await.with_context(|| {
            format!(
                "{}: cannot check the transaction after {after}",
                self.instance
            )
        })?;
        if open == expected {
            return Ok(());
        }
        let problem = match (expected, open) {
            (1, 0) => format!("{after} ended the transaction; the rest was not run"),
            (_, open) => format!(
                "{after} left {open} transaction{} open (a transaction begun in the script and not committed); {} rolled back",
                if open == 1 { "" } else { "s" },
                if expected == 0 {
                    "it was"
                } else {
                    "everything was"
                }
            ),
        };
        if expected == 0 {
            self.roll_back(statements).await;
        }
        Err(anyhow!("{}: {problem}", self.instance))
    }

    async fn run_batch(&mut self, batch: &str) -> Result<()> {
        let instance = self.instance.clone();
        self.bounded(self.statement_timeout, async {
            let mut client = self.client.lock().await;
            client.simple_query(batch).await?.into_results().await
        })
        .await
        .map_err(|seconds| {
            anyhow!("{instance}: the script did not finish within {seconds} s and was cancelled")
        })?
        .map_err(|error| server_error(&instance, error))?;
        Ok(())
    }
}

/// How often a deadlock victim is run in all, and the pause that grows
/// between runs.
const DEADLOCK_ATTEMPTS: u32 = 3;
const DEADLOCK_PAUSE: Duration = Duration::from_millis(200);

/// A statement the server chose as a deadlock victim (Msg 1205) and rolled back.
#[derive(Debug)]
struct DeadlockVictim(String);

impl std::fmt::Display for DeadlockVictim {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for DeadlockVictim {}

fn is_deadlock_victim(error: &anyhow::Error) -> bool {
    error.downcast_ref::<DeadlockVictim>().is_some()
}

/// A driver error on `instance`, as one message; a deadlock victim stays
/// recognisable for the retry.
fn server_error(instance: &str, error: tiberius::error::Error) -> anyhow::Error {
    let message = format!("{instance}: {error}");
    match &error {
        tiberius::error::Error::Server(token) if token.code() == 1205 => {
            anyhow::Error::new(DeadlockVictim(message))
        }
        _ => anyhow!(message),
    }
}

/// Split a script into batches at lines holding only `GO` (any case), as
/// sqlcmd does, except inside a string, a bracketed identifier or a block
/// comment (a value that holds a `GO` line stays in its batch); empty batches
/// are dropped.
pub fn split_batches(script: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Text,
        Identifier,
        Quoted,
        /// Block comments nest in T-SQL: how deep.
        Comment(u32),
    }
    let mut state = State::Code;
    let mut batches = Vec::new();
    let mut current = String::new();
    for line in script.split_inclusive('\n') {
        if state == State::Code
            && let Some(count) = go_line(line)
        {
            if !current.trim().is_empty() {
                for _ in 0..count {
                    batches.push(current.clone());
                }
            }
            current.clear();
            continue;
        }
        let mut characters = line.chars().peekable();
        while let Some(character) = characters.next() {
            state = match (state, character) {
                (State::Code, '\'') => State::Text,
                (State::Code, '[') => State::Identifier,
                (State::Code, '"') => State::Quoted,
                (State::Code, '/') if characters.peek() == Some(&'*') => {
                    characters.next();
                    State::Comment(1)
                }
                // A line comment ends with the line: nothing in it counts.
                (State::Code, '-') if characters.peek() == Some(&'-') => {
                    for _ in characters.by_ref() {}
                    State::Code
                }
                // A doubled quote or bracket stays inside.
                (State::Text, '\'') if characters.peek() == Some(&'\'') => {
                    characters.next();
                    State::Text
                }
                (State::Text, '\'') => State::Code,
                (State::Identifier, ']') if characters.peek() == Some(&']') => {
                    characters.next();
                    State::Identifier
                }
                (State::Identifier, ']') => State::Code,
                (State::Quoted, '"') if characters.peek() == Some(&'"') => {
                    characters.next();
                    State::Quoted
                }
                (State::Quoted, '"') => State::Code,
                (State::Comment(depth), '/') if characters.peek() == Some(&'*') => {
                    characters.next();
                    State::Comment(depth + 1)
                }
                (State::Comment(depth), '*') if characters.peek() == Some(&'/') => {
                    characters.next();
                    if depth == 1 {
                        State::Code
                    } else {
                        State::Comment(depth - 1)
                    }
                }
                (state, _) => state,
            };
        }
        current.push_str(line);
        if !line.ends_with('\n') {
            current.push('\n');
        }
    }
    if !current.trim().is_empty() {
        batches.push(current);
    }
    batches
}

/// A line that ends a batch, as sqlcmd reads it: `GO`, optionally a count
/// (the batch runs that many times) and a line comment; how many times.
fn go_line(line: &str) -> Option<usize> {
    let code = line.split("--").next().unwrap_or_default().trim();
    let mut words = code.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("go") {
        return None;
    }
    match (words.next(), words.next()) {
        (None, _) => Some(1),
        (Some(count), None) => count.parse().ok().filter(|count| *count > 0),
        _ => None,
    }
}

impl super::Connector for SqlServerEndpoint {
    fn describe(&self) -> String {
        SqlServerEndpoint::describe(self)
    }

    fn check_facts(&self, facts: &serde_json::Map<String, Value>) -> Result<()> {
        SqlServerEndpoint::check_facts(self, facts)
    }

    fn connect<'a>(
        &'a self,
        database: Option<&'a str>,
    ) -> super::Pending<'a, Result<super::Session>> {
        Box::pin(async move {
            Ok(super::Session::new(
                SqlServerEndpoint::connect(self, database).await?,
            ))
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl super::SessionApi for SqlServerSession {
    fn query_json<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
    ) -> super::Pending<'a, Result<Value>> {
        Box::pin(async move {
            match timeout {
                Some(timeout) => SqlServerSession::query_json_within(self, script, timeout).await,
                None => SqlServerSession::query_json(self, script).await,
            }
        })
    }

    fn execute<'a>(
        &'a mut self,
        script: &'a str,
        transaction: bool,
    ) -> super::Pending<'a, Result<()>> {
        Box::pin(SqlServerSession::execute(self, script, transaction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_go_line_inside_a_string_identifier_or_comment_does_not_split() {
        let script = "SELECT N'one\nGO\ntwo', [a\ngo\n]]b];\n/* x\nGO\n*/ SELECT 1; -- it's\nGO\nSELECT 2;\n";
        assert_eq!(
            split_batches(script),
            vec![
                "SELECT N'one\nGO\ntwo', [a\ngo\n]]b];\n/* x\nGO\n*/ SELECT 1; -- it's\n"
                    .to_string(),
                "SELECT 2;\n".to_string()
            ]
        );
    }

    #[test]
    fn go_lines_may_count_and_comment_and_comments_nest() {
        let script = "SELECT 1;\nGO -- first\nSELECT 2;\nGo 2\n/* a /* nested */ comment\nGO\n*/ SELECT 3;\nSELECT \"a\nGO\nb\";\nGO 0\n";
        let batches = split_batches(script);
        assert_eq!(
            batches,
            vec![
                "SELECT 1;\n".to_string(),
                "SELECT 2;\n".to_string(),
                "SELECT 2;\n".to_string(),
                "/* a /* nested */ comment\nGO\n*/ SELECT 3;\nSELECT \"a\nGO\nb\";\nGO 0\n"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn batches_split_at_go_lines_only() {
        let script = "CREATE LOGIN [go] WITH PASSWORD = N'go';\nGO\n  go  \nSELECT 'GO';\nGo\n";
        assert_eq!(
            split_batches(script),
            vec![
                "CREATE LOGIN [go] WITH PASSWORD = N'go';\n".to_string(),
                "SELECT 'GO';\n".to_string()
            ]
        );
    }

    #[test]
    fn encrypt_settings_map_to_the_drivers_levels() {
        assert_eq!(
            Encrypt::parse("strict").unwrap().level(),
            EncryptionLevel::Strict
        );
        assert_eq!(
            Encrypt::parse("mandatory").unwrap().level(),
            EncryptionLevel::Required
        );
        assert_eq!(
            Encrypt::parse("optional").unwrap().level(),
            EncryptionLevel::Off
        );
        assert_eq!(
            Encrypt::parse("off").unwrap().level(),
            EncryptionLevel::NotSupported
        );
        assert!(Encrypt::parse("yes").is_err());
    }
}
