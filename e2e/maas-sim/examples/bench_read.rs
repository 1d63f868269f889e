#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Requests per second the simulator serves for `GET machines/{id}/`, signed with PLAINTEXT
//! as real clients sign, on loopback. Bounded in count and time:
//!
//! `cargo run --release -p maas-sim --example bench_read -- [REQUESTS] [CONCURRENCY] [MAX_SECONDS]`
//! (defaults 20000, 8, 30).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use maas_sim::{SimConfig, Simulator};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let total = arg(1, 20_000);
    let concurrency = arg(2, 8).max(1);
    let max = Duration::from_secs(arg(3, 30));
    let sim = Simulator::start(SimConfig {
        machines: 50,
        gpu_machines: 10,
        ..Default::default()
    })
    .await
    .unwrap();
    let parts: Vec<String> = sim.api_key().split(':').map(str::to_string).collect();
    let ids: Vec<String> = sim
        .state()
        .machines
        .iter()
        .map(|m| m.system_id.clone())
        .collect();
    let base = sim.api_url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (http, next, failures) = (http.clone(), next.clone(), failures.clone());
        let (parts, ids, base) = (parts.clone(), ids.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || started.elapsed() > max {
                    break;
                }
                let id = &ids[(i as usize) % ids.len()];
                let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let header = format!(
                    "OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\", oauth_nonce=\"b{w}-{i}\", oauth_timestamp=\"{ts}\"",
                    parts[0], parts[1], parts[2]
                );
                let ok = match http.get(format!("{base}machines/{id}/")).header("Authorization", header).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let done = next.load(Ordering::Relaxed).min(total);
    let served = sim.requests().count("machine:read", 200);
    println!(
        "GET machines/{{id}}/: {served} OK of {done} in {:.2} s with {concurrency} clients = {:.0} requests/s ({} failures)",
        elapsed.as_secs_f64(),
        served as f64 / elapsed.as_secs_f64(),
        failures.load(Ordering::Relaxed)
    );
    sim.shutdown().await.unwrap();
}
