//! The `allocate` constraints: parsing and validation against the known zones, pools and tags
//! (answering as MAAS's form does), and matching a machine. Pure functions.

use std::collections::BTreeMap;

use crate::params::{Params, parse_bool};
use crate::world::{Machine, World};

/// Form errors as MAAS sends them: `{"field": ["message"]}`.
pub type FormErrors = BTreeMap<String, Vec<String>>;

/// Parameters `allocate` accepts; anything else is `No such constraint.`
pub const KNOWN_ALLOCATE_PARAMS: &[&str] = &[
    "name",
    "hostname",
    "system_id",
    "arch",
    "cpu_count",
    "mem",
    "tags",
    "not_tags",
    "zone",
    "not_in_zone",
    "pool",
    "not_in_pool",
    "storage",
    "devices",
    "interfaces",
    "fabrics",
    "not_fabrics",
    "fabric_classes",
    "not_fabric_classes",
    "subnets",
    "not_subnets",
    "pod",
    "not_pod",
    "pod_type",
    "not_pod_type",
    "agent_name",
    "comment",
    "bridge_all",
    "bridge_type",
    "bridge_stp",
    "bridge_fd",
    "dry_run",
    "verbose",
];

/// One `devices` constraint: every given field must match one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// PCI vendor id, compared case-insensitively.
    pub vendor_id: Option<String>,
    /// PCI product id, compared case-insensitively.
    pub product_id: Option<String>,
    /// Vendor name, matched as a case-insensitive substring.
    pub vendor_name: Option<String>,
    /// Product name, matched as a case-insensitive substring.
    pub product_name: Option<String>,
}

/// Validated constraints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    /// Exact host name.
    pub hostname: Option<String>,
    /// Exact system id.
    pub system_id: Option<String>,
    /// Architecture prefix (`amd64`, `amd64/generic`).
    pub arch: Option<String>,
    /// Minimum cores.
    pub cpu_count: Option<f64>,
    /// Minimum MiB.
    pub mem: Option<f64>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    /// None of these tags.
    pub not_tags: Vec<String>,
    /// This zone.
    pub zone: Option<String>,
    /// None of these zones.
    pub not_in_zone: Vec<String>,
    /// This pool.
    pub pool: Option<String>,
    /// None of these pools.
    pub not_in_pool: Vec<String>,
    /// Minimum disk sizes in GB, each on its own disk.
    pub storage: Vec<u64>,
    /// Devices the machine must carry.
    pub devices: Vec<DeviceFilter>,
    /// Agent name to record.
    pub agent_name: Option<String>,
    /// Comment to record.
    pub comment: Option<String>,
    /// Only report the match.
    pub dry_run: bool,
    /// The raw constraints, for the 409 message.
    pub raw: Vec<(String, Vec<String>)>,
}

fn split_list(values: Vec<&str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn error(errors: &mut FormErrors, field: &str, message: String) {
    errors.entry(field.to_string()).or_default().push(message);
}

/// Parses the storage constraint: `label:size(tag,tag),size` -> sizes in GB.
fn parse_storage(value: &str) -> Option<Vec<u64>> {
    let mut sizes = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut items = Vec::new();
    for ch in value.chars() {
        match ch {
            '(' => {
                depth += 1;
                current.push(ch);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(ch);
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    items.push(current);
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let without_label = item.rsplit_once(':').map_or(item, |(_, rest)| rest);
        let size = without_label.split('(').next().unwrap_or("").trim();
        let gb: f64 = size.parse().ok()?;
        if gb < 0.0 {
            return None;
        }
        sizes.push(gb.ceil() as u64);
    }
    Some(sizes)
}

fn parse_device(value: &str) -> Result<DeviceFilter, String> {
    let mut filter = DeviceFilter::default();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("Invalid device filter: {pair}"))?;
        let val = Some(val.trim().to_string());
        match key.trim() {
            "vendor_id" => filter.vendor_id = val,
            "product_id" => filter.product_id = val,
            "vendor_name" => filter.vendor_name = val,
            "product_name" => filter.product_name = val,
            other => return Err(format!("Unknown device filter: {other}")),
        }
    }
    if filter == DeviceFilter::default() {
        return Err("Empty device filter.".to_string());
    }
    Ok(filter)
}

fn parse_number(errors: &mut FormErrors, params: &Params, key: &str, what: &str) -> Option<f64> {
    let value = params.get(key)?;
    match value.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 => Some(n),
        _ => {
            error(errors, key, format!("Invalid {what}: number required."));
            None
        }
    }
}

/// Validates allocate parameters against the world's zones, pools and tags.
pub fn parse_constraints(params: &Params, world: &World) -> Result<Constraints, FormErrors> {
    let mut errors = FormErrors::new();
    for key in params.keys() {
        if !KNOWN_ALLOCATE_PARAMS.contains(&key) {
            error(&mut errors, key, "No such constraint.".to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut c = Constraints {
        hostname: params
            .get("name")
            .or(params.get("hostname"))
            .map(str::to_string),
        system_id: params.get("system_id").map(str::to_string),
        arch: params.get("arch").map(str::to_string),
        cpu_count: parse_number(&mut errors, params, "cpu_count", "CPU count"),
        mem: parse_number(&mut errors, params, "mem", "memory"),
        tags: split_list(params.get_all("tags")),
        not_tags: split_list(params.get_all("not_tags")),
        zone: params
            .get("zone")
            .filter(|z| !z.is_empty())
            .map(str::to_string),
        not_in_zone: split_list(params.get_all("not_in_zone")),
        pool: params
            .get("pool")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        not_in_pool: split_list(params.get_all("not_in_pool")),
        agent_name: params.get("agent_name").map(str::to_string),
        comment: params.get("comment").map(str::to_string),
        dry_run: params.get("dry_run").is_some_and(parse_bool),
        ..Default::default()
    };
    for value in params.get_all("storage") {
        match parse_storage(value) {
            Some(sizes) => c.storage.extend(sizes),
            None => error(
                &mut errors,
                "storage",
                format!("Malformed storage constraint, \"{value}\"."),
            ),
        }
    }
    for value in params.get_all("devices") {
        match parse_device(value) {
            Ok(filter) => c.devices.push(filter),
            Err(message) => error(&mut errors, "devices", message),
        }
    }
    let unknown_tags: Vec<&String> = c
        .tags
        .iter()
        .chain(c.not_tags.iter())
        .filter(|t| !world.tags.contains(*t))
        .collect();
    if !unknown_tags.is_empty() {
        let names: Vec<String> = unknown_tags.iter().map(|t| format!("'{t}'")).collect();
        error(
            &mut errors,
            "tags",
            format!("No such tag(s): {}.", names.join(", ")),
        );
    }
    for zone in c.zone.iter().chain(c.not_in_zone.iter()) {
        if world.zone_id(zone).is_none() {
            let field = if c.zone.as_ref() == Some(zone) {
                "zone"
            } else {
                "not_in_zone"
            };
            error(&mut errors, field, format!("No such zone(s): {zone}."));
        }
    }
    for pool in c.pool.iter().chain(c.not_in_pool.iter()) {
        if world.pool_id(pool).is_none() {
            let field = if c.pool.as_ref() == Some(pool) {
                "pool"
            } else {
                "not_in_pool"
            };
            error(&mut errors, field, format!("No such pool(s): {pool}."));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut raw: Vec<(String, Vec<String>)> = Vec::new();
    for key in params.keys() {
        raw.push((
            key.to_string(),
            params
                .get_all(key)
                .into_iter()
                .map(str::to_string)
                .collect(),
        ));
    }
    c.raw = raw;
    Ok(c)
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

fn device_matches(filter: &DeviceFilter, machine: &Machine) -> bool {
    machine.gpus.iter().any(|g| {
        filter
            .vendor_id
            .as_deref()
            .is_none_or(|v| eq_ci(v, &g.vendor_id))
            && filter
                .product_id
                .as_deref()
                .is_none_or(|v| eq_ci(v, &g.product_id))
            && filter
                .vendor_name
                .as_deref()
                .is_none_or(|v| contains_ci(&g.vendor_name, v))
            && filter
                .product_name
                .as_deref()
                .is_none_or(|v| contains_ci(&g.product_name, v))
    })
}

fn storage_fits(wanted: &[u64], disks: &[u64]) -> bool {
    // The first size is the root disk in MAAS's syntax; here every size needs its own disk,
    // largest first so a greedy pick is exact.
    let mut wanted: Vec<u64> = wanted.to_vec();
    wanted.sort_unstable_by(|a, b| b.cmp(a));
    let mut free: Vec<u64> = disks.to_vec();
    free.sort_unstable();
    for size in wanted {
        match free.iter().position(|d| *d >= size) {
            Some(i) => {
                free.remove(i);
            }
            None => return false,
        }
    }
    true
}

/// Whether a machine satisfies the constraints (its status is not considered).
pub fn machine_matches(c: &Constraints, m: &Machine) -> bool {
    c.hostname
        .as_deref()
        .is_none_or(|h| h == m.hostname || h == m.fqdn())
        && c.system_id.as_deref().is_none_or(|id| id == m.system_id)
        && c.arch
            .as_deref()
            .is_none_or(|a| m.architecture == a || m.architecture.starts_with(&format!("{a}/")))
        && c.cpu_count.is_none_or(|n| f64::from(m.cpu_count) >= n)
        && c.mem.is_none_or(|n| m.memory as f64 >= n)
        && c.tags.iter().all(|t| m.tags.contains(t))
        && !c.not_tags.iter().any(|t| m.tags.contains(t))
        && c.zone.as_deref().is_none_or(|z| z == m.zone)
        && !c.not_in_zone.contains(&m.zone)
        && c.pool.as_deref().is_none_or(|p| p == m.pool)
        && !c.not_in_pool.contains(&m.pool)
        && storage_fits(&c.storage, &m.disks)
        && c.devices.iter().all(|d| device_matches(d, m))
}

/// Parameters that are not constraints (MAAS leaves them out of the resolved description).
const NOT_CONSTRAINTS: &[&str] = &[
    "agent_name",
    "comment",
    "dry_run",
    "verbose",
    "bridge_all",
    "bridge_type",
    "bridge_stp",
    "bridge_fd",
];

fn resolved_value(key: &str, values: &[String]) -> String {
    match key {
        // Float form fields print as Python floats.
        "cpu_count" | "mem" => values
            .iter()
            .map(|v| match v.trim().parse::<f64>() {
                Ok(n) if n.fract() == 0.0 => format!("{n:.1}"),
                Ok(n) => n.to_string(),
                Err(_) => v.clone(),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => values.join(","),
    }
}

/// The 409 text MAAS gives when nothing matches: every parameter as given, then the
/// constraints as resolved; `No machine available.` when there was no constraint at all.
pub fn no_match_message(c: &Constraints) -> String {
    let resolved: Vec<String> = c
        .raw
        .iter()
        .filter(|(k, _)| !NOT_CONSTRAINTS.contains(&k.as_str()))
        .map(|(k, vs)| format!("{k}={}", resolved_value(k, vs)))
        .collect();
    if resolved.is_empty() {
        return "No machine available.".to_string();
    }
    let listed: Vec<String> = c
        .raw
        .iter()
        .map(|(k, vs)| {
            let vs: Vec<String> = vs.iter().map(|v| format!("'{v}'")).collect();
            format!("('{k}', [{}])", vs.join(", "))
        })
        .collect();
    format!(
        "No available machine matches constraints: [{}] (resolved to \"{}\")",
        listed.join(", "),
        resolved.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    fn world() -> World {
        World::from_inventory(&Inventory::generate(8, 2)).unwrap()
    }

    fn params(q: &str) -> Params {
        Params::from_urlencoded(q.as_bytes())
    }

    #[test]
    fn unknown_constraint_is_named() {
        let err = parse_constraints(&params("cpu_count=2&flavour=big"), &world()).unwrap_err();
        assert_eq!(
            err.get("flavour"),
            Some(&vec!["No such constraint.".to_string()])
        );
        assert_eq!(err.len(), 1);
    }

    #[test]
    fn unknown_tag_zone_pool_are_refused() {
        let w = world();
        let err =
            parse_constraints(&params("tags=gpu&tags=nope&zone=mars&pool=deep"), &w).unwrap_err();
        assert_eq!(err["tags"], vec!["No such tag(s): 'nope'.".to_string()]);
        assert!(err.contains_key("zone"));
        assert!(err.contains_key("pool"));
        assert!(
            parse_constraints(&params("cpu_count=lots"), &w)
                .unwrap_err()
                .contains_key("cpu_count")
        );
    }

    #[test]
    fn all_tags_must_match_and_devices_filter_gpus() {
        let w = world();
        let c = parse_constraints(
            &params("tags=gpu&tags=fast&devices=vendor_id=10de,product_name=A100"),
            &w,
        )
        .unwrap();
        let matching: Vec<&Machine> = w
            .machines
            .values()
            .filter(|m| machine_matches(&c, m))
            .collect();
        assert_eq!(matching.len(), 1);
        assert!(matching[0].gpus[0].product_name.contains("A100"));
        let c = parse_constraints(&params("tags=gpu,ssd"), &w).unwrap();
        assert_eq!(
            w.machines
                .values()
                .filter(|m| machine_matches(&c, m))
                .count(),
            0
        );
        let c = parse_constraints(&params("not_tags=gpu"), &w).unwrap();
        assert_eq!(
            w.machines
                .values()
                .filter(|m| machine_matches(&c, m))
                .count(),
            8
        );
    }

    #[test]
    fn storage_syntax() {
        assert_eq!(parse_storage("root:50(ssd),100"), Some(vec![50, 100]));
        assert_eq!(parse_storage("30"), Some(vec![30]));
        assert_eq!(parse_storage("x:y"), None);
        assert!(storage_fits(&[100, 900], &[960, 3840]));
        assert!(!storage_fits(&[1000, 1000], &[960, 3840]));
    }

    #[test]
    fn no_match_message_lists_constraints() {
        let c =
            parse_constraints(&params("cpu_count=512&zone=az1&agent_name=x"), &world()).unwrap();
        assert_eq!(
            no_match_message(&c),
            "No available machine matches constraints: [('cpu_count', ['512']), ('zone', ['az1']), ('agent_name', ['x'])] (resolved to \"cpu_count=512.0 zone=az1\")"
        );
        let c = parse_constraints(&params("agent_name=x"), &world()).unwrap();
        assert_eq!(no_match_message(&c), "No machine available.");
    }
}
