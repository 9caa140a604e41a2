//! The local stand-in for IAM's key store: a credentials file mapping access keys to principals.
//!
//! ```json
//! {"principals": [{"principal": "arn:aws:iam::123456789012:role/loadgen",
//!                  "access_key_id": "AKIA…", "secret_access_key": "…"}]}
//! ```
//! Keys are generated at random when the stack starts (so no secret is ever committed) and written
//! to the state directory, where loadgen and other local processes read them.

use std::collections::HashMap;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use sigv4_verify::PrincipalKey;

/// The credentials file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    /// All known principals.
    pub principals: Vec<PrincipalKey>,
}

/// Why a credentials file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Unreadable.
    #[error("credentials file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the documented shape.
    #[error("credentials file {path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Two entries share an access key.
    #[error("access key {0} appears twice")]
    DuplicateKey(String),
}

impl CredentialsFile {
    /// A fresh random key for each principal.
    pub fn generate(principals: &[String]) -> Self {
        let mut rng = rand::rng();
        let mut alnum = |n: usize, alphabet: &[u8]| -> String {
            (0..n)
                .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                .collect()
        };
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        Self {
            principals: principals
                .iter()
                .map(|principal| PrincipalKey {
                    principal: principal.clone(),
                    // The shape of a real long-term key id: AKIA + 16 base32 characters.
                    access_key_id: format!("AKIA{}", alnum(16, UPPER)),
                    secret_access_key: alnum(40, SECRET),
                })
                .collect(),
        }
    }

    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            path: shown.clone(),
            source,
        })?;
        let file: Self =
            serde_json::from_str(&text).map_err(|source| CredentialsError::Format {
                path: shown,
                source,
            })?;
        file.index()?;
        Ok(file)
    }

    /// The key of `principal`.
    pub fn key_of(&self, principal: &str) -> Option<&PrincipalKey> {
        self.principals.iter().find(|p| p.principal == principal)
    }

    /// Access key id → entry, refusing duplicates.
    pub fn index(&self) -> Result<HashMap<String, PrincipalKey>, CredentialsError> {
        let mut map = HashMap::with_capacity(self.principals.len());
        for entry in &self.principals {
            if map
                .insert(entry.access_key_id.clone(), entry.clone())
                .is_some()
            {
                return Err(CredentialsError::DuplicateKey(entry.access_key_id.clone()));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_shaped_like_aws_keys() {
        let file = CredentialsFile::generate(&["a".into(), "b".into()]);
        let index = file.index().unwrap();
        assert_eq!(index.len(), 2);
        for entry in &file.principals {
            assert!(entry.access_key_id.starts_with("AKIA"));
            assert_eq!(entry.access_key_id.len(), 20);
            assert_eq!(entry.secret_access_key.len(), 40);
        }
        assert_eq!(file.key_of("b").unwrap().principal, "b");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let mut file = CredentialsFile::generate(&["a".into(), "b".into()]);
        file.principals[1].access_key_id = file.principals[0].access_key_id.clone();
        assert!(matches!(
            file.index(),
            Err(CredentialsError::DuplicateKey(_))
        ));
    }
}
