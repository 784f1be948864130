//! LogQL: the parser, the pipeline stages and the evaluator, with Loki 3's
//! semantics (the research notes in the repository's `ARCHITECTURE.md` name the
//! sources).

pub mod ast;
pub mod eval;
pub mod parser;
pub mod parsers;
pub mod pipeline;
pub mod template;

pub use eval::{EntryResult, EvalError, EvalStats, QueryParams, QueryResult, StreamResult, evaluate, tail_matches};
pub use parser::{ParseError, parse};

/// A regular expression in Go's RE2 syntax, rewritten for Rust's `regex`
/// (unanchored, as line filters and the `regexp` parser use it).
pub(crate) fn translate_go_regex(pattern: &str) -> String {
    sextant_model::go_regex_syntax(pattern).unwrap_or_else(|_| pattern.to_owned())
}
