//! Throughput of the transform on the inputs that matter: plain ASCII (the common case and the
//! fast path), mixed Unicode text, text with invalid bytes, and the ascii encoding. Run with
//! `cargo bench --bench transform`.

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use upcase::transform::{Encoding, Uppercaser};

fn sample(kind: &str, len: usize) -> Vec<u8> {
    let unit: &[u8] = match kind {
        "ascii" => b"the quick brown fox jumps over the lazy dog, 0123456789. ",
        "unicode" => "straße ﬁne ἀθῆναι привет 😀 the lazy dog. ".as_bytes(),
        "invalid" => b"valid text \xFF\xC0\xAF then \xE2\x82 more text ",
        _ => b"",
    };
    unit.iter().copied().cycle().take(len).collect()
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("uppercase");
    let len = 64 * 1024;
    group.throughput(Throughput::Bytes(len as u64));
    let cases = [
        ("ascii", Encoding::Utf8),
        ("unicode", Encoding::Utf8),
        ("invalid", Encoding::Utf8),
        ("ascii", Encoding::Ascii),
    ];
    for (kind, encoding) in cases {
        let input = sample(kind, len);
        let mut out = Vec::with_capacity(3 * len);
        group.bench_with_input(BenchmarkId::new(encoding.name(), kind), &input, |b, input| {
            b.iter(|| {
                out.clear();
                let mut uppercaser = Uppercaser::new(encoding);
                uppercaser.push(black_box(input), &mut out);
                uppercaser.finish(&mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
