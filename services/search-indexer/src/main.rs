use crm_platform::{Shutdown, telemetry::init_telemetry};
use crm_search_indexer::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-search-indexer");
    let settings: Settings = crm_platform::settings::load()?;
    Application::build(&settings)
        .await?
        .run(Shutdown::on_signals())
        .await?;
    Ok(())
}
