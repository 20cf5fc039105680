//! The rules of change detection: how a row compares with its URL's record, and what the record
//! becomes. Pure functions of the row and the record, run on the writer's thread.
//!
//! - A row that is not an observation of its URL (bad input, a request cut off by a stop, a URL
//!   robots.txt disallows) is neither compared nor recorded.
//! - `status` and `final_url` are compared when a response came and one was stored before;
//!   `error` always (a page that started timing out has changed, and so has one that stopped).
//! - The page's content (`title`, `body`, the `--select`/`--regex` values) is compared and
//!   stored only for a good response (2xx without error, or 304) whose body was read, and only
//!   against content stored before: a failed request or an error page never overwrites the last
//!   good title or digest.
//! - A 304 stands for the 200 whose validators the request carried: its status counts as 200,
//!   and its content is the stored content (carried into the row's cells).
//! - Validators are kept only from a good 200 with its body, and only for its `final_url`.

use std::time::SystemTime;

use crate::extract::ExtractSpec;
use crate::row::{Change, ChangeKind, ErrorKind, Known, Row, Validators};

/// What a run compares and stores of each row's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tracking {
    /// Titles are extracted (no `--no-title`).
    pub title: bool,
    /// The `--select`/`--regex` column names, in column order.
    pub values: Vec<String>,
    /// A fingerprint of the extraction options: stored content is what this run would extract
    /// only when its record carries the same one.
    pub spec: i64,
}

impl Tracking {
    pub fn new(extract: &ExtractSpec) -> Tracking {
        let mut described = format!("title={}\n", extract.title);
        for value in &extract.values {
            described.push_str(&format!("{}\t{}\n", value.name(), value.describe()));
        }
        Tracking {
            title: extract.title,
            values: extract.value_names().map(String::from).collect(),
            spec: fingerprint(&described),
        }
    }
}

/// FNV-1a, 64 bits: the same on every machine and every version, as a stored value must be.
fn fingerprint(text: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A field of a URL's record that can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Status,
    Error,
    FinalUrl,
    Title,
    Body,
    /// The n-th `--select`/`--regex` value.
    Value(usize),
}

impl Field {
    pub fn name(self, tracking: &Tracking) -> &str {
        match self {
            Field::Status => "status",
            Field::Error => "error",
            Field::FinalUrl => "final_url",
            Field::Title => "title",
            Field::Body => "body",
            Field::Value(i) => tracking.values.get(i).map_or("", String::as_str),
        }
    }
}

/// What comparing a row found, kept from before its write to after it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub kind: ChangeKind,
    pub changed: Vec<Field>,
    /// The status the record takes (a 304 stands for 200).
    status: Option<u16>,
    /// The row shows the page's content: a good response whose body was read (or a 304).
    content: bool,
    not_modified: bool,
}

/// A URL's record as it is to be stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub final_url: Option<String>,
    pub title: Option<String>,
    pub body_sha256: Option<String>,
    /// The values by column name, as a JSON object; `None` when there are none.
    pub extracted: Option<String>,
    pub validators: Validators,
    pub last_changed: SystemTime,
    pub spec: i64,
}

/// A row's contribution to the state: its URL's new record and the changes to log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Update {
    pub key: String,
    /// The record's id, for a URL the state knew.
    pub id: Option<i64>,
    pub record: Record,
    /// (field, old value, new value), as text.
    pub changes: Vec<(String, Option<String>, Option<String>)>,
    pub kind: ChangeKind,
    pub failed: bool,
    /// When the row's request started.
    pub at: SystemTime,
}

/// Compares `row` with what the state knew of its URL, fills its change cells (and, for a 304,
/// the content cells from the state), and says what was found. `None` for a row that is not an
/// observation of its URL.
pub(crate) fn judge(row: &mut Row, tracking: &Tracking) -> Option<Verdict> {
    let tracked = row.tracked.as_deref()?;
    // Cut off by a stop, or never requested because robots.txt said no: not an observation.
    if matches!(
        row.error,
        Some(ErrorKind::Cancelled | ErrorKind::Deadline | ErrorKind::Robots)
    ) {
        return None;
    }
    let known = tracked.known.clone();
    let not_modified = row.status == Some(304) && row.error.is_none() && known.is_some();
    if let (true, Some(known)) = (not_modified, &known) {
        carry(row, known, tracking);
    }
    let status = if not_modified { Some(200) } else { row.status };
    let good =
        row.error.is_none() && (not_modified || status.is_some_and(|s| (200..300).contains(&s)));
    let content = good && (not_modified || row.body_sha256.is_some());
    let changed = match &known {
        Some(known) => compare(row, known, tracking, status, content),
        None => Vec::new(),
    };
    let kind = match (&known, changed.is_empty(), not_modified) {
        (None, _, _) => ChangeKind::New,
        (Some(_), false, _) => ChangeKind::Changed,
        (Some(_), true, true) => ChangeKind::NotModified,
        (Some(_), true, false) => ChangeKind::Same,
    };
    let last_changed = match (&known, kind) {
        (Some(known), ChangeKind::Same | ChangeKind::NotModified) => known.last_changed,
        _ => Some(row.started_at.unwrap_or_else(SystemTime::now)),
    };
    let fields: Vec<&str> = changed.iter().map(|f| f.name(tracking)).collect();
    row.change = Some(Box::new(Change {
        kind,
        fields: fields.join(","),
        last_changed,
    }));
    Some(Verdict {
        kind,
        changed,
        status,
        content,
        not_modified,
    })
}

/// A 304's content cells are the stored content it confirms.
fn carry(row: &mut Row, known: &Known, tracking: &Tracking) {
    if tracking.title {
        row.title = known.title.clone().filter(|t| !t.is_empty());
    }
    row.body_sha256.clone_from(&known.body_sha256);
    for (slot, name) in row.values.iter_mut().zip(&tracking.values) {
        *slot = stored_value(known, name).flatten();
    }
}

fn stored_value(known: &Known, name: &str) -> Option<Option<String>> {
    known
        .values
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn compare(
    row: &Row,
    known: &Known,
    tracking: &Tracking,
    status: Option<u16>,
    content: bool,
) -> Vec<Field> {
    let mut changed = Vec::new();
    // A response is compared with the last response stored: the first one is no change (the
    // error that ends, if any, is).
    let responded = row.status.is_some() && known.status.is_some();
    if responded && status != known.status {
        changed.push(Field::Status);
    }
    if row.error.map(ErrorKind::as_str) != known.error.as_deref() {
        changed.push(Field::Error);
    }
    if responded && row.final_url != known.final_url {
        changed.push(Field::FinalUrl);
    }
    // Content is compared only with content stored from a good response before.
    if !content || known.body_sha256.is_none() {
        return changed;
    }
    if tracking.title
        && let Some(old) = &known.title
        && row.title.as_deref().unwrap_or_default() != old
    {
        changed.push(Field::Title);
    }
    if row.body_sha256 != known.body_sha256 {
        changed.push(Field::Body);
    }
    for (i, name) in tracking.values.iter().enumerate() {
        if let Some(old) = stored_value(known, name)
            && row.values.get(i).cloned().flatten() != old
        {
            changed.push(Field::Value(i));
        }
    }
    changed
}

/// What the state records of a written row: its URL's new record, and the changes to log.
/// Takes the row's values rather than copying them.
pub(crate) fn update(mut row: Row, verdict: Verdict, tracking: &Tracking) -> Option<Update> {
    let tracked = *row.tracked.take()?;
    let is_new = tracked.known.is_none();
    let known = tracked.known.unwrap_or_default();
    let at = row.started_at.unwrap_or_else(SystemTime::now);
    let changes = verdict
        .changed
        .iter()
        .map(|&field| {
            let (old, new) = old_and_new(field, &known, &row, &verdict, tracking);
            (field.name(tracking).to_owned(), old, new)
        })
        .collect();
    let record = if verdict.content {
        Record {
            title: if tracking.title {
                Some(row.title.take().unwrap_or_default())
            } else {
                known.title.clone()
            },
            body_sha256: row.body_sha256.take().or(known.body_sha256.clone()),
            extracted: merged_values(&known, &mut row, tracking),
            validators: new_validators(&known, &row, &verdict),
            spec: tracking.spec,
            ..checked(&mut row, &known, &verdict, at)
        }
    } else {
        let moved = row.status.is_some() && row.final_url != known.final_url;
        Record {
            title: known.title.clone(),
            body_sha256: known.body_sha256.clone(),
            extracted: values_json(known.values.clone()),
            // Validators belong to the final URL they came from.
            validators: if moved {
                Validators::default()
            } else {
                known.validators.clone()
            },
            spec: known.spec,
            ..checked(&mut row, &known, &verdict, at)
        }
    };
    Some(Update {
        key: tracked.key,
        id: (!is_new).then_some(known.id),
        record,
        changes,
        kind: verdict.kind,
        failed: row.error.is_some(),
        at,
    })
}

/// The record's fields every observation sets (the content fields as known, to be replaced
/// when the row shows the content): the status and final URL of a response, the error, when it
/// last changed.
fn checked(row: &mut Row, known: &Known, verdict: &Verdict, at: SystemTime) -> Record {
    let responded = row.status.is_some();
    Record {
        status: if responded {
            verdict.status
        } else {
            known.status
        },
        error: row.error.map(|kind| kind.as_str().to_owned()),
        final_url: if responded {
            row.final_url.take()
        } else {
            known.final_url.clone()
        },
        title: None,
        body_sha256: None,
        extracted: None,
        validators: Validators::default(),
        last_changed: row
            .change
            .as_ref()
            .and_then(|c| c.last_changed)
            .unwrap_or(at),
        spec: 0,
    }
}

/// A good 200 brings its own validators (or none); a 304 may refresh the stored ones; any other
/// good response has none worth sending back.
fn new_validators(known: &Known, row: &Row, verdict: &Verdict) -> Validators {
    let sent = row.validators.as_deref().cloned().unwrap_or_default();
    if verdict.not_modified {
        return Validators {
            etag: sent.etag.or(known.validators.etag.clone()),
            last_modified: sent
                .last_modified
                .or(known.validators.last_modified.clone()),
        };
    }
    if row.status == Some(200) {
        sent
    } else {
        Validators::default()
    }
}

/// The stored values, with this run's columns replaced by the row's, as a JSON object.
fn merged_values(known: &Known, row: &mut Row, tracking: &Tracking) -> Option<String> {
    let mut values = known.values.clone();
    for (i, name) in tracking.values.iter().enumerate() {
        let value = row.values.get_mut(i).and_then(Option::take);
        match values.iter_mut().find(|(n, _)| n == name) {
            Some((_, slot)) => *slot = value,
            None => values.push((name.clone(), value)),
        }
    }
    values_json(values)
}

fn values_json(values: Vec<(String, Option<String>)>) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let object: serde_json::Map<String, serde_json::Value> = values
        .into_iter()
        .map(|(name, value)| (name, value.map_or(serde_json::Value::Null, Into::into)))
        .collect();
    Some(serde_json::Value::Object(object).to_string())
}

/// A changed field's old and new values, as text for the `changes` table.
fn old_and_new(
    field: Field,
    known: &Known,
    row: &Row,
    verdict: &Verdict,
    tracking: &Tracking,
) -> (Option<String>, Option<String>) {
    let status = |s: Option<u16>| s.map(|s| s.to_string());
    match field {
        Field::Status => (status(known.status), status(verdict.status)),
        Field::Error => (
            known.error.clone(),
            row.error.map(|e| e.as_str().to_owned()),
        ),
        Field::FinalUrl => (known.final_url.clone(), row.final_url.clone()),
        Field::Title => (
            known.title.clone(),
            Some(row.title.clone().unwrap_or_default()),
        ),
        Field::Body => (known.body_sha256.clone(), row.body_sha256.clone()),
        Field::Value(i) => (
            tracking
                .values
                .get(i)
                .and_then(|name| stored_value(known, name))
                .flatten(),
            row.values.get(i).cloned().flatten(),
        ),
    }
}

/// The values stored as a JSON object, back as (name, value) pairs; what is not an object of
/// strings and nulls reads as no values.
pub(crate) fn parse_values(json: Option<&str>) -> Vec<(String, Option<String>)> {
    let Some(Ok(serde_json::Value::Object(object))) = json.map(serde_json::from_str) else {
        return Vec::new();
    };
    object
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            };
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Tracked;
    use std::time::Duration;

    fn tracking() -> Tracking {
        Tracking {
            title: true,
            values: vec!["price".into()],
            spec: 7,
        }
    }

    fn known() -> Known {
        Known {
            id: 3,
            status: Some(200),
            error: None,
            final_url: Some("http://a.test/".into()),
            title: Some("Shop".into()),
            body_sha256: Some("aa".into()),
            values: vec![("price".into(), Some("10".into()))],
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            last_changed: Some(SystemTime::UNIX_EPOCH),
            spec: 7,
        }
    }

    fn observed(
        status: Option<u16>,
        title: &str,
        body: &str,
        price: &str,
        known: Option<Known>,
    ) -> Row {
        Row {
            status,
            final_url: Some("http://a.test/".into()),
            started_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(100)),
            title: (!title.is_empty()).then(|| title.to_owned()),
            body_sha256: (!body.is_empty()).then(|| body.to_owned()),
            values: vec![(!price.is_empty()).then(|| price.to_owned())],
            tracked: Some(Box::new(Tracked {
                key: "http://a.test/".into(),
                known,
                conditions: None,
            })),
            ..Row::default()
        }
    }

    fn judged(mut row: Row) -> (Row, Verdict) {
        let verdict = judge(&mut row, &tracking()).expect("an observation");
        (row, verdict)
    }

    #[test]
    fn unknown_urls_are_new_and_unchanged_ones_same() {
        let (row, verdict) = judged(observed(Some(200), "Shop", "aa", "10", None));
        assert_eq!(verdict.kind, ChangeKind::New);
        assert_eq!(row.change.unwrap().last_changed, row.started_at);
        let (row, verdict) = judged(observed(Some(200), "Shop", "aa", "10", Some(known())));
        assert_eq!(verdict.kind, ChangeKind::Same);
        let change = row.change.unwrap();
        assert_eq!(change.fields, "");
        assert_eq!(change.last_changed, Some(SystemTime::UNIX_EPOCH));
    }

    #[test]
    fn every_changed_field_is_named_in_column_order() {
        let mut changed = observed(Some(200), "Shop!", "bb", "12", Some(known()));
        changed.final_url = Some("http://a.test/new".into());
        let (row, verdict) = judged(changed);
        assert_eq!(verdict.kind, ChangeKind::Changed);
        assert_eq!(
            row.change.as_ref().unwrap().fields,
            "final_url,title,body,price"
        );
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert_eq!(recorded.id, Some(3));
        assert_eq!(
            recorded.changes[3],
            ("price".into(), Some("10".into()), Some("12".into()))
        );
        assert_eq!(recorded.record.title.as_deref(), Some("Shop!"));
        assert_eq!(
            recorded.record.extracted.as_deref(),
            Some(r#"{"price":"12"}"#)
        );
    }

    #[test]
    fn a_failure_changes_the_error_but_keeps_the_last_good_content() {
        let mut failed = observed(None, "", "", "", Some(known()));
        failed.error = Some(ErrorKind::Timeout);
        failed.final_url = Some("http://elsewhere.test/".into());
        let (row, verdict) = judged(failed);
        assert_eq!(
            verdict.changed,
            [Field::Error],
            "no status, no final_url compared"
        );
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert_eq!(recorded.record.error.as_deref(), Some("timeout"));
        assert_eq!(recorded.record.status, Some(200));
        assert_eq!(recorded.record.title.as_deref(), Some("Shop"));
        assert_eq!(recorded.record.body_sha256.as_deref(), Some("aa"));
        assert_eq!(recorded.record.validators, known().validators);
        assert_eq!(
            recorded.changes,
            [("error".into(), None, Some("timeout".into()))]
        );
    }

    #[test]
    fn an_error_page_changes_the_status_only() {
        let (row, verdict) = judged(observed(Some(404), "Not Found", "ee", "", Some(known())));
        assert_eq!(verdict.changed, [Field::Status]);
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert_eq!(recorded.record.status, Some(404));
        assert_eq!(
            recorded.record.title.as_deref(),
            Some("Shop"),
            "last good title"
        );
        assert_eq!(
            recorded.record.validators,
            known().validators,
            "same final URL"
        );
    }

    #[test]
    fn a_304_carries_the_stored_content_and_counts_as_200() {
        let (row, verdict) = judged(observed(Some(304), "", "", "", Some(known())));
        assert_eq!(verdict.kind, ChangeKind::NotModified);
        assert_eq!(row.title.as_deref(), Some("Shop"));
        assert_eq!(row.body_sha256.as_deref(), Some("aa"));
        assert_eq!(row.values, [Some("10".into())]);
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert_eq!(recorded.record.status, Some(200));
        assert_eq!(recorded.record.validators.etag.as_deref(), Some("\"v1\""));

        let mut after_404 = known();
        after_404.status = Some(404);
        let (_, verdict) = judged(observed(Some(304), "", "", "", Some(after_404)));
        assert_eq!(verdict.kind, ChangeKind::Changed);
        assert_eq!(verdict.changed, [Field::Status]);
    }

    #[test]
    fn content_is_compared_only_with_content_stored_before() {
        let mut no_content = known();
        no_content.body_sha256 = None;
        no_content.title = None;
        no_content.values.clear();
        let (_, verdict) = judged(observed(Some(200), "Shop", "aa", "10", Some(no_content)));
        assert_eq!(verdict.kind, ChangeKind::Same);
        let mut new_column = known();
        new_column.values.clear();
        let (_, verdict) = judged(observed(Some(200), "Shop", "aa", "99", Some(new_column)));
        assert_eq!(
            verdict.kind,
            ChangeKind::Same,
            "a value never stored is no change"
        );
    }

    #[test]
    fn validators_come_from_a_good_200_for_its_final_url() {
        let mut fresh = observed(Some(200), "Shop", "aa", "10", Some(known()));
        fresh.validators = Some(Box::new(Validators {
            etag: Some("W/\"v2\"".into()),
            last_modified: Some("Tue, 01 Dec 2026 00:00:00 GMT".into()),
        }));
        let (row, verdict) = judged(fresh);
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert_eq!(recorded.record.validators.etag.as_deref(), Some("W/\"v2\""));
        let (row, verdict) = judged(observed(Some(200), "Shop", "aa", "10", Some(known())));
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert!(recorded.record.validators.is_empty(), "a 200 without any");
        let mut moved = observed(Some(404), "", "", "", Some(known()));
        moved.final_url = Some("http://a.test/gone".into());
        let (row, verdict) = judged(moved);
        let recorded = update(row, verdict, &tracking()).unwrap();
        assert!(recorded.record.validators.is_empty(), "another final URL");
    }

    #[test]
    fn stopped_and_untracked_rows_are_no_observation() {
        let mut cut = observed(Some(200), "", "", "", Some(known()));
        cut.error = Some(ErrorKind::Deadline);
        assert!(judge(&mut cut, &tracking()).is_none());
        assert!(cut.change.is_none());
        let mut untracked = Row::default();
        assert!(judge(&mut untracked, &tracking()).is_none());
    }

    #[test]
    fn values_round_trip_through_json() {
        let json = values_json(vec![("a".into(), Some("1".into())), ("b".into(), None)]);
        assert_eq!(
            parse_values(json.as_deref()),
            [("a".into(), Some("1".into())), ("b".into(), None)]
        );
        assert!(parse_values(Some("not json")).is_empty());
        assert!(parse_values(None).is_empty());
    }

    #[test]
    fn fingerprints_follow_the_extraction_options() {
        let plain = Tracking::new(&ExtractSpec {
            title: true,
            ..ExtractSpec::default()
        });
        let untitled = Tracking::new(&ExtractSpec::default());
        assert_ne!(plain.spec, untitled.spec);
        assert_eq!(
            plain.spec,
            Tracking::new(&ExtractSpec {
                title: true,
                hash: true,
                ..ExtractSpec::default()
            })
            .spec,
            "the hash is not extraction"
        );
    }
}
