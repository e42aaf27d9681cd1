//! The native API, one module per resource.

pub mod changes;
pub mod companies;
pub mod computed;
pub mod deletions;
pub mod end_users;
pub mod events;
pub mod exports;
pub mod imports;
pub mod indexes;
pub mod keys;
pub mod me;
pub mod merges;
mod profile_json;
pub mod profiles;
pub mod schema;
pub mod search;
pub mod segments;
pub mod sessions;
pub mod workspaces;
