//! Prometheus remote_write 1.0: a snappy block-compressed protobuf `WriteRequest`.
//! The message types are written by hand from `prompb/remote.proto` and `types.proto`
//! (field numbers must never change).

use prost::Message;
use sextant_model::{Labels, MetricMetadata, MetricType, Sample};
use sextant_store::{AppendRequest, SeriesRef, SeriesSamples};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// Series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (sent by Prometheus in separate requests).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadataProto>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, including `__name__`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<LabelProto>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<SampleProto>,
    /// Exemplars (accepted and not yet stored).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<ExemplarProto>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct LabelProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct SampleProto {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Epoch milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, Message)]
pub struct ExemplarProto {
    /// Exemplar labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<LabelProto>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Epoch milliseconds.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadataProto {
    /// `MetricType` enum: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram,
    /// 5 summary, 6 info, 7 stateset.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Help text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Why a remote_write body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Compressed body or its announced decompressed size is over the limit (413).
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Which size.
        what: &'static str,
        /// The size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not snappy, not protobuf, or invalid series (400).
    #[error("{0}")]
    Malformed(String),
}

/// Decodes a request body into an append. Sizes are checked before decompressing, using
/// the length snappy announces in its header, so a small bomb cannot allocate much.
pub fn decode(body: &[u8], max_compressed: usize, max_decompressed: usize) -> Result<AppendRequest, DecodeError> {
    decode_with(body, max_compressed, max_decompressed, |_, _| None)
}

/// [`decode`], asking `known` for the reference of each series before building its
/// label set: `known(hash, pairs)` gets the labels' bytes as they are in the body
/// (sorted by name, no empty value; [`Labels::hash_pairs`] of them as `hash`) and
/// returns the store's reference if it holds that series. Known series then cost no
/// label-set allocation and no UTF-8 check, which is most of a steady sender's traffic.
pub fn decode_with(
    body: &[u8],
    max_compressed: usize,
    max_decompressed: usize,
    known: impl Fn(u64, &[(&[u8], &[u8])]) -> Option<SeriesRef>,
) -> Result<AppendRequest, DecodeError> {
    if body.len() > max_compressed {
        return Err(DecodeError::TooLarge {
            what: "compressed body",
            size: body.len(),
            limit: max_compressed,
        });
    }
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Malformed(format!("snappy: {e}")))?;
    if len > max_decompressed {
        return Err(DecodeError::TooLarge {
            what: "decompressed body",
            size: len,
            limit: max_decompressed,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Malformed(format!("snappy: {e}")))?;
    let mut out = AppendRequest::default();
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut pb = Pb(&raw);
    while let Some((field, wire)) = pb.key()? {
        match (field, wire) {
            (1, LEN) => time_series(pb.bytes()?, &mut pairs, &mut out, &known)?,
            (3, LEN) => {
                let m = MetricMetadataProto::decode(pb.bytes()?)
                    .map_err(|e| DecodeError::Malformed(format!("protobuf: {e}")))?;
                let metric_type = match m.r#type {
                    1 => MetricType::Counter,
                    2 => MetricType::Gauge,
                    3 => MetricType::Histogram,
                    4 => MetricType::GaugeHistogram,
                    5 => MetricType::Summary,
                    6 => MetricType::Info,
                    7 => MetricType::StateSet,
                    _ => MetricType::Unknown,
                };
                out.metadata.push((
                    m.metric_family_name,
                    MetricMetadata {
                        metric_type,
                        help: m.help,
                        unit: m.unit,
                    },
                ));
            }
            (_, w) => pb.skip(w)?,
        }
    }
    Ok(out)
}

/// Decodes one `TimeSeries` message into `out`, borrowing its labels from the body.
fn time_series<'a>(
    bytes: &'a [u8],
    pairs: &mut Vec<(&'a [u8], &'a [u8])>,
    out: &mut AppendRequest,
    known: &impl Fn(u64, &[(&[u8], &[u8])]) -> Option<SeriesRef>,
) -> Result<(), DecodeError> {
    pairs.clear();
    let mut samples = Vec::new();
    let mut pb = Pb(bytes);
    while let Some((field, wire)) = pb.key()? {
        match (field, wire) {
            (1, LEN) => {
                let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
                let mut l = Pb(pb.bytes()?);
                while let Some((f, w)) = l.key()? {
                    match (f, w) {
                        (1, LEN) => name = l.bytes()?,
                        (2, LEN) => value = l.bytes()?,
                        (_, w) => l.skip(w)?,
                    }
                }
                pairs.push((name, value));
            }
            (2, LEN) => {
                let (mut value, mut timestamp) = (0.0, 0i64);
                let mut x = Pb(pb.bytes()?);
                while let Some((f, w)) = x.key()? {
                    match (f, w) {
                        (1, FIXED64) => value = f64::from_bits(x.fixed64()?),
                        (2, VARINT) => timestamp = x.varint()? as i64,
                        (_, w) => x.skip(w)?,
                    }
                }
                samples.push(Sample::new(timestamp, value));
            }
            (_, w) => pb.skip(w)?,
        }
    }
    // Senders send samples in order; sorting makes a shuffled request behave the same.
    if !samples.is_sorted_by_key(|s| s.t_ms) {
        samples.sort_by_key(|s| s.t_ms);
    }
    let canonical = pairs.windows(2).all(|w| w[0].0 < w[1].0) && pairs.iter().all(|(_, v)| !v.is_empty());
    if canonical
        && !pairs.is_empty()
        && let Some(r) = known(Labels::hash_pairs(pairs.iter().copied()), pairs)
    {
        out.by_ref.push((r, samples));
        return Ok(());
    }
    let utf8 = |b: &'a [u8]| {
        std::str::from_utf8(b).map_err(|_| Pb::malformed("invalid string value: data is not UTF-8 encoded"))
    };
    let strs = pairs
        .iter()
        .map(|(n, v)| Ok((utf8(n)?, utf8(v)?)))
        .collect::<Result<Vec<(&str, &str)>, DecodeError>>()?;
    let labels = Labels::from_pairs(strs).map_err(|e| DecodeError::Malformed(format!("invalid series: {e}")))?;
    if labels.is_empty() {
        return Err(DecodeError::Malformed("invalid series: empty label set".into()));
    }
    out.series.push(SeriesSamples { labels, samples });
    Ok(())
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A protobuf wire-format reader over borrowed bytes (the few shapes remote_write
/// uses), so labels are read as `&str` into the body instead of owned strings.
struct Pb<'a>(&'a [u8]);

impl<'a> Pb<'a> {
    fn malformed(what: &str) -> DecodeError {
        DecodeError::Malformed(format!("protobuf: {what}"))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for (i, b) in self.0.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(v);
            }
        }
        Err(Self::malformed("truncated or overlong varint"))
    }

    /// The next field number and wire type, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, DecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, (k & 7) as u8)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| Self::malformed("buffer underflow"))?;
        self.0 = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.varint()?).map_err(|_| Self::malformed("length overflow"))?;
        self.take(n)
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => Err(Self::malformed(&format!("invalid wire type {wire}"))),
        }
    }
}

/// Encodes a request as a remote_write client does (for tests and benchmarks).
pub fn encode(wr: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&wr.encode_to_vec())
        .expect("snappy compresses any input")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    LabelProto {
                        name: "__name__".into(),
                        value: "m".into(),
                    },
                    LabelProto {
                        name: "job".into(),
                        value: "j".into(),
                    },
                ],
                samples: vec![
                    SampleProto {
                        value: 2.0,
                        timestamp: 2000,
                    },
                    SampleProto {
                        value: 1.0,
                        timestamp: 1000,
                    },
                ],
                exemplars: vec![],
            }],
            metadata: vec![MetricMetadataProto {
                r#type: 1,
                metric_family_name: "m".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        }
    }

    #[test]
    fn round_trip() {
        let a = decode(&encode(&req()), 1 << 20, 1 << 20).unwrap();
        assert_eq!(a.series[0].labels.get("job"), Some("j"));
        assert_eq!(
            a.series[0].samples,
            vec![Sample::new(1000, 1.0), Sample::new(2000, 2.0)]
        );
        assert_eq!(a.metadata[0].1.metric_type, MetricType::Counter);
    }

    #[tokio::test]
    async fn known_series_come_back_by_reference_and_the_rest_as_label_sets() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = sextant_store::StoreOptions::new(dir.path());
        opts.retention = None;
        let store =
            sextant_store::MetricsStore::open(opts, &mut prometheus_client::registry::Registry::default()).unwrap();
        let first = decode(&encode(&req()), 1 << 20, 1 << 20).unwrap();
        let out = store.append(first.clone()).await.unwrap();
        // The same series again: found by reference, with the same samples.
        let mut again = req();
        // An unknown field in a sample and an exemplar are skipped.
        again.timeseries[0].exemplars.push(ExemplarProto {
            labels: vec![],
            value: 1.0,
            timestamp: 5,
        });
        let known = decode_with(&encode(&again), 1 << 20, 1 << 20, |h, p| store.lookup(h, p)).unwrap();
        assert!(known.series.is_empty());
        assert_eq!(known.by_ref, vec![(out.refs[0], first.series[0].samples.clone())]);
        // Labels out of order are not looked up, and come out sorted.
        let mut shuffled = req();
        shuffled.timeseries[0].labels.reverse();
        let slow = decode_with(&encode(&shuffled), 1 << 20, 1 << 20, |h, p| store.lookup(h, p)).unwrap();
        assert_eq!(slow.series, first.series);
        assert_eq!(
            Labels::hash_pairs(
                first.series[0]
                    .labels
                    .iter()
                    .map(|l| (l.name.as_bytes(), l.value.as_bytes()))
            ),
            first.series[0].labels.hash64()
        );
        store.close().await.unwrap();
    }

    #[test]
    fn limits_and_garbage() {
        let body = encode(&req());
        assert!(matches!(
            decode(&body, 5, 1 << 20),
            Err(DecodeError::TooLarge {
                what: "compressed body",
                ..
            })
        ));
        assert!(matches!(
            decode(&body, 1 << 20, 5),
            Err(DecodeError::TooLarge {
                what: "decompressed body",
                ..
            })
        ));
        assert!(matches!(
            decode(b"not snappy at all", 1 << 20, 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 10]).unwrap();
        assert!(matches!(
            decode(&not_proto, 1 << 20, 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        let mut dup = req();
        dup.timeseries[0].labels.push(LabelProto {
            name: "job".into(),
            value: "k".into(),
        });
        assert!(
            matches!(decode(&encode(&dup), 1 << 20, 1 << 20), Err(DecodeError::Malformed(m)) if m.contains("duplicate"))
        );
    }
}
