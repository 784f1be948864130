//! Prometheus remote_write 1.0: a snappy block-compressed protobuf `WriteRequest`.
//! The message types are written by hand from `prompb/remote.proto` and `types.proto`
//! (field numbers must never change).

use prost::Message;
use sextant_model::{Labels, MetricMetadata, MetricType, Sample};
use sextant_store::{AppendRequest, SeriesSamples};

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
    let wr = WriteRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Malformed(format!("protobuf: {e}")))?;
    to_append(wr)
}

fn to_append(wr: WriteRequest) -> Result<AppendRequest, DecodeError> {
    let mut out = AppendRequest::default();
    for ts in wr.timeseries {
        let labels = Labels::from_pairs(ts.labels.into_iter().map(|l| (l.name, l.value)))
            .map_err(|e| DecodeError::Malformed(format!("invalid series: {e}")))?;
        if labels.is_empty() {
            return Err(DecodeError::Malformed("invalid series: empty label set".into()));
        }
        let mut samples: Vec<Sample> = ts.samples.iter().map(|s| Sample::new(s.timestamp, s.value)).collect();
        // Senders send samples in order; sorting makes a shuffled request behave the same.
        samples.sort_by_key(|s| s.t_ms);
        out.series.push(SeriesSamples { labels, samples });
    }
    for m in wr.metadata {
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
    Ok(out)
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
