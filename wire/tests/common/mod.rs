//! Helpers shared by the integration tests. Not every test binary uses every helper.
#![allow(dead_code)]

pub mod exercise;
pub mod packets;
