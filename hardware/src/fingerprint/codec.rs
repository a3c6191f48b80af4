//! The EF01 packet codec of R30x / ZFM / AS608 fingerprint modules, shared by the driver and the simulator.
//!
//! A packet on the wire is:
//!
//! ```text
//! EF 01 | address (4, BE) | packet id (1) | length (2, BE) | payload | checksum (2, BE)
//! ```
//!
//! where `length` counts the payload plus the two checksum bytes and the
//! checksum is the 16-bit wrapping sum of the packet id, both length bytes and
//! every payload byte. The same code encodes and decodes on both ends so that
//! the simulator can never drift from what the driver understands.

use std::collections::VecDeque;
use std::fmt;

/// The two header bytes that start every packet.
pub const HEADER: [u8; 2] = [0xEF, 0x01];
/// The broadcast/default module address.
pub const DEFAULT_ADDRESS: u32 = 0xFFFF_FFFF;
/// Largest payload accepted. Modules use data packets of at most 256 bytes;
/// anything larger is a corrupt length field, not a packet.
pub const MAX_PAYLOAD: usize = 256;
/// Header, address, packet id and length: the bytes before the payload.
const PREFIX_LEN: usize = 2 + 4 + 1 + 2;
/// The largest complete packet on the wire.
pub const MAX_PACKET: usize = PREFIX_LEN + MAX_PAYLOAD + 2;
/// How many undecoded bytes the decoder keeps at most; older bytes are dropped
/// so that a babbling line cannot grow memory without bound.
pub const DECODER_CAPACITY: usize = 4 * MAX_PACKET;

/// Errors building a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The payload does not fit the packet format.
    #[error("payload of {0} bytes is longer than the {MAX_PAYLOAD}-byte maximum")]
    PayloadTooLong(usize),
}

/// What a received frame was wrong with. The decoder reports these and then
/// resynchronises; they are never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The checksum bytes do not match the packet contents.
    #[error("bad checksum: computed {computed:#06x}, received {received:#06x}")]
    BadChecksum {
        /// Checksum computed over the received bytes.
        computed: u16,
        /// Checksum carried in the packet.
        received: u16,
    },
    /// The packet id byte is not one of the four known kinds.
    #[error("unknown packet id {0:#04x}")]
    UnknownPacketId(u8),
    /// The length field is smaller than the checksum or larger than allowed.
    #[error("length field {0} out of range")]
    BadLength(u16),
}

/// Errors interpreting a packet's payload as a command or an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload is empty.
    #[error("empty payload")]
    Empty,
    /// The instruction code is not one this crate knows.
    #[error("unknown instruction code {0:#04x}")]
    UnknownInstruction(u8),
    /// The payload is shorter than the instruction needs.
    #[error("instruction {code:#04x} needs {expected} payload bytes, got {got}")]
    WrongLength {
        /// Instruction or confirmation context.
        code: u8,
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
}

/// The packet id byte: what kind of packet this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// 0x01: a command from the host.
    Command,
    /// 0x02: a data packet with more to follow.
    Data,
    /// 0x07: the module's acknowledgement.
    Ack,
    /// 0x08: the last data packet.
    EndData,
}

impl PacketKind {
    /// The byte on the wire.
    pub fn id(self) -> u8 {
        match self {
            PacketKind::Command => 0x01,
            PacketKind::Data => 0x02,
            PacketKind::Ack => 0x07,
            PacketKind::EndData => 0x08,
        }
    }

    /// The kind for a wire byte, if it is one.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0x01 => Some(PacketKind::Command),
            0x02 => Some(PacketKind::Data),
            0x07 => Some(PacketKind::Ack),
            0x08 => Some(PacketKind::EndData),
            _ => None,
        }
    }
}

/// One packet: address, kind and payload (checksum and length are derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Module address the packet is for or from.
    pub address: u32,
    /// Packet kind.
    pub kind: PacketKind,
    /// Payload bytes (instruction code and parameters, or confirmation code and data).
    pub payload: Vec<u8>,
}

/// The checksum over packet id, length bytes and payload.
pub fn checksum(kind_id: u8, length: u16, payload: &[u8]) -> u16 {
    let [hi, lo] = length.to_be_bytes();
    payload.iter().fold(
        u16::from(kind_id)
            .wrapping_add(u16::from(hi))
            .wrapping_add(u16::from(lo)),
        |sum, b| sum.wrapping_add(u16::from(*b)),
    )
}

impl Packet {
    /// A command packet to `address`.
    pub fn command(address: u32, command: &Command) -> Self {
        Packet {
            address,
            kind: PacketKind::Command,
            payload: command.to_payload(),
        }
    }

    /// An acknowledgement packet from `address`.
    pub fn ack(address: u32, ack: &Ack) -> Self {
        let mut payload = Vec::with_capacity(1 + ack.data.len());
        payload.push(ack.code.code());
        payload.extend_from_slice(&ack.data);
        Packet {
            address,
            kind: PacketKind::Ack,
            payload,
        }
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.payload.len() > MAX_PAYLOAD {
            return Err(EncodeError::PayloadTooLong(self.payload.len()));
        }
        // Cannot truncate: MAX_PAYLOAD + 2 fits in u16.
        let length = (self.payload.len() + 2) as u16;
        let mut out = Vec::with_capacity(PREFIX_LEN + self.payload.len() + 2);
        out.extend_from_slice(&HEADER);
        out.extend_from_slice(&self.address.to_be_bytes());
        out.push(self.kind.id());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&checksum(self.kind.id(), length, &self.payload).to_be_bytes());
        Ok(out)
    }
}

/// Incremental decoder: feed it whatever the line delivered, take packets out.
///
/// Garbage before a header is skipped (and counted); a frame with a bad
/// checksum, kind or length is reported as an error and the decoder resumes
/// scanning one byte after the false header, so a real packet that follows is
/// still found.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: VecDeque<u8>,
    discarded: u64,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append received bytes. If the buffer would exceed
    /// [`DECODER_CAPACITY`], the oldest bytes are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes.iter().copied());
        let excess = self.buf.len().saturating_sub(DECODER_CAPACITY);
        if excess > 0 {
            self.buf.drain(..excess);
            self.discarded += excess as u64;
        }
    }

    /// Forget everything buffered (e.g. before a new command, to drop stale replies).
    pub fn clear(&mut self) {
        self.discarded += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Bytes thrown away so far (garbage, overflow, cleared input).
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Packet, FrameError>> {
        self.skip_to_header();
        if self.buf.len() < PREFIX_LEN {
            return None;
        }
        let kind_id = self.buf[6];
        let length = u16::from_be_bytes([self.buf[7], self.buf[8]]);
        let Some(kind) = PacketKind::from_id(kind_id) else {
            self.drop_false_header();
            return Some(Err(FrameError::UnknownPacketId(kind_id)));
        };
        if length < 2 || usize::from(length) > MAX_PAYLOAD + 2 {
            self.drop_false_header();
            return Some(Err(FrameError::BadLength(length)));
        }
        let total = PREFIX_LEN + usize::from(length);
        if self.buf.len() < total {
            return None;
        }
        let payload: Vec<u8> = self.buf.range(PREFIX_LEN..total - 2).copied().collect();
        let received = u16::from_be_bytes([self.buf[total - 2], self.buf[total - 1]]);
        let computed = checksum(kind_id, length, &payload);
        if computed != received {
            self.drop_false_header();
            return Some(Err(FrameError::BadChecksum { computed, received }));
        }
        let address = u32::from_be_bytes([self.buf[2], self.buf[3], self.buf[4], self.buf[5]]);
        self.buf.drain(..total);
        Some(Ok(Packet {
            address,
            kind,
            payload,
        }))
    }

    /// Drops bytes until the buffer starts with `EF 01`, keeping a trailing
    /// `EF` that may be the first half of a header still in flight.
    fn skip_to_header(&mut self) {
        let mut skip = 0;
        while skip < self.buf.len() {
            if self.buf[skip] == HEADER[0] {
                match self.buf.get(skip + 1) {
                    Some(&b) if b == HEADER[1] => break,
                    None => break,
                    Some(_) => {}
                }
            }
            skip += 1;
        }
        if skip > 0 {
            self.buf.drain(..skip);
            self.discarded += skip as u64;
        }
    }

    /// The header at the front was not a real packet: drop its first byte so
    /// the scan resumes inside it.
    fn drop_false_header(&mut self) {
        self.buf.pop_front();
        self.discarded += 1;
    }
}

/// Instructions the host sends (command packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// 0x01: capture a finger image into the image buffer.
    GenImg,
    /// 0x02: turn the image into a character file in `buffer` (1 or 2).
    Img2Tz {
        /// Character buffer (1 or 2).
        buffer: u8,
    },
    /// 0x03: compare character buffers 1 and 2; the ack carries a score.
    Match,
    /// 0x04: 1:N search of the library. Never used for card + biometric.
    Search {
        /// Character buffer to search with.
        buffer: u8,
        /// First page to search.
        start_page: u16,
        /// Number of pages to search.
        count: u16,
    },
    /// 0x05: merge buffers 1 and 2 into a template (in both buffers).
    RegModel,
    /// 0x06: store the template in `buffer` at library `page`.
    Store {
        /// Character buffer to store.
        buffer: u8,
        /// Library slot.
        page: u16,
    },
    /// 0x07: load the template at library `page` into `buffer`.
    LoadChar {
        /// Character buffer to load into.
        buffer: u8,
        /// Library slot.
        page: u16,
    },
    /// 0x0C: delete `count` templates starting at `page`.
    DeleteChar {
        /// First slot.
        page: u16,
        /// Number of slots.
        count: u16,
    },
    /// 0x0D: delete every template.
    Empty,
    /// 0x0F: read the system parameters.
    ReadSysPara,
    /// 0x13: verify the module password.
    VfyPwd {
        /// The 32-bit password.
        password: u32,
    },
    /// 0x1D: number of stored templates.
    TemplateNum,
    /// 0x1F: which slots of one index page (256 slots) hold a template; the
    /// ack carries 32 bytes, bit `i` of byte `j` (least significant first)
    /// standing for slot `page × 256 + j × 8 + i`.
    ReadIndexTable {
        /// Index page (0–3).
        page: u8,
    },
}

impl Command {
    /// The instruction code byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::GenImg => 0x01,
            Command::Img2Tz { .. } => 0x02,
            Command::Match => 0x03,
            Command::Search { .. } => 0x04,
            Command::RegModel => 0x05,
            Command::Store { .. } => 0x06,
            Command::LoadChar { .. } => 0x07,
            Command::DeleteChar { .. } => 0x0C,
            Command::Empty => 0x0D,
            Command::ReadSysPara => 0x0F,
            Command::VfyPwd { .. } => 0x13,
            Command::TemplateNum => 0x1D,
            Command::ReadIndexTable { .. } => 0x1F,
        }
    }

    /// The command packet payload: instruction code and parameters.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut p = vec![self.code()];
        match *self {
            Command::GenImg
            | Command::Match
            | Command::RegModel
            | Command::Empty
            | Command::ReadSysPara
            | Command::TemplateNum => {}
            Command::Img2Tz { buffer } => p.push(buffer),
            Command::ReadIndexTable { page } => p.push(page),
            Command::Search {
                buffer,
                start_page,
                count,
            } => {
                p.push(buffer);
                p.extend_from_slice(&start_page.to_be_bytes());
                p.extend_from_slice(&count.to_be_bytes());
            }
            Command::Store { buffer, page } | Command::LoadChar { buffer, page } => {
                p.push(buffer);
                p.extend_from_slice(&page.to_be_bytes());
            }
            Command::DeleteChar { page, count } => {
                p.extend_from_slice(&page.to_be_bytes());
                p.extend_from_slice(&count.to_be_bytes());
            }
            Command::VfyPwd { password } => p.extend_from_slice(&password.to_be_bytes()),
        }
        p
    }

    /// Parses a command packet payload.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let (&code, args) = payload.split_first().ok_or(PayloadError::Empty)?;
        let need = |expected: usize| -> Result<(), PayloadError> {
            if args.len() == expected {
                Ok(())
            } else {
                Err(PayloadError::WrongLength {
                    code,
                    expected,
                    got: args.len(),
                })
            }
        };
        let u16_at = |i: usize| u16::from_be_bytes([args[i], args[i + 1]]);
        Ok(match code {
            0x01 => need(0).map(|()| Command::GenImg)?,
            0x02 => need(1).map(|()| Command::Img2Tz { buffer: args[0] })?,
            0x03 => need(0).map(|()| Command::Match)?,
            0x04 => need(5).map(|()| Command::Search {
                buffer: args[0],
                start_page: u16_at(1),
                count: u16_at(3),
            })?,
            0x05 => need(0).map(|()| Command::RegModel)?,
            0x06 => need(3).map(|()| Command::Store {
                buffer: args[0],
                page: u16_at(1),
            })?,
            0x07 => need(3).map(|()| Command::LoadChar {
                buffer: args[0],
                page: u16_at(1),
            })?,
            0x0C => need(4).map(|()| Command::DeleteChar {
                page: u16_at(0),
                count: u16_at(2),
            })?,
            0x0D => need(0).map(|()| Command::Empty)?,
            0x0F => need(0).map(|()| Command::ReadSysPara)?,
            0x13 => need(4).map(|()| Command::VfyPwd {
                password: u32::from_be_bytes([args[0], args[1], args[2], args[3]]),
            })?,
            0x1D => need(0).map(|()| Command::TemplateNum)?,
            0x1F => need(1).map(|()| Command::ReadIndexTable { page: args[0] })?,
            other => return Err(PayloadError::UnknownInstruction(other)),
        })
    }
}

/// The confirmation code that starts every acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confirmation {
    /// 0x00: command executed.
    Ok,
    /// 0x01: error receiving the packet.
    PacketReceiveError,
    /// 0x02: no finger on the sensor.
    NoFinger,
    /// 0x03: failed to capture (enroll) the image.
    EnrollImageFailed,
    /// 0x06: image too disorderly to make a character file.
    ImageTooMessy,
    /// 0x07: too few feature points to make a character file.
    TooFewFeaturePoints,
    /// 0x08: the fingers do not match.
    NoMatch,
    /// 0x09: search found no matching template.
    NotFound,
    /// 0x0A: failed to combine the character files.
    MergeFailed,
    /// 0x0B: page number beyond the library.
    PageOutOfRange,
    /// 0x0C: error reading the template, or the template is invalid (empty slot).
    ReadTemplateError,
    /// 0x0D: error uploading the template.
    UploadTemplateError,
    /// 0x0E: the module cannot receive following data packets.
    DataReceiveError,
    /// 0x0F: error uploading the image.
    UploadImageError,
    /// 0x10: failed to delete the template.
    DeleteFailed,
    /// 0x11: failed to clear the library.
    ClearFailed,
    /// 0x13: wrong password.
    WrongPassword,
    /// 0x15: no valid primary image in the buffer.
    NoValidImage,
    /// 0x18: error writing flash.
    FlashError,
    /// 0x19: undefined error.
    UndefinedError,
    /// 0x1A: invalid register number.
    InvalidRegister,
    /// 0x1B: incorrect register configuration.
    BadRegisterConfig,
    /// 0x1C: wrong notepad page number.
    WrongNotepadPage,
    /// 0x1D: failed to operate the communication port.
    PortOperationFailed,
    /// 0x1E: automatic enrollment failed.
    AutoEnrollFailed,
    /// 0x1F: the fingerprint library is full.
    LibraryFull,
    /// 0x20: wrong module address.
    WrongAddress,
    /// 0x21: the password must be verified first.
    MustVerifyPassword,
    /// Any code this crate does not know.
    Unknown(u8),
}

impl Confirmation {
    const TABLE: [(u8, Confirmation); 28] = [
        (0x00, Confirmation::Ok),
        (0x01, Confirmation::PacketReceiveError),
        (0x02, Confirmation::NoFinger),
        (0x03, Confirmation::EnrollImageFailed),
        (0x06, Confirmation::ImageTooMessy),
        (0x07, Confirmation::TooFewFeaturePoints),
        (0x08, Confirmation::NoMatch),
        (0x09, Confirmation::NotFound),
        (0x0A, Confirmation::MergeFailed),
        (0x0B, Confirmation::PageOutOfRange),
        (0x0C, Confirmation::ReadTemplateError),
        (0x0D, Confirmation::UploadTemplateError),
        (0x0E, Confirmation::DataReceiveError),
        (0x0F, Confirmation::UploadImageError),
        (0x10, Confirmation::DeleteFailed),
        (0x11, Confirmation::ClearFailed),
        (0x13, Confirmation::WrongPassword),
        (0x15, Confirmation::NoValidImage),
        (0x18, Confirmation::FlashError),
        (0x19, Confirmation::UndefinedError),
        (0x1A, Confirmation::InvalidRegister),
        (0x1B, Confirmation::BadRegisterConfig),
        (0x1C, Confirmation::WrongNotepadPage),
        (0x1D, Confirmation::PortOperationFailed),
        (0x1E, Confirmation::AutoEnrollFailed),
        (0x1F, Confirmation::LibraryFull),
        (0x20, Confirmation::WrongAddress),
        (0x21, Confirmation::MustVerifyPassword),
    ];

    /// The confirmation for a wire byte.
    pub fn from_code(code: u8) -> Self {
        Self::TABLE
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(Confirmation::Unknown(code), |(_, conf)| *conf)
    }

    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            Confirmation::Unknown(code) => code,
            known => Self::TABLE
                .iter()
                .find(|(_, conf)| *conf == known)
                .map_or(0x19, |(c, _)| *c),
        }
    }
}

impl fmt::Display for Confirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({:#04x})", self.code())
    }
}

/// An acknowledgement: confirmation code and whatever data follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Confirmation code.
    pub code: Confirmation,
    /// Bytes after the confirmation code (score, page, parameters…).
    pub data: Vec<u8>,
}

impl Ack {
    /// An acknowledgement with no data.
    pub fn bare(code: Confirmation) -> Self {
        Ack {
            code,
            data: Vec::new(),
        }
    }

    /// Parses an acknowledgement payload.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let (&code, data) = payload.split_first().ok_or(PayloadError::Empty)?;
        Ok(Ack {
            code: Confirmation::from_code(code),
            data: data.to_vec(),
        })
    }

    /// The first two data bytes as a big-endian number (Match score, template count).
    pub fn u16_at(&self, offset: usize) -> Result<u16, PayloadError> {
        match (self.data.get(offset), self.data.get(offset + 1)) {
            (Some(&hi), Some(&lo)) => Ok(u16::from_be_bytes([hi, lo])),
            _ => Err(PayloadError::WrongLength {
                code: self.code.code(),
                expected: offset + 2,
                got: self.data.len(),
            }),
        }
    }
}

/// The 16 bytes returned by ReadSysPara.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SystemParameters {
    /// Status register.
    pub status: u16,
    /// System identifier code.
    pub system_id: u16,
    /// Library capacity in templates.
    pub library_size: u16,
    /// Security level 1–5.
    pub security_level: u16,
    /// Module address.
    pub address: u32,
    /// Data packet size code: 0=32, 1=64, 2=128, 3=256 bytes.
    pub packet_size_code: u16,
    /// Baud rate multiplier N (baud = 9600 × N).
    pub baud_multiplier: u16,
}

impl SystemParameters {
    /// Parses the ack data of ReadSysPara.
    pub fn parse(data: &[u8]) -> Result<Self, PayloadError> {
        if data.len() < 16 {
            return Err(PayloadError::WrongLength {
                code: 0x0F,
                expected: 16,
                got: data.len(),
            });
        }
        let u16_at = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
        Ok(SystemParameters {
            status: u16_at(0),
            system_id: u16_at(2),
            library_size: u16_at(4),
            security_level: u16_at(6),
            address: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            packet_size_code: u16_at(12),
            baud_multiplier: u16_at(14),
        })
    }

    /// The 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0..2].copy_from_slice(&self.status.to_be_bytes());
        out[2..4].copy_from_slice(&self.system_id.to_be_bytes());
        out[4..6].copy_from_slice(&self.library_size.to_be_bytes());
        out[6..8].copy_from_slice(&self.security_level.to_be_bytes());
        out[8..12].copy_from_slice(&self.address.to_be_bytes());
        out[12..14].copy_from_slice(&self.packet_size_code.to_be_bytes());
        out[14..16].copy_from_slice(&self.baud_multiplier.to_be_bytes());
        out
    }

    /// Baud rate the module is configured for.
    pub fn baud(&self) -> u32 {
        9600 * u32::from(self.baud_multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> Vec<Result<Packet, FrameError>> {
        let mut d = Decoder::new();
        d.feed(bytes);
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn genimg_matches_published_vector() {
        let bytes = Packet::command(DEFAULT_ADDRESS, &Command::GenImg)
            .encode()
            .unwrap();
        assert_eq!(
            bytes,
            [0xEF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x03, 0x01, 0x00, 0x05]
        );
    }

    #[test]
    fn published_command_vectors() {
        // From the R307/AS608 user manuals.
        let cases: [(Command, &[u8]); 5] = [
            (
                Command::Img2Tz { buffer: 1 },
                &[0x01, 0x00, 0x04, 0x02, 0x01, 0x00, 0x08],
            ),
            (Command::Match, &[0x01, 0x00, 0x03, 0x03, 0x00, 0x07]),
            (Command::RegModel, &[0x01, 0x00, 0x03, 0x05, 0x00, 0x09]),
            (Command::TemplateNum, &[0x01, 0x00, 0x03, 0x1D, 0x00, 0x21]),
            (
                Command::VfyPwd { password: 0 },
                &[0x01, 0x00, 0x07, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1B],
            ),
        ];
        for (cmd, tail) in cases {
            let bytes = Packet::command(DEFAULT_ADDRESS, &cmd).encode().unwrap();
            assert_eq!(&bytes[..6], &[0xEF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF]);
            assert_eq!(&bytes[6..], tail, "{cmd:?}");
        }
    }

    #[test]
    fn decodes_ok_ack_vector() {
        // Ack "ok": EF 01 FF FF FF FF 07 00 03 00 00 0A.
        let frames = decode_all(&[
            0xEF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00, 0x03, 0x00, 0x00, 0x0A,
        ]);
        assert_eq!(frames.len(), 1);
        let packet = frames[0].clone().unwrap();
        assert_eq!(packet.kind, PacketKind::Ack);
        assert_eq!(
            Ack::parse(&packet.payload).unwrap(),
            Ack::bare(Confirmation::Ok)
        );
    }

    #[test]
    fn skips_garbage_and_split_feeds() {
        let packet = Packet::ack(
            0x1234_5678,
            &Ack {
                code: Confirmation::Ok,
                data: vec![0x00, 0x64],
            },
        );
        let mut wire = vec![0x00, 0xEF, 0x13, 0xEF];
        wire.extend(packet.encode().unwrap());
        let mut d = Decoder::new();
        for b in &wire {
            assert!(d.next_frame().is_none());
            d.feed(&[*b]);
        }
        assert_eq!(d.next_frame(), Some(Ok(packet)));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.discarded(), 4);
    }

    #[test]
    fn bad_checksum_is_reported_and_next_packet_survives() {
        let good = Packet::command(1, &Command::Match);
        let mut bad = Packet::command(1, &Command::GenImg).encode().unwrap();
        let last = bad.len() - 1;
        bad[last] ^= 0xFF;
        bad.extend(good.encode().unwrap());
        let frames = decode_all(&bad);
        assert!(matches!(frames[0], Err(FrameError::BadChecksum { .. })));
        assert_eq!(frames.last(), Some(&Ok(good)));
    }

    #[test]
    fn bad_length_and_kind_are_errors() {
        let frames = decode_all(&[0xEF, 0x01, 0, 0, 0, 0, 0x09, 0x00, 0x03]);
        assert_eq!(frames, vec![Err(FrameError::UnknownPacketId(0x09))]);
        let frames = decode_all(&[0xEF, 0x01, 0, 0, 0, 0, 0x07, 0xFF, 0xFF]);
        assert_eq!(frames, vec![Err(FrameError::BadLength(0xFFFF))]);
        let frames = decode_all(&[0xEF, 0x01, 0, 0, 0, 0, 0x07, 0x00, 0x01]);
        assert_eq!(frames, vec![Err(FrameError::BadLength(1))]);
    }

    #[test]
    fn oversize_payload_is_refused() {
        let p = Packet {
            address: 0,
            kind: PacketKind::Data,
            payload: vec![0; MAX_PAYLOAD + 1],
        };
        assert_eq!(
            p.encode(),
            Err(EncodeError::PayloadTooLong(MAX_PAYLOAD + 1))
        );
    }

    #[test]
    fn buffer_is_bounded() {
        let mut d = Decoder::new();
        // A header promising a long packet, then endless filler.
        d.feed(&[0xEF, 0x01, 0, 0, 0, 0, 0x02, 0x01, 0x02]);
        for _ in 0..100 {
            d.feed(&[0x55; 64]);
            while d.next_frame().is_some() {}
            assert!(d.buffered() <= DECODER_CAPACITY);
        }
    }

    #[test]
    fn confirmation_codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(Confirmation::from_code(code).code(), code);
        }
        assert_eq!(
            Confirmation::from_code(0x21),
            Confirmation::MustVerifyPassword
        );
        assert_eq!(Confirmation::from_code(0x99), Confirmation::Unknown(0x99));
    }

    #[test]
    fn system_parameters_round_trip() {
        let p = SystemParameters {
            status: 0,
            system_id: 0x0009,
            library_size: 162,
            security_level: 3,
            address: 0xFFFF_FFFF,
            packet_size_code: 2,
            baud_multiplier: 6,
        };
        assert_eq!(SystemParameters::parse(&p.to_bytes()).unwrap(), p);
        assert_eq!(p.baud(), 57600);
        assert!(SystemParameters::parse(&[0; 15]).is_err());
    }

    fn any_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            Just(Command::GenImg),
            any::<u8>().prop_map(|buffer| Command::Img2Tz { buffer }),
            Just(Command::Match),
            (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(buffer, start_page, count)| {
                Command::Search {
                    buffer,
                    start_page,
                    count,
                }
            }),
            Just(Command::RegModel),
            (any::<u8>(), any::<u16>()).prop_map(|(buffer, page)| Command::Store { buffer, page }),
            (any::<u8>(), any::<u16>())
                .prop_map(|(buffer, page)| Command::LoadChar { buffer, page }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(page, count)| Command::DeleteChar { page, count }),
            Just(Command::Empty),
            Just(Command::ReadSysPara),
            any::<u32>().prop_map(|password| Command::VfyPwd { password }),
            Just(Command::TemplateNum),
            any::<u8>().prop_map(|page| Command::ReadIndexTable { page }),
        ]
    }

    fn any_kind() -> impl Strategy<Value = PacketKind> {
        prop_oneof![
            Just(PacketKind::Command),
            Just(PacketKind::Data),
            Just(PacketKind::Ack),
            Just(PacketKind::EndData),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut d = Decoder::new();
            for chunk in &chunks {
                d.feed(chunk);
                while let Some(frame) = d.next_frame() {
                    if let Ok(p) = frame {
                        prop_assert!(p.payload.len() <= MAX_PAYLOAD);
                        let _ = Command::parse(&p.payload);
                        let _ = Ack::parse(&p.payload);
                    }
                }
                prop_assert!(d.buffered() <= DECODER_CAPACITY);
            }
        }

        #[test]
        fn encode_decode_round_trips(
            address in any::<u32>(),
            kind in any_kind(),
            payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD),
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let packet = Packet { address, kind, payload };
            // Garbage first: the decoder must still find the packet after resyncing
            // (garbage may itself contain a valid-looking packet, so look for ours).
            let mut wire = garbage;
            wire.extend(packet.encode().unwrap());
            let frames = decode_all(&wire);
            prop_assert!(frames.contains(&Ok(packet)));
        }

        #[test]
        fn commands_round_trip(cmd in any_command()) {
            prop_assert_eq!(Command::parse(&cmd.to_payload()), Ok(cmd));
        }
    }
}
