//! Latency histograms: how every one in a run is made (bounds, precision), and the form they take
//! in a JSON report: HdrHistogram's compressed V2 encoding in base64 (`HISTFAAA…`), the same bytes
//! HdrHistogram's own tools in Java, C, Go and Python read.
//!
//! Carrying the whole histogram is what makes `upcase bench merge` exact: percentiles of many runs
//! are computed on the sum of their histograms, never averaged. Nothing here records or judges a
//! latency; a histogram that cannot be decoded is an error for the caller, never a panic.

use std::io::Cursor;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, up to an hour; three significant figures.
pub(crate) const MAX_US: u64 = 3_600_000_000;

/// An empty latency histogram with the bounds every run uses, so any two can be added.
pub(crate) fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3)
        .unwrap_or_else(|_| unreachable!("1 µs to an hour at 3 significant figures is valid"))
}

/// `histogram` in HdrHistogram's compressed V2 encoding, in base64.
pub(crate) fn encode(histogram: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(histogram, &mut bytes).map_err(|e| e.to_string())?;
    Ok(STANDARD.encode(bytes))
}

/// The histogram in `text` (base64 of any V2 encoding, compressed or not).
pub(crate) fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut Cursor::new(bytes))
        .map_err(|e| format!("not an HdrHistogram V2 encoding: {e}"))
}

/// `#[serde(with = …)]` for a histogram field: written encoded; a report without one (written
/// before histograms were kept) reads back with an empty one.
pub(crate) mod base64_v2 {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(histogram: &Histogram<u64>, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(&super::encode(histogram).map_err(serde::ser::Error::custom)?)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Histogram<u64>, D::Error> {
        super::decode(&String::deserialize(from)?).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = …)]` for an optional histogram field.
pub(crate) mod base64_v2_option {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        histogram: &Option<Histogram<u64>>,
        to: S,
    ) -> Result<S::Ok, S::Error> {
        match histogram {
            Some(histogram) => super::base64_v2::serialize(histogram, to),
            None => to.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        from: D,
    ) -> Result<Option<Histogram<u64>>, D::Error> {
        Option::<String>::deserialize(from)?
            .map(|text| super::decode(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_survives_its_encoding_exactly() {
        let mut histogram = empty();
        for micros in [1, 7, 120, 120, 4_347, 16_255, MAX_US] {
            histogram.record(micros).unwrap_or_else(|e| panic!("{e}"));
        }
        let text = encode(&histogram).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.starts_with("HISTF"), "the compressed V2 cookie: {text}");
        let back = decode(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, histogram);
        assert_eq!(back.len(), 7);
        assert!(decode("not base64!").is_err_and(|e| e.starts_with("not base64")));
        assert!(decode("aGVsbG8=").is_err_and(|e| e.starts_with("not an HdrHistogram")));
    }
}
