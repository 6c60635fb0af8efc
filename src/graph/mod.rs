//! Meta's Graph API, for the webhook subscriptions of the apps hookd receives for: an app's
//! subscriptions per object, a WhatsApp Business Account's and a Page's subscribed apps, a
//! phone number's callback. hookd calls it only when an operator asks through the API.

pub mod check;
pub mod client;
pub mod error;
pub mod handshakes;
pub mod subscriptions;

pub use client::{Body, GraphClient};
pub use error::{GraphError, GraphFailure};
