//! The Stripe adapter of boxoffice's payment gateway port: a small REST client over reqwest
//! ([`StripeGateway`]), Stripe's webhook signature scheme ([`signature`]) and the reading of
//! webhook events ([`StripeWebhooks`]). Only the fields boxoffice uses are read from Stripe's
//! JSON, so additions on Stripe's side never break it.

mod client;
pub mod signature;
mod webhook;
mod wire;

pub use client::{ClientBuildError, DEFAULT_API_BASE, StripeConfig, StripeGateway};
pub use webhook::{StripeWebhooks, parse_event};
