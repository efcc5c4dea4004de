//! The contract crate's integration tests, one test binary: `conformance`
//! (the shared contract's fixtures) and `properties` (property tests).

mod conformance;
mod properties;
