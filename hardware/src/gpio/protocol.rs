//! The virtual GPIO board's line protocol (`docs/gpio-sim.md`): one JSON object per line.

use serde::{Deserialize, Serialize};

/// Who a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The door controller: writes outputs, is told about driven inputs.
    Controller,
    /// A test harness or person: drives inputs, watches outputs.
    Observer,
}

/// A line from a client to the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    /// First line of every connection.
    Hello {
        /// The client's role.
        role: Role,
    },
    /// Set an output (controller).
    Write {
        /// BCM pin.
        pin: u8,
        /// 0 or 1.
        level: u8,
    },
    /// Drive an input as if wired (observer).
    Drive {
        /// BCM pin.
        pin: u8,
        /// 0 or 1.
        level: u8,
    },
    /// Ask a pin's level.
    Read {
        /// BCM pin.
        pin: u8,
    },
    /// Receive every edge from now on.
    Subscribe,
}

/// A line from the board to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum BoardMessage {
    /// Answer to `read`.
    Level {
        /// BCM pin.
        pin: u8,
        /// 0 or 1.
        level: u8,
    },
    /// A pin changed.
    Edge {
        /// BCM pin.
        pin: u8,
        /// New level, 0 or 1.
        level: u8,
        /// Microseconds on the board's monotonic clock.
        t_us: u64,
        /// Who changed it.
        by: Role,
    },
    /// A malformed or refused line; the connection stays open.
    Error {
        /// What was wrong.
        message: String,
    },
}

impl BoardMessage {
    /// The message as one line, newline included.
    pub fn to_line(&self) -> String {
        // Serialising these plain enums cannot fail; fall back to a fixed error line anyway.
        let mut line = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"op":"error","message":"internal"}"#.to_owned());
        line.push('\n');
        line
    }
}

impl ClientMessage {
    /// The message as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_spec() {
        let parse = |s: &str| serde_json::from_str::<ClientMessage>(s).unwrap();
        assert_eq!(
            parse(r#"{"op":"hello","role":"controller"}"#),
            ClientMessage::Hello {
                role: Role::Controller
            }
        );
        assert_eq!(
            parse(r#"{"op":"write","pin":17,"level":1}"#),
            ClientMessage::Write { pin: 17, level: 1 }
        );
        assert_eq!(
            parse(r#"{"op":"drive","pin":22,"level":0}"#),
            ClientMessage::Drive { pin: 22, level: 0 }
        );
        assert_eq!(
            parse(r#"{"op":"read","pin":17}"#),
            ClientMessage::Read { pin: 17 }
        );
        assert_eq!(parse(r#"{"op":"subscribe"}"#), ClientMessage::Subscribe);
        let edge = BoardMessage::Edge {
            pin: 17,
            level: 1,
            t_us: 123456,
            by: Role::Controller,
        };
        assert_eq!(
            edge.to_line(),
            "{\"op\":\"edge\",\"pin\":17,\"level\":1,\"t_us\":123456,\"by\":\"controller\"}\n"
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"write","pin":1}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"fly"}"#).is_err());
    }
}
