//! Both exposition parsers must return Ok or Err on any input, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_expfmt::{Format, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data, Format::OpenMetrics);
    let _ = parse(data, Format::PrometheusText);
});
