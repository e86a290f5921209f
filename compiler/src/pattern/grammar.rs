//! The pest parser generated from `grammar.pest`.

use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "pattern/grammar.pest"]
pub(super) struct PatternGrammar;
