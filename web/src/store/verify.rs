//! Re-checks every hash chain from its rows, page by page: links and their
//! continuity, each event's indexed columns against its body, and that each
//! chain still reaches every signed checkpoint made of it.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;

use serde::Serialize;
use tobira_firmware::{chain_link, SealedEvent};
use tobira_protocol::PolicyKey;

use super::audit::{self, audit_row};
use super::chains::{ChainId, EventChain};
use super::checkpoints::{checkpoint_row, Checkpoint, CHECKPOINT_COLUMNS};
use super::events::derived::derived_columns;
use super::retention::ChainCut;
use super::{Store, StoreResult};

/// Rows (and checkpoints) read per query: memory stays flat however long a chain is.
const PAGE: i64 = 1000;

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Whether every chain checked out.
    pub ok: bool,
    /// Each chain checked: the admin audit log, then every controller's events.
    pub chains: Vec<ChainReport>,
    /// The first problem of each chain that has one.
    pub problems: Vec<Problem>,
}

/// What was found in one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    /// `admin_audit` or `controller:ID`.
    pub chain: String,
    /// Records checked (up to the first problem, if any).
    pub records: i64,
    /// Records retention moved to signed archives (vouched for by their
    /// signed cuts; `tobira central archive verify` checks the files).
    pub archived: i64,
    /// The highest sequence number checked.
    pub head: Option<i64>,
    /// Signed checkpoints checked.
    pub checkpoints: i64,
    /// The newest checkpoint the chain reaches.
    pub reaches_checkpoint: Option<i64>,
    /// Records missing from an event chain that ingest recorded as missing
    /// (a `chain_break` alarm): what the controller never delivered, not tampering.
    pub gaps: Vec<Gap>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// A run of sequence numbers never stored, as ingest recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    /// First missing sequence number.
    pub from: i64,
    /// Last missing sequence number.
    pub to: i64,
}

/// The first bad row of a chain, or its bad checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The chain.
    pub chain: String,
    /// The record concerned.
    pub seq: Option<i64>,
    /// The checkpoint concerned.
    pub checkpoint: Option<i64>,
    /// What is wrong, in words.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.chain)?;
        if let Some(seq) = self.seq {
            write!(f, " record {seq}")?;
        }
        if let Some(id) = self.checkpoint {
            write!(f, " checkpoint {id}")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// What ingest itself recorded as broken in an event chain (its
/// `chain_break` alarms): reported as such, not as tampering in the database.
#[derive(Debug, Default)]
struct RecordedBreaks {
    gaps: Vec<(i64, i64)>,
    unlinked: HashSet<i64>,
    altered: HashSet<i64>,
}

impl RecordedBreaks {
    /// Reads the messages ingest writes (web/src/store/events.rs).
    fn parse(messages: &[String]) -> RecordedBreaks {
        let mut out = RecordedBreaks::default();
        for m in messages {
            let words: Vec<&str> = m.split(' ').collect();
            let num = |i: usize| words.get(i).and_then(|w| w.parse::<i64>().ok());
            if m.ends_with(" are missing") && words.first() == Some(&"events") {
                if let (Some(a), Some(b)) = (num(1), num(3)) {
                    out.gaps.push((a, b));
                }
            } else if m.ends_with("does not follow the previous event's link") {
                out.unlinked.extend(num(1));
            } else if m.ends_with("its content does not match its link") {
                out.altered.extend(num(1));
            } else if words.first() == Some(&"late") {
                // Late gap fills (store::chain): "late event S does not follow
                // event P", "late event 1 does not start the chain" name the
                // row whose prev is off; "late event S is not the event that
                // event F follows" names F, whose prev no longer fits.
                if m.ends_with(" follows") {
                    out.unlinked.extend(num(9));
                } else {
                    out.unlinked.extend(num(2));
                }
            }
        }
        out
    }

    fn covers_gap(&self, from: i64, to: i64) -> bool {
        self.gaps.iter().any(|&(a, b)| a <= from && to <= b)
    }
}

/// One chain's walk: continuity, and the merge with its checkpoints in count order.
struct Walk<'a> {
    store: &'a Store,
    key: &'a PolicyKey,
    name: String,
    recorded: RecordedBreaks,
    /// Event chains may have gaps ingest recorded; the admin chain none.
    gaps_allowed: bool,
    last_seq: i64,
    last_link: String,
    pending: VecDeque<Checkpoint>,
    /// (count, id) of the last checkpoint read; `None` once all are read.
    cursor: Option<(i64, i64)>,
    report: ChainReport,
}

impl<'a> Walk<'a> {
    fn new(store: &'a Store, key: &'a PolicyKey, chain: &ChainId) -> StoreResult<Walk<'a>> {
        let name = chain.name();
        Ok(Walk {
            store,
            key,
            recorded: RecordedBreaks::default(),
            gaps_allowed: matches!(chain, ChainId::Events(_)),
            last_seq: 0,
            last_link: chain.genesis()?,
            pending: VecDeque::new(),
            cursor: Some((-1, 0)),
            report: ChainReport {
                chain: name.clone(),
                records: 0,
                archived: 0,
                head: None,
                checkpoints: 0,
                reaches_checkpoint: None,
                gaps: Vec::new(),
                problem: None,
            },
            name,
        })
    }

    fn failed(&self) -> bool {
        self.report.problem.is_some()
    }

    fn fail(&mut self, seq: Option<i64>, checkpoint: Option<i64>, what: String) {
        if self.report.problem.is_none() {
            self.report.problem = Some(Problem {
                chain: self.name.clone(),
                seq,
                checkpoint,
                what,
            });
        }
    }

    /// The next checkpoint in (count, id) order, read a page at a time.
    async fn peek_checkpoint(&mut self) -> StoreResult<Option<&Checkpoint>> {
        if self.pending.is_empty() {
            if let Some((count, id)) = self.cursor {
                let page = sqlx::query(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE chain = $1 \
                     AND (count > $2 OR (count = $3 AND id > $4)) ORDER BY count, id LIMIT $5"
                ))
                .bind(self.name.clone())
                .bind(count)
                .bind(count)
                .bind(id)
                .bind(PAGE)
                .fetch_all(&self.store.pool)
                .await?;
                for row in &page {
                    self.pending.push_back(checkpoint_row(row)?);
                }
                self.cursor = self.pending.back().map(|c| (c.count, c.id));
            }
        }
        Ok(self.pending.front())
    }

    /// Takes the next checkpoint and checks its signature.
    fn take_checkpoint(&mut self) -> Option<Checkpoint> {
        let cp = self.pending.pop_front()?;
        self.report.checkpoints += 1;
        let signed = cp
            .claim()
            .is_some_and(|claim| self.key.verify_checkpoint(&claim, &cp.signature).is_ok());
        if !signed {
            self.fail(
                None,
                Some(cp.id),
                format!(
                    "the signature of checkpoint {} (record {}) does not verify with the central key: forged or altered",
                    cp.id, cp.count
                ),
            );
            return None;
        }
        Some(cp)
    }

    /// Record `seq` with `prev` and `link`, after its own content checked out.
    async fn step(&mut self, seq: i64, prev: &str, link: &str) -> StoreResult<()> {
        if !self.follows(seq, prev, None) {
            return Ok(());
        }
        if !self.reach_checkpoints(seq, seq, link, None).await? {
            return Ok(());
        }
        self.last_seq = seq;
        self.last_link = link.to_string();
        self.report.records += 1;
        self.report.head = Some(seq);
        Ok(())
    }

    /// A signed retention cut: records `cut.first_seq` to `cut.through_seq`
    /// are in its archive; the stored chain goes on from its link.
    async fn cut(&mut self, cut: &ChainCut) -> StoreResult<()> {
        let signed = cut
            .manifest()
            .is_some_and(|m| self.key.verify_archive(&m, &cut.signature).is_ok());
        if !signed {
            self.fail(
                Some(cut.through_seq),
                None,
                format!(
                    "the signature of cut {} (records {} to {}) does not verify with the central key: forged or altered",
                    cut.id, cut.first_seq, cut.through_seq
                ),
            );
            return Ok(());
        }
        if !self.follows(cut.first_seq, &cut.prev, Some(cut.id)) {
            return Ok(());
        }
        if !self
            .reach_checkpoints(cut.first_seq, cut.through_seq, &cut.link, Some(cut.id))
            .await?
        {
            return Ok(());
        }
        self.last_seq = cut.through_seq;
        self.last_link.clone_from(&cut.link);
        self.report.archived += cut.count;
        self.report.head = Some(cut.through_seq);
        Ok(())
    }

    /// Whether record (or archived run) `seq` follows what came before it:
    /// the next number with the last link, or after a gap ingest recorded.
    fn follows(&mut self, seq: i64, prev: &str, cut: Option<i64>) -> bool {
        let expected = self.last_seq.saturating_add(1);
        let what = |text: &str| match cut {
            Some(id) => format!("cut {id}: {text}"),
            None => text.to_string(),
        };
        if seq < expected {
            // Only a hand-made row can be numbered 0 or below (ingest refuses
            // them), or lie inside a range already cut.
            let text = if self.last_seq == 0 {
                "sequence numbers start at 1: the row was not stored by ingest".to_string()
            } else {
                format!("it lies at or before record {}, where the chain already was: the row was not stored by ingest", self.last_seq)
            };
            self.fail(Some(seq), None, what(&text));
            return false;
        }
        if seq == expected {
            if prev != self.last_link && !self.recorded.unlinked.contains(&seq) {
                let text = if self.last_seq == 0 {
                    "the first record does not start from the genesis link".to_string()
                } else {
                    format!(
                        "does not follow record {}'s link: a record was removed or rewritten",
                        self.last_seq
                    )
                };
                self.fail(Some(seq), None, what(&text));
                return false;
            }
        } else if self.gaps_allowed && self.recorded.covers_gap(expected, seq - 1) {
            self.report.gaps.push(Gap {
                from: expected,
                to: seq - 1,
            });
        } else {
            let unrecorded = if self.gaps_allowed {
                ", and ingest recorded no such gap"
            } else {
                ""
            };
            self.fail(
                Some(seq),
                None,
                what(&format!(
                    "records {expected} to {} are missing{unrecorded}: rows were deleted",
                    seq - 1
                )),
            );
            return false;
        }
        true
    }

    /// Takes every checkpoint up to record `last` (records `first..=last`
    /// just checked, `link` the last one's). A checkpoint below `first` names
    /// a record that is gone; one inside an archived run (`cut`) is vouched
    /// for by the signed cut, made only after the chain verified against it.
    async fn reach_checkpoints(
        &mut self,
        first: i64,
        last: i64,
        link: &str,
        cut: Option<i64>,
    ) -> StoreResult<bool> {
        while let Some(count) = self.peek_checkpoint().await?.map(|c| c.count) {
            if count > last {
                break;
            }
            let Some(cp) = self.take_checkpoint() else {
                return Ok(false);
            };
            if count < last {
                if cut.is_some() && count >= first {
                    self.report.reaches_checkpoint = Some(cp.id);
                    continue;
                }
                self.fail(
                    Some(count),
                    Some(cp.id),
                    format!("record {count}, the head of checkpoint {}, is gone", cp.id),
                );
                return Ok(false);
            }
            if cp.head != link {
                let whose = match cut {
                    Some(id) => format!("the link signed in cut {id}"),
                    None => "its link".to_string(),
                };
                self.fail(
                    Some(last),
                    Some(cp.id),
                    format!(
                        "{whose} is not the head link signed in checkpoint {}: the chain was rewritten",
                        cp.id
                    ),
                );
                return Ok(false);
            }
            self.report.reaches_checkpoint = Some(cp.id);
        }
        Ok(true)
    }

    /// After the last row: every checkpoint left names a record beyond the end.
    async fn finish(mut self) -> StoreResult<ChainReport> {
        if !self.failed() && self.peek_checkpoint().await?.is_some() {
            if let Some(cp) = self.take_checkpoint() {
                let end = if self.last_seq == 0 {
                    "the chain has no records".to_string()
                } else {
                    format!("the chain ends at record {}", self.last_seq)
                };
                self.fail(
                    Some(cp.count),
                    Some(cp.id),
                    format!(
                        "checkpoint {} signed records up to {}, {end}: the newest records were removed",
                        cp.id, cp.count
                    ),
                );
            }
        }
        Ok(self.report)
    }
}

/// The columns of a stored event row, as the verifier compares them.
fn column_mismatch(row: &sqlx::any::AnyRow, e: &SealedEvent) -> StoreResult<Option<String>> {
    use sqlx::Row;
    let d = match derived_columns(e) {
        Ok(d) => d,
        Err(err) => return Ok(Some(format!("its body cannot be stored: {err}"))),
    };
    fn show<T: fmt::Display>(v: &Option<T>) -> String {
        v.as_ref().map_or_else(|| "empty".to_string(), T::to_string)
    }
    let mut checks: Vec<(&str, String, String)> = vec![
        (
            "seq",
            row.try_get::<i64, _>("seq")?.to_string(),
            d.seq.to_string(),
        ),
        (
            "at",
            row.try_get::<i64, _>("at")?.to_string(),
            d.at.to_string(),
        ),
        ("kind", row.try_get::<String, _>("kind")?, d.kind.clone()),
        (
            "door_id",
            show(&row.try_get::<Option<i64>, _>("door_id")?),
            show(&d.door),
        ),
        (
            "side",
            show(&row.try_get::<Option<String>, _>("side")?),
            show(&d.side),
        ),
        (
            "level",
            show(&row.try_get::<Option<i64>, _>("level")?),
            show(&d.level),
        ),
        (
            "reason",
            show(&row.try_get::<Option<String>, _>("reason")?),
            show(&d.reason),
        ),
        (
            "outcome",
            show(&row.try_get::<Option<String>, _>("outcome")?),
            show(&d.outcome),
        ),
        (
            "person_id",
            show(&row.try_get::<Option<i64>, _>("person_id")?),
            show(&d.person),
        ),
        (
            "card",
            show(&row.try_get::<Option<String>, _>("card")?),
            show(&d.card),
        ),
        (
            "escort_id",
            show(&row.try_get::<Option<i64>, _>("escort_id")?),
            show(&d.escort),
        ),
        ("prev", row.try_get::<String, _>("prev")?, d.prev.clone()),
        ("link", row.try_get::<String, _>("link")?, d.link.clone()),
    ];
    // A door's zone is the door's configuration at ingest; only a zone the
    // body names itself (a fire alarm) can be checked against it.
    if d.door.is_none() {
        checks.push((
            "zone_id",
            show(&row.try_get::<Option<i64>, _>("zone_id")?),
            show(&d.zone_in_body),
        ));
    }
    Ok(checks
        .into_iter()
        .find(|(_, stored, derived)| stored != derived)
        .map(|(column, stored, derived)| {
            format!("{column} is {stored}, but its body says {derived}")
        }))
}

impl Store {
    /// Verifies every chain: the admin audit log, every controller's stored
    /// events, and every chain a checkpoint names. `key` is central's public key.
    pub async fn verify_chains(&self, key: &PolicyKey) -> StoreResult<Verification> {
        let mut chains: BTreeSet<ChainId> = self.chains_with_records().await?.into_iter().collect();
        let mut problems = Vec::new();
        let mut names: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE c(name) AS (\
               SELECT MIN(chain) FROM checkpoints \
               UNION ALL \
               SELECT (SELECT MIN(chain) FROM checkpoints WHERE chain > c.name) FROM c WHERE c.name IS NOT NULL\
             ) SELECT name FROM c WHERE name IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        names.extend(self.chains_with_cuts().await?);
        for name in names {
            match ChainId::parse(&name) {
                Some(chain) => {
                    chains.insert(chain);
                }
                None => problems.push(Problem {
                    chain: name,
                    seq: None,
                    checkpoint: None,
                    what: "checkpoints name a chain that does not exist".into(),
                }),
            }
        }
        let mut reports = Vec::with_capacity(chains.len());
        for chain in &chains {
            let report = self.verify_chain(key, chain).await?;
            problems.extend(report.problem.clone());
            reports.push(report);
        }
        Ok(Verification {
            ok: problems.is_empty(),
            chains: reports,
            problems,
        })
    }

    /// Verifies one chain up to its first problem.
    pub async fn verify_chain(&self, key: &PolicyKey, chain: &ChainId) -> StoreResult<ChainReport> {
        let mut walk = Walk::new(self, key, chain)?;
        match chain {
            ChainId::AdminAudit => self.walk_admin_audit(&mut walk).await?,
            ChainId::Events(events) => self.walk_events(&mut walk, events).await?,
        }
        walk.finish().await
    }

    async fn walk_admin_audit(&self, walk: &mut Walk<'_>) -> StoreResult<()> {
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, detail, prev, link FROM admin_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let e = audit_row(row)?;
                after = e.seq;
                let recomputed = audit::link(
                    &e.prev, e.seq, e.at, &e.actor, &e.action, &e.target, &e.detail,
                );
                if recomputed != e.link {
                    walk.fail(
                        Some(e.seq),
                        None,
                        "its content does not match its link: the entry was altered".into(),
                    );
                    return Ok(());
                }
                walk.step(e.seq, &e.prev, &e.link).await?;
                if walk.failed() {
                    return Ok(());
                }
            }
            if rows.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    async fn walk_events(&self, walk: &mut Walk<'_>, chain: &EventChain) -> StoreResult<()> {
        use sqlx::Row;
        walk.recorded = RecordedBreaks::parse(&chain.recorded_breaks(&self.pool).await?);
        for cut in self.chain_cuts(&ChainId::Events(*chain)).await? {
            walk.cut(&cut).await?;
            if walk.failed() {
                return Ok(());
            }
        }
        // The walk below starts after the cut: a row left (or put back)
        // inside the archived range would go unseen, so look for one.
        let (after_cut, _) = self.cut_point(&ChainId::Events(*chain)).await?;
        let stray: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(seq) FROM events WHERE controller_id = $1 AND epoch = $2 AND seq <= $3",
        )
        .bind(chain.controller)
        .bind(chain.epoch_column()?)
        .bind(after_cut)
        .fetch_one(&self.pool)
        .await?;
        if let Some(seq) = stray {
            walk.fail(
                Some(seq),
                None,
                format!("it lies inside the range retention archived (through record {after_cut}): the row was not stored by ingest"),
            );
            return Ok(());
        }
        let mut after = after_cut;
        loop {
            let rows = chain.rows_after(&self.pool, after, PAGE).await?;
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                after = seq;
                let body: String = row.try_get("body")?;
                let e: SealedEvent = match serde_json::from_str(&body) {
                    Ok(e) => e,
                    Err(_) => {
                        walk.fail(Some(seq), None, "its body is not a sealed event".into());
                        return Ok(());
                    }
                };
                let owner = i64::from(e.event.controller.0);
                let stored_owner: i64 = row.try_get("controller_id")?;
                if owner != stored_owner {
                    walk.fail(
                        Some(seq),
                        None,
                        format!("controller_id is {stored_owner}, but its body says {owner}"),
                    );
                    return Ok(());
                }
                if let Some(what) = column_mismatch(row, &e)? {
                    walk.fail(Some(seq), None, what);
                    return Ok(());
                }
                let sealed = matches!(chain_link(&e.prev, &e.event), Ok(link) if link == e.link);
                if !sealed && !walk.recorded.altered.contains(&seq) {
                    walk.fail(
                        Some(seq),
                        None,
                        "its body does not match its link: the event was altered".into(),
                    );
                    return Ok(());
                }
                walk.step(seq, &e.prev.to_string(), &e.link.to_string())
                    .await?;
                if walk.failed() {
                    return Ok(());
                }
            }
            if rows.len() < PAGE as usize {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingests_break_messages_are_read_back() {
        let r = RecordedBreaks::parse(&[
            "events 3 to 5 are missing".into(),
            "event 9 does not follow the previous event's link".into(),
            "event 12 was altered: its content does not match its link".into(),
            "late event 20 does not follow event 19".into(),
            "late event 1 does not start the chain".into(),
            "late event 30 is not the event that event 31 follows".into(),
            "something else".into(),
        ]);
        assert!(r.covers_gap(3, 5) && r.covers_gap(4, 4));
        assert!(!r.covers_gap(2, 5));
        assert!(r.unlinked.contains(&9));
        assert!(r.altered.contains(&12));
        for seq in [20, 1, 31] {
            assert!(r.unlinked.contains(&seq), "{seq}");
        }
        assert!(!r.unlinked.contains(&30));
    }
}
