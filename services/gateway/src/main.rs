use crm_gateway::{Application, Settings};
use crm_platform::{Shutdown, telemetry::init_telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-gateway");
    let settings: Settings = crm_platform::settings::load()?;
    Application::build(&settings, Default::default())
        .await?
        .run(Shutdown::on_signals())
        .await?;
    Ok(())
}
