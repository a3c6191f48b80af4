//! The API's shapes of the firmware vocabulary: validated scalars (ids, times,
//! names) and mirrors of the firmware enums, so that the OpenAPI document
//! describes exactly what the API accepts and stores.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use tobira_firmware as fw;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::store::{StoreError, StoreResult};

/// The largest id: firmware ids are `u32`.
pub const MAX_ID: i64 = u32::MAX as i64;
/// The latest instant the API accepts: 9999-12-31T23:59:59.999Z, in ms.
pub const MAX_TIME: i64 = 253_402_300_799_999;
/// Longest name (characters).
pub const MAX_NAME: usize = 200;
/// Longest note (characters).
pub const MAX_NOTE: usize = 1000;

fn integer_schema(format: KnownFormat, min: i64, max: i64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

/// A firmware id (person, zone, door, …): 1 to 4294967295.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(i64);

impl Id {
    /// The id, if `v` is in range.
    pub fn new(v: i64) -> Option<Id> {
        (1..=MAX_ID).contains(&v).then_some(Id(v))
    }

    /// The id as stored.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Id::new(v).ok_or_else(|| D::Error::custom(format!("ids run from 1 to {MAX_ID}, not {v}")))
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        integer_schema(KnownFormat::Int64, 1, MAX_ID, "An id, 1 to 4294967295.")
    }
}

impl ToSchema for Id {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Id")
    }
}

/// An instant in milliseconds since the Unix epoch (UTC), from 1970 to the end of 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Millis(i64);

impl Millis {
    /// The instant, if in range.
    pub fn new(v: i64) -> Option<Millis> {
        (0..=MAX_TIME).contains(&v).then_some(Millis(v))
    }

    /// Milliseconds since the epoch.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Millis::new(v)
            .ok_or_else(|| D::Error::custom(format!("times run from 0 to {MAX_TIME} ms, not {v}")))
    }
}

impl utoipa::PartialSchema for Millis {
    fn schema() -> RefOr<Schema> {
        integer_schema(
            KnownFormat::Int64,
            0,
            MAX_TIME,
            "Milliseconds since 1970-01-01T00:00:00Z, up to the end of year 9999.",
        )
    }
}

impl ToSchema for Millis {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Millis")
    }
}

/// Whether a character has no place in a name or note: control characters
/// (C0, DEL, C1), Unicode format characters (bidi overrides and isolates,
/// zero-width characters, the byte-order mark, the soft hyphen, tags…) and
/// the line and paragraph separators. They hide or reorder what an operator
/// reads (`Main\u{202e}llah` shows as `Mainhall` spelt backwards).
fn hidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Why text is not acceptable as a name or note, if it is not: a hidden
/// character (named by its code point), or nothing visible.
fn text_fault(s: &str) -> Option<String> {
    if let Some(c) = s.chars().find(|c| hidden(*c)) {
        return Some(format!(
            "contains U+{:04X}, a control, invisible or bidi-override character",
            u32::from(c)
        ));
    }
    if !s.chars().any(|c| c > ' ' && !hidden(c)) {
        return Some("text must not be blank".into());
    }
    None
}

/// The JSON Schema pattern for names and notes: what [`text_fault`] refuses
/// in the Basic Multilingual Plane (the few format characters above it, the
/// tags and some historic scripts', are refused by the code alone).
pub const TEXT_PATTERN: &str = concat!(
    "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb]*",
    "[^\\u0000-\\u0020\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb]",
    "[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb]*$"
);

fn text_schema(max: usize, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(TEXT_PATTERN))
        .description(Some(description))
        .into()
}

fn checked_text<E: serde::de::Error>(s: String, max: usize) -> Result<String, E> {
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(E::custom(format!("text must be 1 to {max} characters")));
    }
    if let Some(fault) = text_fault(&s) {
        return Err(E::custom(fault));
    }
    Ok(s)
}

/// Checks a name that does not arrive as a [`Name`] (user and token names,
/// given to the store directly): the same rules, the field named in the error.
pub fn check_name(field: &str, s: &str, max: usize) -> StoreResult<()> {
    checked_text::<serde_json::Error>(s.to_owned(), max)
        .map(drop)
        .map_err(|e| StoreError::Invalid(format!("{field}: {e}")))
}

/// A name: 1 to 200 characters, no control characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// The name, if acceptable.
    pub fn new(s: &str) -> Option<Name> {
        checked_text::<serde_json::Error>(s.to_string(), MAX_NAME)
            .ok()
            .map(Name)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(String::deserialize(d)?, MAX_NAME).map(Name)
    }
}

impl utoipa::PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        text_schema(
            MAX_NAME,
            "1 to 200 characters, no control, invisible or bidi-override characters, not blank.",
        )
    }
}

impl ToSchema for Name {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Name")
    }
}

/// A free-text note: 1 to 1000 characters, no control characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Note(String);

impl Note {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Note {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(String::deserialize(d)?, MAX_NOTE).map(Note)
    }
}

impl utoipa::PartialSchema for Note {
    fn schema() -> RefOr<Schema> {
        text_schema(
            MAX_NOTE,
            "1 to 1000 characters, no control, invisible or bidi-override characters, not blank.",
        )
    }
}

impl ToSchema for Note {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Note")
    }
}

/// A security level, 0 (grounds) to 4 (machine room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Level(i64);

impl Level {
    /// The level, if 0 to 4.
    pub fn new(v: i64) -> Option<Level> {
        (0..=4).contains(&v).then_some(Level(v))
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The firmware's level.
    pub fn security(self) -> fw::SecurityLevel {
        let n = u8::try_from(self.0).unwrap_or(4);
        fw::SecurityLevel::try_from(n).unwrap_or(fw::SecurityLevel::L4)
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Level::new(v)
            .ok_or_else(|| D::Error::custom(format!("security levels are 0 to 4, not {v}")))
    }
}

impl utoipa::PartialSchema for Level {
    fn schema() -> RefOr<Schema> {
        integer_schema(
            KnownFormat::Int32,
            0,
            4,
            "Security level: 0 grounds, 1 reception, 2 meeting rooms, 3 offices, 4 machine room.",
        )
    }
}

impl ToSchema for Level {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Level")
    }
}

macro_rules! mirror_enum {
    ($(#[$m:meta])* $name:ident = $fw:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl From<fw::$fw> for $name {
            fn from(v: fw::$fw) -> Self {
                match v { $(fw::$fw::$v => Self::$v,)* }
            }
        }

        impl From<$name> for fw::$fw {
            fn from(v: $name) -> Self {
                match v { $($name::$v => fw::$fw::$v,)* }
            }
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The text stored in the database (the JSON spelling).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> StoreResult<$name> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| StoreError::Corrupt(format!("{} {s:?}", stringify!($name))))
            }
        }
    };
}

mirror_enum! {
    /// Where a card is in its lifecycle. Only `active` cards open anything.
    CardState = CardState {
        /// In use.
        Active = "active",
        /// Temporarily blocked.
        Suspended = "suspended",
        /// Reported lost: stops working at once, everywhere.
        Lost = "lost",
        /// Withdrawn for good.
        Revoked = "revoked",
        /// Past its validity.
        Expired = "expired",
        /// Handed back or destroyed.
        Returned = "returned",
    }
}

mirror_enum! {
    /// What kind of person someone is.
    PersonKind = PersonKind {
        /// City staff.
        Staff = "staff",
        /// Contractors.
        Contractor = "contractor",
        /// Visitors (visitor cards).
        Visitor = "visitor",
        /// Citizens, typically with a room booking.
        Citizen = "citizen",
    }
}

mirror_enum! {
    /// A door with a lock, or a flapper gate.
    DoorKind = DoorKind {
        /// A door with a strike or maglock.
        Door = "door",
        /// A flapper gate.
        FlapperGate = "flapper_gate",
    }
}

mirror_enum! {
    /// A site's or zone's threat level.
    ThreatLevel = ThreatLevel {
        /// Rules as configured.
        Normal = "normal",
        /// Zones decide one level higher.
        Elevated = "elevated",
        /// Zones decide two levels higher.
        High = "high",
        /// Nothing opens but fire egress.
        Lockdown = "lockdown",
    }
}

// Derivable only inside the macro, which serves enums without a default too.
#[allow(clippy::derivable_impls)]
impl Default for ThreatLevel {
    fn default() -> Self {
        Self::Normal
    }
}

mirror_enum! {
    /// What happens when someone already inside presents a card to enter again.
    AntiPassback = AntiPassback {
        /// Not tracked.
        Off = "off",
        /// Allowed, with a warning on the event.
        Soft = "soft",
        /// Denied.
        Hard = "hard",
    }
}

mirror_enum! {
    /// How a zone treats one kind of person.
    KindRule = KindRule {
        /// Admitted on their own grant.
        Alone = "alone",
        /// Admitted only with an escort (or a booking, for citizens up to level 2).
        Escorted = "escorted",
        /// Never admitted.
        Refused = "refused",
    }
}

mirror_enum! {
    /// An access decision's outcome.
    Outcome = Verdict {
        /// The door opened.
        Granted = "granted",
        /// The door stayed shut.
        Denied = "denied",
        /// Waiting for a finger, an escort or a second person.
        Pending = "pending",
    }
}

/// A zone's rule for each person kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindRules {
    /// Rule for staff.
    pub staff: KindRule,
    /// Rule for contractors.
    pub contractor: KindRule,
    /// Rule for visitors.
    pub visitor: KindRule,
    /// Rule for citizens.
    pub citizen: KindRule,
}

/// Per-zone settings. Omitted on create or update, they default from the
/// zone's level. `threat` is changed only through the threat endpoints; on
/// create and update it is ignored and the stored value kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneSettings {
    /// Anti-passback mode.
    pub anti_passback: AntiPassback,
    /// First entry into an empty zone needs two authorised people.
    pub dual_custody: bool,
    /// How long an escort and the escorted may be apart (ms).
    #[schema(minimum = 1000, maximum = 300000)]
    pub escort_window_ms: u32,
    /// How long dual custody waits for the second person (ms).
    #[schema(minimum = 1000, maximum = 300000)]
    pub dual_custody_window_ms: u32,
    /// How long to wait for a finger after the card (ms).
    #[schema(minimum = 1000, maximum = 120000)]
    pub biometric_timeout_ms: u32,
    /// Deny (and alarm) when the controller's policy is older than this (ms); null = never.
    #[schema(minimum = 60000, maximum = 31536000000_i64)]
    pub max_offline_age_ms: Option<u64>,
    /// Who is admitted alone, escorted, or not at all.
    #[serde(deserialize_with = "object")]
    pub kinds: KindRules,
    /// The zone's own threat level (read-only here).
    #[serde(default)]
    pub threat: ThreatLevel,
}

impl ZoneSettings {
    /// The requirements' defaults for a level.
    pub fn for_level(level: Level) -> ZoneSettings {
        fw::ZoneSettings::for_level(level.security()).into()
    }

    /// Checks the ranges the schema states.
    pub fn validate(&self) -> StoreResult<()> {
        let window = |ms: u32, max: u32, what: &str| {
            if (1000..=max).contains(&ms) {
                Ok(())
            } else {
                Err(StoreError::Invalid(format!(
                    "{what} must be 1000 to {max} ms"
                )))
            }
        };
        window(self.escort_window_ms, 300_000, "escort_window_ms")?;
        window(
            self.dual_custody_window_ms,
            300_000,
            "dual_custody_window_ms",
        )?;
        window(self.biometric_timeout_ms, 120_000, "biometric_timeout_ms")?;
        if let Some(age) = self.max_offline_age_ms {
            if !(60_000..=31_536_000_000).contains(&age) {
                return Err(StoreError::Invalid(
                    "max_offline_age_ms must be 60000 to 31536000000 ms".into(),
                ));
            }
        }
        Ok(())
    }

    /// Parses stored settings.
    pub fn from_stored(text: &str) -> StoreResult<ZoneSettings> {
        serde_json::from_str::<fw::ZoneSettings>(text)
            .map(Into::into)
            .map_err(|e| StoreError::Corrupt(format!("zone settings: {e}")))
    }

    /// The text stored in the database: the firmware's JSON.
    pub fn to_stored(self) -> StoreResult<String> {
        serde_json::to_string(&fw::ZoneSettings::from(self))
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

impl From<fw::ZoneSettings> for ZoneSettings {
    fn from(s: fw::ZoneSettings) -> Self {
        Self {
            anti_passback: s.anti_passback.into(),
            dual_custody: s.dual_custody,
            escort_window_ms: s.escort_window_ms,
            dual_custody_window_ms: s.dual_custody_window_ms,
            biometric_timeout_ms: s.biometric_timeout_ms,
            max_offline_age_ms: s.max_offline_age_ms,
            kinds: KindRules {
                staff: s.kinds.staff.into(),
                contractor: s.kinds.contractor.into(),
                visitor: s.kinds.visitor.into(),
                citizen: s.kinds.citizen.into(),
            },
            threat: s.threat.into(),
        }
    }
}

impl From<ZoneSettings> for fw::ZoneSettings {
    fn from(s: ZoneSettings) -> Self {
        Self {
            anti_passback: s.anti_passback.into(),
            dual_custody: s.dual_custody,
            escort_window_ms: s.escort_window_ms,
            dual_custody_window_ms: s.dual_custody_window_ms,
            biometric_timeout_ms: s.biometric_timeout_ms,
            max_offline_age_ms: s.max_offline_age_ms,
            kinds: fw::KindRules {
                staff: s.kinds.staff.into(),
                contractor: s.kinds.contractor.into(),
                visitor: s.kinds.visitor.into(),
                citizen: s.kinds.citizen.into(),
            },
            threat: s.threat.into(),
        }
    }
}

/// One window of a weekly schedule: on these day types, from `start` up to
/// (not including) `end`, in minutes since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Day types as bits: 1 Monday, 2 Tuesday, 4 Wednesday, 8 Thursday,
    /// 16 Friday, 32 Saturday, 64 Sunday, 128 holiday (replaces the weekday
    /// on holidays). 31 = Monday to Friday, 255 = every day.
    #[schema(minimum = 1, maximum = 255)]
    pub days: u8,
    /// First minute inside the window (0–1439).
    #[schema(minimum = 0, maximum = 1439)]
    pub start: u16,
    /// First minute after the window (1–1440, greater than `start`).
    #[schema(minimum = 1, maximum = 1440)]
    pub end: u16,
}

impl TimeWindow {
    /// Checks the window.
    pub fn validate(&self) -> StoreResult<()> {
        if self.days == 0 {
            return Err(StoreError::Invalid(
                "a window needs at least one day".into(),
            ));
        }
        if self.start >= self.end || self.end > 1440 {
            return Err(StoreError::Invalid(format!(
                "window {}–{} must satisfy start < end ≤ 1440",
                self.start, self.end
            )));
        }
        Ok(())
    }
}

impl From<TimeWindow> for fw::TimeWindow {
    fn from(w: TimeWindow) -> Self {
        Self {
            days: fw::DaySet(w.days),
            start: w.start,
            end: w.end,
        }
    }
}

impl From<fw::TimeWindow> for TimeWindow {
    fn from(w: fw::TimeWindow) -> Self {
        Self {
            days: w.days.0,
            start: w.start,
            end: w.end,
        }
    }
}

/// A card reader on one side of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reader {
    /// The biometric module beside the card reader, if any.
    #[serde(default)]
    pub biometric: Option<Id>,
}

impl Reader {
    /// The text stored in the database: the firmware's `ReaderSide` JSON.
    pub fn to_stored(self) -> StoreResult<String> {
        let side = fw::ReaderSide {
            biometric: self
                .biometric
                .and_then(|m| u32::try_from(m.get()).ok())
                .map(fw::ModuleId),
        };
        serde_json::to_string(&side).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Parses stored text.
    pub fn from_stored(text: &str) -> StoreResult<Reader> {
        let side: fw::ReaderSide =
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("reader: {e}")))?;
        Ok(Reader {
            biometric: side.biometric.and_then(|m| Id::new(i64::from(m.0))),
        })
    }
}

/// A card UID in hexadecimal (4, 7, 8 or 10 bytes: MIFARE/ISO 14443 UID or FeliCa IDm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub fw::CardUid);

impl Uid {
    /// Parses plain hexadecimal text of 8, 14, 16 or 20 digits.
    pub fn parse(s: &str) -> Option<Uid> {
        let plain = matches!(s.len(), 8 | 14 | 16 | 20) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !plain {
            return None;
        }
        s.parse().ok().map(Uid)
    }

    /// Hex as a reader or a card label shows it (bytes apart with spaces,
    /// colons or dashes, either case) as the plain upper-case digits stored;
    /// `None` if anything else is in it.
    pub fn digits_as_typed(text: &str) -> Option<String> {
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | ':' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits)
    }

    /// Upper-case hex, as stored.
    pub fn text(&self) -> String {
        self.0.to_string()
    }
}

impl Serialize for Uid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Uid::parse(&s).ok_or_else(|| {
            D::Error::custom(
                "a card UID is 4, 7, 8 or 10 bytes of hexadecimal (8, 14, 16 or 20 digits)",
            )
        })
    }
}

/// The JSON Schema pattern of a UID as the API accepts it.
pub const UID_PATTERN: &str = "^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{14}|[0-9A-Fa-f]{16}|[0-9A-Fa-f]{20})$";

impl utoipa::PartialSchema for Uid {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(UID_PATTERN))
            .description(Some("Card UID in hexadecimal: 4, 7 or 10 byte MIFARE/ISO 14443 UID or 8 byte FeliCa IDm."))
            .examples([serde_json::json!("04A23B1C")])
            .into()
    }
}

impl ToSchema for Uid {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Uid")
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items, in a stable order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next: Option<String>,
}

/// Clamps a requested page size to 1..=500, default 100.
pub fn page_size(limit: Option<i64>) -> StoreResult<i64> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(n) => Err(StoreError::Invalid(format!(
            "limit must be 1 to 500, not {n}"
        ))),
    }
}

/// Parses an id cursor (the last id of the previous page).
pub fn id_cursor(cursor: Option<&str>) -> StoreResult<i64> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|v| (0..=MAX_ID).contains(v))
            .ok_or_else(|| StoreError::Invalid("bad cursor".into())),
    }
}

/// Builds a page from `limit + 1` fetched rows.
pub fn paged<T: ToSchema>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(key) } else { None };
    Page { items: rows, next }
}

/// Checks an optional validity window.
pub fn check_validity(from: Option<Millis>, until: Option<Millis>) -> StoreResult<()> {
    if let (Some(f), Some(u)) = (from, until) {
        if f >= u {
            return Err(StoreError::Invalid(
                "valid_from must be before valid_until".into(),
            ));
        }
    }
    Ok(())
}

/// Reads an optional stored time back as [`Millis`].
pub fn millis(v: Option<i64>) -> Option<Millis> {
    v.and_then(Millis::new)
}

/// Reads a stored id back as [`Id`].
pub fn stored_id(v: i64) -> StoreResult<Id> {
    Id::new(v).ok_or_else(|| StoreError::Corrupt(format!("id {v} out of range")))
}

/// Deserialises `T` from a JSON object only (serde would also take a struct's
/// fields from an array, which the OpenAPI document does not allow). An error
/// names the field it is about (`organisation: contains U+200F, …`).
pub fn from_object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    if !value.is_object() {
        return Err("expected a JSON object".into());
    }
    serde_path_to_error::deserialize(value).map_err(|e| e.to_string())
}

/// `deserialize_with` for a nested object field.
pub fn object<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<T, D::Error> {
    from_object(serde_json::Value::deserialize(d)?).map_err(D::Error::custom)
}

/// `deserialize_with` for a nullable nested object field (use with `#[serde(default)]`).
pub fn option_object<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        v => from_object(v).map(Some).map_err(D::Error::custom),
    }
}

/// `deserialize_with` for a list of nested objects.
pub fn object_list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| from_object(v).map_err(D::Error::custom))
            .collect(),
        _ => Err(D::Error::custom("expected a JSON array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_text_matches_serde() {
        for k in DoorKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
            assert_eq!(DoorKind::parse(k.as_str()).unwrap(), *k);
        }
        for s in CardState::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for o in Outcome::ALL {
            let v: fw::Verdict = (*o).into();
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::json!(o.as_str())
            );
        }
    }

    #[test]
    fn text_rules() {
        assert!(Name::new("会議室 A").is_some());
        assert!(Name::new(" ").is_none());
        assert!(Name::new("a\u{0}b").is_none());
        for invisible in [
            '\u{202a}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{200b}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{00ad}',
            '\u{0085}',
            '\u{061c}',
            '\u{e0001}',
        ] {
            assert!(
                Name::new(&format!("a{invisible}b")).is_none(),
                "{invisible:?}"
            );
        }
        assert!(Name::new(&"x".repeat(201)).is_none());
        assert!(Name::new(&"x".repeat(200)).is_some());
    }

    #[test]
    fn ids_and_times_are_bounded() {
        assert!(serde_json::from_str::<Id>("0").is_err());
        assert!(serde_json::from_str::<Id>("4294967296").is_err());
        assert!(serde_json::from_str::<Id>("4294967295").is_ok());
        assert!(serde_json::from_str::<Millis>("-1").is_err());
        assert!(serde_json::from_str::<Millis>("253402300800000").is_err());
        assert!(serde_json::from_str::<Level>("5").is_err());
    }

    #[test]
    fn settings_round_trip_through_the_firmware_shape() {
        for n in 0..=4 {
            let s = ZoneSettings::for_level(Level::new(n).unwrap());
            s.validate().unwrap();
            assert_eq!(
                ZoneSettings::from_stored(&s.to_stored().unwrap()).unwrap(),
                s
            );
        }
    }
}
