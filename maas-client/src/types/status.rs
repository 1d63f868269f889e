//! Machine status and power state as MAAS reports them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Declares the status enum with its numeric code, MAAS label and MAAS constant name in one
/// table, so the three can never drift apart.
macro_rules! machine_statuses {
    ($( $variant:ident = $code:literal, $label:literal, $name:literal; )*) => {
        /// A MAAS node status (`status` in machine JSON), with MAAS's own labels.
        ///
        /// Codes unknown to this client (a newer MAAS) are kept as `Unknown(code)` instead of
        /// failing the whole decode.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum MachineStatus {
            $(
                #[doc = concat!($label, " (", stringify!($code), ")")]
                $variant,
            )*
            /// A status code this client does not know, or none at all (-1).
            Unknown(i64),
        }

        impl MachineStatus {
            /// Every known status, in code order.
            pub const ALL: &'static [MachineStatus] = &[$(MachineStatus::$variant),*];

            /// The status for a MAAS status code.
            pub fn from_code(code: i64) -> Self {
                match code {
                    $($code => MachineStatus::$variant,)*
                    other => MachineStatus::Unknown(other),
                }
            }

            /// The MAAS status code.
            pub fn code(self) -> i64 {
                match self {
                    $(MachineStatus::$variant => $code,)*
                    MachineStatus::Unknown(code) => code,
                }
            }

            /// The label MAAS shows (`status_name`), e.g. `Failed deployment`.
            pub fn label(self) -> &'static str {
                match self {
                    $(MachineStatus::$variant => $label,)*
                    MachineStatus::Unknown(_) => "Unknown",
                }
            }

            /// The lower-case constant name MAAS takes in the `status` filter of `GET machines/`,
            /// e.g. `failed_deployment`.
            pub fn filter_name(self) -> Option<&'static str> {
                match self {
                    $(MachineStatus::$variant => Some($name),)*
                    MachineStatus::Unknown(_) => None,
                }
            }
        }
    };
}

machine_statuses! {
    New = 0, "New", "new";
    Commissioning = 1, "Commissioning", "commissioning";
    FailedCommissioning = 2, "Failed commissioning", "failed_commissioning";
    Missing = 3, "Missing", "missing";
    Ready = 4, "Ready", "ready";
    Reserved = 5, "Reserved", "reserved";
    Deployed = 6, "Deployed", "deployed";
    Retired = 7, "Retired", "retired";
    Broken = 8, "Broken", "broken";
    Deploying = 9, "Deploying", "deploying";
    Allocated = 10, "Allocated", "allocated";
    FailedDeployment = 11, "Failed deployment", "failed_deployment";
    Releasing = 12, "Releasing", "releasing";
    FailedReleasing = 13, "Releasing failed", "failed_releasing";
    DiskErasing = 14, "Disk erasing", "disk_erasing";
    FailedDiskErasing = 15, "Failed disk erasing", "failed_disk_erasing";
    RescueMode = 16, "Rescue mode", "rescue_mode";
    EnteringRescueMode = 17, "Entering rescue mode", "entering_rescue_mode";
    FailedEnteringRescueMode = 18, "Failed to enter rescue mode", "failed_entering_rescue_mode";
    ExitingRescueMode = 19, "Exiting rescue mode", "exiting_rescue_mode";
    FailedExitingRescueMode = 20, "Failed to exit rescue mode", "failed_exiting_rescue_mode";
    Testing = 21, "Testing", "testing";
    FailedTesting = 22, "Failed testing", "failed_testing";
}

impl Default for MachineStatus {
    /// An absent status (MAAS omits it for controllers) reads as `Unknown(-1)`.
    fn default() -> Self {
        MachineStatus::Unknown(-1)
    }
}

impl fmt::Display for MachineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineStatus::Unknown(code) => write!(f, "Unknown ({code})"),
            known => f.write_str(known.label()),
        }
    }
}

impl<'de> Deserialize<'de> for MachineStatus {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let code = match Value::deserialize(de)? {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(code.map_or_else(MachineStatus::default, MachineStatus::from_code))
    }
}

impl Serialize for MachineStatus {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_i64(self.code())
    }
}

/// A machine's power state (`power_state`, or `state` from `query_power_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum PowerState {
    /// Powered on.
    On,
    /// Powered off.
    Off,
    /// MAAS does not know (no power driver answer yet).
    #[default]
    Unknown,
    /// The power driver failed.
    Error,
    /// A value this client does not know, kept verbatim.
    Other(String),
}

impl PowerState {
    /// Reads MAAS's power state word.
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "on" => PowerState::On,
            "off" => PowerState::Off,
            "unknown" | "" => PowerState::Unknown,
            "error" => PowerState::Error,
            _ => PowerState::Other(value.to_owned()),
        }
    }

    /// The word MAAS uses.
    pub fn as_str(&self) -> &str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
            PowerState::Error => "error",
            PowerState::Other(other) => other,
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PowerState {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(de)? {
            Value::String(s) => PowerState::parse(&s),
            _ => PowerState::Unknown,
        })
    }
}

impl Serialize for PowerState {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_23_codes_round_trip_with_labels() {
        assert_eq!(MachineStatus::ALL.len(), 23);
        for (code, status) in MachineStatus::ALL.iter().enumerate() {
            let code = i64::try_from(code).unwrap();
            assert_eq!(status.code(), code);
            assert_eq!(MachineStatus::from_code(code), *status);
            assert!(status.filter_name().is_some());
        }
        assert_eq!(MachineStatus::from_code(11).label(), "Failed deployment");
        assert_eq!(MachineStatus::from_code(13).label(), "Releasing failed");
        assert_eq!(
            MachineStatus::from_code(20).label(),
            "Failed to exit rescue mode"
        );
        assert_eq!(MachineStatus::from_code(99), MachineStatus::Unknown(99));
        assert_eq!(MachineStatus::Unknown(99).to_string(), "Unknown (99)");
    }

    #[test]
    fn decodes_ints_floats_strings_and_null() {
        let s: MachineStatus = serde_json::from_str("6").unwrap();
        assert_eq!(s, MachineStatus::Deployed);
        let s: MachineStatus = serde_json::from_str("9.0").unwrap();
        assert_eq!(s, MachineStatus::Deploying);
        let s: MachineStatus = serde_json::from_str("\"4\"").unwrap();
        assert_eq!(s, MachineStatus::Ready);
        let s: MachineStatus = serde_json::from_str("null").unwrap();
        assert_eq!(s, MachineStatus::Unknown(-1));
        assert_eq!(serde_json::to_string(&MachineStatus::Broken).unwrap(), "8");
    }

    #[test]
    fn power_states() {
        for (word, state) in [
            ("on", PowerState::On),
            ("off", PowerState::Off),
            ("unknown", PowerState::Unknown),
            ("error", PowerState::Error),
            ("ON", PowerState::On),
        ] {
            let decoded: PowerState = serde_json::from_value(serde_json::json!(word)).unwrap();
            assert_eq!(decoded, state);
        }
        let odd: PowerState = serde_json::from_str("\"flickering\"").unwrap();
        assert_eq!(odd, PowerState::Other("flickering".to_owned()));
        let null: PowerState = serde_json::from_str("null").unwrap();
        assert_eq!(null, PowerState::Unknown);
    }
}
