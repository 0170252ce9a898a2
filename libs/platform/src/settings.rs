//! Typed settings for every binary: built-in defaults, then an optional TOML file named by
//! `CRM_CONFIG_FILE`, then `CRM_*` environment variables, so Helm's `env:` always wins.

use std::fmt;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::Result;

/// Loads `T` from its defaults, the config file and the `CRM_` environment.
pub fn load<T>() -> Result<T>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Ok(path) = std::env::var("CRM_CONFIG_FILE") {
        figment = figment.merge(Toml::file_exact(path));
    }
    Ok(figment
        .merge(Env::prefixed("CRM_"))
        .extract()
        .map_err(Box::new)?)
}

/// A secret (a URL with a password, a token) that never prints.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether two secrets (or their hashes) are equal, in time that does not depend on where
/// they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
// figment's Jail fixes the closure's error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Example {
        http_addr: String,
        database_url: Secret,
    }

    impl Default for Example {
        fn default() -> Self {
            Self {
                http_addr: "127.0.0.1:1".into(),
                database_url: Secret::new("postgres://default"),
            }
        }
    }

    #[test]
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CRM_HTTP_ADDR", "0.0.0.0:9000");
            let settings: Example = load().expect("settings load");
            assert_eq!(settings.http_addr, "0.0.0.0:9000");
            assert_eq!(settings.database_url.expose(), "postgres://default");
            Ok(())
        });
    }

    #[test]
    fn file_is_read_and_environment_still_wins() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "crm.toml",
                "http_addr = \"10.0.0.1:1\"\ndatabase_url = \"postgres://file\"",
            )?;
            jail.set_env("CRM_CONFIG_FILE", "crm.toml");
            jail.set_env("CRM_DATABASE_URL", "postgres://env");
            let settings: Example = load().expect("settings load");
            assert_eq!(settings.http_addr, "10.0.0.1:1");
            assert_eq!(settings.database_url.expose(), "postgres://env");
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("postgres://user:hunter2@db");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
