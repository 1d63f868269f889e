//! The gate in front of a MaasMachine pass: the finalizer, and the steady state of a ready
//! machine, where a wake-up may do its work without asking MAAS.
//!
//! Once a pass has seen the machine Deployed, wake-ups until the resync period passes (CAPI
//! status updates, our own writes, the Node retry) need nothing from MAAS: the only work left
//! may be setting the workload Node's providerID, and the names for that were learnt from the
//! pass that saw the machine ready.

/// What the Node patch needs, remembered from the pass that saw the machine ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTarget {
    /// Short host name (the usual Node name).
    pub hostname: String,
    /// Fully qualified name (the other Node name a kubelet may register).
    pub fqdn: String,
    /// `maas:///<zone>/<system_id>`.
    pub provider_id: String,
}

/// The facts the steady-state choice rests on.
#[derive(Clone, Debug, Default)]
pub struct SteadyFacts<'a> {
    /// The MaasMachine carries our finalizer.
    pub has_finalizer: bool,
    /// The MaasMachine is being deleted.
    pub deleting: bool,
    /// The cluster or the object is paused.
    pub paused: bool,
    /// `status.ready` as stored.
    pub ready: bool,
    /// CAPI has matched the Machine to its Node (`status.nodeRef`).
    pub node_matched: bool,
    /// The machine was seen ready in MAAS within (most of) the resync period, with the names
    /// learnt then.
    pub confirmed: Option<&'a NodeTarget>,
    /// `spec.providerID` as stored.
    pub provider_id: Option<&'a str>,
}

/// What a wake-up does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SteadyStep<'a> {
    /// Being deleted and our finalizer is gone: nothing of ours is left.
    Finished,
    /// Add the finalizer first; its write wakes a pass on the fresh object.
    AddFinalizer,
    /// Nothing until a change or the resync.
    Idle,
    /// Only (re)try setting the Node's providerID; no MAAS call.
    PatchNode(&'a NodeTarget),
    /// Run a full pass (which may read MAAS).
    Pass,
}

/// The gate: a deleted object without our finalizer is finished, an object without it gets it
/// (unless paused). Then the steady-state choice: a full pass is needed while deleting or paused (those passes have
/// their own rules), before the machine is confirmed ready, when the stored providerID is not
/// the confirmed one (its write failed and must be redone), and once the confirmation is older
/// than the resync period.
pub fn steady_step<'a>(f: &SteadyFacts<'a>) -> SteadyStep<'a> {
    match (f.deleting, f.has_finalizer) {
        (true, false) => return SteadyStep::Finished,
        (false, false) if !f.paused => return SteadyStep::AddFinalizer,
        _ => {}
    }
    if f.deleting || f.paused || !f.ready {
        return SteadyStep::Pass;
    }
    let Some(target) = f.confirmed else {
        return SteadyStep::Pass;
    };
    if f.provider_id != Some(target.provider_id.as_str()) {
        return SteadyStep::Pass;
    }
    if f.node_matched {
        SteadyStep::Idle
    } else {
        SteadyStep::PatchNode(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> NodeTarget {
        NodeTarget {
            hostname: "node-1".into(),
            fqdn: "node-1.maas".into(),
            provider_id: "maas:///default/abc123".into(),
        }
    }

    fn facts(t: &NodeTarget) -> SteadyFacts<'_> {
        SteadyFacts {
            has_finalizer: true,
            ready: true,
            confirmed: Some(t),
            provider_id: Some(t.provider_id.as_str()),
            ..Default::default()
        }
    }

    #[test]
    fn a_confirmed_ready_machine_without_its_node_only_patches_the_node() {
        let t = target();
        assert_eq!(steady_step(&facts(&t)), SteadyStep::PatchNode(&t));
    }

    #[test]
    fn a_matched_node_leaves_nothing_to_do() {
        let t = target();
        let f = SteadyFacts {
            node_matched: true,
            ..facts(&t)
        };
        assert_eq!(steady_step(&f), SteadyStep::Idle);
    }

    #[test]
    fn unconfirmed_deleting_paused_or_unready_machines_run_a_pass() {
        let t = target();
        for f in [
            SteadyFacts {
                confirmed: None,
                ..facts(&t)
            },
            SteadyFacts {
                deleting: true,
                node_matched: true,
                ..facts(&t)
            },
            SteadyFacts {
                paused: true,
                ..facts(&t)
            },
            SteadyFacts {
                ready: false,
                ..facts(&t)
            },
        ] {
            assert_eq!(steady_step(&f), SteadyStep::Pass, "{f:?}");
        }
    }

    #[test]
    fn the_finalizer_comes_first_and_last() {
        let t = target();
        let bare = SteadyFacts {
            has_finalizer: false,
            ..facts(&t)
        };
        assert_eq!(steady_step(&bare), SteadyStep::AddFinalizer);
        let paused = SteadyFacts {
            paused: true,
            ..bare.clone()
        };
        assert_eq!(
            steady_step(&paused),
            SteadyStep::Pass,
            "a paused object gets no finalizer"
        );
        let gone = SteadyFacts {
            deleting: true,
            ..bare
        };
        assert_eq!(steady_step(&gone), SteadyStep::Finished);
    }

    #[test]
    fn a_missing_provider_id_write_is_redone_by_a_pass() {
        let t = target();
        let f = SteadyFacts {
            provider_id: None,
            node_matched: true,
            ..facts(&t)
        };
        assert_eq!(steady_step(&f), SteadyStep::Pass);
        let f = SteadyFacts {
            provider_id: Some("maas:///default/other"),
            ..facts(&t)
        };
        assert_eq!(steady_step(&f), SteadyStep::Pass);
    }
}
