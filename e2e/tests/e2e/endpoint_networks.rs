//! The API endpoint's DNS record on machines with two interfaces (a PXE network and a data
//! network, as the simulator models them): by default it takes each control-plane machine's boot
//! interface address only; a MaasCluster naming a subnet in `endpointNetworks` gets that
//! subnet's; the Go provider's `maas-preferred-subnet` ConfigMap is honoured where the
//! MaasCluster names none. Each MaasMachine's status says which address is on which interface.

use std::path::Path;
use std::time::Duration;

use capmaas_e2e::harness::observe::{self, wait_for};
use capmaas_e2e::harness::{Env, EnvOptions, HarnessError, TestEnv, cluster_yaml, manifests};
use kube::api::{Api, DynamicObject};

const PXE: &str = "10.20.0.0/16";
const DATA: &str = "10.21.0.0/24";
const LIMIT: Duration = Duration::from_secs(240);
const POLL: Duration = Duration::from_millis(500);

/// A DNS-endpoint cluster with one control-plane machine; `networks` is the MaasCluster's
/// `endpointNetworks` block, if any.
fn cluster(name: &str, networks: Option<&str>) -> String {
    let mut objects = cluster_yaml::dns_cluster(name, None);
    if let Some(block) = networks {
        objects = objects.replace(
            "  dnsDomain: maas\n",
            &format!("  dnsDomain: maas\n  endpointNetworks:\n{block}"),
        );
    }
    let machine = cluster_yaml::worker(name, &format!("{name}-cp-0"), 1).replace(
        &format!("    cluster.x-k8s.io/cluster-name: {name}\n"),
        &format!(
            "    cluster.x-k8s.io/cluster-name: {name}\n    cluster.x-k8s.io/control-plane: \"\"\n"
        ),
    );
    objects + &machine
}

fn in_subnet(ip: &str, cidr: &str) -> bool {
    let net: ipnet::IpNet = cidr.parse().unwrap();
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| net.contains(&ip))
}

/// Waits until the cluster's record holds exactly one address, in `cidr`; returns it.
async fn record_in(env: &Env, cluster: &str, cidr: &str) -> Result<String, HarnessError> {
    wait_for(
        &format!("{cluster}'s record to hold its {cidr} address"),
        POLL,
        LIMIT,
        || async {
            let records: Vec<Vec<String>> = env
                .sim
                .state()
                .dnsresources
                .into_iter()
                .filter(|d| d.fqdn.starts_with(&format!("{cluster}-")))
                .map(|d| d.ip_addresses)
                .collect();
            let done = match records.as_slice() {
                [ips] if ips.len() == 1 && in_subnet(&ips[0], cidr) => Some(ips[0].clone()),
                _ => None,
            };
            Ok((done, format!("records {records:?}")))
        },
    )
    .await
}

/// The control-plane MaasMachine's interfaces: the boot one on the PXE subnet, the other on the
/// data subnet, each with its address.
async fn check_interfaces(env: &Env, ns: &str, cluster: &str) -> Result<(), HarnessError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), ns, &observe::maas_machines_resource());
    let mm = api.get(&format!("{cluster}-cp-0")).await?;
    let nics = mm.data["status"]["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nics.len(), 2, "{cluster}: {nics:#?}");
    assert_eq!(nics[0]["name"], "eno1");
    assert_eq!(nics[0]["boot"], true);
    assert_eq!(nics[0]["addresses"][0]["subnet"], PXE);
    assert_eq!(nics[1]["boot"], false);
    assert_eq!(nics[1]["addresses"][0]["subnet"], DATA);
    assert_eq!(nics[1]["addresses"][0]["fabric"], "fabric-1");
    Ok(())
}

async fn shared_env(ns: &str) -> Option<TestEnv> {
    TestEnv::shared(
        ns,
        EnvOptions {
            machines: 2,
            gpu_machines: 0,
            sim_extra_subnets: vec![DATA.to_string()],
            ..Default::default()
        },
    )
    .await
}

async fn boot_and_named(env: &Env, ns: &str) -> Result<(), HarnessError> {
    env.namespace(ns).await?;
    let named = format!("    subnets: [\"{DATA}\"]\n");
    let text = cluster("boot", None) + &cluster("named", Some(&named));
    manifests::apply_all(
        &env.client,
        ns,
        &manifests::parse(&text, Path::new("endpoint.yaml"))?,
    )
    .await?;
    let boot = record_in(env, "boot", PXE).await?;
    let named = record_in(env, "named", DATA).await?;
    eprintln!("boot: {boot}, named: {named}");
    for cluster in ["boot", "named"] {
        check_interfaces(env, ns, cluster).await?;
    }
    Ok(())
}

async fn preferred_configmap(env: &Env, ns: &str) -> Result<(), HarnessError> {
    env.namespace(ns).await?;
    let configmap = format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: maas-preferred-subnet\ndata:\n  preferredSubnets: \"192.168.99.0/24, {DATA}\"\n"
    );
    let text = configmap + &cluster("preferred", None);
    manifests::apply_all(
        &env.client,
        ns,
        &manifests::parse(&text, Path::new("preferred.yaml"))?,
    )
    .await?;
    let ip = record_in(env, "preferred", DATA).await?;
    eprintln!("preferred: {ip}");
    Ok(())
}

#[tokio::test]
async fn the_endpoint_record_takes_the_boot_interface_or_the_named_subnet() {
    const NS: &str = "endpoint-networks";
    let Some(env) = shared_env(NS).await else {
        return;
    };
    let result = boot_and_named(&env, NS).await;
    env.finish(result).await;
}

#[tokio::test]
async fn the_endpoint_record_honours_the_go_providers_preferred_subnet_configmap() {
    const NS: &str = "endpoint-preferred";
    let Some(env) = shared_env(NS).await else {
        return;
    };
    let result = preferred_configmap(&env, NS).await;
    env.finish(result).await;
}
