use crm_customer_core::{Application, Settings};
use crm_platform::{Shutdown, telemetry::init_telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-customer-core");
    let settings: Settings = crm_platform::settings::load()?;
    let app = Application::build(&settings).await?;
    app.run(Shutdown::on_signals()).await?;
    Ok(())
}
