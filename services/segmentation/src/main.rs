use crm_platform::{Shutdown, telemetry::init_telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-segmentation");
    let settings: crm_segmentation::Settings = crm_platform::settings::load()?;
    crm_segmentation::run(&settings, Shutdown::on_signals()).await?;
    Ok(())
}
