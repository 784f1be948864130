//! The head's sample encoding: Gorilla-style chunks (Pelkonen et al., VLDB 2015), as
//! Prometheus' head uses.
//!
//! A chunk holds up to [`CHUNK_SAMPLES`] samples of one series within one two-hour
//! block, as a bit stream: the first timestamp and value in full, the second
//! timestamp as a delta, later ones as the delta of deltas in a few size classes
//! (a steady scrape interval costs one bit per sample), and every value after the
//! first as its XOR with the previous one, storing only the meaningful bits (an
//! unchanged value costs one bit). Values round-trip bit for bit, NaN payloads
//! (staleness markers) included.

use sextant_model::Sample;

use crate::blockcodec::{unzigzag, zigzag};

/// Samples per chunk before a new one is cut, as in Prometheus: long enough for the
/// encoding to pay off, short enough that a query reads little it does not need.
pub(crate) const CHUNK_SAMPLES: u16 = 120;

/// Bytes a chunk keeps in `data` from the byte its next bit goes in: a write is a
/// fixed sixteen-byte store.
const ROOM: usize = 16;

/// Up to 121 bits to append, gathered in the low bits of a word.
#[derive(Default, Clone, Copy)]
struct Bits {
    acc: u128,
    n: u32,
}

impl Bits {
    /// Adds the low `n` bits of `value` (`n` ≤ 64) after those gathered.
    #[inline]
    fn add(&mut self, value: u64, n: u32) {
        let value = if n == 64 { value } else { value & ((1u64 << n) - 1) };
        self.acc = self.acc << n | u128::from(value);
        self.n += n;
        debug_assert!(self.n <= 121, "one store takes at most 121 bits");
    }
}

/// A chunk of one series' samples, all in block `block`.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub block: i64,
    pub first_t: i64,
    pub last_t: i64,
    pub count: u16,
    /// Set when a flush has read the chunk: it takes no more samples (the next
    /// sample starts a new chunk), so what was flushed is exactly this chunk.
    pub sealed: bool,
    data: Vec<u8>,
    bits: u32,
    // Encoder state, to append after `last_t`.
    last_v: u64,
    last_delta: i64,
    leading: u8,
    trailing: u8,
}

impl Chunk {
    /// Bytes reserved for a series' first chunk.
    pub const FIRST_CAPACITY: usize = 16;

    /// A chunk holding `s` alone, with `capacity` bytes reserved for its bit stream.
    pub fn new(block: i64, s: Sample, capacity: usize) -> Self {
        let mut c = Chunk {
            block,
            first_t: s.t_ms,
            last_t: s.t_ms,
            count: 1,
            sealed: false,
            data: vec![0; capacity.max(Self::FIRST_CAPACITY)],
            bits: 0,
            last_v: s.v.to_bits(),
            last_delta: 0,
            leading: u8::MAX,
            trailing: 0,
        };
        let mut first = Bits::default();
        first.add(s.v.to_bits(), 64);
        c.put(first);
        c
    }

    /// Whether `s` (of this chunk's block, newer than `last_t`) can be appended.
    pub fn has_room(&self, block: i64) -> bool {
        !self.sealed && self.block == block && self.count < CHUNK_SAMPLES
    }

    /// Appends `s`, which must be newer than `last_t`. The sample's bits are gathered
    /// in a word and written with one [`Self::put`] (two when the time needs its
    /// 64-bit form).
    pub fn push(&mut self, s: Sample) {
        let delta = s.t_ms - self.last_t;
        let mut bits = Bits::default();
        if self.count == 1 {
            self.put_varint(delta);
        } else {
            let dod = delta - self.last_delta;
            match dod {
                0 => bits.add(0, 1),
                -8192..=8191 => bits.add(0b10 << 14 | (dod as u64 & ((1 << 14) - 1)), 16),
                -65536..=65535 => bits.add(0b110 << 17 | (dod as u64 & ((1 << 17) - 1)), 20),
                -524_288..=524_287 => bits.add(0b1110 << 20 | (dod as u64 & ((1 << 20) - 1)), 24),
                _ => {
                    bits.add(0b1111, 4);
                    bits.add(dod as u64, 64);
                    // The value's 77 bits at most would not fit beside these 68.
                    self.put(bits);
                    bits = Bits::default();
                }
            }
        }
        self.last_delta = delta;
        self.last_t = s.t_ms;
        let v = s.v.to_bits();
        let xor = v ^ self.last_v;
        if xor == 0 {
            bits.add(0, 1);
        } else {
            let leading = (xor.leading_zeros() as u8).min(31);
            let trailing = xor.trailing_zeros() as u8;
            if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
                // Fits the previous window of meaningful bits.
                bits.add(0b10, 2);
                let sig = 64 - self.leading - self.trailing;
                bits.add(xor >> self.trailing, u32::from(sig));
            } else {
                self.leading = leading;
                self.trailing = trailing;
                let sig = 64 - leading - trailing;
                // Control bits, then the leading zeros in five bits and the significant
                // bits' count in six (64 is written as 0: six bits hold 0..=63).
                bits.add(0b11 << 11 | u64::from(leading) << 6 | u64::from(sig & 63), 13);
                bits.add(xor >> trailing, u32::from(sig));
            }
        }
        self.put(bits);
        self.last_v = v;
        self.count += 1;
    }

    /// Bytes to reserve for the chunk that follows this one: a series' chunks tend to
    /// be alike, so a full chunk's size plus an eighth, which saves the new one
    /// growing (and being copied) several times on the way.
    pub fn next_capacity(&self) -> usize {
        if self.count < CHUNK_SAMPLES {
            return Self::FIRST_CAPACITY;
        }
        // Room past its bits, which a chunk always keeps.
        self.used() + self.used() / 8 + ROOM
    }

    /// Gives back spare capacity once the chunk is complete.
    pub fn seal_capacity(&mut self) {
        self.data.truncate(self.used());
        self.data.shrink_to_fit();
    }

    /// The newest sample.
    pub fn last(&self) -> Sample {
        Sample::new(self.last_t, f64::from_bits(self.last_v))
    }

    /// Heap and inline bytes this chunk holds.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.data.capacity()
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            data: &self.data,
            pos: 0,
            left: self.count,
            read: 0,
            t: self.first_t,
            delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
        }
    }

    /// Appends `bits`, most significant first. The free bits of the last byte and the
    /// new ones are laid out in one 128-bit word and its first sixteen bytes written in
    /// place: `data` always has zeroed room past the bits written (see
    /// [`Self::room`]), so this is a fixed-size store, not a call to grow the vector
    /// and copy.
    fn put(&mut self, bits: Bits) {
        if bits.n == 0 {
            return;
        }
        let used = self.bits % 8;
        let word = (bits.acc << (128 - used - bits.n)).to_be_bytes();
        let at = (self.bits / 8) as usize;
        self.room(at);
        // The byte at `at` holds `used` bits already (zero if none); the fifteen after
        // it are room, all zeros.
        self.data[at] |= word[0];
        let rest: &[u8; 15] = word[1..16].try_into().expect("fifteen bytes");
        self.data[at + 1..at + 16].copy_from_slice(rest);
        self.bits += bits.n;
    }

    /// Makes sure sixteen bytes from `at` are in `data` (zeros past the bits written).
    #[inline]
    fn room(&mut self, at: usize) {
        if self.data.len() < at + ROOM {
            let want = (at + ROOM)
                .max(self.data.capacity())
                .max(self.data.len() + self.data.len() / 2);
            self.data.resize(want, 0);
        }
    }

    /// Bytes the bits written take.
    fn used(&self) -> usize {
        (self.bits as usize).div_ceil(8)
    }

    fn put_varint(&mut self, v: i64) {
        // Zig-zag, then 7 bits at a time with a continuation bit: at most ten bytes,
        // gathered and stored at once.
        let mut z = zigzag(v);
        let mut bits = Bits::default();
        loop {
            let more = z >= 0x80;
            bits.add((z & 0x7f) | if more { 0x80 } else { 0 }, 8);
            z >>= 7;
            if !more {
                break;
            }
        }
        self.put(bits);
    }

    /// Serialises the chunk (for the write-ahead log's checkpoints). The fixed fields
    /// are laid out in one array and copied at once: a checkpoint holds every chunk of
    /// the head.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut head = [0u8; 53];
        for (i, v) in [self.block, self.first_t, self.last_t, self.last_delta]
            .into_iter()
            .enumerate()
        {
            head[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        head[32..40].copy_from_slice(&self.last_v.to_le_bytes());
        head[40..42].copy_from_slice(&self.count.to_le_bytes());
        head[42..46].copy_from_slice(&self.bits.to_le_bytes());
        head[46..49].copy_from_slice(&[self.leading, self.trailing, u8::from(self.sealed)]);
        head[49..53].copy_from_slice(&(self.used() as u32).to_le_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.data[..self.used()]);
    }

    /// Reads a chunk written by [`Chunk::encode`], advancing `input`; `None` if it
    /// is cut short or inconsistent.
    pub fn decode(input: &mut &[u8]) -> Option<Chunk> {
        fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = input.split_at_checked(n)?;
            *input = rest;
            Some(head)
        }
        let i64_at = |input: &mut &[u8]| Some(i64::from_le_bytes(take(input, 8)?.try_into().ok()?));
        let block = i64_at(input)?;
        let first_t = i64_at(input)?;
        let last_t = i64_at(input)?;
        let last_delta = i64_at(input)?;
        let last_v = u64::from_le_bytes(take(input, 8)?.try_into().ok()?);
        let count = u16::from_le_bytes(take(input, 2)?.try_into().ok()?);
        let bits = u32::from_le_bytes(take(input, 4)?.try_into().ok()?);
        let flags = take(input, 3)?;
        let len = u32::from_le_bytes(take(input, 4)?.try_into().ok()?) as usize;
        let data = take(input, len)?.to_vec();
        if count == 0 || (bits as usize).div_ceil(8) != len {
            return None;
        }
        Some(Chunk {
            block,
            first_t,
            last_t,
            count,
            sealed: flags[2] != 0,
            data,
            bits,
            last_v,
            last_delta,
            leading: flags[0],
            trailing: flags[1],
        })
    }
}

/// Decodes a chunk's samples in order.
pub(crate) struct ChunkIter<'a> {
    data: &'a [u8],
    pos: u32,
    left: u16,
    read: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl ChunkIter<'_> {
    /// Reads the next `n` bits (`n` ≤ 64) as the low bits of the result; bits past the
    /// end read as zeros. The (at most nine) bytes they span are loaded as one word.
    fn get(&mut self, n: u8) -> u64 {
        if n == 0 {
            return 0;
        }
        let at = (self.pos / 8) as usize;
        let word = match self.data.get(at..at + 16) {
            Some(b) => u128::from_be_bytes(b.try_into().expect("16 bytes")),
            None => {
                let mut buf = [0u8; 16];
                let tail = self.data.get(at..).unwrap_or_default();
                let k = tail.len().min(16);
                buf[..k].copy_from_slice(&tail[..k]);
                u128::from_be_bytes(buf)
            }
        };
        let out = ((word << (self.pos % 8)) >> (128 - u32::from(n))) as u64;
        self.pos += u32::from(n);
        out
    }

    fn get_varint(&mut self) -> i64 {
        let mut z = 0u64;
        let mut shift = 0;
        loop {
            let b = self.get(8);
            z |= (b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift >= 64 {
                break;
            }
        }
        unzigzag(z)
    }

    fn signed(v: u64, n: u8) -> i64 {
        // Sign-extends an n-bit two's-complement value.
        ((v << (64 - n)) as i64) >> (64 - n)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let first = self.read == 0;
        self.read += 1;
        if first {
            self.v = self.get(64);
            return Some(Sample::new(self.t, f64::from_bits(self.v)));
        }
        if self.read == 2 {
            self.delta = self.get_varint();
        } else {
            let dod = if self.get(1) == 0 {
                0
            } else if self.get(1) == 0 {
                Self::signed(self.get(14), 14)
            } else if self.get(1) == 0 {
                Self::signed(self.get(17), 17)
            } else if self.get(1) == 0 {
                Self::signed(self.get(20), 20)
            } else {
                self.get(64) as i64
            };
            self.delta += dod;
        }
        self.t += self.delta;
        if self.get(1) == 1 {
            if self.get(1) == 1 {
                self.leading = self.get(5) as u8;
                let sig = match self.get(6) as u8 {
                    0 => 64,
                    n => n,
                };
                self.trailing = 64 - self.leading - sig;
            }
            let sig = 64 - self.leading - self.trailing;
            self.v ^= self.get(sig) << self.trailing;
        }
        Some(Sample::new(self.t, f64::from_bits(self.v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn assert_holds(c: &Chunk, samples: &[Sample]) {
        let back: Vec<Sample> = c.iter().collect();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.t_ms, b.t_ms);
            assert_eq!(a.v.to_bits(), b.v.to_bits(), "{} vs {}", a.v, b.v);
        }
    }

    /// The samples through a chunk, and through a chunk read back from a checkpoint
    /// halfway (which has no room past its bits) and appended to after.
    fn round_trip(samples: &[Sample]) {
        let half = samples.len().div_ceil(2);
        let mut c = Chunk::new(0, samples[0], Chunk::FIRST_CAPACITY);
        for s in &samples[1..half] {
            c.push(*s);
        }
        let mut buf = Vec::new();
        c.encode(&mut buf);
        let mut input = &buf[..];
        let mut d = Chunk::decode(&mut input).unwrap();
        assert!(input.is_empty());
        assert!(Chunk::decode(&mut &buf[..buf.len() - 1]).is_none());
        for s in &samples[half..] {
            c.push(*s);
            d.push(*s);
        }
        assert_holds(&c, samples);
        assert_holds(&d, samples);
        c.seal_capacity();
        assert_holds(&c, samples);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        c.encode(&mut a);
        d.encode(&mut b);
        assert_eq!(a, b);
    }

    /// A fixed series through every branch of the encoding (first delta, each
    /// delta-of-delta class, an unchanged value, a value in the previous window, a new
    /// window, all 64 bits significant, NaN payloads), pinned to its bytes: chunks are
    /// kept in checkpoints, so the layout must not change.
    #[test]
    fn the_bit_layout_is_pinned() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let times = [
            0,
            15_000,
            30_000,
            45_001,
            60_000,
            75_000 + 70_000,
            400_000,
            20_000_000,
            20_015_000,
        ];
        let values = [
            1.0,
            1.0,
            2.0,
            3.0,
            -3.0,
            f64::from_bits(0x8000_0000_0000_0001),
            stale,
            0.1,
            1e300,
        ];
        let samples: Vec<Sample> = times.iter().zip(values).map(|(t, v)| Sample::new(*t, v)).collect();
        round_trip(&samples);
        let mut c = Chunk::new(0, samples[0], Chunk::FIRST_CAPACITY);
        for s in &samples[1..] {
            c.push(*s);
        }
        let mut buf = Vec::new();
        c.encode(&mut buf);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "000000000000000000000000000000009867310100000000983a0000000000009c7500883ce4377e",
                "090083020000000000510000003ff0000000000000b0ea013097ffe0007603bffec00f8445c70ff0",
                "0200000000000078a6043001ffe0000000000007e00000000024e5cd12024cccccccccccc7ffffff",
                "ffff6a940c4831cfb4a2333d80c0"
            ),
            "{hex}"
        );
    }

    #[test]
    fn steady_scrapes_cost_about_two_bits_a_sample() {
        let samples: Vec<Sample> = (0..120).map(|i| Sample::new(1_000_000 + i * 15_000, 42.0)).collect();
        let mut c = Chunk::new(0, samples[0], Chunk::FIRST_CAPACITY);
        for s in &samples[1..] {
            c.push(*s);
        }
        // 1 bit of timestamp and 1 of value per sample after the first two.
        assert!(c.bits < 64 + 24 + 2 * 120, "{} bits", c.bits);
        round_trip(&samples);
    }

    #[test]
    fn awkward_values_and_gaps_round_trip() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let values = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            stale,
            f64::NAN,
            1e308,
            -5e-324,
            1.5,
            1.5,
            1.25,
            7.0,
        ];
        let gaps = [
            1,
            15_000,
            15_001,
            14_999,
            3_600_000,
            1,
            9_000_000_000,
            1,
            2,
            70_000,
            600_000,
            1,
        ];
        let mut t = -1_000_000;
        let samples: Vec<Sample> = values
            .iter()
            .zip(gaps)
            .map(|(v, g)| {
                t += g;
                Sample::new(t, *v)
            })
            .collect();
        round_trip(&samples);
    }

    proptest! {
        #[test]
        fn any_samples_round_trip(
            start in any::<i32>(),
            steps in prop::collection::vec((1i64..10_000_000, any::<u64>(), 0u8..4), 1..120),
        ) {
            let mut t = i64::from(start);
            let mut prev = 0.0f64;
            let samples: Vec<Sample> = steps.iter().map(|(g, bits, kind)| {
                t += g;
                let v = match kind {
                    0 => f64::from_bits(*bits),
                    1 => prev,
                    2 => prev + (*bits % 100) as f64,
                    _ => (*bits % 1000) as f64 / 8.0,
                };
                prev = v;
                Sample::new(t, v)
            }).collect();
            round_trip(&samples);
        }
    }
}
