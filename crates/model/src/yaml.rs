//! Where each node of a YAML document is, by path (`groups.1.rules.0.expr`), for
//! errors that name a line and column: serde gives deserialized values no positions.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column of every node, by path (`groups.1.rules.0.expr`), read with a YAML
/// event parser because serde gives values no positions.
pub struct Positions(HashMap<String, (usize, usize)>);

impl Positions {
    /// The positions of `text`'s nodes.
    pub fn of(text: &str) -> Self {
        let mut rec = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        // A document that serde accepted parses here too; if not, positions are
        // simply unknown.
        let _ = parser.load(&mut rec, false);
        Positions(rec.out)
    }

    /// `LINE:COL` of `path`, or of its nearest known ancestor.
    pub fn get(&self, path: &str) -> String {
        let mut p = path;
        loop {
            if let Some((l, c)) = self.0.get(p) {
                return format!("{l}:{c}");
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return "1:1".into(),
            }
        }
    }
}

enum Frame {
    Map { key: Option<String>, pushed: bool },
    Seq { index: usize, pushed: bool },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    path: Vec<String>,
    out: HashMap<String, (usize, usize)>,
}

impl Recorder {
    /// Called when a value node starts: records it under the current path.
    fn enter_value(&mut self, mark: &Marker) -> Option<String> {
        let seg = match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => Some(key.take()?),
            Some(Frame::Seq { index, .. }) => {
                *index += 1;
                Some((*index - 1).to_string())
            }
            None => None,
        };
        if let Some(s) = &seg {
            self.path.push(s.clone());
            self.out.insert(self.path.join("."), (mark.line(), mark.col() + 1));
        }
        seg
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(v, ..) => {
                if let Some(Frame::Map { key, pushed }) = self.stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(v);
                    // A block mapping's start event is marked past its first key;
                    // the first key's own mark is where the mapping begins.
                    if *pushed {
                        let here = self.path.join(".");
                        self.out
                            .entry(here)
                            .and_modify(|p| *p = (*p).min((mark.line(), mark.col() + 1)));
                    }
                    return;
                }
                if self.enter_value(&mark).is_some() {
                    self.path.pop();
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // Remember whether this collection pushed a path segment.
                let pushed = self.enter_value(&mark).is_some();
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None, pushed }
                } else {
                    Frame::Seq { index: 0, pushed }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map { pushed: true, .. } | Frame::Seq { pushed: true, .. }) = self.stack.pop() {
                    self.path.pop();
                }
            }
            _ => {}
        }
    }
}
