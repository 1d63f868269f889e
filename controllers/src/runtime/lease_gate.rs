//! Whether this replica may still start a MAAS step: with leader election, only while its hold
//! on the Lease is known to last. The lease manager keeps reporting "leader" while its renewals
//! fail, so the hold is judged from the Lease itself: the last renewal this replica wrote, plus
//! the lease duration, less a margin. The holder renews `grace` before the end and the Lease is
//! read every [`LEASE_CHECK`], so with a margin below the grace a working renewal is always seen
//! before the gate would close; past it, no new step starts and the controllers stop, before
//! another replica may take the Lease (at the end of the duration).

use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tracing::{debug, warn};

use crate::runtime::shutdown::Shutdown;

/// How often the Lease is read to follow the hold.
pub const LEASE_CHECK: Duration = Duration::from_secs(1);

/// When `identity`'s hold on `lease` ends by its own last renewal, `margin` before the Lease may
/// pass to another replica; `None` when another replica holds it, or it names no renewal or
/// duration.
pub fn hold_ends(lease: &Lease, identity: &str, margin: Duration) -> Option<Timestamp> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds?));
    let margin = SignedDuration::try_from(margin).ok()?;
    renewed.checked_add(duration - margin).ok()
}

/// The gate every MAAS step passes: open for good without leader election, else open until the
/// hold on the Lease ends.
#[derive(Debug, Default)]
pub struct ActGate {
    /// `None`: no leader election, always open.
    until: Mutex<Option<Timestamp>>,
    bounded: bool,
}

impl ActGate {
    /// A gate that is always open (no leader election).
    pub fn always() -> Self {
        Self::default()
    }

    /// A gate open until `until`, moved forward by each renewal seen.
    pub fn until(until: Timestamp) -> Self {
        ActGate {
            until: Mutex::new(Some(until)),
            bounded: true,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Timestamp>> {
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a MAAS step may start at `now`.
    pub fn may_act_at(&self, now: Timestamp) -> bool {
        !self.bounded || self.lock().is_some_and(|until| now < until)
    }

    /// Whether a MAAS step may start now.
    pub fn may_act(&self) -> bool {
        self.may_act_at(Timestamp::now())
    }

    /// Records what the latest read of the Lease says: a later end of the hold, or none.
    pub fn observe(&self, hold_ends: Option<Timestamp>) {
        let mut until = self.lock();
        *until = match (hold_ends, *until) {
            (Some(new), Some(old)) => Some(new.max(old)),
            (new, _) => new,
        };
    }
}

/// Follows the hold until it ends, then fires `shutdown`. A failed read of the Lease changes
/// nothing: the hold then ends at the last renewal seen, as it would for another replica.
pub async fn watch_hold(
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    margin: Duration,
    gate: std::sync::Arc<ActGate>,
    shutdown: Shutdown,
) {
    let leases: Api<Lease> = Api::namespaced(client, &namespace);
    while !shutdown.is_triggered() {
        match leases.get_opt(&name).await {
            Ok(Some(lease)) => gate.observe(hold_ends(&lease, &identity, margin)),
            Ok(None) => gate.observe(None),
            Err(error) => debug!(%error, "cannot read the leader Lease"),
        }
        if !gate.may_act() {
            warn!(lease = %name, "the hold on the leader Lease has ended; no new MAAS step starts");
            shutdown.trigger();
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(LEASE_CHECK) => {}
            _ = shutdown.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: &str, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_hold_ends_a_margin_before_the_lease_can_pass() {
        let margin = Duration::from_secs(2);
        let ours = lease("me", "2026-12-01T10:00:00Z", 15);
        assert_eq!(
            hold_ends(&ours, "me", margin),
            Some("2026-12-01T10:00:13Z".parse().unwrap())
        );
        assert_eq!(hold_ends(&ours, "other", margin), None);
        assert_eq!(hold_ends(&Lease::default(), "me", margin), None);
    }

    #[test]
    fn a_working_renewal_is_always_seen_before_the_gate_closes() {
        use crate::runtime::leader::{LEASE_DURATION_SECONDS, LEASE_GRACE_SECONDS, LEASE_MARGIN};
        // The holder renews `grace` before the end; the renewal is seen within one check.
        let renewal_seen = LEASE_DURATION_SECONDS - LEASE_GRACE_SECONDS + LEASE_CHECK.as_secs();
        let gate_closes = LEASE_DURATION_SECONDS - LEASE_MARGIN.as_secs();
        assert!(
            renewal_seen < gate_closes,
            "{renewal_seen} s vs {gate_closes} s"
        );
        assert!(
            LEASE_MARGIN > Duration::ZERO,
            "the gate closes before the Lease can pass"
        );
    }

    #[test]
    fn the_gate_closes_when_renewals_stop_or_the_lease_passes() {
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        let gate = ActGate::until(t("2026-12-01T10:00:10Z"));
        assert!(gate.may_act_at(t("2026-12-01T10:00:09Z")));
        assert!(
            !gate.may_act_at(t("2026-12-01T10:00:10Z")),
            "no renewal seen since"
        );
        gate.observe(Some(t("2026-12-01T10:00:20Z")));
        assert!(
            gate.may_act_at(t("2026-12-01T10:00:15Z")),
            "a renewal moves it on"
        );
        gate.observe(Some(t("2026-12-01T10:00:12Z")));
        assert!(
            gate.may_act_at(t("2026-12-01T10:00:15Z")),
            "an older read never moves it back"
        );
        gate.observe(None);
        assert!(
            !gate.may_act_at(t("2026-12-01T10:00:15Z")),
            "another replica holds it"
        );
        assert!(ActGate::always().may_act_at(t("2030-01-01T00:00:00Z")));
    }
}
