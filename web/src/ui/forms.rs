//! The fields of the resource forms: what each one is, how it is shown with
//! a value, how a submitted form becomes the JSON object the store's input
//! types read (the same types the JSON API reads), and which field an error
//! belongs to.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::i18n::Lang;

/// How a field is entered.
#[derive(Debug, Clone, Copy)]
pub enum Widget {
    /// One line of text, at most this many characters.
    Text(usize),
    /// A whole number in a range.
    Number(i64, i64),
    /// One of fixed values: (value, catalog key of its label).
    Choice(&'static [(&'static str, &'static str)]),
    /// One of fixed numbers (a security level), listed as [`Widget::Choice`]
    /// is and sent to the store as a number.
    NumberChoice(&'static [(&'static str, &'static str)]),
    /// One row of a small named table (`zones`, `sites`, …), by id.
    Ref(&'static str),
    /// Several rows of a small named table.
    Refs(&'static str),
    /// A person, by id (10,000 do not fit a chooser).
    Person,
    /// Yes or no.
    Check,
    /// A date and time in the site's zone, stored as ms.
    When,
    /// A schedule's weekly windows.
    Windows,
}

/// One field of a form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its place in the input JSON; dots nest (`settings.dual_custody`).
    pub name: &'static str,
    /// Catalog key of its label.
    pub label: &'static str,
    /// How it is entered.
    pub widget: Widget,
    /// An empty value is refused here, before the store sees it.
    pub required: bool,
    /// Catalog key of a hint under it, or "".
    pub hint: &'static str,
}

impl Field {
    /// A required field.
    pub const fn required(name: &'static str, label: &'static str, widget: Widget) -> Field {
        Field {
            name,
            label,
            widget,
            required: true,
            hint: "",
        }
    }

    /// An optional field.
    pub const fn optional(name: &'static str, label: &'static str, widget: Widget) -> Field {
        Field {
            name,
            label,
            widget,
            required: false,
            hint: "",
        }
    }

    /// The same field with a hint.
    pub const fn hint(self, hint: &'static str) -> Field {
        Field { hint, ..self }
    }
}

/// Day bits of a schedule window and their catalog keys, Monday first.
pub const DAYS: [(u8, &str); 8] = [
    (1, "day.mon"),
    (2, "day.tue"),
    (4, "day.wed"),
    (8, "day.thu"),
    (16, "day.fri"),
    (32, "day.sat"),
    (64, "day.sun"),
    (128, "day.holiday"),
];

/// Blank window rows a schedule form offers after the existing ones.
const SPARE_WINDOWS: usize = 2;

/// A submitted form: every value of every name, in order.
#[derive(Debug, Clone, Default)]
pub struct Submitted(HashMap<String, Vec<String>>);

impl Submitted {
    /// From the decoded pairs of a form body.
    pub fn new(pairs: Vec<(String, String)>) -> Submitted {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            map.entry(k).or_default().push(v);
        }
        Submitted(map)
    }

    /// The first value of `name`, trimmed; "" when absent.
    pub fn one(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map_or("", |s| s.trim())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether `name` was sent at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Sets every value of `name`.
    pub fn replace(&mut self, name: &str, values: Vec<String>) {
        self.0.insert(name.to_string(), values);
    }
}

/// Why a field was refused: a catalog key, and the store's detail if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name.
    pub field: String,
    /// Catalog key of the message.
    pub key: &'static str,
    /// The detail after it (the store's own words), or "".
    pub detail: String,
}

/// A form the store did not take: errors by field, and ones for the whole form.
#[derive(Debug, Clone, Default)]
pub struct Refusal {
    /// Errors that belong to one field.
    pub fields: Vec<FieldError>,
    /// Errors for the whole form (catalog key, detail).
    pub general: Vec<(&'static str, String)>,
}

impl Refusal {
    /// One error for the whole form.
    pub fn general(key: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            fields: Vec::new(),
            general: vec![(key, detail.into())],
        }
    }

    /// The store's refusal: to the field its message names, if it names one
    /// of `fields`, else to the whole form.
    pub fn from_store(message: &str, fields: &[Field]) -> Refusal {
        let named = fields.iter().find(|f| {
            let leaf = f.name.rsplit('.').next().unwrap_or(f.name);
            message.starts_with(&format!("{leaf}:")) || message.starts_with(&format!("{leaf} "))
        });
        match named {
            Some(f) => Refusal {
                fields: vec![FieldError {
                    field: f.name.to_string(),
                    key: "form.refused",
                    detail: message.to_string(),
                }],
                general: Vec::new(),
            },
            None => Refusal::general("form.refused", message),
        }
    }
}

/// Reads a submitted form into the JSON object of `fields`, then into `T`
/// with the same rules as the JSON API; a refusal names the fields at fault.
pub fn parse<T: DeserializeOwned>(
    form: &Submitted,
    fields: &[Field],
    time_zone: &str,
) -> Result<T, Refusal> {
    parse_shaped(form, fields, time_zone, |_| {})
}

/// [`parse`], with `shape` turning the fields' JSON into the input's shape
/// where the two differ (a door's reader is there or not) before it is read.
pub fn parse_shaped<T: DeserializeOwned>(
    form: &Submitted,
    fields: &[Field],
    time_zone: &str,
    shape: impl FnOnce(&mut Value),
) -> Result<T, Refusal> {
    let mut object = Value::Object(Map::new());
    let mut refusal = Refusal::default();
    for field in fields {
        match field_value(form, field, time_zone) {
            Ok(Some(value)) => insert(&mut object, field.name, value),
            Ok(None) => {}
            Err(key) => refusal.fields.push(FieldError {
                field: field.name.to_string(),
                key,
                detail: String::new(),
            }),
        }
    }
    if !refusal.fields.is_empty() {
        return Err(refusal);
    }
    shape(&mut object);
    serde_path_to_error::deserialize::<_, T>(object).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing field in its message, at the parent's path.
        let field = match inner.split('`').nth(1) {
            Some(missing) if inner.starts_with("missing field") => {
                if path == "." {
                    missing.to_string()
                } else {
                    format!("{path}.{missing}")
                }
            }
            _ => path,
        };
        match fields.iter().find(|f| field.starts_with(f.name)) {
            Some(f) => Refusal {
                fields: vec![FieldError {
                    field: f.name.to_string(),
                    key: if inner.starts_with("missing field") {
                        "form.required"
                    } else {
                        "form.refused"
                    },
                    detail: if inner.starts_with("missing field") {
                        String::new()
                    } else {
                        inner
                    },
                }],
                general: Vec::new(),
            },
            None => Refusal::general("form.refused", format!("{field}: {inner}")),
        }
    })
}

/// Puts `value` at the dotted `name` in `object`.
fn insert(object: &mut Value, name: &str, value: Value) {
    let mut at = object;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = at else {
            return;
        };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        at = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// One field's JSON value; `None` leaves it out; `Err` is a catalog key.
fn field_value(
    form: &Submitted,
    field: &Field,
    time_zone: &str,
) -> Result<Option<Value>, &'static str> {
    let text = form.one(field.name);
    let empty = |field: &Field| {
        if field.required {
            Err("form.required")
        } else {
            Ok(Some(Value::Null))
        }
    };
    match field.widget {
        Widget::Text(_) => {
            if text.is_empty() {
                return empty(field);
            }
            Ok(Some(Value::String(text.to_string())))
        }
        Widget::Number(..) | Widget::Ref(_) | Widget::Person => {
            if text.is_empty() {
                return empty(field);
            }
            text.parse::<i64>()
                .map(|n| Some(Value::from(n)))
                .map_err(|_| "form.not_number")
        }
        Widget::Choice(options) | Widget::NumberChoice(options) => {
            if text.is_empty() {
                return empty(field);
            }
            if !options.iter().any(|(v, _)| *v == text) {
                return Err("form.not_choice");
            }
            match field.widget {
                Widget::NumberChoice(_) => text
                    .parse::<i64>()
                    .map(|n| Some(Value::from(n)))
                    .map_err(|_| "form.not_choice"),
                _ => Ok(Some(Value::String(text.to_string()))),
            }
        }
        Widget::Refs(_) => {
            let mut ids = Vec::new();
            for v in form.all(field.name) {
                ids.push(
                    v.trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| "form.not_number")?,
                );
            }
            if ids.is_empty() && field.required {
                return Err("form.required");
            }
            Ok(Some(Value::Array(ids)))
        }
        Widget::Check => Ok(Some(Value::Bool(form.has(field.name)))),
        Widget::When => {
            if text.is_empty() {
                return empty(field);
            }
            local_ms(text, time_zone)
                .map(|ms| Some(Value::from(ms)))
                .ok_or("form.not_time")
        }
        Widget::Windows => windows(form, field.name).map(|w| Some(Value::Array(w))),
    }
}

/// The window rows of a schedule form; a row left blank is skipped.
fn windows(form: &Submitted, name: &str) -> Result<Vec<Value>, &'static str> {
    let prefix = format!("{name}.");
    let mut rows: Vec<usize> = form
        .0
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix)?.split('.').next()?.parse().ok())
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let mut out = Vec::new();
    for i in rows {
        let row = |part: &str| format!("{name}.{i}.{part}");
        let mut days = 0u32;
        for d in form.all(&row("days")) {
            days |= d.trim().parse::<u32>().map_err(|_| "form.not_number")?;
        }
        let (start, end) = (form.one(&row("start")), form.one(&row("end")));
        if days == 0 && start.is_empty() && end.is_empty() {
            continue;
        }
        let start = minutes(start).ok_or("form.not_time")?;
        let end = match minutes(form.one(&row("end"))).ok_or("form.not_time")? {
            // A window that runs to midnight ends at 24:00.
            0 => 1440,
            m => m,
        };
        out.push(serde_json::json!({"days": days, "start": start, "end": end}));
    }
    Ok(out)
}

/// `HH:MM` as minutes since midnight.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m) = (h.parse::<u32>().ok()?, m.get(..2)?.parse::<u32>().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Minutes since midnight as `HH:MM` (1440 as `00:00`, the next midnight).
fn clock(minutes: u64) -> String {
    let m = minutes % 1440;
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// A `datetime-local` value (`2027-01-15T09:00`) in `time_zone`, as ms.
pub fn local_ms(text: &str, time_zone: &str) -> Option<i64> {
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    let tz = jiff::tz::TimeZone::get(time_zone).ok()?;
    Some(civil.to_zoned(tz).ok()?.timestamp().as_millisecond())
}

/// ms as a `datetime-local` value in `time_zone`.
pub fn local_input(ms: i64, time_zone: &str) -> String {
    let (Ok(at), Ok(tz)) = (
        jiff::Timestamp::from_millisecond(ms),
        jiff::tz::TimeZone::get(time_zone),
    ) else {
        return String::new();
    };
    at.to_zoned(tz).strftime("%Y-%m-%dT%H:%M").to_string()
}

/// The form values of an existing item (its JSON, as the API shows it).
pub fn values_of(item: &Value, fields: &[Field], time_zone: &str) -> Submitted {
    let mut form = Submitted::default();
    for field in fields {
        let mut at = item;
        for part in field.name.split('.') {
            at = at.get(part).unwrap_or(&Value::Null);
        }
        let values: Vec<String> = match (field.widget, at) {
            (_, Value::Null) => Vec::new(),
            (Widget::Check, Value::Bool(true)) => vec!["on".into()],
            (Widget::Check, _) => Vec::new(),
            (Widget::When, Value::Number(n)) => {
                vec![n
                    .as_i64()
                    .map_or(String::new(), |ms| local_input(ms, time_zone))]
            }
            (Widget::Refs(_), Value::Array(ids)) => ids.iter().map(plain).collect(),
            (Widget::Windows, Value::Array(rows)) => {
                for (i, row) in rows.iter().enumerate() {
                    let num = |k: &str| row.get(k).and_then(Value::as_u64).unwrap_or(0);
                    let days = num("days");
                    form.replace(
                        &format!("{}.{i}.days", field.name),
                        DAYS.iter()
                            .filter(|(bit, _)| days & u64::from(*bit) != 0)
                            .map(|(bit, _)| bit.to_string())
                            .collect(),
                    );
                    form.replace(
                        &format!("{}.{i}.start", field.name),
                        vec![clock(num("start"))],
                    );
                    form.replace(&format!("{}.{i}.end", field.name), vec![clock(num("end"))]);
                }
                Vec::new()
            }
            (_, v) => vec![plain(v)],
        };
        if !matches!(field.widget, Widget::Windows) {
            form.replace(field.name, values);
        }
    }
    form
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A choice as a page shows it.
#[derive(Debug, Clone)]
pub struct OptionView {
    /// The submitted value.
    pub value: String,
    /// What the user reads.
    pub label: String,
    /// Chosen now.
    pub selected: bool,
}

/// One day box of a window row.
#[derive(Debug, Clone)]
pub struct DayView {
    /// The day's bit.
    pub bit: u8,
    /// Its name.
    pub label: &'static str,
    /// Ticked.
    pub checked: bool,
}

/// One window row of a schedule form.
#[derive(Debug, Clone)]
pub struct WindowView {
    /// Its index in the names.
    pub index: usize,
    /// The day boxes.
    pub days: Vec<DayView>,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`.
    pub end: String,
}

/// A field as the form template draws it.
#[derive(Debug, Clone)]
pub struct FieldView {
    /// The input's name.
    pub name: &'static str,
    /// The input's id (for its label).
    pub id: String,
    /// Its label.
    pub label: &'static str,
    /// `text`, `number`, `select`, `multi`, `check`, `when`, `windows`.
    pub widget: &'static str,
    /// The value shown.
    pub value: String,
    /// Ticked (checkboxes).
    pub checked: bool,
    /// Choices (selects).
    pub options: Vec<OptionView>,
    /// Window rows (schedules).
    pub windows: Vec<WindowView>,
    /// Limits for numbers, or the longest text (as text; "" = none).
    pub min: String,
    /// Upper limit.
    pub max: String,
    /// Required.
    pub required: bool,
    /// The hint under it, or "".
    pub hint: &'static str,
    /// The error next to it, or "".
    pub error: String,
}

/// The names of the small tables a form's choosers need, by table.
pub type Choosers = HashMap<&'static str, Vec<(i64, String)>>;

/// The tables `fields` choose from.
pub fn chooser_tables(fields: &[Field]) -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = fields
        .iter()
        .filter_map(|f| match f.widget {
            Widget::Ref(t) | Widget::Refs(t) => Some(t),
            _ => None,
        })
        .collect();
    tables.sort_unstable();
    tables.dedup();
    tables
}

/// The fields of a form as drawn, with `values`, the names of the choosers
/// and the errors of `refusal`.
pub fn views(
    fields: &[Field],
    values: &Submitted,
    choosers: &Choosers,
    refusal: &Refusal,
    lang: Lang,
) -> Vec<FieldView> {
    fields
        .iter()
        .map(|f| {
            let value = values.one(f.name).to_string();
            let chosen = values.all(f.name);
            let error = refusal
                .fields
                .iter()
                .filter(|e| e.field == f.name)
                .map(|e| format!("{} {}", lang.t(e.key), e.detail).trim().to_string())
                .collect::<Vec<_>>()
                .join(" ");
            let mut view = FieldView {
                name: f.name,
                id: format!("f-{}", f.name.replace('.', "-")),
                label: lang.t(f.label),
                widget: "text",
                value,
                checked: false,
                options: Vec::new(),
                windows: Vec::new(),
                min: String::new(),
                max: String::new(),
                required: f.required,
                hint: if f.hint.is_empty() {
                    ""
                } else {
                    lang.t(f.hint)
                },
                error,
            };
            match f.widget {
                Widget::Text(max) => view.max = max.to_string(),
                Widget::Number(min, max) => {
                    view.widget = "number";
                    view.min = min.to_string();
                    view.max = max.to_string();
                }
                Widget::Person => {
                    view.widget = "number";
                    view.min = "1".into();
                }
                Widget::Choice(options) | Widget::NumberChoice(options) => {
                    view.widget = "select";
                    view.options = options
                        .iter()
                        .map(|(v, key)| OptionView {
                            value: (*v).to_string(),
                            label: lang.t(key).to_string(),
                            selected: view.value == *v,
                        })
                        .collect();
                }
                Widget::Ref(table) | Widget::Refs(table) => {
                    view.widget = if matches!(f.widget, Widget::Refs(_)) {
                        "multi"
                    } else {
                        "select"
                    };
                    view.options = choosers
                        .get(table)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|(id, name)| OptionView {
                            value: id.to_string(),
                            label: format!("{name} (#{id})"),
                            selected: chosen.iter().any(|c| c.trim() == id.to_string()),
                        })
                        .collect();
                }
                Widget::Check => {
                    view.widget = "check";
                    view.checked = values.has(f.name);
                }
                Widget::When => view.widget = "when",
                Widget::Windows => {
                    view.widget = "windows";
                    let mut rows = Vec::new();
                    let mut i = 0;
                    while values.has(&format!("{}.{i}.start", f.name)) {
                        rows.push(window_view(values, f.name, i, lang));
                        i += 1;
                    }
                    for _ in 0..SPARE_WINDOWS {
                        rows.push(window_view(values, f.name, i, lang));
                        i += 1;
                    }
                    view.windows = rows;
                }
            }
            view
        })
        .collect()
}

fn window_view(values: &Submitted, name: &str, i: usize, lang: Lang) -> WindowView {
    let days = values.all(&format!("{name}.{i}.days"));
    WindowView {
        index: i,
        days: DAYS
            .iter()
            .map(|(bit, key)| DayView {
                bit: *bit,
                label: lang.t(key),
                checked: days.iter().any(|d| d.trim() == bit.to_string()),
            })
            .collect(),
        start: values.one(&format!("{name}.{i}.start")).to_string(),
        end: values.one(&format!("{name}.{i}.end")).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        level: i64,
        nested: Nested,
        at: Option<i64>,
        windows: Vec<Value>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        on: bool,
    }

    const FIELDS: &[Field] = &[
        Field::required("name", "field.name", Widget::Text(200)),
        Field::required("level", "field.level", Widget::Number(0, 4)),
        Field::optional("nested.on", "field.name", Widget::Check),
        Field::optional("at", "field.valid_from", Widget::When),
        Field::optional("windows", "field.windows", Widget::Windows),
    ];

    fn form(pairs: &[(&str, &str)]) -> Submitted {
        Submitted::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_form_becomes_the_inputs_json_with_nesting_times_and_windows() {
        let s: Sample = parse(
            &form(&[
                ("name", " 会議室A "),
                ("level", "2"),
                ("nested.on", "on"),
                ("at", "2027-01-15T17:00"),
                ("windows.0.days", "1"),
                ("windows.0.days", "16"),
                ("windows.0.start", "08:30"),
                ("windows.0.end", "00:00"),
                ("windows.1.start", ""),
                ("windows.1.end", ""),
            ]),
            FIELDS,
            "Asia/Tokyo",
        )
        .unwrap();
        assert_eq!(s.name, "会議室A");
        assert_eq!(s.level, 2);
        assert!(s.nested.on);
        assert_eq!(s.at, Some(1_800_000_000_000));
        assert_eq!(
            s.windows,
            vec![serde_json::json!({"days": 17, "start": 510, "end": 1440})]
        );
    }

    #[test]
    fn errors_land_on_their_fields() {
        let r = parse::<Sample>(&form(&[("level", "two")]), FIELDS, "UTC").unwrap_err();
        let keys: Vec<_> = r.fields.iter().map(|e| (e.field.as_str(), e.key)).collect();
        assert_eq!(
            keys,
            vec![("name", "form.required"), ("level", "form.not_number")]
        );
        let r =
            parse::<Sample>(&form(&[("name", "x"), ("level", "x")]), FIELDS, "UTC").unwrap_err();
        assert_eq!(r.fields[0].field, "level");
        let r = parse::<Sample>(
            &form(&[("name", "x"), ("level", "1"), ("at", "tomorrow")]),
            FIELDS,
            "UTC",
        )
        .unwrap_err();
        assert_eq!(r.fields[0].key, "form.not_time");
    }

    #[test]
    fn an_item_shows_in_its_form_as_it_would_be_sent() {
        let item = serde_json::json!({"name": "x", "level": 3, "nested": {"on": true}, "at": 1_800_000_000_000_i64,
            "windows": [{"days": 31, "start": 480, "end": 1440}]});
        let v = values_of(&item, FIELDS, "Asia/Tokyo");
        assert_eq!(v.one("level"), "3");
        assert!(v.has("nested.on"));
        assert_eq!(v.one("at"), "2027-01-15T17:00");
        assert_eq!(v.all("windows.0.days").len(), 5);
        assert_eq!(v.one("windows.0.end"), "00:00");
        let back: Sample = parse(&v, FIELDS, "Asia/Tokyo").unwrap();
        assert_eq!(back.at, Some(1_800_000_000_000));
    }

    #[test]
    fn the_store_names_the_field_when_it_can() {
        let r = Refusal::from_store(
            "escort_window_ms must be 1000 to 300000 ms",
            &[Field::required(
                "settings.escort_window_ms",
                "field.name",
                Widget::Number(0, 1),
            )],
        );
        assert_eq!(r.fields[0].field, "settings.escort_window_ms");
        let r = Refusal::from_store("a zone named x exists", FIELDS);
        assert!(r.fields.is_empty());
        assert_eq!(r.general.len(), 1);
    }
}
