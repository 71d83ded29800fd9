//! The `Invitation` kind: one person invited into the Confluent Cloud organization, with the
//! access `spec.roleBindings` lists. The resource and its pure decisions (the planner, status,
//! ownership of an email, validation, export) beside the controller wiring that performs them.

pub mod conclusion;
pub mod controller;
pub mod email_claim;
pub mod export;
pub mod ownership;
pub mod planner;
pub mod resource;
pub mod status;
pub mod validate;
