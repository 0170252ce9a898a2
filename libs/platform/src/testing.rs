//! Test support shared with other crates' tests (feature `testing`): a RabbitMQ vhost and
//! a PostgreSQL database of its own per test, so tests run in parallel. A missing server
//! fails loudly with how to start it.

use std::process::Command;

/// A fresh vhost on the local RabbitMQ; deleted on drop. `make test` deletes what
/// crashed tests left behind.
pub struct TestVhost {
    pub name: String,
    /// `amqp://` URL of the vhost.
    pub url: String,
}

fn rabbitmqctl(args: &[&str]) -> Result<(), String> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl TestVhost {
    pub fn create() -> Self {
        let name = format!("crm_test_{}", uuid::Uuid::new_v4().simple());
        let created = rabbitmqctl(&["add_vhost", &name]).and_then(|()| {
            rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"])
        });
        if let Err(error) = created {
            panic!(
                "cannot create a RabbitMQ vhost ({error}). Is RabbitMQ running on \
                 127.0.0.1:5672? Start it with: rabbitmq-server -detached"
            );
        }
        let url = format!("amqp://guest:guest@127.0.0.1:5672/{name}");
        Self { name, url }
    }

    /// Closes every client connection of the vhost from the broker's side, as a broker
    /// restart or a network cut does.
    pub fn close_connections(&self) {
        rabbitmqctl(&[
            "close_all_connections",
            "-p",
            &self.name,
            "test: connection cut",
        ])
        .expect("close connections");
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

/// The PostgreSQL server tests use; override with `CRM_TEST_POSTGRES_URL`.
pub fn postgres_server_url() -> String {
    std::env::var("CRM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A connection to `url` holding `table` locked (access exclusive) in an open
/// transaction: statements on the table wait until `rollback` on it, or its drop.
pub async fn lock_table(url: &str, table: &str) -> sqlx::PgConnection {
    use sqlx::{AssertSqlSafe, Connection};
    let mut holder = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query("begin")
        .execute(&mut holder)
        .await
        .expect("begin");
    let lock = format!("lock table {table} in access exclusive mode");
    sqlx::query(AssertSqlSafe(lock))
        .execute(&mut holder)
        .await
        .expect("lock the table");
    holder
}

/// Creates an empty database named `crm_test_<uuid>` and returns its URL. `make test`
/// drops the leftovers of earlier runs before it starts.
pub async fn fresh_postgres_url() -> String {
    use sqlx::{AssertSqlSafe, Connection, PgConnection};
    let server = postgres_server_url();
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {server} ({e}). Start it with: \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            )
        });
    let name = format!("crm_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    format!("{server}/{name}")
}

/// A certificate authority of its own per test, for mutual TLS between services.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        Self { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `127.0.0.1` and `localhost`, good for serving and for calling:
    /// (certificate, key), both PEM.
    pub fn issue(&self) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("valid names");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("a key");
        let certificate = params.signed_by(&key, &self.issuer).expect("signed");
        (certificate.pem(), key.serialize_pem())
    }

    /// Writes a new certificate, its key and this CA into `dir`: the `CRM_TLS_*`
    /// variables that make a service use them.
    pub fn issue_files(&self, dir: &std::path::Path) -> Vec<(&'static str, String)> {
        let (certificate, key) = self.issue();
        [
            ("CRM_TLS_CERT", "service.pem", certificate),
            ("CRM_TLS_KEY", "service.key", key),
            ("CRM_TLS_CA", "ca.pem", self.pem()),
        ]
        .into_iter()
        .map(|(variable, file, pem)| {
            let path = dir.join(file);
            std::fs::write(&path, pem).expect("write a PEM file");
            (variable, path.display().to_string())
        })
        .collect()
    }
}
