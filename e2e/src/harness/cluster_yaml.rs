//! The objects most end-to-end scenarios start from, as YAML: a Cluster with its MaasCluster (a
//! fixed endpoint, so no MAAS DNS is needed) and a cloud-config bootstrap Secret, and a worker
//! as a Machine with its MaasMachine. Parse them with [`super::manifests::parse`].

/// A Cluster `name`, its MaasCluster (with the identity Secret `identity` when given, else the
/// manager's credentials) and the bootstrap Secret `<name>-bootstrap`.
pub fn cluster(name: &str, identity: Option<&str>) -> String {
    let endpoint =
        format!("  controlPlaneEndpoint:\n    host: {name}.example.test\n    port: 6443\n");
    cluster_objects(name, identity, &endpoint)
}

/// The same objects with no endpoint given, so the endpoint is a MAAS DNS record the provider
/// keeps equal to the control plane's addresses (and every pass of the MaasCluster asks MAAS).
pub fn dns_cluster(name: &str, identity: Option<&str>) -> String {
    cluster_objects(name, identity, "")
}

/// `count` workers of `cluster`, `worker-0` and on, each asking for one core.
pub fn workers(cluster: &str, count: usize) -> String {
    (0..count)
        .map(|i| worker(cluster, &format!("worker-{i}"), 1))
        .collect()
}

fn cluster_objects(name: &str, identity: Option<&str>, endpoint: &str) -> String {
    let identity_ref = identity
        .map(|secret| format!("  identityRef:\n    name: {secret}\n"))
        .unwrap_or_default();
    format!(
        r##"---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: {name}
spec:
  infrastructureRef:
    apiGroup: infrastructure.cluster.x-k8s.io
    kind: MaasCluster
    name: {name}
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasCluster
metadata:
  name: {name}
  labels:
    cluster.x-k8s.io/cluster-name: {name}
spec:
  dnsDomain: maas
{identity_ref}{endpoint}---
apiVersion: v1
kind: Secret
metadata:
  name: {name}-bootstrap
  labels:
    cluster.x-k8s.io/cluster-name: {name}
type: cluster.x-k8s.io/secret
stringData:
  format: cloud-config
  value: "#cloud-config\n"
"##
    )
}

/// A worker `name` of `cluster`: its MaasMachine asking for `min_cpu` cores and its Machine
/// with the cluster's bootstrap Secret.
pub fn worker(cluster: &str, name: &str, min_cpu: u32) -> String {
    format!(
        r#"---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: MaasMachine
metadata:
  name: {name}
  labels:
    cluster.x-k8s.io/cluster-name: {cluster}
spec:
  image: ubuntu/jammy
  minCPU: {min_cpu}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Machine
metadata:
  name: {name}
  labels:
    cluster.x-k8s.io/cluster-name: {cluster}
spec:
  clusterName: {cluster}
  bootstrap:
    dataSecretName: {cluster}-bootstrap
  infrastructureRef:
    apiGroup: infrastructure.cluster.x-k8s.io
    kind: MaasMachine
    name: {name}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::manifests::parse;

    #[test]
    fn a_cluster_and_a_worker_parse_into_their_objects() {
        let text = cluster("c1", Some("creds")) + &worker("c1", "w0", 2);
        let objects = parse(&text, std::path::Path::new("x.yaml")).unwrap();
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            ["Cluster", "MaasCluster", "Secret", "MaasMachine", "Machine"]
        );
        assert_eq!(objects[1]["spec"]["identityRef"]["name"], "creds");
        assert_eq!(
            objects[1]["spec"]["controlPlaneEndpoint"]["host"],
            "c1.example.test"
        );
        assert_eq!(
            objects[4]["spec"]["bootstrap"]["dataSecretName"],
            "c1-bootstrap"
        );
        let plain = parse(&cluster("c2", None), std::path::Path::new("y.yaml")).unwrap();
        assert!(plain[1]["spec"].get("identityRef").is_none());
        let dns = parse(
            &dns_cluster("c3", Some("creds")),
            std::path::Path::new("z.yaml"),
        )
        .unwrap();
        assert!(dns[1]["spec"].get("controlPlaneEndpoint").is_none());
        assert_eq!(dns[1]["spec"]["identityRef"]["name"], "creds");
        let two = parse(&workers("c1", 2), std::path::Path::new("w.yaml")).unwrap();
        let names: Vec<&str> = two
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["worker-0", "worker-0", "worker-1", "worker-1"]);
    }
}
