//! Where a machine comes from. Today: a MAAS resource pool, through allocate, with the GPU search
//! as a sub-decision. A second source (VM hosts) is a new module beside these.

pub mod gpu;
pub mod pool;
