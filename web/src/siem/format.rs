//! The two wire formats of a forwarded record: RFC 5424 syslog (framed by
//! octet counting, RFC 6587) and JSON lines.

use crate::store::siem::SiemRecord;

/// The structured-data id of Tobira's fields. 32473 is the private
/// enterprise number reserved for documentation (RFC 5612); a site that has
/// its own number can map the SD-ID in its SIEM.
pub const SD_ID: &str = "tobira@32473";

/// Syslog facility: security/authorization messages (4, `auth`).
const FACILITY: u8 = 4;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 5424 syslog messages, each prefixed by its length (RFC 6587
    /// octet counting; RFC 5425 uses the same framing over TLS).
    Rfc5424,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// Reads `rfc5424` or `jsonl`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "rfc5424" => Some(Format::Rfc5424),
            "jsonl" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The bytes of one record, framing included.
    pub fn frame(self, record: &SiemRecord, origin: &Origin) -> Vec<u8> {
        match self {
            Format::Rfc5424 => {
                let message = rfc5424(record, origin);
                let mut framed = format!("{} ", message.len()).into_bytes();
                framed.extend_from_slice(message.as_bytes());
                framed
            }
            Format::JsonLines => {
                let mut line = json_line(record).into_bytes();
                line.push(b'\n');
                line
            }
        }
    }
}

/// Who sends: the syslog header's HOSTNAME and PROCID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// This machine's name (printable ASCII, `-` if unknown).
    pub hostname: String,
    /// This process's id.
    pub procid: u32,
}

impl Origin {
    /// This machine and process.
    pub fn here() -> Origin {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        Origin {
            hostname: header_field(name.trim(), 255),
            procid: std::process::id(),
        }
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` long,
/// `-` (the nil value) when empty.
fn header_field(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped with a backslash (RFC 5424
/// section 6.3.3).
fn param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 3339 time with milliseconds, in UTC.
fn timestamp(ms: i64) -> String {
    let seconds = crate::store::utc_text(ms);
    // `…T08:00:00Z` → `…T08:00:00.123Z`
    let stem = seconds.trim_end_matches('Z');
    format!("{stem}.{:03}Z", ms.rem_euclid(1000))
}

/// One RFC 5424 message (without framing). The free text is MSG-ANY: line
/// breaks and other control characters are replaced by spaces, so that a
/// receiver splitting on them never sees a forged second message.
pub fn rfc5424(record: &SiemRecord, origin: &Origin) -> String {
    let pri = u16::from(FACILITY)
        .saturating_mul(8)
        .saturating_add(u16::from(record.severity.min(7)));
    let mut sd = format!(
        "[{SD_ID} kind=\"{}\" id=\"{}\"",
        record.kind,
        param_value(&record.id)
    );
    for (name, value) in &record.fields {
        sd.push_str(&format!(" {name}=\"{}\"", param_value(value)));
    }
    sd.push(']');
    let mut line = format!(
        "<{pri}>1 {} {} tobira {} {} {sd}",
        timestamp(record.at),
        origin.hostname,
        origin.procid,
        header_field(record.kind, 32),
    );
    if !record.message.is_empty() {
        line.push(' ');
        line.extend(
            record
                .message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c }),
        );
    }
    line
}

/// One JSON object: kind, id, time (text and ms), fields, message.
pub fn json_line(record: &SiemRecord) -> String {
    let mut object = serde_json::Map::new();
    object.insert("kind".into(), record.kind.into());
    object.insert("id".into(), record.id.clone().into());
    object.insert("time".into(), timestamp(record.at).into());
    object.insert("at_ms".into(), record.at.into());
    object.insert("severity".into(), record.severity.into());
    for (name, value) in &record.fields {
        object.insert((*name).into(), value.clone().into());
    }
    if !record.message.is_empty() {
        object.insert("message".into(), record.message.clone().into());
    }
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm() -> SiemRecord {
        SiemRecord {
            kind: "alarm",
            id: "7".into(),
            at: 1_800_000_000_123,
            fields: vec![
                ("alarm", "door_forced".into()),
                ("door_name", "Room \"B\" [east] \\ west".into()),
            ],
            message: "forced\nopen".into(),
            severity: 4,
        }
    }

    fn origin() -> Origin {
        Origin {
            hostname: "central".into(),
            procid: 42,
        }
    }

    #[test]
    fn a_syslog_message_has_the_rfc5424_header_and_escaped_parameters() {
        let line = rfc5424(&alarm(), &origin());
        assert_eq!(
            line,
            "<36>1 2027-01-15T08:00:00.123Z central tobira 42 alarm \
             [tobira@32473 kind=\"alarm\" id=\"7\" alarm=\"door_forced\" \
             door_name=\"Room \\\"B\\\" [east\\] \\\\ west\"] forced open"
        );
    }

    #[test]
    fn octet_counting_prefixes_the_byte_length() {
        let mut record = alarm();
        record.message = "Tür".into();
        let framed = Format::Rfc5424.frame(&record, &origin());
        let text = String::from_utf8(framed).unwrap();
        let (len, message) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        assert!(message.ends_with("Tür"));
    }

    #[test]
    fn a_json_line_is_one_line_with_every_field() {
        let framed = Format::JsonLines.frame(&alarm(), &origin());
        let text = String::from_utf8(framed).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "alarm");
        assert_eq!(value["id"], "7");
        assert_eq!(value["door_name"], "Room \"B\" [east] \\ west");
        assert_eq!(value["message"], "forced\nopen");
        assert_eq!(value["time"], "2027-01-15T08:00:00.123Z");
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        assert_eq!(header_field("", 10), "-");
        assert_eq!(header_field("a b\tc", 10), "abc");
        assert_eq!(header_field("abcdef", 3), "abc");
    }
}
