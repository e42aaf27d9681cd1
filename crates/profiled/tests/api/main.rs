//! The one integration test binary: it starts the real HTTP server on a random port and
//! drives it over HTTP. One module per area.

#[macro_use]
mod support;

mod auth;
mod changes;
mod cli;
mod companies;
mod compat_akinon;
mod compat_chameleon;
mod compat_inkeep;
mod compat_mediarithmics;
mod compat_userflux;
mod concurrency;
mod deletions;
mod docs;
mod durability;
mod end_users;
mod errors;
mod events;
mod exports;
mod imports;
mod merges;
mod nodes;
mod profiles;
mod schema;
mod search;
mod segments;
