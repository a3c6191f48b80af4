//! Retention of event chains: the oldest prefix of each controller's chain is
//! written to a signed archive file, then deleted with its cut recorded in
//! `chain_cuts`; and the check of such an archive file on its own.
//!
//! An archive file is JSON lines: one line per event row with every column
//! (the body exactly as stored), then one manifest line
//! `{"manifest": {...}, "signature": "<hex>"}`, the [`ArchiveManifest`]
//! central signed. Its `sha256` covers every byte before the manifest line.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use tobira_firmware::{chain_link, SealedEvent};
use tobira_protocol::{ArchiveManifest, PolicyKey, PolicySigner};

use super::chains::{ChainId, EventChain};
use super::database_file::{create_new_private, io_error};
use super::verify::Problem;
use super::{Store, StoreError, StoreResult};

/// Rows read and written per query while archiving.
const PAGE: i64 = 1000;

/// Every column of an event row, in the order of [`ArchivedEvent`].
const ARCHIVE_COLUMNS: &str = "controller_id, epoch, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, escort_id, body, prev, link, received_at, door_name_at_event, person_name_at_event, suspect";

/// One archived event row: every column of `events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ArchivedEvent {
    pub controller_id: i64,
    /// The chain epoch (absent in archives written before epochs: the first).
    #[serde(default)]
    pub epoch: i64,
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub door_id: Option<i64>,
    pub zone_id: Option<i64>,
    pub side: Option<String>,
    pub level: Option<i64>,
    pub reason: Option<String>,
    pub outcome: Option<String>,
    pub person_id: Option<i64>,
    pub card: Option<String>,
    pub escort_id: Option<i64>,
    /// The sealed event, exactly as stored (its link is recomputed from it).
    pub body: String,
    pub prev: String,
    pub link: String,
    pub received_at: i64,
    pub door_name_at_event: Option<String>,
    pub person_name_at_event: Option<String>,
    pub suspect: Option<String>,
}

fn archived_row(row: &sqlx::any::AnyRow) -> StoreResult<ArchivedEvent> {
    Ok(ArchivedEvent {
        controller_id: row.try_get("controller_id")?,
        epoch: row.try_get("epoch")?,
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        door_id: row.try_get("door_id")?,
        zone_id: row.try_get("zone_id")?,
        side: row.try_get("side")?,
        level: row.try_get("level")?,
        reason: row.try_get("reason")?,
        outcome: row.try_get("outcome")?,
        person_id: row.try_get("person_id")?,
        card: row.try_get("card")?,
        escort_id: row.try_get("escort_id")?,
        body: row.try_get("body")?,
        prev: row.try_get("prev")?,
        link: row.try_get("link")?,
        received_at: row.try_get("received_at")?,
        door_name_at_event: row.try_get("door_name_at_event")?,
        person_name_at_event: row.try_get("person_name_at_event")?,
        suspect: row.try_get("suspect")?,
    })
}

/// The last line of an archive file.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestLine {
    manifest: ArchiveManifest,
    signature: String,
}

/// A recorded cut of an event chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainCut {
    /// Ascending id.
    pub id: i64,
    /// The chain: `controller:ID` or `controller:ID@EPOCH`.
    pub chain: String,
    /// The first archived sequence number.
    pub first_seq: i64,
    /// The last archived sequence number; the stored chain goes on after it.
    pub through_seq: i64,
    /// Rows archived.
    pub count: i64,
    /// The link the first archived record follows (hex).
    pub prev: String,
    /// The link of the last archived record (hex).
    pub link: String,
    /// The archive file's name (in the archive directory).
    pub archive: String,
    /// SHA-256 (hex) of the archive's row lines.
    pub sha256: String,
    /// When the cut was made (ms since epoch).
    pub at: i64,
    /// Central's Ed25519 signature (hex) over the archive manifest.
    pub signature: String,
}

impl ChainCut {
    /// The manifest the signature is over; `None` for stored values no
    /// manifest can hold (negative numbers), which no signature covers.
    pub fn manifest(&self) -> Option<ArchiveManifest> {
        Some(ArchiveManifest {
            chain: self.chain.clone(),
            first: u64::try_from(self.first_seq).ok()?,
            last: u64::try_from(self.through_seq).ok()?,
            count: u64::try_from(self.count).ok()?,
            prev: self.prev.clone(),
            link: self.link.clone(),
            sha256: self.sha256.clone(),
            at: self.at,
        })
    }
}

const CUT_COLUMNS: &str =
    "id, chain, first_seq, through_seq, count, prev, link, archive, sha256, at, signature";

fn cut_row(row: &sqlx::any::AnyRow) -> StoreResult<ChainCut> {
    Ok(ChainCut {
        id: row.try_get("id")?,
        chain: row.try_get("chain")?,
        first_seq: row.try_get("first_seq")?,
        through_seq: row.try_get("through_seq")?,
        count: row.try_get("count")?,
        prev: row.try_get("prev")?,
        link: row.try_get("link")?,
        archive: row.try_get("archive")?,
        sha256: row.try_get("sha256")?,
        at: row.try_get("at")?,
        signature: row.try_get("signature")?,
    })
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionRun {
    /// The cuts made now, one per chain that had events old enough.
    pub cuts: Vec<ChainCut>,
    /// Chains not cut, and why (each also raised as a `retention_refused` alarm).
    pub refused: Vec<String>,
}

/// Why an archive file does not check out on its own.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file cannot be read.
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// The file is not a whole, signed archive as central wrote it.
    #[error("{0}")]
    Invalid(String),
}

/// What a checked archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    /// The signed manifest.
    pub manifest: ArchiveManifest,
    /// Runs of sequence numbers absent from the archive (gaps ingest had
    /// recorded when the events never arrived).
    pub gaps: Vec<(u64, u64)>,
}

impl Store {
    /// The cuts of a chain, oldest first.
    pub async fn chain_cuts(&self, chain: &ChainId) -> StoreResult<Vec<ChainCut>> {
        sqlx::query(&format!(
            "SELECT {CUT_COLUMNS} FROM chain_cuts WHERE chain = $1 ORDER BY through_seq, id"
        ))
        .bind(chain.name())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(cut_row)
        .collect()
    }

    /// The names of the chains that have cuts.
    pub(crate) async fn chains_with_cuts(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT chain FROM chain_cuts ORDER BY chain")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Whether a checkpoint of `count` records with head `head` is vouched
    /// for by the chain's newest cut: `None` when the count lies beyond it.
    /// At the cut the head must be the cut's link; inside the archived range
    /// it is accepted, since a chain is cut only after it verified against
    /// every checkpoint.
    pub(crate) async fn covered_by_cut(
        &self,
        chain: &ChainId,
        count: i64,
        head: &str,
    ) -> StoreResult<Option<bool>> {
        let last = self.chain_cuts(chain).await?.pop();
        Ok(match last {
            Some(cut) if count < cut.through_seq => Some(true),
            Some(cut) if count == cut.through_seq => Some(cut.link == head),
            _ => None,
        })
    }

    /// Archives and removes, per controller chain, every event up to the
    /// newest one dated before `cutoff` (ms) such that all events before it
    /// are too: a prefix, so the stored chain stays contiguous. The newest
    /// event of a chain always stays. Archive files go to `dir` (created
    /// owner-only). A chain that does not verify is not cut: its evidence
    /// stays in place, named in `refused` and raised as an alarm.
    pub async fn apply_retention(
        &self,
        signer: &PolicySigner,
        dir: &Path,
        cutoff: i64,
        now: i64,
    ) -> StoreResult<RetentionRun> {
        let mut run = RetentionRun::default();
        let key = signer.public_key();
        for chain in EventChain::all(&self.pool).await? {
            let id = ChainId::Events(chain);
            let Some((head, _)) = id.head(&self.pool).await? else {
                continue;
            };
            let (after, _) = self.cut_point(&id).await?;
            let first_new: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(seq) FROM events WHERE controller_id = $1 AND epoch = $2 AND seq > $3 AND at >= $4",
            )
            .bind(chain.controller)
            .bind(chain.epoch_column()?)
            .bind(after)
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
            let through = first_new.unwrap_or(head).min(head).saturating_sub(1);
            let (first, count): (Option<i64>, i64) = sqlx::query_as(
                "SELECT MIN(seq), COUNT(*) FROM events WHERE controller_id = $1 AND epoch = $2 AND seq > $3 AND seq <= $4",
            )
            .bind(chain.controller)
            .bind(chain.epoch_column()?)
            .bind(after)
            .bind(through)
            .fetch_one(&self.pool)
            .await?;
            let Some(first) = first else {
                continue;
            };
            let report = self.verify_chain(&key, &id).await?;
            if let Some(problem) = report.problem {
                let message = format!(
                    "chain {} was not cut by retention: it does not verify ({problem})",
                    id.name()
                );
                self.raise_once("retention_refused", &message, now).await?;
                run.refused.push(message);
                continue;
            }
            match self
                .cut(signer, dir, chain, first, through, count, now)
                .await?
            {
                Ok(cut) => run.cuts.push(cut),
                Err(message) => {
                    self.raise_once("retention_refused", &message, now).await?;
                    run.refused.push(message);
                }
            }
        }
        Ok(run)
    }

    /// Where the stored part of a chain starts: the newest cut's last
    /// sequence number and link, or 0 and the genesis link.
    pub(crate) async fn cut_point(&self, chain: &ChainId) -> StoreResult<(i64, String)> {
        Ok(match self.chain_cuts(chain).await?.pop() {
            Some(cut) => (cut.through_seq, cut.link),
            None => (0, chain.genesis()?),
        })
    }

    /// Writes records `first..=through` of one chain to a new archive file,
    /// fsynced, then deletes them and records the cut in one transaction.
    /// `Err(message)` when the rows changed meanwhile (nothing is deleted).
    #[allow(clippy::too_many_arguments)]
    async fn cut(
        &self,
        signer: &PolicySigner,
        dir: &Path,
        chain: EventChain,
        first: i64,
        through: i64,
        count: i64,
        now: i64,
    ) -> StoreResult<Result<ChainCut, String>> {
        create_archive_dir(dir)?;
        let name = if chain.epoch.is_first() {
            format!(
                "controller-{}-{first}-{through}-{now}.jsonl",
                chain.controller
            )
        } else {
            format!(
                "controller-{}-{}-{first}-{through}-{now}.jsonl",
                chain.controller, chain.epoch
            )
        };
        let path = dir.join(&name);
        let partial = dir.join(format!("{name}.partial"));
        let written = self
            .write_archive(signer, &partial, chain, first, through, count, now)
            .await;
        let (manifest, signature) = match written {
            Ok(Ok(m)) => m,
            Ok(Err(message)) => {
                let _ = std::fs::remove_file(&partial);
                return Ok(Err(message));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, &path)
            .map_err(|e| io_error(&format!("renaming {}", partial.display()), &e))?;
        sync_dir(dir)?;

        let mut tx = self.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM events WHERE controller_id = $1 AND epoch = $2 AND seq > $3 AND seq <= $4",
        )
        .bind(chain.controller)
        .bind(chain.epoch_column()?)
        .bind(first - 1)
        .bind(through)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if i64::try_from(deleted).ok() != Some(count) {
            tx.rollback().await?;
            let _ = std::fs::remove_file(&path);
            return Ok(Err(format!(
                "chain {} was not cut: its records {first} to {through} changed while they were archived; the next run tries again",
                chain.name()
            )));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO chain_cuts (chain, first_seq, through_seq, count, prev, link, archive, sha256, at, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {CUT_COLUMNS}"
        ))
        .bind(manifest.chain.clone())
        .bind(first)
        .bind(through)
        .bind(count)
        .bind(manifest.prev.clone())
        .bind(manifest.link.clone())
        .bind(name)
        .bind(manifest.sha256.clone())
        .bind(now)
        .bind(signature)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        cut_row(&row).map(Ok)
    }

    /// Streams the rows into `partial` and appends the signed manifest.
    #[allow(clippy::too_many_arguments)]
    async fn write_archive(
        &self,
        signer: &PolicySigner,
        partial: &Path,
        chain: EventChain,
        first: i64,
        through: i64,
        count: i64,
        now: i64,
    ) -> StoreResult<Result<(ArchiveManifest, String), String>> {
        let file = create_new_private(partial)
            .map_err(|e| io_error(&format!("creating {}", partial.display()), &e))?;
        let mut out = std::io::BufWriter::new(file);
        let mut hash = Sha256::new();
        let mut after = first - 1;
        let mut written = 0i64;
        let mut prev = None;
        let mut link = String::new();
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {ARCHIVE_COLUMNS} FROM events WHERE controller_id = $1 AND epoch = $2 AND seq > $3 AND seq <= $4 ORDER BY seq LIMIT $5"
            ))
            .bind(chain.controller)
            .bind(chain.epoch_column()?)
            .bind(after)
            .bind(through)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                let event = archived_row(row)?;
                after = event.seq;
                written += 1;
                prev.get_or_insert_with(|| event.prev.clone());
                link.clone_from(&event.link);
                let mut line = serde_json::to_string(&event)
                    .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", event.seq)))?;
                line.push('\n');
                hash.update(line.as_bytes());
                out.write_all(line.as_bytes())
                    .map_err(|e| io_error(&format!("writing {}", partial.display()), &e))?;
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        if written != count {
            return Ok(Err(format!(
                "chain {} was not cut: its records {first} to {through} changed while they were archived; the next run tries again",
                chain.name()
            )));
        }
        let manifest = ArchiveManifest {
            chain: chain.name(),
            first: u64::try_from(first)
                .map_err(|_| StoreError::Corrupt(format!("{} record {first}", chain.name())))?,
            last: u64::try_from(through)
                .map_err(|_| StoreError::Corrupt(format!("{} record {through}", chain.name())))?,
            count: u64::try_from(count).unwrap_or(0),
            prev: prev.unwrap_or_default(),
            link,
            sha256: hex::encode(hash.finalize()),
            at: now,
        };
        let signature = match signer.sign_archive(&manifest) {
            Ok(s) => s,
            // A stored link that is not hex: the rows were edited by hand.
            Err(e) => return Ok(Err(format!("chain {} was not cut: {e}", chain.name()))),
        };
        let line = serde_json::to_string(&ManifestLine {
            manifest: manifest.clone(),
            signature: signature.clone(),
        })
        .map_err(|e| StoreError::Corrupt(format!("archive manifest: {e}")))?;
        let mut file = out
            .into_inner()
            .map_err(|e| io_error(&format!("writing {}", partial.display()), e.error()))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&format!("writing {}", partial.display()), &e))?;
        Ok(Ok((manifest, signature)))
    }
}

/// Creates the archive directory, owner-only, if it is missing.
fn create_archive_dir(dir: &Path) -> StoreResult<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        io_error(
            &format!("creating the archive directory {}", dir.display()),
            &e,
        )
    })
}

/// Makes a rename in `dir` durable before rows are deleted on its strength.
fn sync_dir(dir: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(&format!("syncing {}", dir.display()), &e))?;
    Ok(())
}

/// The archive file of a cut, in `dir`.
pub fn archive_path(dir: &Path, cut: &ChainCut) -> PathBuf {
    dir.join(&cut.archive)
}

/// SHA-256 (hex) of an archive file's row lines (everything before its
/// last line), to compare with a cut.
pub fn archive_content_sha256(path: &Path) -> Result<String, ArchiveError> {
    Ok(read_archive(path, |_| Ok(()))?.1)
}

/// Reads an archive line by line: each row line goes to `row`; returns the
/// manifest line and the SHA-256 of the row lines.
fn read_archive(
    path: &Path,
    mut row: impl FnMut(&str) -> Result<(), ArchiveError>,
) -> Result<(String, String), ArchiveError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ArchiveError::Io(shown.clone(), e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut hash = Sha256::new();
    let mut held: Option<String> = None;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| ArchiveError::Io(shown.clone(), e))?;
        if n == 0 {
            break;
        }
        if let Some(previous) = held.replace(line) {
            hash.update(previous.as_bytes());
            row(previous.trim_end_matches('\n'))?;
        }
    }
    let last = held.ok_or_else(|| ArchiveError::Invalid("the file is empty".into()))?;
    Ok((
        last.trim_end_matches('\n').to_string(),
        hex::encode(hash.finalize()),
    ))
}

/// Checks an archive file on its own, with central's public key: the
/// manifest's signature, the content's SHA-256, every row's link recomputed
/// from its body and following its predecessor's, and the manifest's counts.
pub fn verify_archive_file(path: &Path, key: &PolicyKey) -> Result<ArchiveReport, ArchiveError> {
    let bad = |what: String| ArchiveError::Invalid(what);
    let mut rows = 0u64;
    let mut first: Option<(u64, String)> = None;
    let mut last: Option<(u64, String)> = None;
    let mut chain: Option<EventChain> = None;
    let mut gaps = Vec::new();
    let (manifest_line, sha256) = read_archive(path, |line| {
        let n = rows + 1;
        let row: ArchivedEvent = serde_json::from_str(line)
            .map_err(|e| bad(format!("line {n} is not an archived event: {e}")))?;
        let e: SealedEvent = serde_json::from_str(&row.body)
            .map_err(|_| bad(format!("line {n}: its body is not a sealed event")))?;
        let seq = e.event.seq;
        if u64::try_from(row.seq).ok() != Some(seq)
            || row.controller_id != i64::from(e.event.controller.0)
            || row.prev != e.prev.to_string()
            || row.link != e.link.to_string()
        {
            return Err(bad(format!(
                "line {n} (record {}): its columns do not match its body",
                row.seq
            )));
        }
        if !matches!(chain_link(&e.prev, &e.event), Ok(link) if link == e.link) {
            return Err(bad(format!(
                "line {n} (record {seq}): its body does not match its link: the event was altered"
            )));
        }
        let epoch = super::chains::epoch_of(row.epoch).map_err(|_| {
            bad(format!(
                "line {n} (record {seq}): its epoch {} is not one",
                row.epoch
            ))
        })?;
        let this = EventChain {
            controller: row.controller_id,
            epoch,
        };
        let held = *chain.get_or_insert(this);
        if held != this {
            return Err(bad(format!(
                "line {n} (record {seq}) is of chain {}, not {}",
                this.name(),
                held.name()
            )));
        }
        if let Some((last_seq, last_link)) = &last {
            if seq <= *last_seq {
                return Err(bad(format!(
                    "line {n}: record {seq} does not come after record {last_seq}"
                )));
            }
            if seq == last_seq + 1 && row.prev != *last_link {
                return Err(bad(format!(
                    "line {n}: record {seq} does not follow record {last_seq}'s link"
                )));
            }
            if seq > last_seq + 1 {
                gaps.push((last_seq + 1, seq - 1));
            }
        }
        first.get_or_insert_with(|| (seq, row.prev.clone()));
        last = Some((seq, row.link.clone()));
        rows = n;
        Ok(())
    })?;
    let line: ManifestLine = serde_json::from_str(&manifest_line)
        .map_err(|e| bad(format!("the last line is not a signed manifest: {e}")))?;
    let m = line.manifest;
    key.verify_archive(&m, &line.signature).map_err(|e| {
        bad(format!(
            "the manifest's signature does not verify with the central key: {e}"
        ))
    })?;
    if m.sha256 != sha256 {
        return Err(bad(format!(
            "the content's SHA-256 is {sha256}, but the signed manifest says {}: lines were altered, added or removed",
            m.sha256
        )));
    }
    let (Some((first_seq, first_prev)), Some((last_seq, last_link))) = (first, last) else {
        return Err(bad("the archive holds no records".into()));
    };
    let chain = chain.map(|c| c.name());
    let found = (
        chain.as_deref(),
        first_seq,
        last_seq,
        rows,
        first_prev.as_str(),
        last_link.as_str(),
    );
    let signed = (
        Some(m.chain.as_str()),
        m.first,
        m.last,
        m.count,
        m.prev.as_str(),
        m.link.as_str(),
    );
    if found != signed {
        return Err(bad(format!(
            "the records (chain {}, {first_seq} to {last_seq}, {rows} rows) are not what the signed manifest says (chain {}, {} to {}, {} rows, or its first prev or last link)",
            chain.unwrap_or_default(),
            m.chain,
            m.first,
            m.last,
            m.count
        )));
    }
    Ok(ArchiveReport { manifest: m, gaps })
}

impl Store {
    /// Every recorded cut, oldest first.
    pub async fn all_chain_cuts(&self) -> StoreResult<Vec<ChainCut>> {
        sqlx::query(&format!("SELECT {CUT_COLUMNS} FROM chain_cuts ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cut_row)
            .collect()
    }

    /// Checks that every cut's archive file is in `dir` with the content its
    /// signed cut names: a deleted, replaced or edited archive is a problem.
    pub async fn check_archives(&self, dir: &Path) -> StoreResult<Vec<Problem>> {
        let mut problems = Vec::new();
        for cut in self.all_chain_cuts().await? {
            let path = archive_path(dir, &cut);
            let what = match archive_content_sha256(&path) {
                Ok(sha) if sha == cut.sha256 => continue,
                Ok(sha) => format!(
                    "archive {} has content SHA-256 {sha}, but cut {} signed {}: the archive was altered",
                    path.display(),
                    cut.id,
                    cut.sha256
                ),
                Err(ArchiveError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => format!(
                    "archive {} of cut {} (records {} to {}) is missing",
                    path.display(),
                    cut.id,
                    cut.first_seq,
                    cut.through_seq
                ),
                Err(e) => format!("archive {} of cut {}: {e}", path.display(), cut.id),
            };
            problems.push(Problem {
                chain: cut.chain.clone(),
                seq: Some(cut.through_seq),
                checkpoint: None,
                what,
            });
        }
        Ok(problems)
    }
}
