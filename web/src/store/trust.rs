//! What an uploading controller may claim: its own doors, people and cards
//! central knows (and the card's own holder), times not ahead of central's
//! clock. An event that claims more is suspect: stored, but not counted.

use std::collections::HashMap;

/// How far ahead of central's clock an event may be dated (ms). Controllers
/// keep time by NTP; beyond this, a wrong clock or a forgery, and such an
/// event would stay someone's "latest passage" until its date.
pub const MAX_CLOCK_AHEAD_MS: i64 = 10 * 60 * 1000;

/// What central knows, looked up once per batch.
#[derive(Debug, Default)]
pub struct Known {
    /// Door id → the controller it is assigned to (None: unassigned).
    pub doors: HashMap<i64, Option<i64>>,
    /// People that exist.
    pub people: HashMap<i64, String>,
    /// Card UID → its holder.
    pub cards: HashMap<String, i64>,
}

/// What one event claims, from its indexed columns.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// When (ms).
    pub at: i64,
    /// The door.
    pub door: Option<i64>,
    /// The person.
    pub person: Option<i64>,
    /// The card.
    pub card: Option<&'a str>,
    /// Whether it was a granted access.
    pub granted: bool,
}

/// Why `claim` from `controller` is not believed, or None.
pub fn suspicion(claim: Claim<'_>, controller: i64, known: &Known, now: i64) -> Option<String> {
    let mut why = Vec::new();
    if let Some(door) = claim.door {
        match known.doors.get(&door) {
            None => why.push(format!("door {door} is unknown here")),
            Some(Some(owner)) if *owner == controller => {}
            Some(Some(owner)) => why.push(format!("door {door} belongs to controller {owner}")),
            Some(None) => why.push(format!("door {door} is assigned to no controller")),
        }
    }
    if let Some(person) = claim.person {
        if !known.people.contains_key(&person) {
            why.push(format!("person {person} is unknown here"));
        }
    }
    if let Some(card) = claim.card {
        match (known.cards.get(card), claim.person) {
            // A controller records an unknown card it refused, without a holder.
            (None, None) if !claim.granted => {}
            (None, _) => why.push(format!("card {card} was never issued here")),
            (Some(holder), Some(person)) if *holder != person => why.push(format!(
                "card {card} belongs to person {holder}, not person {person}"
            )),
            (Some(_), _) => {}
        }
    }
    let ahead = claim.at.saturating_sub(now);
    if ahead > MAX_CLOCK_AHEAD_MS {
        why.push(format!(
            "it is dated {} s in the future of central's clock",
            ahead / 1000
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            doors: HashMap::from([(1, Some(7)), (2, Some(8)), (3, None)]),
            people: HashMap::from([(10, "A".into()), (11, "B".into())]),
            cards: HashMap::from([("AA".into(), 10)]),
        }
    }

    fn claim(door: i64, person: Option<i64>, card: Option<&str>, granted: bool) -> Claim<'_> {
        Claim {
            at: 0,
            door: Some(door),
            person,
            card,
            granted,
        }
    }

    #[test]
    fn genuine_claims_pass_and_each_forgery_is_named() {
        let k = known();
        assert_eq!(
            suspicion(claim(1, Some(10), Some("AA"), true), 7, &k, 0),
            None
        );
        // An unknown card refused, as a controller records it.
        assert_eq!(suspicion(claim(1, None, Some("BB"), false), 7, &k, 0), None);
        for (c, words) in [
            (
                claim(2, Some(10), Some("AA"), true),
                "belongs to controller 8",
            ),
            (
                claim(3, Some(10), Some("AA"), true),
                "assigned to no controller",
            ),
            (claim(4, Some(10), Some("AA"), true), "door 4 is unknown"),
            (claim(1, Some(99), None, true), "person 99 is unknown"),
            (claim(1, Some(11), Some("AA"), true), "belongs to person 10"),
            (claim(1, None, Some("BB"), true), "card BB was never issued"),
        ] {
            let why = suspicion(c, 7, &k, 0).unwrap_or_default();
            assert!(why.contains(words), "{words:?} not in {why:?}");
        }
        let future = Claim {
            at: MAX_CLOCK_AHEAD_MS + 1,
            ..claim(1, Some(10), Some("AA"), true)
        };
        assert!(suspicion(future, 7, &k, 0).is_some());
        assert_eq!(suspicion(future, 7, &k, 1), None);
        let far = Claim {
            at: i64::MAX,
            ..claim(1, Some(10), Some("AA"), true)
        };
        assert!(suspicion(far, 7, &k, i64::MIN).is_some());
    }
}
