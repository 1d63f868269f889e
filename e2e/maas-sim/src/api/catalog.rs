//! Read-only catalogues: zones, resource pools, tags, domains, boot resources, users, config.

use serde_json::{Value, json};

use super::{Ctx, Outcome};
use crate::render::{
    boot_resource_json, boot_resources_json, domain_json, machine_json, pool_json, tag_json,
    zone_json,
};
use crate::reply::Reply;
use crate::world::World;

fn user_json(name: &str) -> Value {
    json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "is_superuser": name == crate::config::ADMIN_USER,
        "is_local": true,
        "resource_uri": format!("{}users/{name}/", crate::routes::API_PREFIX),
    })
}

fn config_value(name: &str) -> Value {
    match name {
        "maas_name" => json!("maas-sim"),
        "default_osystem" => json!("ubuntu"),
        "default_distro_series" | "commissioning_distro_series" => json!("jammy"),
        "default_min_hwe_kernel" => json!(""),
        "enable_third_party_drivers" => json!(true),
        "ntp_servers" => json!("ntp.ubuntu.com"),
        _ => Value::Null,
    }
}

/// `POST tags/{name}/?op=update_nodes`: tags (`add`) and untags (`remove`) machines by
/// system id. MAAS allows it to administrators only, checks that before looking the tag up,
/// skips unknown system ids and counts the machines it found, tagged already or not.
fn update_nodes(world: &mut World, ctx: &Ctx<'_>) -> Reply {
    if !ctx.caller.is_admin() {
        return Reply::text(http::StatusCode::FORBIDDEN, "");
    }
    let name = ctx.route.param("name").to_string();
    if !world.tags.contains(&name) {
        return Reply::not_found("Tag");
    }
    // Tags of the simulator have no definition: a worker sending one is out of date.
    if let Some(definition) = ctx.params.get("definition").filter(|d| !d.is_empty()) {
        return Reply::text(
            http::StatusCode::CONFLICT,
            format!("Definition supplied '{definition}' doesn't match current definition ''"),
        );
    }
    let add = ctx.params.get_all("add");
    let remove = ctx.params.get_all("remove");
    let (mut added, mut removed) = (0, 0);
    for m in world.machines.values_mut() {
        if add.contains(&m.system_id.as_str()) {
            added += 1;
            if !m.tags.contains(&name) {
                m.tags.push(name.clone());
            }
        }
        if remove.contains(&m.system_id.as_str()) {
            removed += 1;
            m.tags.retain(|t| *t != name);
        }
    }
    Reply::json(json!({"added": added, "removed": removed}))
}

/// `GET tags/{name}/` and `GET tags/{name}/?op=machines` (only the machines the caller may see).
fn tag_read(world: &World, ctx: &Ctx<'_>, action: &str) -> Reply {
    let name = ctx.route.param("name");
    if !world.tags.contains(name) {
        return Reply::not_found("Tag");
    }
    if action == "read" {
        return Reply::json(tag_json(name));
    }
    Reply::json(Value::Array(
        world
            .machines
            .values()
            .filter(|m| m.tags.iter().any(|t| t == name))
            .filter(|m| crate::lifecycle::can_access(m, &ctx.caller))
            .map(|m| machine_json(world, m))
            .collect(),
    ))
}

/// `GET boot-resources/{id}/`: ids count from 1.
fn boot_resource_read(world: &World, id: &str) -> Reply {
    let found = id.parse::<usize>().ok().and_then(|id| {
        world
            .images
            .get(id.wrapping_sub(1))
            .map(|image| (id, image))
    });
    match found {
        Some((id, image)) => Reply::json(boot_resource_json(id, image)),
        None => Reply::not_found("BootResource"),
    }
}

/// Runs a catalogue action.
pub fn handle(world: &mut World, ctx: &Ctx<'_>, action: &str) -> Outcome {
    let route = ctx.route;
    let reply = match (route.resource.label, action) {
        ("zones", "read") => Reply::json(Value::Array(
            world.zones.iter().map(|z| zone_json(world, z)).collect(),
        )),
        ("zone", "read") => match world.zone_id(route.param("name")) {
            Some(_) => Reply::json(zone_json(world, route.param("name"))),
            None => Reply::not_found("Zone"),
        },
        ("resourcepools", "read") => Reply::json(Value::Array(
            world.pools.iter().map(|p| pool_json(world, p)).collect(),
        )),
        ("resourcepool", "read") => {
            match route
                .param("id")
                .parse::<usize>()
                .ok()
                .and_then(|i| world.pools.get(i))
            {
                Some(name) => Reply::json(pool_json(world, name)),
                None => Reply::not_found("ResourcePool"),
            }
        }
        ("tags", "read") => Reply::json(Value::Array(
            world.tags.iter().map(|t| tag_json(t)).collect(),
        )),
        ("tag", "read" | "machines") => tag_read(world, ctx, action),
        ("tag", "update_nodes") => {
            let reply = update_nodes(world, ctx);
            return if reply.status == http::StatusCode::OK {
                Outcome::write(reply)
            } else {
                Outcome::read(reply)
            };
        }
        ("domains", "read") => Reply::json(Value::Array(
            world
                .domains
                .iter()
                .map(|d| domain_json(world, d))
                .collect(),
        )),
        ("domain", "read") => match route
            .param("id")
            .parse::<usize>()
            .ok()
            .and_then(|i| world.domains.get(i))
        {
            Some(name) => Reply::json(domain_json(world, name)),
            None => Reply::not_found("Domain"),
        },
        ("boot_resources", "read") => Reply::json(Value::Array(boot_resources_json(world))),
        ("boot_resource", "read") => boot_resource_read(world, route.param("id")),
        ("users", "read") => Reply::json(json!([user_json(&ctx.caller.username)])),
        ("users", "whoami") => Reply::json(user_json(&ctx.caller.username)),
        ("maas", "get_config") => match ctx.params.get("name") {
            Some(name) => Reply::json(config_value(name)),
            None => Reply::field_error("name", "This field is required."),
        },
        (label, action) => Reply::text(
            http::StatusCode::BAD_REQUEST,
            format!("Unrecognised signature: {label} {action}"),
        ),
    };
    Outcome::read(reply)
}
