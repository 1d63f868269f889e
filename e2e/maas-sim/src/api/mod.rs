//! The MAAS API handlers, one module per family of resources. Each runs under the world lock,
//! synchronously, and reports what changed.

mod catalog;
mod dns;
mod machine;
mod machines;

use jiff::Timestamp;

use crate::lifecycle::{Caller, HookEvent, Timing};
use crate::params::Params;
use crate::reply::Reply;
use crate::routes::RouteMatch;
use crate::world::World;

/// What a handler gets.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The authenticated caller (`admin` for anonymous routes).
    pub caller: Caller,
    /// Current time.
    pub now: Timestamp,
    /// Transition durations.
    pub timing: Timing,
    /// Matched route.
    pub route: &'a RouteMatch,
    /// Request parameters (`op` removed).
    pub params: &'a Params,
    /// Whether a deploy started now fails (fault injection).
    pub deploy_fails: bool,
    /// Whether a deploy started now ends in Broken halfway (fault injection).
    pub deploy_breaks: bool,
}

/// What a handler returns.
#[derive(Debug)]
pub struct Outcome {
    /// The answer.
    pub reply: Reply,
    /// Boot hook events.
    pub events: Vec<HookEvent>,
    /// Whether the world changed (snapshot needed).
    pub changed: bool,
}

impl Outcome {
    /// A read: nothing changed.
    pub fn read(reply: Reply) -> Self {
        Self {
            reply,
            events: Vec::new(),
            changed: false,
        }
    }

    /// A write.
    pub fn write(reply: Reply) -> Self {
        Self {
            reply,
            events: Vec::new(),
            changed: true,
        }
    }
}

/// Runs the action `action` of the matched resource.
pub fn handle(world: &mut World, ctx: &Ctx<'_>, action: &str) -> Outcome {
    match (ctx.route.resource.label, action) {
        ("version", "read") => Outcome::read(Reply::json(crate::render::version_json())),
        ("machines", "read") => machines::read(world, ctx, false),
        ("machines", "list_allocated") => machines::read(world, ctx, true),
        ("machines", "allocate") => machines::allocate(world, ctx),
        ("nodes", "read") => machines::read(world, ctx, false),
        ("machine" | "node", _) => machine::handle(world, ctx, action),
        ("node_devices", "read") => machine::devices(world, ctx),
        ("node_device", "read") => machine::device(world, ctx),
        ("dnsresources" | "dnsresource", _) => dns::handle(world, ctx, action),
        _ => catalog::handle(world, ctx, action),
    }
}
