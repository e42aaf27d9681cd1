//! profiled's service layer (use-cases) and HTTP layer (axum routers).

pub mod http;
pub mod service;

pub use http::{openapi, router};
pub use service::{Service, ServiceError};
