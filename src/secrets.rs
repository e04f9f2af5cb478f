//! Secret references (`{fromEnv: VAR}`, `{fromFile: path}`) and their values.
//!
//! A value is read only when a connection or an action needs it, and errors
//! name where the secret should come from, never what it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

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
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the secret file {}", path.display()))?;
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
