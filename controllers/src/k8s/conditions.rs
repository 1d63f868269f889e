//! Condition pieces every status shares: the `Paused` condition of the v1beta2 contract and the
//! conditions a failed pass leaves.

use capmaas_api::condition_names::{reasons, types as conditions};
use capmaas_api::{Condition, ConditionSeverity, ConditionUpdate, set_condition};
use jiff::Timestamp;

/// The CAPI v1beta2 contract's `Paused` condition: True while the Cluster or the object is
/// paused, False once a pass runs unpaused.
pub fn mark_paused(
    conditions_list: &mut Vec<Condition>,
    paused: bool,
    generation: Option<i64>,
    now: Timestamp,
) {
    let update = if paused {
        ConditionUpdate::true_(conditions::PAUSED, reasons::PAUSED)
    } else {
        ConditionUpdate::false_(
            conditions::PAUSED,
            reasons::NOT_PAUSED,
            ConditionSeverity::Info,
            "",
        )
    };
    set_condition(conditions_list, update, generation, now);
}

/// Ready=False with the error label; credential problems also show on the `MaasCredentials`
/// condition.
pub fn set_error_conditions(
    list: &mut Vec<Condition>,
    label: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    set_condition(
        list,
        ConditionUpdate::false_(
            conditions::READY,
            label,
            ConditionSeverity::Warning,
            message,
        ),
        generation,
        now,
    );
    let credentials_reason = match label {
        "MissingCredentials" => Some(reasons::CREDENTIALS_MISSING),
        "MaasAuthFailed" => Some(reasons::CREDENTIALS_INVALID),
        _ => None,
    };
    if let Some(reason) = credentials_reason {
        set_condition(
            list,
            ConditionUpdate::false_(
                conditions::MAAS_CREDENTIALS,
                reason,
                ConditionSeverity::Error,
                message,
            ),
            generation,
            now,
        );
    }
}
