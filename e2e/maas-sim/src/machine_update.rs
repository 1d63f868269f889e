//! `PUT machines/{system_id}/`: the machine update form, as MAAS's admin machine form reads
//! it. Fields left out keep their values; fields MAAS does not know are ignored, as Django
//! forms ignore them; the MAAS fields the simulator does not model (architecture, power
//! parameters, kernels...) are accepted and ignored too.

use crate::constraints::FormErrors;
use crate::params::Params;
use crate::world::World;

/// The changes an update asks for, validated.
#[derive(Debug, Default, PartialEq, Eq)]
struct Update {
    hostname: Option<String>,
    description: Option<String>,
    domain: Option<String>,
    swap_size: Option<Option<u64>>,
    cpu_count: Option<u32>,
    memory: Option<u64>,
    zone: Option<String>,
    pool: Option<String>,
}

const INVALID_CHOICE: &str =
    "Select a valid choice. That choice is not one of the available choices.";

/// Parses `swap_size` as MAAS does: bytes, with K, M, G and T meaning powers of 1000; an
/// empty value lets the installer choose.
pub fn parse_swap_size(value: &str) -> Result<Option<u64>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let (digits, factor) = match value.as_bytes().last() {
        Some(b'K') => (&value[..value.len() - 1], 1_000),
        Some(b'M') => (&value[..value.len() - 1], 1_000_000),
        Some(b'G') => (&value[..value.len() - 1], 1_000_000_000),
        Some(b'T') => (&value[..value.len() - 1], 1_000_000_000_000),
        _ => (value, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .map(Some)
        .ok_or_else(|| format!("Invalid size for swap: {value}"))
}

fn whole<T: std::str::FromStr>(p: &Params, key: &str, errors: &mut FormErrors) -> Option<T> {
    let value = p.get(key).filter(|v| !v.trim().is_empty())?;
    let parsed = value.trim().parse().ok();
    if parsed.is_none() {
        errors.insert(key.to_string(), vec!["Enter a whole number.".to_string()]);
    }
    parsed
}

/// A zone or pool named by `key`, which must exist.
fn choice(p: &Params, key: &str, names: &[String], errors: &mut FormErrors) -> Option<String> {
    let value = p.get(key).filter(|v| !v.is_empty())?;
    if names.iter().any(|n| n == value) {
        Some(value.to_string())
    } else {
        errors.insert(key.to_string(), vec![INVALID_CHOICE.to_string()]);
        None
    }
}

/// A domain by id or name.
fn domain(world: &World, p: &Params, errors: &mut FormErrors) -> Option<String> {
    let value = p.get("domain").filter(|v| !v.is_empty())?;
    let found = match value.parse::<usize>() {
        Ok(id) => world.domains.get(id).cloned(),
        Err(_) => world.domains.iter().find(|d| *d == value).cloned(),
    };
    if found.is_none() {
        errors.insert(
            "domain".to_string(),
            vec![format!("Unable to find domain {value}")],
        );
    }
    found
}

fn validate(world: &World, system_id: &str, p: &Params) -> Result<Update, FormErrors> {
    let mut errors = FormErrors::new();
    let hostname = p
        .get("hostname")
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    if let Some(h) = &hostname
        && world
            .machines
            .values()
            .any(|m| m.system_id != system_id && m.hostname == *h)
    {
        errors.insert(
            "hostname".to_string(),
            vec!["Node with this Hostname already exists.".to_string()],
        );
    }
    let swap_size = match p.get("swap_size").map(parse_swap_size) {
        Some(Ok(size)) => Some(size),
        Some(Err(message)) => {
            errors.insert("swap_size".to_string(), vec![message]);
            None
        }
        None => None,
    };
    let update = Update {
        hostname,
        description: p.get("description").map(str::to_string),
        domain: domain(world, p, &mut errors),
        swap_size,
        cpu_count: whole(p, "cpu_count", &mut errors),
        memory: whole(p, "memory", &mut errors),
        zone: choice(p, "zone", &world.zones, &mut errors),
        pool: choice(p, "pool", &world.pools, &mut errors),
    };
    if errors.is_empty() {
        Ok(update)
    } else {
        Err(errors)
    }
}

/// Validates and applies an update to an existing machine; nothing changes when a field is
/// invalid.
pub fn update_machine(world: &mut World, system_id: &str, p: &Params) -> Result<(), FormErrors> {
    let u = validate(world, system_id, p)?;
    let Some(m) = world.machines.get_mut(system_id) else {
        return Ok(());
    };
    if let Some(v) = u.hostname {
        m.hostname = v;
    }
    if let Some(v) = u.description {
        m.description = v;
    }
    if let Some(v) = u.domain {
        m.domain = v;
    }
    if let Some(v) = u.swap_size {
        m.swap_size = v;
    }
    if let Some(v) = u.cpu_count {
        m.cpu_count = v;
    }
    if let Some(v) = u.memory {
        m.memory = v;
    }
    if let Some(v) = u.zone {
        m.zone = v;
    }
    if let Some(v) = u.pool {
        m.pool = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    fn world() -> (World, String) {
        let w = World::from_inventory(&Inventory::generate(3, 0)).unwrap();
        let id = w.machines.keys().next().unwrap().clone();
        (w, id)
    }

    #[test]
    fn swap_sizes_as_maas_reads_them() {
        assert_eq!(parse_swap_size("0"), Ok(Some(0)));
        assert_eq!(parse_swap_size(""), Ok(None));
        assert_eq!(parse_swap_size("2G"), Ok(Some(2_000_000_000)));
        assert_eq!(parse_swap_size("512M"), Ok(Some(512_000_000)));
        assert_eq!(
            parse_swap_size("big"),
            Err("Invalid size for swap: big".to_string())
        );
    }

    #[test]
    fn known_fields_change_unknown_ones_are_ignored() {
        let (mut w, id) = world();
        let p = Params::from_urlencoded(
            b"swap_size=0&description=spare&zone=az2&pool=compute&cpu_count=6&memory=4096&hostname=renamed&bogus=1",
        );
        update_machine(&mut w, &id, &p).unwrap();
        let m = &w.machines[&id];
        assert_eq!(m.swap_size, Some(0));
        assert_eq!(
            (m.description.as_str(), m.zone.as_str(), m.pool.as_str()),
            ("spare", "az2", "compute")
        );
        assert_eq!(
            (m.cpu_count, m.memory, m.hostname.as_str()),
            (6, 4096, "renamed")
        );
        // Left out: unchanged.
        update_machine(&mut w, &id, &Params::from_urlencoded(b"description=x")).unwrap();
        assert_eq!(w.machines[&id].swap_size, Some(0));
    }

    #[test]
    fn invalid_fields_change_nothing() {
        let (mut w, id) = world();
        let other = w.machines.values().nth(1).unwrap().hostname.clone();
        let body = format!(
            "hostname={other}&zone=mars&cpu_count=many&swap_size=x&domain=nowhere&description=d"
        );
        let errors =
            update_machine(&mut w, &id, &Params::from_urlencoded(body.as_bytes())).unwrap_err();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            vec!["cpu_count", "domain", "hostname", "swap_size", "zone"]
        );
        assert_eq!(errors["zone"], vec![INVALID_CHOICE.to_string()]);
        assert_eq!(w.machines[&id].description, "");
    }
}
