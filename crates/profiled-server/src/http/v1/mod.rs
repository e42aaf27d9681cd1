//! The native API, one module per resource.

pub mod keys;
pub mod profiles;
pub mod workspaces;
