//! Evaluation of checked policies: rule selection, the matcher interpreter, admission verdicts.

pub mod cel;
pub mod cli;
pub mod conditions;
pub mod engine;
pub mod images;
pub mod interp;
pub mod mutate;
pub mod podsecurity;
pub mod report;
pub mod webhook;
