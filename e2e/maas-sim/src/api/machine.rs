//! `machines/{system_id}/` and `nodes/{system_id}/...`: reading one machine, its operations and
//! its devices.

use base64::Engine;
use serde_json::{Value, json};

use super::{Ctx, Outcome};
use crate::lifecycle::{DeployRequest, OpError, ReleaseRequest, can_access};
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

/// Runs a machine (or node) action.
pub fn handle(world: &mut World, ctx: &Ctx<'_>, action: &str) -> Outcome {
    let id = ctx.route.param("system_id").to_string();
    let p = ctx.params;
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
    match action {
        "read" => Outcome::read(machine_reply(world, &id)),
        "update" => {
            // MAAS asks for the admin permission: the owner of the machine is not enough.
            if !ctx.caller.is_admin() {
                return Outcome::read(Reply::from_op_error(OpError::Forbidden(String::new())));
            }
            match crate::machine_update::update_machine(world, &id, p) {
                Ok(()) => Outcome::write(machine_reply(world, &id)),
                Err(errors) => Outcome::read(Reply::form_errors(errors)),
            }
        }
        "deploy" => {
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
            };
            let result = world.deploy(&id, &ctx.caller, req, ctx.timing, ctx.now);
            done(world, &id, result)
        }
        "release" => {
            let req = ReleaseRequest {
                erase: p.flag("erase"),
                quick_erase: p.flag("quick_erase"),
                secure_erase: p.flag("secure_erase"),
            };
            match world.release(&id, &ctx.caller, req, ctx.timing, ctx.now) {
                Ok(events) => {
                    let mut outcome = Outcome::write(machine_reply(world, &id));
                    outcome.events = events;
                    outcome
                }
                Err(e) => Outcome::read(Reply::from_op_error(e)),
            }
        }
        "power_on" => {
            let result = world.set_power(&id, &ctx.caller, true);
            done(world, &id, result)
        }
        "power_off" => {
            let result = world.set_power(&id, &ctx.caller, false);
            done(world, &id, result)
        }
        "query_power_state" => {
            let state = world
                .machine(&id)
                .map(|m| m.power_state.as_str())
                .unwrap_or("unknown");
            Outcome::read(Reply::json(json!({"state": state})))
        }
        "set_owner_data" | "set_workload_annotations" => {
            let result = world.set_owner_data(&id, &ctx.caller, &p.0);
            done(world, &id, result)
        }
        "abort" => {
            let result = world.abort(&id, &ctx.caller);
            done(world, &id, result)
        }
        "mark_broken" => {
            // MAAS still reads the older name of the comment when no comment is given.
            let comment = p
                .get("comment")
                .filter(|c| !c.is_empty())
                .or_else(|| p.get("error_description"));
            match world.mark_broken(&id, &ctx.caller, comment) {
                Ok(events) => {
                    let mut outcome = Outcome::write(machine_reply(world, &id));
                    outcome.events = events;
                    outcome
                }
                Err(e) => Outcome::read(Reply::from_op_error(e)),
            }
        }
        "mark_fixed" => {
            let result = world.mark_fixed(&id, &ctx.caller);
            done(world, &id, result)
        }
        other => Outcome::read(Reply::text(
            http::StatusCode::BAD_REQUEST,
            format!("Unrecognised signature: op={other}"),
        )),
    }
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
