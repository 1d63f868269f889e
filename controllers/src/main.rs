//! `capmaas-manager`: runs the MaasCluster and MaasMachine controllers.

use std::process::ExitCode;

use capmaas_controllers::runtime::flags::Flags;
use capmaas_controllers::runtime::{manager, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    if let Err(error) = telemetry::init(flags.log_format, flags.log_directive()) {
        eprintln!("capmaas-manager: {error}");
        return ExitCode::FAILURE;
    }
    match manager::run(flags).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "manager stopped");
            ExitCode::FAILURE
        }
    }
}
