//! Domain types: what tenants, endpoints and deliveries are. Both the delivery logic
//! ([`crate::delivery`]) and storage ([`crate::store`]) depend on this module, and it on
//! neither of them.

pub mod audit;
pub mod delivery;
pub mod endpoint;
pub mod page_token;
pub mod rules;
pub mod tenant;
pub mod test_suite;

pub use delivery::*;
pub use endpoint::{Endpoint, EndpointHealth, LiveEndpoint, Ordering, PreviousSecret};
pub use page_token::PageToken;
pub use tenant::{AccountOwners, ApiKey, Tenant, new_id};
