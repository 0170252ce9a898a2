use crm_event_ingest::{Application, Settings};
use crm_platform::{Shutdown, telemetry::init_telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-event-ingest");
    let settings: Settings = crm_platform::settings::load()?;
    Application::build(&settings)
        .await?
        .run(Shutdown::on_signals())
        .await?;
    Ok(())
}
