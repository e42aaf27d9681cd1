//! Pure domain types and rules of profiled. No IO, no database, no web framework.
//!
//! - [`identity`]: typed external identifiers and their normalisation.
//! - [`ops`]: the property operations every write path reduces to.
//! - [`limits`]: bounds on everything a client controls.
//! - [`profile`]: the profile as the rest of the system sees it.

pub mod access;
pub mod activity;
pub mod aggregate;
pub mod change;
pub mod end_user;
pub mod error;
pub mod filter;
pub mod identity;
pub mod import;
pub mod limits;
pub mod merge;
pub mod ops;
pub mod path;
pub mod profile;
pub mod segment;

pub use access::Scope;
pub use error::{DomainError, Violation};
pub use identity::{Identity, IdentityKind};
pub use limits::Limits;
pub use ops::PropertyOps;
pub use profile::{Profile, ProfileId, RawProfile, StoredObject, WorkspaceId};
