//! Locks and stampede protection for lexicache.
//!
//! (crate documentation with a runnable example: written with the lock manager)
#![deny(missing_docs)]

pub mod protection;
pub mod refresh;
pub mod single_flight;

pub use single_flight::SingleFlight;
