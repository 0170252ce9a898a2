//! Typed settings for every binary: built-in defaults, then an optional TOML file named by
//! `CRM_CONFIG_FILE`, then `CRM_*` environment variables, so Helm's `env:` always wins.
//! The groups every service with that dependency has (listeners, PostgreSQL, Redis,
//! RabbitMQ) are defined here once and flattened into each service's `Settings`, so
//! their variables are named and defaulted alike everywhere.

use std::{fmt, net::SocketAddr, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    Result, cache::RedisCacheSettings, database::PostgresLimits, internal_auth::InternalAuth,
    listeners::Listen,
};

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

/// Where a service listens: gRPC (`CRM_GRPC_ADDR`) and HTTP for `/healthz`, `/readyz`
/// and `/metrics` (`CRM_HTTP_ADDR`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenSettings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

impl ListenSettings {
    /// Loopback on these ports (each service has its own defaults).
    pub fn loopback(grpc_port: u16, http_port: u16) -> Self {
        Self {
            grpc_addr: ([127, 0, 0, 1], grpc_port).into(),
            http_addr: ([127, 0, 0, 1], http_port).into(),
        }
    }

    /// The listeners to bind, with who may call their gRPC.
    pub fn listen(&self, internal: InternalAuth) -> Listen {
        Listen {
            grpc_addr: self.grpc_addr,
            http_addr: Some(self.http_addr),
            internal,
        }
    }
}

/// A service's PostgreSQL (`CRM_DATABASE_URL`, `CRM_DATABASE_MAX_CONNECTIONS`,
/// `CRM_DATABASE_STATEMENT_TIMEOUT_MS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    pub database_url: Secret,
    pub database_max_connections: u32,
    /// The longest one statement may run (waiting for locks included); 0 = no limit.
    pub database_statement_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        let limits = PostgresLimits::default();
        Self {
            database_url: Secret::new("postgres://postgres@127.0.0.1:5432/crm"),
            database_max_connections: limits.max_connections,
            database_statement_timeout_ms: limits.statement_timeout.as_millis() as u64,
        }
    }
}

impl DatabaseSettings {
    pub fn limits(&self) -> PostgresLimits {
        PostgresLimits {
            max_connections: self.database_max_connections,
            statement_timeout: Duration::from_millis(self.database_statement_timeout_ms),
        }
    }
}

/// A service's Redis (`CRM_REDIS_URL`, `CRM_REDIS_KEY_PREFIX`, `CRM_REDIS_TIMEOUT_MS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisSettings {
    pub redis_url: Secret,
    /// Prepended to every key, so deployments (and tests) can share one Redis.
    pub redis_key_prefix: String,
    /// Deadline of one call; past it the call counts as failed (a cache miss).
    pub redis_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            redis_url: Secret::new("redis://127.0.0.1:6379"),
            redis_key_prefix: String::new(),
            redis_timeout_ms: 250,
        }
    }
}

impl RedisSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn cache(&self) -> RedisCacheSettings {
        RedisCacheSettings {
            url: self.redis_url.clone(),
            key_prefix: self.redis_key_prefix.clone(),
            timeout: self.timeout(),
        }
    }
}

/// A service's RabbitMQ (`CRM_AMQP_URL`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusSettings {
    pub amqp_url: Secret,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self {
            amqp_url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
        }
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

    /// A service's settings as every service writes them: the shared groups flattened.
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(default)]
    struct Service {
        #[serde(flatten)]
        listen: ListenSettings,
        #[serde(flatten)]
        database: DatabaseSettings,
        #[serde(flatten)]
        redis: RedisSettings,
        #[serde(flatten)]
        bus: BusSettings,
    }

    impl Default for Service {
        fn default() -> Self {
            Self {
                listen: ListenSettings::loopback(50051, 9101),
                database: DatabaseSettings::default(),
                redis: RedisSettings::default(),
                bus: BusSettings::default(),
            }
        }
    }

    #[test]
    fn shared_groups_keep_their_flat_variable_names() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CRM_GRPC_ADDR", "0.0.0.0:7000");
            jail.set_env("CRM_DATABASE_URL", "postgres://db/crm");
            jail.set_env("CRM_DATABASE_MAX_CONNECTIONS", "3");
            jail.set_env("CRM_REDIS_TIMEOUT_MS", "9");
            jail.set_env("CRM_AMQP_URL", "amqp://broker");
            let settings: Service = load().expect("settings load");
            assert_eq!(settings.listen.grpc_addr.to_string(), "0.0.0.0:7000");
            assert_eq!(settings.listen.http_addr.port(), 9101, "the default stays");
            assert_eq!(settings.database.database_url.expose(), "postgres://db/crm");
            assert_eq!(settings.database.limits().max_connections, 3);
            assert_eq!(settings.redis.cache().timeout, Duration::from_millis(9));
            assert_eq!(settings.redis.redis_key_prefix, "");
            assert_eq!(settings.bus.amqp_url.expose(), "amqp://broker");
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("postgres://user:hunter2@db");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
