//! `machines/{system_id}/` and `nodes/{system_id}/...`: reading one machine, its operations and
//! its devices.

use base64::Engine;
use serde_json::{Value, json};

use super::{Ctx, Outcome};
use crate::lifecycle::{DeployRequest, HookEvent, OpError, ReleaseRequest, can_access};
use crate::render::{HARDWARE_TYPES, device_json, machine_json, node_devices};
use crate::reply::Reply;
use crate::world::World;

fn machine_reply(world: &World, id: &str) -> Reply {
    match world.machine(id) {
        Some(m) => Reply::json(machine_json(world, m)),
        None => Reply::not_found("Machine"),
    }
}

fn done(world: &World, id: &str, result: Result<(), OpError>) -> Outcome {
    match result {
        Ok(()) => Outcome::write(machine_reply(world, id)),
        Err(e) => Outcome::read(Reply::from_op_error(e)),
    }
}

fn decode_user_data(value: &str) -> Result<String, Reply> {
    let cleaned: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|_| Reply::field_error("user_data", "User data must be base64 encoded."))
}

fn done_with_events(world: &World, id: &str, result: Result<Vec<HookEvent>, OpError>) -> Outcome {
    match result {
        Ok(events) => {
            let mut outcome = Outcome::write(machine_reply(world, id));
            outcome.events = events;
            outcome
        }
        Err(e) => Outcome::read(Reply::from_op_error(e)),
    }
}

/// `PUT machines/{id}/`: MAAS asks for the admin permission, the owner is not enough.
fn update(world: &mut World, ctx: &Ctx<'_>, id: &str) -> Outcome {
    if !ctx.caller.is_admin() {
        return Outcome::read(Reply::from_op_error(OpError::Forbidden(String::new())));
    }
    match crate::machine_update::update_machine(world, id, ctx.params) {
        Ok(()) => Outcome::write(machine_reply(world, id)),
        Err(errors) => Outcome::read(Reply::form_errors(errors)),
    }
}

fn deploy(world: &mut World, ctx: &Ctx<'_>, id: &str) -> Outcome {
    let p = ctx.params;
    let user_data = match p.get("user_data").map(decode_user_data).transpose() {
        Ok(u) => u,
        Err(reply) => return Outcome::read(reply),
    };
    let req = DeployRequest {
        distro_series: p.get("distro_series").map(str::to_string),
        user_data,
        hwe_kernel: p
            .get("hwe_kernel")
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        ephemeral_deploy: p.flag("ephemeral_deploy"),
        agent_name: p.get("agent_name").map(str::to_string),
        will_fail: ctx.deploy_fails,
        will_break: ctx.deploy_breaks,
    };
    let result = world.deploy(id, &ctx.caller, req, ctx.timing, ctx.now);
    done(world, id, result)
}

fn release(world: &mut World, ctx: &Ctx<'_>, id: &str) -> Outcome {
    let p = ctx.params;
    let req = ReleaseRequest {
        erase: p.flag("erase"),
        quick_erase: p.flag("quick_erase"),
        secure_erase: p.flag("secure_erase"),
    };
    let result = world.release(id, &ctx.caller, req, ctx.timing, ctx.now);
    done_with_events(world, id, result)
}

fn mark_broken(world: &mut World, ctx: &Ctx<'_>, id: &str) -> Outcome {
    // MAAS still reads the older name of the comment when no comment is given.
    let comment = ctx
        .params
        .get("comment")
        .filter(|c| !c.is_empty())
        .or_else(|| ctx.params.get("error_description"));
    let result = world.mark_broken(id, &ctx.caller, comment);
    done_with_events(world, id, result)
}

/// Runs a machine (or node) action: 404 for an unknown machine, 403 for one the caller may
/// not see, then the action.
pub fn handle(world: &mut World, ctx: &Ctx<'_>, action: &str) -> Outcome {
    let id = ctx.route.param("system_id").to_string();
    if world.machine(&id).is_none() {
        let model = if ctx.route.resource.label == "node" {
            "Node"
        } else {
            "Machine"
        };
        return Outcome::read(Reply::not_found(model));
    }
    if let Err(e) = world.check_view(&id, &ctx.caller) {
        return Outcome::read(Reply::from_op_error(e));
    }
    let caller = &ctx.caller;
    let result = match action {
        "read" => return Outcome::read(machine_reply(world, &id)),
        "update" => return update(world, ctx, &id),
        "deploy" => return deploy(world, ctx, &id),
        "release" => return release(world, ctx, &id),
        "mark_broken" => return mark_broken(world, ctx, &id),
        "query_power_state" => {
            let state = world
                .machine(&id)
                .map(|m| m.power_state.as_str())
                .unwrap_or("unknown");
            return Outcome::read(Reply::json(json!({"state": state})));
        }
        "power_on" => world.set_power(&id, caller, true),
        "power_off" => world.set_power(&id, caller, false),
        "set_owner_data" | "set_workload_annotations" => {
            world.set_owner_data(&id, caller, &ctx.params.0)
        }
        "abort" => world.abort(&id, caller),
        "mark_fixed" => world.mark_fixed(&id, caller),
        other => {
            return Outcome::read(Reply::text(
                http::StatusCode::BAD_REQUEST,
                format!("Unrecognised signature: op={other}"),
            ));
        }
    };
    done(world, &id, result)
}

fn hardware_type_filter(value: &str) -> Option<usize> {
    if let Ok(n) = value.parse::<usize>() {
        return (n < HARDWARE_TYPES.len()).then_some(n);
    }
    HARDWARE_TYPES
        .iter()
        .position(|t| t.eq_ignore_ascii_case(value))
}

/// `GET nodes/{system_id}/devices/`.
pub fn devices(world: &mut World, ctx: &Ctx<'_>) -> Outcome {
    let id = ctx.route.param("system_id");
    let Some(m) = world.machine(id) else {
        return Outcome::read(Reply::not_found("Node"));
    };
    if !can_access(m, &ctx.caller) {
        return Outcome::read(Reply::from_op_error(OpError::Forbidden(String::new())));
    }
    let p = ctx.params;
    let mut types = Vec::new();
    for t in p.get_all("hardware_type") {
        match hardware_type_filter(t) {
            Some(n) => types.push(n),
            None => {
                return Outcome::read(Reply::field_error(
                    "hardware_type",
                    format!("Select a valid choice. {t} is not one of the available choices."),
                ));
            }
        }
    }
    let list: Vec<Value> = node_devices(m)
        .iter()
        .filter(|d| types.is_empty() || types.contains(&d.hardware_type))
        .filter(|d| {
            p.get_all("vendor_id")
                .iter()
                .all(|v| v.eq_ignore_ascii_case(&d.vendor_id))
        })
        .filter(|d| {
            p.get_all("product_id")
                .iter()
                .all(|v| v.eq_ignore_ascii_case(&d.product_id))
        })
        .filter(|d| p.get_all("vendor_name").iter().all(|v| *v == d.vendor_name))
        .filter(|d| {
            p.get_all("product_name")
                .iter()
                .all(|v| *v == d.product_name)
        })
        .filter(|d| {
            p.get_all("numa_node")
                .iter()
                .all(|v| *v == d.numa_node.to_string())
        })
        .filter(|d| p.get_all("pci_address").iter().all(|v| *v == d.pci_address))
        .map(|d| device_json(m, d))
        .collect();
    Outcome::read(Reply::json(Value::Array(list)))
}

/// `GET nodes/{system_id}/devices/{id}/`.
pub fn device(world: &mut World, ctx: &Ctx<'_>) -> Outcome {
    let Some(m) = world.machine(ctx.route.param("system_id")) else {
        return Outcome::read(Reply::not_found("Node"));
    };
    if !can_access(m, &ctx.caller) {
        return Outcome::read(Reply::from_op_error(OpError::Forbidden(String::new())));
    }
    let wanted = ctx.route.param("id");
    match node_devices(m).iter().find(|d| d.id.to_string() == wanted) {
        Some(d) => Outcome::read(Reply::json(device_json(m, d))),
        None => Outcome::read(Reply::not_found("NodeDevice")),
    }
}
