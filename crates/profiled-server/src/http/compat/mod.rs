//! Vendors' API shapes, each under `/compat/<vendor>`, so their clients work unchanged. Each
//! dialect maps its requests onto the same use-cases as the native API (and so the same
//! rules: scopes, validation, segments) and answers in the vendor's own shapes, errors
//! included.

pub mod inkeep;
pub mod userflux;
