//! The JSON Lines row writer: whatever the values, each row is one line holding one JSON object
//! whose keys are the columns, in order, and whose values read back exactly: text as it was
//! (no formula neutralising in JSON), numbers as numbers, empty cells as `null`.

#![no_main]

use fetch::output::{Cell, Format};
use fetch_fuzz::{AnyLayout, AnyRow, cell, millis, rfc3339, write};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: (AnyLayout, Vec<AnyRow>)| {
    let (layout, rows) = input;
    let layout = layout.layout(Format::Jsonl);
    let rows: Vec<_> = rows.into_iter().map(AnyRow::into_row).collect();
    let bytes = write(&layout, &rows);
    let text = std::str::from_utf8(&bytes).expect("JSON Lines are UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rows.len(), "one line per row, no header");
    let names: Vec<&str> = layout.columns.names().collect();
    for ((line, row), seen) in lines.iter().zip(&rows).zip(0..) {
        let pairs: Vec<(String, Value)> = ordered_object(line);
        assert!(
            pairs
                .iter()
                .map(|(k, _)| k.as_str())
                .eq(names.iter().copied()),
            "row {seen}: keys in column order"
        );
        for ((_, value), column) in pairs.iter().zip(layout.columns.iter()) {
            let want = match cell(column, row) {
                Cell::Empty => Value::Null,
                Cell::Text(text) | Cell::Word(text) => Value::from(text),
                Cell::Count(n) => Value::from(n),
                Cell::Int(n) => Value::from(n),
                Cell::Millis(d) => {
                    let read = value.as_f64().expect("a number");
                    assert_eq!(read, millis(d), "{column:?}");
                    continue;
                }
                Cell::Flag(b) => Value::from(b),
                Cell::Ip(ip) => Value::from(ip.to_string()),
                Cell::Time(t) => Value::from(rfc3339(t)),
            };
            assert_eq!(value, &want, "{column:?}");
        }
    }
});

/// The line's object as (key, value) pairs in the order written (serde_json's map sorts keys).
fn ordered_object(line: &str) -> Vec<(String, Value)> {
    struct Pairs(Vec<(String, Value)>);
    impl<'de> serde::Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<M: serde::de::MapAccess<'de>>(
                    self,
                    mut m: M,
                ) -> Result<Pairs, M::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = m.next_entry()? {
                        pairs.push(pair);
                    }
                    Ok(Pairs(pairs))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    let Pairs(pairs) = serde_json::from_str(line).expect("each line is one JSON object");
    pairs
}
