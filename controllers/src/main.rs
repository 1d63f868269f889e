//! `capmaas-manager`: runs the MaasCluster and MaasMachine controllers.

fn main() {}
