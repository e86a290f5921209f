//! Evaluation of checked policies: rule selection, the matcher interpreter, admission verdicts.

#![deny(unsafe_code)]

pub mod cel;
pub mod cli;
pub mod conditions;
pub mod doc;
pub mod engine;
pub mod images;
pub mod interp;
pub mod jit;
pub mod json_text;
pub mod mutate;
pub mod oci;
pub mod podsecurity;
pub mod report;
pub mod set;
pub mod webhook;
