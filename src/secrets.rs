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
    FromFile(PathBuf),
}

impl SecretRef {
    /// The reference written in a manifest; relative files are taken from `root`.
    pub fn from_manifest(value: &Value, root: &Path) -> Result<SecretRef> {
        if let Some(variable) = value.get("fromEnv").and_then(Value::as_str) {
            return Ok(SecretRef::FromEnv(variable.to_string()));
        }
        if let Some(file) = value.get("fromFile").and_then(Value::as_str) {
            return Ok(SecretRef::FromFile(root.join(file)));
        }
        bail!("a secret reference needs fromEnv or fromFile")
    }

    pub fn describe(&self) -> String {
        match self {
            SecretRef::FromEnv(variable) => format!("environment variable {variable}"),
            SecretRef::FromFile(path) => format!("file {}", path.display()),
        }
    }

    pub fn resolve(&self) -> Result<String> {
        match self {
            SecretRef::FromEnv(variable) => match std::env::var(variable) {
                Ok(value) if !value.is_empty() => Ok(value),
                Ok(_) => bail!("the secret's environment variable {variable} is empty"),
                Err(_) => bail!("the secret's environment variable {variable} is not set"),
            },
            SecretRef::FromFile(path) => {
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
    use super::SecretHasher;

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
