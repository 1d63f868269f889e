//! `machines/`: listing with filters and allocation.

use serde_json::Value;

use super::{Ctx, Outcome};
use crate::constraints::parse_constraints;
use crate::lifecycle::can_access;
use crate::render::machine_json;
use crate::reply::Reply;
use crate::status::NodeStatus;
use crate::world::{Machine, World};

fn matches_filters(ctx: &Ctx<'_>, m: &Machine, statuses: &[NodeStatus]) -> bool {
    let p = ctx.params;
    let ids = p.get_all("id");
    let hostnames = p.get_all("hostname");
    let tags = p.get_all("tags");
    let not_tags = p.get_all("not_tags");
    (ids.is_empty() || ids.contains(&m.system_id.as_str()))
        && (hostnames.is_empty() || hostnames.iter().any(|h| *h == m.hostname || *h == m.fqdn()))
        && p.get_all("zone").iter().all(|z| *z == m.zone)
        && p.get_all("pool").iter().all(|z| *z == m.pool)
        && p.get_all("domain").iter().all(|d| *d == m.domain)
        && p.get_all("agent_name")
            .iter()
            .all(|a| Some(*a) == m.agent_name.as_deref())
        && p.get_all("mac_address")
            .iter()
            .all(|mac| mac.eq_ignore_ascii_case(&m.mac_address))
        && tags
            .iter()
            .flat_map(|t| t.split(','))
            .all(|t| m.tags.iter().any(|x| x == t))
        && !not_tags
            .iter()
            .flat_map(|t| t.split(','))
            .any(|t| m.tags.iter().any(|x| x == t))
        && (statuses.is_empty() || statuses.contains(&m.status))
}

/// `GET machines/` (and `nodes/`, `op=list_allocated`).
pub fn read(world: &mut World, ctx: &Ctx<'_>, allocated_only: bool) -> Outcome {
    let mut statuses = Vec::new();
    for s in ctx.params.get_all("status") {
        match NodeStatus::from_filter(s) {
            Some(status) => statuses.push(status),
            None => {
                return Outcome::read(Reply::field_error(
                    "status",
                    format!("Select a valid choice. {s} is not one of the available choices."),
                ));
            }
        }
    }
    let list: Vec<Value> = world
        .machines
        .values()
        .filter(|m| can_access(m, &ctx.caller))
        .filter(|m| matches_filters(ctx, m, &statuses))
        .filter(|m| !allocated_only || m.owner.as_deref() == Some(ctx.caller.username.as_str()))
        .map(|m| machine_json(world, m))
        .collect();
    Outcome::read(Reply::json(Value::Array(list)))
}

/// `POST machines/?op=allocate`.
pub fn allocate(world: &mut World, ctx: &Ctx<'_>) -> Outcome {
    let constraints = match parse_constraints(ctx.params, world) {
        Ok(c) => c,
        Err(errors) => return Outcome::read(Reply::form_errors(errors)),
    };
    match world.allocate(&constraints, &ctx.caller) {
        Ok(id) => {
            let reply = match world.machine(&id) {
                Some(m) => Reply::json(machine_json(world, m)),
                None => Reply::not_found("Machine"),
            };
            if constraints.dry_run {
                Outcome::read(reply)
            } else {
                Outcome::write(reply)
            }
        }
        Err(e) => Outcome::read(Reply::from_op_error(e)),
    }
}
