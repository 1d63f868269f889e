//! How the controllers reach MAAS: credentials and clients per endpoint, the observer of machines
//! in transit per endpoint, and the refusing MAAS used when none are configured.

pub mod credentials;
pub mod no_maas;
pub mod observer;
