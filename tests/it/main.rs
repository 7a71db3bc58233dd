//! The one integration-test binary: real runs in-process against servers on 127.0.0.1:0.

mod agreement;
mod bounds;
mod bounds_ldap;
mod capacity;
mod checks;
mod cli;
mod connections;
mod custom;
mod egress;
mod engine;
mod hostile;
mod ids;
mod layering;
mod ldap;
mod mock_target;
mod probes;
mod readme;
mod reference;
mod schemas;
mod shards;
mod signals;
mod support;
mod thresholds;
mod tls;
