//! `maas-sim`: serves the simulated MAAS until interrupted.

use clap::Parser;
use maas_sim::Simulator;
use maas_sim::cli::{Cli, config_from_cli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let config = config_from_cli(&cli).map_err(anyhow::Error::msg)?;
    let sim = Simulator::start(config).await?;
    // The URL and key are the program's output, for the user to hand to clients.
    println!("MAAS URL: {}", sim.url());
    println!("API key: {}", sim.api_key());
    if sim.admin_api_key() != sim.api_key() {
        println!("Admin API key: {}", sim.admin_api_key());
    }
    wait_for_signal().await;
    sim.shutdown().await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
