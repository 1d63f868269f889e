#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The MaasCluster's endpoint DNS resource against the MAAS simulator: created with the first
//! control-plane address, kept equal to the set, never emptied, deleted with the cluster.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use capmaas_controllers::cluster::decide::ClusterFacts;
use capmaas_controllers::cluster::decide::dns_name;
use capmaas_controllers::cluster::steps::ClusterPassEnd;
use capmaas_controllers::cluster::steps::ClusterStore;
use capmaas_controllers::cluster::steps::run_cluster_pass;
use capmaas_controllers::domain::reasons::FailReason;
use capmaas_controllers::runtime::error::ReconcileError;

#[derive(Default)]
struct Finalizer(AtomicBool);

impl ClusterStore for Finalizer {
    async fn remove_finalizer(&self) -> Result<(), ReconcileError> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn ips(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn dns_resource_follows_the_control_plane_and_goes_with_the_cluster() {
    let (sim, client) = common::sim_and_client(1, 0).await;
    let store = Finalizer::default();
    let base = ClusterFacts {
        name: "c1".into(),
        uid: "9a8b7c6d-0000".into(),
        has_owner: true,
        dns_domain: "maas".into(),
        failure_domains: vec!["az1".into(), "az2".into()],
        ..Default::default()
    };
    let fqdn = dns_name("c1", "9a8b7c6d-0000", "maas");
    let dns = |sim: &maas_sim::SimHandle| {
        sim.state()
            .dnsresources
            .into_iter()
            .filter(|d| d.fqdn == fqdn)
            .collect::<Vec<_>>()
    };

    // No control-plane machine yet: ready on the name, nothing written.
    let end = run_cluster_pass(&client, &store, base.clone())
        .await
        .unwrap();
    let ClusterPassEnd::Ready(r) = end else {
        panic!("{end:?}")
    };
    assert_eq!((r.host.as_str(), r.port), (fqdn.as_str(), 6443));
    assert_eq!(r.failure_domains, ["az1", "az2"]);
    assert!(dns(&sim).is_empty());

    let one = ClusterFacts {
        control_plane_ips: ips(&["10.0.0.5"]),
        ..base.clone()
    };
    sim.reset_requests();
    run_cluster_pass(&client, &store, one.clone())
        .await
        .unwrap();
    assert_eq!(dns(&sim)[0].ip_addresses, ["10.0.0.5"]);
    assert_eq!(sim.requests().count_op("dnsresources:create"), 1);

    sim.reset_requests();
    run_cluster_pass(&client, &store, one.clone())
        .await
        .unwrap();
    let stats = sim.requests();
    assert_eq!(
        stats.count_op("dnsresources:create") + stats.count_op("dnsresource:update"),
        0,
        "no write when unchanged: {:?}",
        stats.counts
    );

    let two = ClusterFacts {
        control_plane_ips: ips(&["10.0.0.5", "10.0.0.6"]),
        ..base.clone()
    };
    run_cluster_pass(&client, &store, two).await.unwrap();
    assert_eq!(sim.requests().count_op("dnsresource:update"), 1);
    let mut got = dns(&sim)[0].ip_addresses.clone();
    got.sort();
    assert_eq!(got, ["10.0.0.5", "10.0.0.6"]);

    // Every control-plane machine gone: keep the last addresses rather than none.
    run_cluster_pass(&client, &store, base.clone())
        .await
        .unwrap();
    assert_eq!(dns(&sim)[0].ip_addresses.len(), 2);

    let bad = ClusterFacts {
        failure_domains: vec!["az9".into()],
        ..base.clone()
    };
    let end = run_cluster_pass(&client, &store, bad).await.unwrap();
    assert!(
        matches!(
            end,
            ClusterPassEnd::Failed {
                reason: FailReason::UnknownFailureDomain,
                ..
            }
        ),
        "{end:?}"
    );

    let deleting = ClusterFacts {
        deleting: true,
        remaining_machines: 1,
        ..base.clone()
    };
    assert!(matches!(
        run_cluster_pass(&client, &store, deleting).await.unwrap(),
        ClusterPassEnd::Waiting { .. }
    ));
    assert_eq!(dns(&sim).len(), 1, "kept while machines remain");

    let deleting = ClusterFacts {
        deleting: true,
        ..base.clone()
    };
    assert_eq!(
        run_cluster_pass(&client, &store, deleting).await.unwrap(),
        ClusterPassEnd::Finalized
    );
    assert!(dns(&sim).is_empty());
    assert!(store.0.load(Ordering::SeqCst));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pass_fed_with_what_the_last_one_learnt_makes_no_maas_call() {
    use capmaas_controllers::cluster::steps::run_cluster_pass_report;
    let (sim, client) = common::sim_and_client(1, 0).await;
    let store = Finalizer::default();
    let facts = ClusterFacts {
        name: "c2".into(),
        uid: "1234567-x".into(),
        has_owner: true,
        dns_domain: "maas".into(),
        failure_domains: vec!["az1".into()],
        control_plane_ips: ips(&["10.0.0.9"]),
        ..Default::default()
    };
    let first = run_cluster_pass_report(&client, &store, facts.clone())
        .await
        .unwrap();
    assert!(matches!(first.end, ClusterPassEnd::Ready(_)));
    assert!(first.zones.is_some());
    sim.reset_requests();
    let second = run_cluster_pass_report(
        &client,
        &store,
        ClusterFacts {
            zones: first.zones.clone(),
            dns: first.dns.clone(),
            ..facts
        },
    )
    .await
    .unwrap();
    assert_eq!(second.end, first.end);
    assert_eq!(sim.requests().total, 0, "{:?}", sim.requests().counts);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dns_create_whose_answer_was_lost_is_found_never_resent() {
    let (sim, _) = common::sim_and_client(1, 0).await;
    // The client the manager uses, which retries what MAAS provably did not act on.
    let client =
        maas_client::MaasClient::new(maas_client::MaasConfig::new(sim.url(), sim.api_key()))
            .unwrap();
    let lose = maas_sim::FaultRule {
        lose_next: 1,
        ..maas_sim::FaultRule::on("dnsresources:create")
    };
    sim.set_faults(maas_sim::FaultConfig {
        rules: vec![lose],
        ..Default::default()
    });
    let store = Finalizer::default();
    let facts = ClusterFacts {
        name: "c1".into(),
        uid: "9a8b7c6d-0000".into(),
        has_owner: true,
        dns_domain: "maas".into(),
        control_plane_ips: ips(&["10.0.0.5"]),
        ..Default::default()
    };

    let first = run_cluster_pass(&client, &store, facts.clone()).await;
    assert!(
        matches!(
            first,
            Err(ReconcileError::Maas(
                maas_client::MaasError::OutcomeUnknown { .. }
            ))
        ),
        "{first:?}"
    );
    assert_eq!(
        sim.requests().count_op("dnsresources:create"),
        1,
        "not resent"
    );

    // The next pass looks the record up first and finds the one MAAS made.
    let end = run_cluster_pass(&client, &store, facts).await.unwrap();
    assert!(matches!(end, ClusterPassEnd::Ready(_)), "{end:?}");
    assert_eq!(sim.requests().count_op("dnsresources:create"), 1);
    let fqdn = dns_name("c1", "9a8b7c6d-0000", "maas");
    let records: Vec<_> = sim
        .state()
        .dnsresources
        .into_iter()
        .filter(|d| d.fqdn == fqdn)
        .collect();
    assert_eq!(records.len(), 1, "one record, not two");
    assert_eq!(records[0].ip_addresses, ["10.0.0.5"]);
    sim.shutdown().await.unwrap();
}
