//! The encoding of one series' samples in a row of a DuckDB block (`compact.rs`).
//!
//! The head's Gorilla chunks are built for appending one sample at a time; a closed
//! block is written once, with all its samples in hand, so it can afford to look at
//! them first and pick the cheapest of several encodings per row:
//!
//! - **Timestamps**: the first in full, the first gap, then each change of the gap
//!   (delta of delta), Rice-coded in frames of [`FRAME`] values. A steady scrape
//!   interval makes every frame all zero, which costs 7 bits per frame.
//! - **Values**, whichever is smallest of:
//!   - *decimal*: every value is `m / 10^scale` for one scale per row and integers
//!     `m` (VictoriaMetrics' observation: exported values are mostly short decimals
//!     and integers), stored as Rice-coded deltas of `m` or deltas of deltas (counters
//!     that grow at a steady rate). Values that do not round-trip at that scale
//!     (staleness markers, infinities, -0.0, long fractions) are listed once as
//!     exceptions with their exact bits;
//!   - *XOR*: each value's XOR with the previous one, as Gorilla and Prometheus' chunks
//!     store it, for values with no short decimal form (noisy float gauges).
//!
//! Rice coding (a unary quotient, then `k` plain bits, with one `k` per frame chosen
//! to minimise the frame) suits deltas, whose size varies smoothly within a series;
//! a value too large for it is escaped and written in full.
//!
//! Every value round-trips bit for bit: a decimal value is accepted only if
//! `m as f64 / 10^scale` gives back exactly its bits, which is also what the decoder
//! computes. The decoder reports malformed input instead of panicking.

use sextant_model::Sample;

/// Values per Rice frame: one `k` per frame lets the code follow a series whose
/// deltas change size, for 7 bits of header.
pub(crate) const FRAME: usize = 64;

/// Most samples one row holds; a longer run of a series in a block is split into
/// rows, so a query of a short range decodes little it does not need.
pub(crate) const MAX_ROW_SAMPLES: usize = 1024;

/// Largest decimal scale tried (values with more decimals are exceptions or XOR).
const MAX_SCALE: u32 = 12;

/// Exact powers of ten (all of these are exactly representable as doubles).
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12];

/// Integers whose magnitude is below this are exact doubles.
const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// A unary quotient this long means an escaped value follows.
const ESCAPE: u32 = 24;

/// Frame header meaning "every value in this frame is zero".
const ALL_ZERO: u64 = 127;

const MODE_XOR: u64 = 0;
const MODE_DELTA: u64 = 1;
const MODE_DOD: u64 = 2;

/// The row could not be decoded: cut short or inconsistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Encodes `samples` (one series, in time order, at least one) into `out`, which is
/// cleared first. `scratch` is reused between calls.
pub(crate) fn encode(samples: &[Sample], scratch: &mut Scratch, out: &mut Vec<u8>) {
    debug_assert!(!samples.is_empty());
    let mut w = BitWriter::new(std::mem::take(out));
    w.put_uvarint(samples.len() as u64);
    w.put_uvarint(zigzag(samples[0].t_ms));
    if samples.len() > 1 {
        let d0 = samples[1].t_ms.wrapping_sub(samples[0].t_ms);
        w.put_uvarint(zigzag(d0));
        scratch.ints.clear();
        let mut prev = d0;
        for pair in samples[1..].windows(2) {
            let d = pair[1].t_ms.wrapping_sub(pair[0].t_ms);
            scratch.ints.push(zigzag(d.wrapping_sub(prev)));
            prev = d;
        }
        put_frames(&mut w, &scratch.ints);
    }
    // The values: each candidate is written after the timestamps in a writer of its
    // own, and the shortest is kept.
    let base = w.clone();
    let mut best = base.clone();
    best.put(MODE_XOR, 2);
    put_xor(&mut best, samples);
    if let Some(scale) = decimal_scale(samples, scratch) {
        for mode in [MODE_DELTA, MODE_DOD] {
            let mut cand = base.clone();
            cand.put(mode, 2);
            put_decimal(&mut cand, mode, scale, scratch);
            if cand.bit_len() < best.bit_len() {
                best = cand;
            }
        }
    }
    *out = best.finish();
}

/// Buffers [`encode`] reuses between rows.
#[derive(Default)]
pub(crate) struct Scratch {
    ints: Vec<u64>,
    /// The scaled integers of a decimal candidate (an exception repeats the one
    /// before it).
    scaled: Vec<i64>,
    /// Positions and bits of values that are not `m / 10^scale`.
    exceptions: Vec<(u32, u64)>,
}

/// Decodes a row written by [`encode`], appending its samples to `out` in order. On
/// error `out` is left as it was.
pub(crate) fn decode(data: &[u8], out: &mut Vec<Sample>) -> Result<(), Malformed> {
    let start = out.len();
    let result = decode_after(data, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// [`decode`]: the timestamps are appended first (with zero values), then the values
/// are written in place.
fn decode_after(data: &[u8], out: &mut Vec<Sample>, start: usize) -> Result<(), Malformed> {
    let mut r = BitReader::new(data);
    let n = r.uvarint()?;
    // An all-zero frame of FRAME values takes 7 bits, so a longer count is corrupt
    // (and would otherwise size buffers from garbage).
    if n == 0 || n > (data.len() as u64 + 1) * 8 * FRAME as u64 {
        return Err(Malformed);
    }
    let n = n as usize;
    out.reserve(n);
    let mut t = unzigzag(r.uvarint()?);
    out.push(Sample::new(t, 0.0));
    if n > 1 {
        let mut d = unzigzag(r.uvarint()?);
        t = t.wrapping_add(d);
        out.push(Sample::new(t, 0.0));
        get_frames(&mut r, n - 2, |dod| {
            d = d.wrapping_add(unzigzag(dod));
            t = t.wrapping_add(d);
            out.push(Sample::new(t, 0.0));
        })?;
    }
    let values = &mut out[start..];
    match r.get(2)? {
        MODE_XOR => {
            let mut v = r.get(64)?;
            values[0].v = f64::from_bits(v);
            let (mut leading, mut sig) = (0u32, 0u32);
            for s in &mut values[1..] {
                if r.get(1)? == 1 {
                    if r.get(1)? == 1 {
                        leading = r.get(5)? as u32;
                        sig = r.get(6)? as u32;
                        if sig == 0 {
                            sig = 64;
                        }
                        if leading + sig > 64 {
                            return Err(Malformed);
                        }
                    } else if sig == 0 {
                        return Err(Malformed);
                    }
                    v ^= r.get(sig)? << (64 - leading - sig);
                }
                s.v = f64::from_bits(v);
            }
        }
        mode @ (MODE_DELTA | MODE_DOD) => {
            let scale = r.get(4)? as usize;
            let pow = *POW10.get(scale).ok_or(Malformed)?;
            let exceptions = r.uvarint()?;
            if exceptions > n as u64 {
                return Err(Malformed);
            }
            // Exceptions are read first (they precede the integers) and written over
            // the decimal values afterwards.
            let mut ex: Vec<(usize, u64)> = Vec::with_capacity(exceptions as usize);
            let mut at = 0usize;
            for _ in 0..exceptions {
                at = at.checked_add(r.uvarint()? as usize).ok_or(Malformed)?;
                if at >= n {
                    return Err(Malformed);
                }
                ex.push((at, r.get(64)?));
            }
            let mut m = unzigzag(r.uvarint()?);
            values[0].v = m as f64 / pow;
            let mut i = 1usize;
            if mode == MODE_DELTA {
                get_frames(&mut r, n - 1, |z| {
                    m = m.wrapping_add(unzigzag(z));
                    values[i].v = m as f64 / pow;
                    i += 1;
                })?;
            } else if n > 1 {
                let mut d = unzigzag(r.uvarint()?);
                m = m.wrapping_add(d);
                values[1].v = m as f64 / pow;
                i = 2;
                get_frames(&mut r, n - 2, |z| {
                    d = d.wrapping_add(unzigzag(z));
                    m = m.wrapping_add(d);
                    values[i].v = m as f64 / pow;
                    i += 1;
                })?;
            }
            for (at, bits) in ex {
                values[at].v = f64::from_bits(bits);
            }
        }
        _ => return Err(Malformed),
    }
    Ok(())
}

/// The scale at which most values are exact decimals, with `scratch.scaled` and
/// `scratch.exceptions` filled in; `None` when too few are for it to pay.
fn decimal_scale(samples: &[Sample], scratch: &mut Scratch) -> Option<u32> {
    // The smallest scale that fits every value that has one.
    let mut scale = 0u32;
    let mut fitted = 0usize;
    for s in samples {
        if let Some(k) = (scale..=MAX_SCALE).find(|&k| scaled(s.v, k).is_some()) {
            scale = k;
            fitted += 1;
        }
    }
    // An exception costs about 70 bits; past a quarter of the values XOR wins.
    if fitted < samples.len() - samples.len() / 4 {
        return None;
    }
    scratch.scaled.clear();
    scratch.exceptions.clear();
    let mut prev = 0i64;
    for (i, s) in samples.iter().enumerate() {
        match scaled(s.v, scale) {
            Some(m) => prev = m,
            None => scratch.exceptions.push((i as u32, s.v.to_bits())),
        }
        scratch.scaled.push(prev);
    }
    (scratch.exceptions.len() <= samples.len() / 4).then_some(scale)
}

/// `v` as `m` with `m / 10^scale == v` exactly, if there is one.
fn scaled(v: f64, scale: u32) -> Option<i64> {
    let pow = POW10[scale as usize];
    let m = (v * pow).round();
    // NaN and infinities fail this too.
    if m.is_nan() || m.abs() >= EXACT {
        return None;
    }
    // Checked the way `decode` computes it (so -0.0, whose `m` is 0, is refused).
    let m = m as i64;
    ((m as f64 / pow).to_bits() == v.to_bits()).then_some(m)
}

fn put_decimal(w: &mut BitWriter, mode: u64, scale: u32, scratch: &mut Scratch) {
    w.put(u64::from(scale), 4);
    w.put_uvarint(scratch.exceptions.len() as u64);
    let mut at = 0u32;
    for &(i, bits) in &scratch.exceptions {
        w.put_uvarint(u64::from(i - at));
        w.put(bits, 64);
        at = i;
    }
    let m = &scratch.scaled;
    w.put_uvarint(zigzag(m[0]));
    scratch.ints.clear();
    if mode == MODE_DELTA {
        scratch
            .ints
            .extend(m.windows(2).map(|p| zigzag(p[1].wrapping_sub(p[0]))));
    } else if m.len() > 1 {
        let d0 = m[1].wrapping_sub(m[0]);
        w.put_uvarint(zigzag(d0));
        let mut prev = d0;
        for p in m[1..].windows(2) {
            let d = p[1].wrapping_sub(p[0]);
            scratch.ints.push(zigzag(d.wrapping_sub(prev)));
            prev = d;
        }
    }
    put_frames(w, &scratch.ints);
}

fn put_xor(w: &mut BitWriter, samples: &[Sample]) {
    let mut prev = samples[0].v.to_bits();
    w.put(prev, 64);
    // The window of meaningful bits of the last XOR written with a header.
    let (mut leading, mut sig) = (u32::MAX, 0u32);
    for s in &samples[1..] {
        let v = s.v.to_bits();
        let xor = v ^ prev;
        prev = v;
        if xor == 0 {
            w.put(0, 1);
            continue;
        }
        let lz = xor.leading_zeros().min(31);
        let tz = xor.trailing_zeros();
        if leading != u32::MAX && lz >= leading && tz >= 64 - leading - sig {
            w.put(0b10, 2);
            w.put(xor >> (64 - leading - sig), sig);
        } else {
            leading = lz;
            sig = 64 - lz - tz;
            w.put(0b11, 2);
            w.put(u64::from(leading), 5);
            w.put(u64::from(sig & 63), 6);
            w.put(xor >> tz, sig);
        }
    }
}

/// Rice-codes `values` in frames of [`FRAME`].
fn put_frames(w: &mut BitWriter, values: &[u64]) {
    for frame in values.chunks(FRAME) {
        let max = frame.iter().copied().max().unwrap_or(0);
        if max == 0 {
            w.put(ALL_ZERO, 7);
            continue;
        }
        let width = 64 - max.leading_zeros();
        let k = (0..width)
            .min_by_key(|&k| frame.iter().map(|&z| rice_bits(z, k)).sum::<u64>())
            .unwrap_or(0);
        w.put(u64::from(k), 7);
        for &z in frame {
            let q = z >> k;
            if q < u64::from(ESCAPE) {
                // q ones, then a zero.
                w.put(((1u64 << q) - 1) << 1, q as u32 + 1);
                w.put(z, k);
            } else {
                let width = 64 - z.leading_zeros();
                w.put((1u64 << ESCAPE) - 1, ESCAPE);
                w.put(u64::from(width - 1), 6);
                w.put(z, width);
            }
        }
    }
}

fn rice_bits(z: u64, k: u32) -> u64 {
    let q = z >> k;
    if q < u64::from(ESCAPE) {
        q + 1 + u64::from(k)
    } else {
        u64::from(ESCAPE + 6 + (64 - z.leading_zeros()))
    }
}

/// Reads `n` values written by [`put_frames`].
fn get_frames(r: &mut BitReader, n: usize, mut each: impl FnMut(u64)) -> Result<(), Malformed> {
    let mut left = n;
    while left > 0 {
        let len = left.min(FRAME);
        left -= len;
        let k = r.get(7)?;
        if k == ALL_ZERO {
            (0..len).for_each(|_| each(0));
            continue;
        }
        if k >= 64 {
            return Err(Malformed);
        }
        let k = k as u32;
        for _ in 0..len {
            let q = r.ones(ESCAPE)?;
            let z = if q < ESCAPE {
                (u64::from(q) << k) | r.get(k)?
            } else {
                let width = r.get(6)? as u32 + 1;
                r.get(width)?
            };
            each(z);
        }
    }
    Ok(())
}

/// Maps a signed integer to an unsigned one with small magnitudes small (0, -1, 1, -2 →
/// 0, 1, 2, 3), for varints; also used by the head's chunks and the log's records.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Writes bits most significant first.
#[derive(Clone)]
struct BitWriter {
    buf: Vec<u8>,
    /// Bits not yet in `buf` (fewer than 8), right-aligned.
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn new(mut buf: Vec<u8>) -> Self {
        buf.clear();
        BitWriter { buf, acc: 0, n: 0 }
    }

    /// Writes the low `bits` bits of `v` (`bits` ≤ 64).
    fn put(&mut self, v: u64, bits: u32) {
        if bits > 32 {
            self.put(v >> 32, bits - 32);
            self.put(v & 0xffff_ffff, 32);
            return;
        }
        if bits == 0 {
            return;
        }
        self.acc = (self.acc << bits) | (v & ((1u64 << bits) - 1));
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.buf.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    fn put_uvarint(&mut self, mut z: u64) {
        loop {
            let more = z >= 0x80;
            self.put((z & 0x7f) | if more { 0x80 } else { 0 }, 8);
            z >>= 7;
            if !more {
                break;
            }
        }
    }

    fn bit_len(&self) -> usize {
        self.buf.len() * 8 + self.n as usize
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.buf.push((self.acc << (8 - self.n)) as u8);
        }
        self.buf
    }
}

/// Reads what [`BitWriter`] wrote; reading past the end is [`Malformed`].
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// The 64 bits from the current position, zero past the end.
    fn window(&self) -> u64 {
        let byte = self.pos >> 3;
        let x = match self.data.get(byte..byte + 8) {
            Some(b) => u64::from_be_bytes(b.try_into().expect("8 bytes")),
            None => {
                let mut w = [0u8; 8];
                let rest = self.data.get(byte..).unwrap_or(&[]);
                w[..rest.len()].copy_from_slice(rest);
                u64::from_be_bytes(w)
            }
        };
        x << (self.pos & 7)
    }

    fn advance(&mut self, bits: u32) -> Result<(), Malformed> {
        self.pos += bits as usize;
        if self.pos > self.data.len() * 8 {
            return Err(Malformed);
        }
        Ok(())
    }

    /// The next `bits` bits (`bits` ≤ 64).
    fn get(&mut self, bits: u32) -> Result<u64, Malformed> {
        if bits > 32 {
            let hi = self.get(bits - 32)?;
            return Ok((hi << 32) | self.get(32)?);
        }
        if bits == 0 {
            return Ok(0);
        }
        let v = self.window() >> (64 - bits);
        self.advance(bits)?;
        Ok(v)
    }

    /// Counts leading one bits, up to `max`, and consumes them with the zero that
    /// ends them (none after `max` ones).
    fn ones(&mut self, max: u32) -> Result<u32, Malformed> {
        let q = (!self.window()).leading_zeros().min(max);
        self.advance(if q < max { q + 1 } else { q })?;
        Ok(q)
    }

    fn uvarint(&mut self) -> Result<u64, Malformed> {
        let mut z = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.get(8)?;
            z |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(z);
            }
        }
        Err(Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[Sample]) -> usize {
        let mut out = Vec::new();
        encode(samples, &mut Scratch::default(), &mut out);
        let mut back = vec![Sample::new(-1, 0.5)];
        decode(&out, &mut back).unwrap();
        assert_eq!(back.remove(0), Sample::new(-1, 0.5), "decode appends");
        let back: Vec<(i64, u64)> = back.iter().map(|s| (s.t_ms, s.v.to_bits())).collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.t_ms, s.v.to_bits())).collect();
        assert_eq!(back, want);
        out.len()
    }

    fn steady(n: usize, mut v: impl FnMut(usize) -> f64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample::new(1_700_000_000_000 + 15_000 * i as i64, v(i)))
            .collect()
    }

    #[test]
    fn steady_series_cost_well_under_a_byte_a_sample() {
        // A constant gauge: the timestamps and values are all-zero frames.
        assert!(round_trip(&steady(480, |_| 1.0)) < 40);
        // A counter growing at a steady rate with two decimals and some jitter (CPU
        // seconds): its deltas of deltas take about four bits.
        let cpu = steady(480, |i| (1_234_500 + i * 1512 + i % 7) as f64 / 100.0);
        assert!(round_trip(&cpu) < 480 * 5 / 8, "{}", round_trip(&cpu));
        // A three-decimal random walk, where XOR would need about five bytes.
        let mut x = 0i64;
        let walk = steady(480, |i| {
            x += (i as i64 * 7919) % 2001 - 1000;
            x as f64 / 1000.0
        });
        assert!(round_trip(&walk) < 480 * 2, "{}", round_trip(&walk));
    }

    #[test]
    fn special_values_round_trip_as_exceptions() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut s = steady(200, |i| i as f64);
        s[10].v = stale;
        s[11].v = f64::INFINITY;
        s[12].v = -0.0;
        s[150].v = f64::NAN;
        s[199].v = 0.1 + 0.2;
        round_trip(&s);
        round_trip(&s[..1]);
        round_trip(&s[..2]);
        round_trip(&s[10..13]);
    }

    #[test]
    fn irregular_times_and_extremes_round_trip() {
        let s = vec![
            Sample::new(i64::MIN, f64::MAX),
            Sample::new(-5, f64::MIN_POSITIVE),
            Sample::new(0, -1e300),
            Sample::new(1, 9.007_199_254_740_993e15),
            Sample::new(i64::MAX, 1e-300),
        ];
        round_trip(&s);
        let big = steady(3000, |i| if i % 2 == 0 { 1e15 } else { -1e15 });
        round_trip(&big);
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        let mut out = Vec::new();
        encode(&steady(300, |i| (i as f64).sqrt()), &mut Scratch::default(), &mut out);
        for cut in 0..out.len() {
            let mut back = Vec::new();
            if decode(&out[..cut], &mut back).is_err() {
                assert!(back.is_empty());
            }
        }
        assert_eq!(decode(&[], &mut Vec::new()), Err(Malformed));
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad, &mut Vec::new());
        }
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1_000_000i64..1_000_000, 0u32..6).prop_map(|(m, k)| m as f64 / POW10[k as usize]),
            (0u64..1000).prop_map(|v| v as f64),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
        ]
    }

    proptest! {
        #[test]
        fn any_series_round_trips_bit_for_bit(
            start in any::<i64>(),
            gaps in prop::collection::vec(prop_oneof![Just(15_000i64), 0i64..100_000, any::<i64>()], 0..300),
            values in prop::collection::vec(value(), 300),
        ) {
            let mut t = start;
            let mut s = vec![Sample::new(t, values[0])];
            for (i, g) in gaps.iter().enumerate() {
                t = t.wrapping_add(*g);
                s.push(Sample::new(t, values[i + 1]));
            }
            round_trip(&s);
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, &mut Vec::new());
        }
    }
}
