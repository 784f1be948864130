//! Shared by the test binaries of this crate; each uses only part of it.
#![allow(dead_code)]

pub mod script;
