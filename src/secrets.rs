//! Secret references (`{fromEnv: VAR}`, `{fromFile: path}`) and their values.
//!
//! A value is read only when a connection or an action needs it, and errors
//! name where the secret should come from, never what it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    FromEnv(String),
    /// A file, and the repository root it may also live under.
    FromFile {
        path: PathBuf,
        repository: PathBuf,
    },
}

/// Where secret files may be read from, besides the repository checkout:
/// the folders container runtimes and service managers mount secrets in,
/// the user's own fleetform folder, and what `FLEETFORM_SECRET_DIRS`
/// (colon-separated) adds. The list never comes from the manifests: a pull
/// request must not be able to point a password at `/etc/shadow`.
pub const SECRET_DIRS_VARIABLE: &str = "FLEETFORM_SECRET_DIRS";

fn allowed_secret_folders(repository: &Path) -> Vec<PathBuf> {
    let mut folders = vec![
        repository.to_path_buf(),
        PathBuf::from("/run/secrets"),
        PathBuf::from("/var/run/secrets"),
    ];
    if let Some(credentials) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        folders.push(PathBuf::from(credentials));
    }
    if let Some(home) = std::env::var_os("HOME") {
        folders.push(Path::new(&home).join(".config/fleetform"));
    }
    if let Some(extra) = std::env::var_os(SECRET_DIRS_VARIABLE) {
        folders.extend(std::env::split_paths(&extra).filter(|path| path.is_absolute()));
    }
    folders
}

/// Refuse a secret file outside the allowed folders, judged by where it
/// really is (symbolic links and `..` resolved), and anything the kernel
/// makes up (`/proc`, `/sys`, `/dev`) whatever the list says.
fn check_secret_folder(path: &Path, repository: &Path) -> Result<()> {
    let real = path
        .canonicalize()
        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
    let synthetic = ["/proc", "/sys", "/dev"]
        .iter()
        .any(|root| real.starts_with(root));
    let allowed = allowed_secret_folders(repository);
    let inside = allowed.iter().any(|folder| {
        folder
            .canonicalize()
            .is_ok_and(|folder| real.starts_with(folder))
    });
    if synthetic || !inside {
        bail!(
            "the secret file {} is outside the folders secrets are read from (it is {})\n\
             hint: keep secret files in the repository checkout (untracked), /run/secrets, \
             $CREDENTIALS_DIRECTORY or ~/.config/fleetform, or add its folder to {SECRET_DIRS_VARIABLE} \
             on the machine that runs fleetform",
            path.display(),
            real.display()
        );
    }
    Ok(())
}

impl SecretRef {
    /// The reference written in a manifest; relative files are taken from `root`.
    pub fn from_manifest(value: &Value, root: &Path) -> Result<SecretRef> {
        if let Some(variable) = value.get("fromEnv").and_then(Value::as_str) {
            return Ok(SecretRef::FromEnv(variable.to_string()));
        }
        if let Some(file) = value.get("fromFile").and_then(Value::as_str) {
            return Ok(SecretRef::FromFile {
                path: root.join(file),
                repository: root.to_path_buf(),
            });
        }
        bail!("a secret reference needs fromEnv or fromFile")
    }

    pub fn describe(&self) -> String {
        match self {
            SecretRef::FromEnv(variable) => format!("environment variable {variable}"),
            SecretRef::FromFile { path, .. } => format!("file {}", path.display()),
        }
    }

    pub fn resolve(&self) -> Result<String> {
        match self {
            SecretRef::FromEnv(variable) => match std::env::var(variable) {
                Ok(value) if !value.is_empty() => Ok(value),
                Ok(_) => bail!("the secret's environment variable {variable} is empty"),
                Err(_) => bail!("the secret's environment variable {variable} is not set"),
            },
            SecretRef::FromFile { path, repository } => {
                check_secret_folder(path, repository)?;
                let text =
                    crate::source::read_regular_file(path, SECRET_FILE_LIMIT, "secret file")?;
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    bail!("the secret file {} is empty", path.display());
                }
                Ok(value.to_string())
            }
        }
    }
}

/// The largest secret file read (a password, a key): 64 KiB.
pub const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// PBKDF2 rounds of a secret's hash in a plan: a plan file is an artifact
/// of a pull request, so guessing a weak secret from it must be slow (25
/// times a PostgreSQL SCRAM verifier's 4096 rounds).
pub const SECRET_HASH_ROUNDS: u32 = 100_000;

/// Keyed, slow hashes of secret values (PBKDF2-HMAC-SHA256 over a random
/// salt that the plan carries): a saved plan compares the secrets of
/// `apply` with those it was made with, without holding them. Each distinct
/// value is hashed once per run.
pub struct SecretHasher {
    salt: [u8; 16],
    cache: Mutex<BTreeMap<[u8; 32], String>>,
}

impl SecretHasher {
    /// A new salt, for a new plan.
    pub fn random() -> Result<SecretHasher> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|error| anyhow::anyhow!("cannot read random bytes: {error}"))?;
        Ok(SecretHasher::with_salt(salt))
    }

    /// The salt of a saved plan (hex), so that its hashes compare.
    pub fn from_hex(text: &str) -> Result<SecretHasher> {
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|at| {
                text.get(at..at + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<_>>()
            .context("the plan's secret_salt is not hex")?;
        let salt: [u8; 16] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the plan's secret_salt is not 16 bytes"))?;
        Ok(SecretHasher::with_salt(salt))
    }

    fn with_salt(salt: [u8; 16]) -> SecretHasher {
        SecretHasher {
            salt,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn salt_hex(&self) -> String {
        crate::ops::diff::hex(&self.salt)
    }

    /// The value's hash (hex).
    pub fn hash(&self, value: &str) -> String {
        let key: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut hash = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(
                    value.as_bytes(),
                    &self.salt,
                    SECRET_HASH_ROUNDS,
                    &mut hash,
                );
                crate::ops::diff::hex(&hash)
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{SecretHasher, SecretRef};
    use serde_json::json;

    #[test]
    fn secret_files_are_read_only_from_allowed_folders() {
        let repository = tempfile::tempdir().unwrap();
        std::fs::write(repository.path().join("pg.secret"), "pw\n").unwrap();
        let inside =
            SecretRef::from_manifest(&json!({"fromFile": "pg.secret"}), repository.path()).unwrap();
        assert_eq!(inside.resolve().unwrap(), "pw");
        for hostile in [
            "/etc/shadow",
            "/proc/self/environ",
            "../../../../etc/passwd",
        ] {
            let reference =
                SecretRef::from_manifest(&json!({ "fromFile": hostile }), repository.path())
                    .unwrap();
            let error = format!("{:#}", reference.resolve().unwrap_err());
            assert!(
                error.contains("outside the folders secrets are read from")
                    || error.contains("cannot read the secret file"),
                "{hostile}: {error}"
            );
            assert!(!error.contains("root:"), "no content: {error}");
        }
        // A link inside the repository to a file outside it is judged by
        // where the file really is.
        std::os::unix::fs::symlink("/etc/passwd", repository.path().join("link")).unwrap();
        let linked =
            SecretRef::from_manifest(&json!({"fromFile": "link"}), repository.path()).unwrap();
        let error = format!("{:#}", linked.resolve().unwrap_err());
        assert!(error.contains("(it is /etc/passwd)"), "{error}");
        assert!(error.contains("FLEETFORM_SECRET_DIRS"), "{error}");
    }

    #[test]
    fn a_hash_depends_on_the_value_and_the_salt_and_holds_neither_value() {
        let one = SecretHasher::random().unwrap();
        let again = SecretHasher::from_hex(&one.salt_hex()).unwrap();
        let other = SecretHasher::random().unwrap();
        assert_eq!(one.hash("s3cret"), again.hash("s3cret"));
        assert_ne!(one.hash("s3cret"), one.hash("s3cret2"));
        assert_ne!(one.hash("s3cret"), other.hash("s3cret"));
        assert_eq!(one.hash("s3cret").len(), 64);
        assert!(!one.hash("s3cret").contains("s3cret"));
        assert!(SecretHasher::from_hex("zz").is_err());
        assert!(SecretHasher::from_hex("00ff").is_err());
    }
}
