//! How a simulator is set up: the same knobs for the binary's flags and for tests that start
//! one in-process.

use std::net::SocketAddr;
use std::path::PathBuf;

use rand::RngExt;
use rand::distr::Alphanumeric;

use crate::error::SimError;
use crate::faults::FaultConfig;
use crate::inventory::Inventory;

/// The user name the main API key belongs to (an administrator, as in a fresh MAAS).
pub const ADMIN_USER: &str = "admin";
/// The non-admin user the main API key belongs to with `non_admin`.
pub const NON_ADMIN_USER: &str = "user";
/// The other non-admin user, owner of `other_user_machines`.
pub const OTHER_USER: &str = "other";
/// Default seconds before an idle keep-alive connection is closed: MAAS's nginx front end's
/// `keepalive_timeout`.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: f64 = 65.0;

/// Everything a simulator needs to start. `Default` gives a loopback server on a free port
/// with 10 plain and 2 GPU machines and immediate transitions.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port (read it back from the handle).
    pub listen: SocketAddr,
    /// The admin API key `consumer:token:secret`; generated when absent.
    pub api_key: Option<String>,
    /// More users, each with its own API key, to exercise ownership rules.
    pub users: Vec<SimUser>,
    /// Plain machines to generate when no inventory is given.
    pub machines: usize,
    /// GPU machines to generate when no inventory is given.
    pub gpu_machines: usize,
    /// Seconds from deploy to Deployed; 0 completes on the next read.
    pub deploy_seconds: f64,
    /// Seconds from release to Ready; a third of `deploy_seconds` when absent.
    pub release_seconds: Option<f64>,
    /// Seconds of disk erasing on release with erase; half of `deploy_seconds` when absent.
    pub erase_seconds: Option<f64>,
    /// Inventory file (YAML or TOML); wins over the generated counts.
    pub inventory_file: Option<PathBuf>,
    /// Inventory given in-process; wins over the file and the counts.
    pub inventory: Option<Inventory>,
    /// JSON snapshot: loaded at start when present, rewritten after changes and at shutdown.
    pub state_file: Option<PathBuf>,
    /// Kubeconfig of the cluster where Deployed machines register as Nodes.
    pub kubeconfig: Option<PathBuf>,
    /// Faults active from the start (added to the inventory's).
    pub faults: FaultConfig,
    /// Seconds an idle keep-alive connection stays open (MAAS's nginx front end keeps them 65
    /// seconds, the default).
    pub idle_timeout_seconds: f64,
    /// Issue the main API key to a non-admin user (`NON_ADMIN_USER`), as a MAAS where the
    /// provider runs with an ordinary account; the admin key is then a separate one.
    pub non_admin: bool,
    /// Machines Deployed to another non-admin user (`OTHER_USER`) at start, out of the main
    /// user's reach; two by default when `non_admin` is set, none otherwise.
    pub other_user_machines: Option<usize>,
}

/// A non-admin user and its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// User name (what `owner` shows).
    pub username: String,
    /// API key `consumer:token:secret`.
    pub api_key: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: None,
            users: Vec::new(),
            machines: 10,
            gpu_machines: 2,
            deploy_seconds: 0.0,
            release_seconds: None,
            erase_seconds: None,
            inventory_file: None,
            inventory: None,
            state_file: None,
            kubeconfig: None,
            faults: FaultConfig::default(),
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            non_admin: false,
            other_user_machines: None,
        }
    }
}

impl SimConfig {
    /// Release time actually used.
    pub fn effective_release_seconds(&self) -> f64 {
        self.release_seconds
            .unwrap_or(self.deploy_seconds / 3.0)
            .max(0.0)
    }

    /// How many machines start Deployed to `OTHER_USER`.
    pub fn effective_other_user_machines(&self) -> usize {
        self.other_user_machines
            .unwrap_or(if self.non_admin { 2 } else { 0 })
    }

    /// Erase time actually used.
    pub fn effective_erase_seconds(&self) -> f64 {
        self.erase_seconds
            .unwrap_or(self.deploy_seconds / 2.0)
            .max(0.0)
    }
}

/// The three parts of a MAAS API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// OAuth consumer key.
    pub consumer_key: String,
    /// OAuth token key.
    pub token_key: String,
    /// OAuth token secret.
    pub token_secret: String,
}

impl ApiKey {
    /// Splits `consumer:token:secret`; every part must be non-empty.
    pub fn parse(key: &str) -> Result<Self, SimError> {
        let parts: Vec<&str> = key.split(':').collect();
        match parts.as_slice() {
            [c, t, s] if !c.is_empty() && !t.is_empty() && !s.is_empty() => Ok(Self {
                consumer_key: (*c).to_string(),
                token_key: (*t).to_string(),
                token_secret: (*s).to_string(),
            }),
            _ => Err(SimError::Config(
                "an API key has the form consumer_key:token_key:token_secret".to_string(),
            )),
        }
    }

    /// A fresh random key of the lengths MAAS uses (18:18:32).
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut part = |n: usize| -> String {
            (&mut rng)
                .sample_iter(Alphanumeric)
                .take(n)
                .map(char::from)
                .collect()
        };
        Self {
            consumer_key: part(18),
            token_key: part(18),
            token_secret: part(32),
        }
    }

    /// The `consumer:token:secret` form clients are given.
    pub fn to_key_string(&self) -> String {
        format!(
            "{}:{}:{}",
            self.consumer_key, self.token_key, self.token_secret
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_round_trip_and_refusals() {
        let key = ApiKey::generate();
        assert_eq!(key.token_secret.len(), 32);
        assert_eq!(ApiKey::parse(&key.to_key_string()).unwrap(), key);
        assert!(ApiKey::parse("a:b").is_err());
        assert!(ApiKey::parse("a::c").is_err());
        assert!(ApiKey::parse("a:b:c:d").is_err());
    }

    #[test]
    fn derived_times() {
        let c = SimConfig {
            deploy_seconds: 6.0,
            ..Default::default()
        };
        assert_eq!(c.effective_release_seconds(), 2.0);
        assert_eq!(c.effective_erase_seconds(), 3.0);
    }
}
