//! Imports through Amazon's Reports API.
//!
//! - [`xml`]: reading a report document order by order as it arrives;
//! - [`map`]: one report order into our rows and vocabulary.

pub mod map;
pub mod xml;
