//! The MaasMachineTemplate controller: capacity and node facts for scale from zero, from what
//! MAAS has free for each template.

pub mod reconcile;
pub mod source;
pub mod status;

use std::sync::Arc;

use capmaas_api::MaasMachineTemplate;
use kube::runtime::controller::{self, Controller};

use crate::k8s::objects::scoped;
use crate::runtime::context::Context;
use crate::runtime::reconciler::{drain, error_policy, primary_watcher_config};
use crate::runtime::shutdown::Shutdown;

/// The MaasMachineTemplate controller. It watches only templates: MAAS has no watch, so each
/// template looks at the shared inventory again every `INVENTORY_MAX_AGE`. Returns the run
/// future.
pub fn controller(ctx: Arc<Context>, shutdown: &Shutdown) -> impl std::future::Future<Output = ()> {
    let wc = primary_watcher_config(ctx.watch_filter.as_deref());
    let api = scoped::<MaasMachineTemplate>(&ctx.client, ctx.namespace.as_deref());
    let results = Controller::new(api, wc)
        .with_config(controller::Config::default().concurrency(2))
        .graceful_shutdown_on(shutdown.wait())
        .run(reconcile::reconcile, error_policy, ctx.clone());
    drain(reconcile::CONTROLLER, results, ctx.watch_health.clone())
}
