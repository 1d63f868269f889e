//! The simulator's route table: every resource MAAS exposes that the simulator serves, with its
//! handler name, path and actions. Dispatch and the `describe/` document both read it, so the
//! two never disagree.

/// The API prefix every resource path starts with.
pub const API_PREFIX: &str = "/MAAS/api/2.0/";

/// One action of a resource: a method with an optional `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Action name (`read`, `allocate`...).
    pub name: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// `op` query value; `None` for the restful actions.
    pub op: Option<&'static str>,
    /// One-line description for `describe/`.
    pub doc: &'static str,
}

/// One resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// MAAS handler name (`MachinesHandler`).
    pub handler: &'static str,
    /// Short label used in operation names (`machines:allocate`).
    pub label: &'static str,
    /// Path below the API prefix, `{name}` for parameters.
    pub path: &'static str,
    /// Description for `describe/`.
    pub doc: &'static str,
    /// Served without authentication.
    pub anonymous: bool,
    /// Actions.
    pub actions: &'static [Action],
}

const fn read(doc: &'static str) -> Action {
    Action {
        name: "read",
        method: "GET",
        op: None,
        doc,
    }
}

const fn op(name: &'static str, method: &'static str, doc: &'static str) -> Action {
    Action {
        name,
        method,
        op: Some(name),
        doc,
    }
}

/// Every resource served.
pub const RESOURCES: &[Resource] = &[
    Resource {
        handler: "VersionHandler",
        label: "version",
        path: "version/",
        doc: "Information about this MAAS instance.",
        anonymous: true,
        actions: &[read("Version and capabilities of this MAAS instance.")],
    },
    Resource {
        handler: "MachinesHandler",
        label: "machines",
        path: "machines/",
        doc: "Manage the collection of all the machines in the MAAS.",
        anonymous: false,
        actions: &[
            read("List machines, filtered by id, hostname, zone, pool, agent_name, tags, status."),
            op(
                "allocate",
                "POST",
                "Allocate an available machine matching constraints.",
            ),
            op(
                "list_allocated",
                "GET",
                "Fetch machines that were allocated to the user.",
            ),
        ],
    },
    Resource {
        handler: "MachineHandler",
        label: "machine",
        path: "machines/{system_id}/",
        doc: "Manage an individual machine.",
        anonymous: false,
        actions: &[
            read("Read a machine."),
            Action {
                name: "update",
                method: "PUT",
                op: None,
                doc: "Update a machine.",
            },
            op("deploy", "POST", "Deploy an operating system to a machine."),
            op("release", "POST", "Release a machine."),
            op("power_on", "POST", "Turn on a machine."),
            op("power_off", "POST", "Power off a machine."),
            op(
                "query_power_state",
                "GET",
                "Query the power state of a machine.",
            ),
            op(
                "set_owner_data",
                "POST",
                "Set key/value data for the current owner.",
            ),
            op(
                "set_workload_annotations",
                "POST",
                "Set key/value workload annotations.",
            ),
            op("abort", "POST", "Abort a machine's current operation."),
            op("mark_broken", "POST", "Mark a machine as broken."),
            op("mark_fixed", "POST", "Mark a broken machine as fixed."),
        ],
    },
    Resource {
        handler: "NodesHandler",
        label: "nodes",
        path: "nodes/",
        doc: "Manage the collection of all the nodes in the MAAS.",
        anonymous: false,
        actions: &[read("List nodes.")],
    },
    Resource {
        handler: "NodeHandler",
        label: "node",
        path: "nodes/{system_id}/",
        doc: "Manage an individual node.",
        anonymous: false,
        actions: &[read("Read a node.")],
    },
    Resource {
        handler: "NodeDevicesHandler",
        label: "node_devices",
        path: "nodes/{system_id}/devices/",
        doc: "View devices of a node.",
        anonymous: false,
        actions: &[read(
            "List node devices, filtered by hardware_type, vendor_id, product_id, numa_node.",
        )],
    },
    Resource {
        handler: "NodeDeviceHandler",
        label: "node_device",
        path: "nodes/{system_id}/devices/{id}/",
        doc: "Manage a node device.",
        anonymous: false,
        actions: &[read("Read a node device.")],
    },
    Resource {
        handler: "ZonesHandler",
        label: "zones",
        path: "zones/",
        doc: "Manage physical zones.",
        anonymous: false,
        actions: &[read("List zones.")],
    },
    Resource {
        handler: "ZoneHandler",
        label: "zone",
        path: "zones/{name}/",
        doc: "Manage a physical zone.",
        anonymous: false,
        actions: &[read("Read a zone.")],
    },
    Resource {
        handler: "ResourcePoolsHandler",
        label: "resourcepools",
        path: "resourcepools/",
        doc: "Manage resource pools.",
        anonymous: false,
        actions: &[read("List resource pools.")],
    },
    Resource {
        handler: "ResourcePoolHandler",
        label: "resourcepool",
        path: "resourcepool/{id}/",
        doc: "Manage a resource pool.",
        anonymous: false,
        actions: &[read("Read a resource pool.")],
    },
    Resource {
        handler: "TagsHandler",
        label: "tags",
        path: "tags/",
        doc: "Manage all tags known to MAAS.",
        anonymous: false,
        actions: &[read("List tags.")],
    },
    Resource {
        handler: "TagHandler",
        label: "tag",
        path: "tags/{name}/",
        doc: "Manage a tag.",
        anonymous: false,
        actions: &[
            read("Read a tag."),
            op("machines", "GET", "List machines carrying this tag."),
            op(
                "update_nodes",
                "POST",
                "Add or remove nodes associated with this tag.",
            ),
        ],
    },
    Resource {
        handler: "DomainsHandler",
        label: "domains",
        path: "domains/",
        doc: "Manage domains.",
        anonymous: false,
        actions: &[read("List domains.")],
    },
    Resource {
        handler: "DomainHandler",
        label: "domain",
        path: "domains/{id}/",
        doc: "Manage a domain.",
        anonymous: false,
        actions: &[read("Read a domain.")],
    },
    Resource {
        handler: "DNSResourcesHandler",
        label: "dnsresources",
        path: "dnsresources/",
        doc: "Manage DNS resources.",
        anonymous: false,
        actions: &[
            read("List DNS resources, filtered by domain, name, rrtype."),
            Action {
                name: "create",
                method: "POST",
                op: None,
                doc: "Create a DNS resource.",
            },
        ],
    },
    Resource {
        handler: "DNSResourceHandler",
        label: "dnsresource",
        path: "dnsresources/{id}/",
        doc: "Manage a DNS resource.",
        anonymous: false,
        actions: &[
            read("Read a DNS resource."),
            Action {
                name: "update",
                method: "PUT",
                op: None,
                doc: "Update a DNS resource.",
            },
            Action {
                name: "delete",
                method: "DELETE",
                op: None,
                doc: "Delete a DNS resource.",
            },
        ],
    },
    Resource {
        handler: "BootResourcesHandler",
        label: "boot_resources",
        path: "boot-resources/",
        doc: "Manage the boot resources.",
        anonymous: false,
        actions: &[read("List all boot resources.")],
    },
    Resource {
        handler: "BootResourceHandler",
        label: "boot_resource",
        path: "boot-resources/{id}/",
        doc: "Manage a boot resource.",
        anonymous: false,
        actions: &[read("Read a boot resource.")],
    },
    Resource {
        handler: "UsersHandler",
        label: "users",
        path: "users/",
        doc: "Manage the user accounts of this MAAS.",
        anonymous: false,
        actions: &[
            read("List users."),
            op("whoami", "GET", "Returns the currently logged in user."),
        ],
    },
    Resource {
        handler: "MaasHandler",
        label: "maas",
        path: "maas/",
        doc: "Manage the MAAS server.",
        anonymous: false,
        actions: &[op("get_config", "GET", "Get a config value.")],
    },
];

/// A matched route: the resource and its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The resource.
    pub resource: &'static Resource,
    /// Path parameters by name.
    pub params: Vec<(&'static str, String)>,
    /// The `op` named by an `op-NAME` path (`machines/{id}/op-deploy`).
    pub path_op: Option<String>,
}

impl RouteMatch {
    /// A path parameter.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// Matches a path below the API prefix (`machines/abc123/`) against the table.
pub fn match_path(rest: &str) -> Option<RouteMatch> {
    let segments: Vec<&str> = rest.split('/').collect();
    RESOURCES.iter().find_map(|resource| {
        let pattern: Vec<&str> = resource.path.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, s) in pattern.iter().zip(segments.iter()) {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if s.is_empty() {
                    return None;
                }
                params.push((
                    name,
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned(),
                ));
            } else if p != s {
                return None;
            }
        }
        Some(RouteMatch {
            resource,
            params,
            path_op: None,
        })
    })
}

/// Matches the `op-NAME` form of a path (`tags/gpu/op-update_nodes`, without a trailing
/// slash): MAAS routes it for every operation the resource's handler exports, and for nothing
/// else.
pub fn match_op_path(rest: &str) -> Option<RouteMatch> {
    let (prefix, last) = rest.rsplit_once('/')?;
    let op = last.strip_prefix("op-").filter(|op| !op.is_empty())?;
    let mut m = match_path(&format!("{prefix}/"))?;
    let exported = m.resource.actions.iter().any(|a| a.op == Some(op));
    exported.then(|| {
        m.path_op = Some(op.to_string());
        m
    })
}

/// Finds the action for a method and `op`.
pub fn find_action(resource: &Resource, method: &str, op: Option<&str>) -> Option<&'static Action> {
    let actions: &'static [Action] = resource.actions;
    actions.iter().find(|a| a.method == method && a.op == op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_with_params() {
        let m = match_path("machines/abc123/").unwrap();
        assert_eq!(m.resource.handler, "MachineHandler");
        assert_eq!(m.param("system_id"), "abc123");
        assert_eq!(
            match_path("machines/").unwrap().resource.handler,
            "MachinesHandler"
        );
        assert_eq!(
            match_path("nodes/x/devices/").unwrap().resource.handler,
            "NodeDevicesHandler"
        );
        assert_eq!(
            match_path("resourcepool/1/").unwrap().resource.handler,
            "ResourcePoolHandler"
        );
        assert!(match_path("machines").is_none());
        assert!(match_path("machines//").is_none());
        assert!(match_path("nope/").is_none());
    }

    #[test]
    fn op_paths_route_exported_ops_only() {
        let m = match_op_path("tags/gpu/op-update_nodes").unwrap();
        assert_eq!(m.resource.handler, "TagHandler");
        assert_eq!(m.param("name"), "gpu");
        assert_eq!(m.path_op.as_deref(), Some("update_nodes"));
        let m = match_op_path("machines/abc/op-deploy").unwrap();
        assert_eq!(
            (m.resource.handler, m.path_op.as_deref()),
            ("MachineHandler", Some("deploy"))
        );
        assert_eq!(
            match_op_path("machines/op-allocate")
                .unwrap()
                .resource
                .handler,
            "MachinesHandler"
        );
        assert!(match_op_path("tags/gpu/op-bogus").is_none());
        assert!(match_op_path("tags/gpu/op-").is_none());
        assert!(match_op_path("tags/gpu/update_nodes").is_none());
        assert!(match_op_path("tags/gpu/op-update_nodes/").is_none());
    }

    #[test]
    fn actions_by_method_and_op() {
        let r = match_path("machines/").unwrap().resource;
        assert_eq!(
            find_action(r, "POST", Some("allocate")).unwrap().name,
            "allocate"
        );
        assert!(find_action(r, "GET", Some("allocate")).is_none());
        assert_eq!(find_action(r, "GET", None).unwrap().name, "read");
    }

    #[test]
    fn handler_names_and_labels_are_unique() {
        let mut names: Vec<_> = RESOURCES.iter().map(|r| r.handler).collect();
        let mut labels: Vec<_> = RESOURCES.iter().map(|r| r.label).collect();
        names.sort_unstable();
        names.dedup();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(names.len(), RESOURCES.len());
        assert_eq!(labels.len(), RESOURCES.len());
    }
}
