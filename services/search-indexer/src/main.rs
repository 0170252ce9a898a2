use crm_platform::{Shutdown, telemetry::init_telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm-search-indexer");
    let settings: crm_search_indexer::Settings = crm_platform::settings::load()?;
    crm_search_indexer::run(&settings, Shutdown::on_signals()).await?;
    Ok(())
}
