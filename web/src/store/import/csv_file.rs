//! Reading an HR system's CSV export: its encoding, its header of known
//! columns, and its lines as text cells with their line numbers.
//!
//! The file is split into records on its bytes and each cell is decoded on its
//! own: Shift_JIS never uses the bytes of `,`, `"`, CR or LF inside a
//! character, so the split is the same in both encodings, and a cell that
//! does not decode refuses its line only.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{StoreError, StoreResult};

/// The largest file accepted (bytes): the JSON API's body limit.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The most lines accepted after the header.
pub const MAX_LINES: usize = 10_000;

/// How the file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileEncoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    /// Shift_JIS as Windows writes it (windows-31j, Excel's plain "CSV").
    ShiftJis,
}

impl FileEncoding {
    /// Which encoding `bytes` are in, and the bytes after any byte-order mark:
    /// a BOM means UTF-8; else valid UTF-8 is UTF-8; else valid Shift_JIS is
    /// Shift_JIS; anything else is refused.
    pub fn detect(bytes: &[u8]) -> StoreResult<(FileEncoding, &[u8])> {
        if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
            return Ok((FileEncoding::Utf8Bom, rest));
        }
        if std::str::from_utf8(bytes).is_ok() {
            return Ok((FileEncoding::Utf8, bytes));
        }
        if encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_some()
        {
            return Ok((FileEncoding::ShiftJis, bytes));
        }
        Err(StoreError::Invalid(
            "the file is neither UTF-8 nor Shift_JIS: save it from the spreadsheet as \"CSV UTF-8\" or as \"CSV\"".into(),
        ))
    }

    /// One cell's text, if its bytes are valid in this encoding.
    fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Self::Utf8 | Self::Utf8Bom => std::str::from_utf8(bytes).ok().map(str::to_owned),
            Self::ShiftJis => encoding_rs::SHIFT_JIS
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|c| c.into_owned()),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Utf8 | Self::Utf8Bom => "UTF-8",
            Self::ShiftJis => "Shift_JIS",
        }
    }
}

/// A column the import knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The HR system's key for the person (required).
    ExternalId,
    /// The person's name (required).
    Name,
    /// staff, contractor, visitor or citizen (required).
    Kind,
    /// Department or company; an empty cell clears it.
    Organisation,
    /// The UID of a card to issue to the person.
    CardUid,
    /// The card's first valid instant (RFC 3339).
    CardValidFrom,
    /// The card's first invalid instant (RFC 3339).
    CardValidUntil,
}

impl Column {
    /// Every column, in the order the documentation lists them.
    pub const ALL: [Column; 7] = [
        Column::ExternalId,
        Column::Name,
        Column::Kind,
        Column::Organisation,
        Column::CardUid,
        Column::CardValidFrom,
        Column::CardValidUntil,
    ];

    /// The header text that names it.
    pub fn header(self) -> &'static str {
        match self {
            Self::ExternalId => "external_id",
            Self::Name => "name",
            Self::Kind => "kind",
            Self::Organisation => "organisation",
            Self::CardUid => "card_uid",
            Self::CardValidFrom => "card_valid_from",
            Self::CardValidUntil => "card_valid_until",
        }
    }

    fn required(self) -> bool {
        matches!(self, Self::ExternalId | Self::Name | Self::Kind)
    }
}

/// At most this many characters of a text from the file go into a message.
const ECHO: usize = 40;

/// A value from the file as a message shows it: quoted, escaped, shortened.
pub fn echo(s: &str) -> String {
    let short: String = s.chars().take(ECHO).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// The header: which column each position holds.
#[derive(Debug, Clone)]
pub struct Header(Vec<Column>);

impl Header {
    fn parse(record: &csv::ByteRecord, encoding: FileEncoding) -> StoreResult<Header> {
        let mut columns = Vec::with_capacity(record.len());
        for (i, cell) in record.iter().enumerate() {
            let text = encoding.decode(cell).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "header: column {} is not valid {}",
                    i + 1,
                    encoding.label()
                ))
            })?;
            let name = text.trim();
            let column = Column::ALL
                .into_iter()
                .find(|c| c.header().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let known: Vec<&str> = Column::ALL.iter().map(|c| c.header()).collect();
                    StoreError::Invalid(format!(
                        "header: unknown column {} (column {}); the columns are {}",
                        echo(name),
                        i + 1,
                        known.join(", ")
                    ))
                })?;
            if columns.contains(&column) {
                return Err(StoreError::Invalid(format!(
                    "header: column {} appears twice",
                    column.header()
                )));
            }
            columns.push(column);
        }
        if let Some(missing) = Column::ALL
            .into_iter()
            .find(|c| c.required() && !columns.contains(c))
        {
            return Err(StoreError::Invalid(format!(
                "header: the column {} is required (the header names the columns: external_id, name, kind, …)",
                missing.header()
            )));
        }
        Ok(Header(columns))
    }

    /// Whether the file has this column.
    pub fn has(&self, column: Column) -> bool {
        self.0.contains(&column)
    }
}

/// One line of the file after the header.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its line number in the file (the header is line 1).
    pub number: u64,
    /// The trimmed cells in header order, or why the line cannot be read.
    pub cells: Result<Vec<(Column, String)>, String>,
}

impl Line {
    /// The trimmed cell of `column`, if the file has that column.
    pub fn cell(&self, column: Column) -> Option<&str> {
        self.cells.as_ref().ok().and_then(|cells| {
            cells
                .iter()
                .find(|(c, _)| *c == column)
                .map(|(_, v)| v.as_str())
        })
    }
}

/// A read file: its encoding, header and lines.
#[derive(Debug, Clone)]
pub struct CsvFile {
    /// How it was decoded.
    pub encoding: FileEncoding,
    /// Its columns.
    pub header: Header,
    /// Its lines after the header, without those whose cells are all empty.
    pub lines: Vec<Line>,
}

impl CsvFile {
    /// Reads `bytes`; refuses a file too large, in an unknown encoding,
    /// without a header, with an unknown or missing column, or too long.
    pub fn read(bytes: &[u8]) -> StoreResult<CsvFile> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(StoreError::Invalid(format!(
                "the file is {} bytes; at most {MAX_FILE_BYTES} are accepted (split it)",
                bytes.len()
            )));
        }
        let (encoding, body) = FileEncoding::detect(bytes)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body);
        let mut records = reader.byte_records();
        let header = match records.next() {
            Some(record) => Header::parse(&record.map_err(csv_error)?, encoding)?,
            None => {
                return Err(StoreError::Invalid(
                    "the file is empty: it needs a header line naming its columns".into(),
                ))
            }
        };
        let mut lines = Vec::new();
        for record in records {
            let record = record.map_err(csv_error)?;
            if record.iter().all(|c| c.trim_ascii().is_empty()) {
                continue;
            }
            if lines.len() == MAX_LINES {
                return Err(StoreError::Invalid(format!(
                    "the file has more than {MAX_LINES} lines; split it"
                )));
            }
            let number = record.position().map_or(0, |p| p.line());
            lines.push(Line {
                number,
                cells: cells(&record, &header, encoding),
            });
        }
        Ok(CsvFile {
            encoding,
            header,
            lines,
        })
    }
}

fn cells(
    record: &csv::ByteRecord,
    header: &Header,
    encoding: FileEncoding,
) -> Result<Vec<(Column, String)>, String> {
    if record.len() != header.0.len() {
        return Err(format!(
            "the line has {} cells; the header has {}",
            record.len(),
            header.0.len()
        ));
    }
    header
        .0
        .iter()
        .zip(record.iter())
        .map(|(column, bytes)| {
            let text = encoding.decode(bytes).ok_or_else(|| {
                format!(
                    "{}: the cell is not valid {}",
                    column.header(),
                    encoding.label()
                )
            })?;
            Ok((*column, text.trim().to_owned()))
        })
        .collect()
}

fn csv_error(e: csv::Error) -> StoreError {
    StoreError::Invalid(format!("the file is not readable as CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_told_apart() {
        let (e, rest) = FileEncoding::detect(b"\xEF\xBB\xBFname").unwrap();
        assert_eq!((e, rest), (FileEncoding::Utf8Bom, &b"name"[..]));
        assert_eq!(
            FileEncoding::detect("名前".as_bytes()).unwrap().0,
            FileEncoding::Utf8
        );
        let (sjis, _, bad) = encoding_rs::SHIFT_JIS.encode("名前");
        assert!(!bad);
        assert_eq!(
            FileEncoding::detect(&sjis).unwrap().0,
            FileEncoding::ShiftJis
        );
        // 0xFF is in neither (0x80 alone is Shift_JIS for U+0080).
        assert!(FileEncoding::detect(b"a\xFFb").is_err());
        assert_eq!(
            FileEncoding::detect(b"a\x80b").unwrap().0,
            FileEncoding::ShiftJis
        );
    }

    #[test]
    fn cells_are_trimmed_and_counted() {
        let f = CsvFile::read(b"Name,kind,external_id\n Sato ,staff,E1\nx,y\n,,\n").unwrap();
        assert_eq!(f.lines.len(), 2, "the all-empty line is skipped");
        assert_eq!(f.lines[0].number, 2);
        assert_eq!(f.lines[0].cell(Column::Name), Some("Sato"));
        assert!(f.lines[1].cells.as_ref().unwrap_err().contains("2 cells"));
        assert!(!f.header.has(Column::CardUid));
    }

    #[test]
    fn headers_name_what_is_wrong() {
        let e = CsvFile::read(b"name,kind,external_id,salary\n").unwrap_err();
        assert!(e.to_string().contains("\"salary\""), "{e}");
        let e = CsvFile::read(b"name,kind\n").unwrap_err();
        assert!(e.to_string().contains("external_id"), "{e}");
        let e = CsvFile::read(b"name,kind,external_id,name\n").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(CsvFile::read(b"").is_err());
    }
}
