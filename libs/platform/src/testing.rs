//! Test support shared with other crates' tests (feature `testing`): a RabbitMQ vhost of
//! its own per test, so tests run in parallel and leave nothing behind.

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
