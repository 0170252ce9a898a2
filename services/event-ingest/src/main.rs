use crm_platform::{Shutdown, telemetry::init_telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-event-ingest");
    let settings: crm_event_ingest::Settings = crm_platform::settings::load()?;
    crm_event_ingest::run(&settings, Shutdown::on_signals()).await?;
    Ok(())
}
