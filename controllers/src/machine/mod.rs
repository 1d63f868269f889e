//! The MaasMachine controller: from a Machine's bootstrap data to a deployed MAAS machine, and
//! back to MAAS when the Machine goes.
//!
//! The pass: [`facts`] gathered from the objects -> [`decide`] the next step -> [`steps`]
//! performs it against MAAS or the store -> typed outcome -> [`status`] and events -> write.

pub mod bootstrap_index;
pub mod capacity_note;
pub mod decide;
pub mod facts;
pub mod node;
pub mod outcome;
pub mod ready;
pub mod reconcile;
pub mod source;
pub mod status;
pub mod steady;
pub mod steps;
pub mod store;
pub mod watches;
