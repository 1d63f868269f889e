//! `dnsresources/`: list, create, read, update, delete.

use std::net::IpAddr;

use serde_json::Value;

use super::{Ctx, Outcome};
use crate::constraints::FormErrors;
use crate::params::Params;
use crate::render::dnsresource_json;
use crate::reply::Reply;
use crate::world::{DnsResource, World};

fn parse_ips(value: &str) -> Result<Vec<String>, String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| format!("'{s}' is not a valid IP address."))
        })
        .collect()
}

/// Applies fqdn/name/domain/address_ttl/ip_addresses onto `d`, validating as MAAS's form does.
fn apply(world: &World, d: &mut DnsResource, p: &Params, creating: bool) -> Result<(), FormErrors> {
    let mut errors = FormErrors::new();
    if let Some(fqdn) = p.get("fqdn") {
        match fqdn.split_once('.') {
            Some((name, domain)) if !name.is_empty() => {
                d.name = name.to_string();
                d.domain = domain.to_string();
            }
            _ => {
                errors
                    .entry("fqdn".into())
                    .or_default()
                    .push(format!("Invalid fqdn: {fqdn}"));
            }
        }
    }
    if let Some(name) = p.get("name") {
        d.name = name.to_string();
    }
    if let Some(domain) = p.get("domain") {
        let by_id = domain
            .parse::<usize>()
            .ok()
            .and_then(|i| world.domains.get(i).cloned());
        d.domain = by_id.unwrap_or_else(|| domain.to_string());
    }
    if creating && d.name.is_empty() {
        errors
            .entry("name".into())
            .or_default()
            .push("This field is required.".into());
    }
    if world.domain_id(&d.domain).is_none() {
        errors
            .entry("domain".into())
            .or_default()
            .push("Select a valid choice. That choice is not one of the available choices.".into());
    }
    if let Some(ttl) = p.get("address_ttl") {
        if ttl.is_empty() {
            d.address_ttl = None;
        } else {
            match ttl.parse::<u64>() {
                Ok(n) => d.address_ttl = Some(n),
                Err(_) => errors
                    .entry("address_ttl".into())
                    .or_default()
                    .push("Enter a whole number.".into()),
            }
        }
    }
    if let Some(ips) = p.get("ip_addresses") {
        match parse_ips(ips) {
            Ok(list) => d.ip_addresses = list,
            Err(message) => errors
                .entry("ip_addresses".into())
                .or_default()
                .push(message),
        }
    }
    let clash = world
        .dnsresources
        .values()
        .any(|o| o.id != d.id && o.name == d.name && o.domain == d.domain);
    if clash {
        errors.entry("__all__".into()).or_default().push(format!(
            "Labels must be unique within a domain: {}",
            d.fqdn()
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Runs a DNS resource action.
pub fn handle(world: &mut World, ctx: &Ctx<'_>, action: &str) -> Outcome {
    let p = ctx.params;
    match (ctx.route.resource.label, action) {
        ("dnsresources", "read") => {
            let domain = p.get("domain").map(|d| {
                d.parse::<usize>()
                    .ok()
                    .and_then(|i| world.domains.get(i).cloned())
                    .unwrap_or_else(|| d.to_string())
            });
            let list: Vec<Value> = world
                .dnsresources
                .values()
                .filter(|d| domain.as_deref().is_none_or(|x| x == d.domain))
                .filter(|d| p.get("name").is_none_or(|n| n == d.name))
                .filter(|d| match p.get("rrtype") {
                    Some(t) if t.eq_ignore_ascii_case("A") => {
                        d.ip_addresses.iter().any(|ip| !ip.contains(':'))
                    }
                    Some(t) if t.eq_ignore_ascii_case("AAAA") => {
                        d.ip_addresses.iter().any(|ip| ip.contains(':'))
                    }
                    Some(_) => false,
                    None => true,
                })
                .map(dnsresource_json)
                .collect();
            Outcome::read(Reply::json(Value::Array(list)))
        }
        ("dnsresources", "create") => {
            let mut d = DnsResource {
                id: world.next_dns_id,
                name: String::new(),
                domain: crate::world::DEFAULT_DOMAIN.to_string(),
                address_ttl: None,
                ip_addresses: Vec::new(),
            };
            if let Err(errors) = apply(world, &mut d, p, true) {
                return Outcome::read(Reply::form_errors(errors));
            }
            world.next_dns_id += 1;
            let reply = Reply::json(dnsresource_json(&d));
            world.dnsresources.insert(d.id, d);
            Outcome::write(reply)
        }
        (_, action) => {
            let Some(mut d) = ctx
                .route
                .param("id")
                .parse::<u64>()
                .ok()
                .and_then(|id| world.dnsresources.get(&id).cloned())
            else {
                return Outcome::read(Reply::not_found("DNSResource"));
            };
            match action {
                "read" => Outcome::read(Reply::json(dnsresource_json(&d))),
                "update" => {
                    if let Err(errors) = apply(world, &mut d, p, false) {
                        return Outcome::read(Reply::form_errors(errors));
                    }
                    let reply = Reply::json(dnsresource_json(&d));
                    world.dnsresources.insert(d.id, d);
                    Outcome::write(reply)
                }
                _ => {
                    world.dnsresources.remove(&d.id);
                    Outcome::write(Reply::no_content())
                }
            }
        }
    }
}
