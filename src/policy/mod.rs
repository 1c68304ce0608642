//! The signout decision: drive-by rules, handler policy, and what to expire.

pub mod driveby;
pub mod handler;
pub mod signout;

pub use signout::{Decision, Page, decide};
