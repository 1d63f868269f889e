//! How the controllers reach MAAS: credentials and clients per endpoint, the observer of machines
//! in transit and the inventory of free machines per endpoint, and the refusing MAAS used when none are configured.

pub mod credentials;
pub mod inventory;
pub mod no_maas;
pub mod observer;
