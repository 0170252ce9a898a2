use clap::Parser;
use crm_platform::{Shutdown, telemetry::init_telemetry};
use crm_standalone::{Cli, Command, Config, Standalone, import};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Import(args)) => import::run(args).await,
        Some(Command::Serve(config)) => serve(config).await,
        None => serve(cli.serve).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _telemetry = init_telemetry("crm");
    let app = Standalone::build(&config).await?;
    let url = format!("http://{}", app.local_addr());
    println!(
        "CRM is running on {url} (data in {})",
        config.data_dir.display()
    );
    println!("API docs: {url}/docs");
    println!(
        "Try: curl -i -X POST {url}/api/customers -H 'content-type: application/json' \
         -d '{{\"email\": \"ada@example.com\", \"first_name\": \"Ada\"}}'"
    );
    app.run(Shutdown::on_signals()).await
}
