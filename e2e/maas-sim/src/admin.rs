//! The admin API for tests (`/_sim/...`): state, request counts, faults. JSON both ways; not
//! part of MAAS, so no OAuth.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::ledger::LedgerEntry;
use crate::requests::RequestStats;
use crate::shared::{Shared, StateView, lock};

/// The admin routes.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/requests", get(requests))
        .route("/_sim/ledger", get(ledger))
        .route("/_sim/requests/reset", post(reset_requests))
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .route("/_sim/faults/injected", get(faults_injected))
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<StateView> {
    Json(shared.state_view())
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<RequestStats> {
    Json(lock(&shared.requests).clone())
}

async fn ledger(State(shared): State<Arc<Shared>>) -> Json<Vec<LedgerEntry>> {
    Json(lock(&shared.world).ledger.clone())
}

async fn reset_requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    *lock(&shared.requests) = RequestStats::default();
    Json(json!({"reset": true}))
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<FaultConfig> {
    Json(lock(&shared.faults).config().clone())
}

async fn faults_injected(
    State(shared): State<Arc<Shared>>,
) -> Json<std::collections::BTreeMap<String, u64>> {
    Json(lock(&shared.faults).injected().clone())
}

async fn set_faults(
    State(shared): State<Arc<Shared>>,
    Json(config): Json<FaultConfig>,
) -> Json<Value> {
    let unknown = shared.set_faults(config);
    Json(json!({"applied": true, "unknown_machines": unknown}))
}
