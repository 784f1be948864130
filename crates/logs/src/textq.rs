//! Line filters as index queries. `|= "needle"` is a substring test, and the index
//! holds whole words, so the query built here only narrows the candidates: every
//! line that contains the needle matches it (a superset), and the exact test runs
//! on the candidates afterwards.
//!
//! A word of the needle that is bounded inside the needle on both sides must be a
//! whole word of the line; a word at the needle's start may be the end of a longer
//! word of the line (a suffix), one at its end the start of one (a prefix), one
//! that is the whole needle any part of one. Whole words are term lookups; partial
//! ones are regular expressions over the term dictionary, used only when the needle
//! has no whole word and the part is long enough to narrow anything.

use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, Query, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use crate::partition::MAX_TOKEN;

/// A word of a needle and which of its ends may continue in the line.
#[derive(Debug, PartialEq, Eq)]
struct Word {
    text: String,
    open_left: bool,
    open_right: bool,
}

fn words(needle: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let end = needle.len();
    for (i, c) in needle.char_indices().chain(std::iter::once((end, ' '))) {
        let alnum = i < end && c.is_alphanumeric();
        match (alnum, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Word {
                    text: needle[s..i].to_lowercase(),
                    open_left: s == 0,
                    open_right: i == end,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The index query that every line containing all of `needles` matches, or
/// `None` when the needles narrow nothing.
pub(crate) fn needles_query(field: Field, needles: &[String]) -> Option<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for needle in needles {
        let ws = words(needle);
        let whole: Vec<&Word> = ws
            .iter()
            .filter(|w| !w.open_left && !w.open_right && w.text.len() < MAX_TOKEN)
            .collect();
        if !whole.is_empty() {
            for w in whole {
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, &w.text),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
            continue;
        }
        for w in ws
            .iter()
            .filter(|w| w.text.chars().count() >= 3 && w.text.len() < MAX_TOKEN)
        {
            let escaped = regex_syntax::escape(&w.text);
            let pattern = match (w.open_left, w.open_right) {
                (true, true) => format!(".*{escaped}.*"),
                (true, false) => format!(".*{escaped}"),
                (false, true) => format!("{escaped}.*"),
                (false, false) => escaped,
            };
            if let Ok(q) = RegexQuery::from_pattern(&pattern, field) {
                clauses.push((Occur::Must, Box::new(q)));
            }
        }
    }
    (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needle_words_know_their_open_ends() {
        let w = words("123e4567-e89b-12d3");
        assert_eq!(w.len(), 3);
        assert!(w[0].open_left && !w[0].open_right);
        assert!(!w[1].open_left && !w[1].open_right);
        assert!(!w[2].open_left && w[2].open_right);
        let w = words(" Error ");
        assert_eq!(
            w,
            vec![Word {
                text: "error".into(),
                open_left: false,
                open_right: false
            }]
        );
        assert!(words("--").is_empty());
    }
}
