//! The CSV row writer: whatever the values (commas, quotes, CR/LF, NUL, formula starts, any
//! Unicode) and whatever the layout (`--fields`, `--raw`, `--no-header`, `--bom`), the csv
//! crate's strict reader gets back one record per row with the header's field count, and every
//! cell as it should be.

#![no_main]

use fetch::output::{Cell, Format};
use fetch_fuzz::{AnyLayout, AnyRow, cell, expected_text, millis, rfc3339, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (AnyLayout, Vec<AnyRow>)| {
    let (layout, rows) = input;
    let layout = layout.layout(Format::Csv);
    let rows: Vec<_> = rows.into_iter().map(AnyRow::into_row).collect();
    let bytes = write(&layout, &rows);

    let body = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => {
            assert!(layout.bom, "a BOM only with --bom");
            rest
        }
        None => {
            assert!(!layout.bom, "--bom writes a BOM");
            &bytes[..]
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(body);
    let mut records = reader.records().map(|r| r.expect("valid CSV"));
    let columns: Vec<_> = layout.columns.iter().collect();
    if layout.header {
        let header = records.next().expect("a header, even without rows");
        assert!(header.iter().eq(layout.columns.names()));
    }
    let mut written = 0;
    for (record, row) in records.by_ref().zip(&rows) {
        written += 1;
        assert_eq!(record.len(), columns.len());
        for (field, &column) in record.iter().zip(&columns) {
            let want = match cell(column, row) {
                Cell::Empty => String::new(),
                Cell::Text(text) => expected_text(text, layout.spreadsheet_safe),
                Cell::Word(word) => word.to_owned(),
                Cell::Count(n) => n.to_string(),
                Cell::Int(n) => n.to_string(),
                Cell::Millis(d) => {
                    let read: f64 = field.parse().expect("a number");
                    // The cell is exact; the float only up to 2^53 µs (285 years): past that
                    // the two may differ in the last bit (found by this target).
                    if d.as_micros() < 1 << 53 {
                        assert_eq!(read, millis(d), "{column:?}");
                    } else {
                        assert!((read - millis(d)).abs() <= millis(d) * 1e-15, "{column:?}");
                    }
                    continue;
                }
                Cell::Flag(b) => b.to_string(),
                Cell::Ip(ip) => ip.to_string(),
                Cell::Time(t) => rfc3339(t),
            };
            assert_eq!(field, want, "{column:?}");
        }
    }
    assert_eq!(written, rows.len(), "one record per row");
    assert!(records.next().is_none(), "nothing after the last row");
});
