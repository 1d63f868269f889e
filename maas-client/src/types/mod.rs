//! Typed MAAS response objects, decoded leniently.

pub(crate) mod lenient;
mod machine;
mod resources;
mod status;

pub use machine::{Interface, InterfaceLink, Machine, NumaNode, PowerStateReply, SubnetRef};
pub use resources::{
    BootResource, DnsResource, Domain, NodeDevice, ResourcePool, Tag, Version, Zone,
};
pub use status::{MachineStatus, PowerState};
