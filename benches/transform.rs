//! Throughput of the transform on the inputs that matter: plain ASCII (the common case and the
//! fast path), mixed Unicode text (two samples; `bench-unicode` is the very text that `upcase
//! bench --text unicode` sends), text with invalid bytes, the ascii encoding, and the same kinds
//! of text in windows-1252 and Shift_JIS (the legacy paths, which should cost at most 1.5× the
//! UTF-8 path per byte). Run with `cargo bench --bench transform`.

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use upcase::bench::Text;
use upcase::transform::{encode_text, Encoding, Uppercaser};

fn sample(kind: &str, len: usize, encoding: Encoding) -> Vec<u8> {
    let unit: Vec<u8> = match kind {
        "ascii" => b"the quick brown fox jumps over the lazy dog, 0123456789. ".to_vec(),
        "unicode" => "straße ﬁne ἀθῆναι привет 😀 the lazy dog. ".as_bytes().to_vec(),
        "bench-unicode" => Text::Unicode.source().as_bytes().to_vec(),
        "invalid" => b"valid text \xFF\xC0\xAF then \xE2\x82 more text ".to_vec(),
        "latin" => encode_text("straße, café crème, ÿ and µ: the lazy dog. ", encoding).unwrap_or_default(),
        "japanese" => {
            encode_text("こんにちは、ｆｕｌｌ width and the lazy dog. ", encoding).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    unit.iter().copied().cycle().take(len).collect()
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("uppercase");
    let len = 64 * 1024;
    group.throughput(Throughput::Bytes(len as u64));
    let windows_1252: Encoding = "windows-1252".parse().unwrap_or_default();
    let shift_jis: Encoding = "shift_jis".parse().unwrap_or_default();
    let cases = [
        ("ascii", Encoding::Utf8),
        ("unicode", Encoding::Utf8),
        ("bench-unicode", Encoding::Utf8),
        ("invalid", Encoding::Utf8),
        ("ascii", Encoding::Ascii),
        ("latin", Encoding::Utf8),
        ("latin", windows_1252),
        ("ascii", windows_1252),
        ("japanese", Encoding::Utf8),
        ("japanese", shift_jis),
        ("ascii", shift_jis),
    ];
    for (kind, encoding) in cases {
        let input = sample(kind, len, encoding);
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
