//! What every simulator test of the controllers starts with.

use maas_client::{MaasClient, MaasConfig, RetryConfig};
use maas_sim::{SimConfig, SimHandle, Simulator};

/// A simulator with generated machines, and a client for it that does not retry (so the
/// simulator's request log shows exactly the calls a pass made).
pub async fn sim_and_client(machines: usize, gpu_machines: usize) -> (SimHandle, MaasClient) {
    let sim = Simulator::start(SimConfig {
        machines,
        gpu_machines,
        ..Default::default()
    })
    .await
    .unwrap();
    let client =
        MaasClient::new(MaasConfig::new(sim.url(), sim.api_key()).with_retry(RetryConfig::none()))
            .unwrap();
    (sim, client)
}
