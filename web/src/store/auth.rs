//! Credentials: admin users (argon2), API tokens and controller secrets (SHA-256
//! of 256-bit random values: fast to check on every request, useless if leaked),
//! and their lifecycle: token list and revocation, controllers disabled,
//! enabled, re-keyed and deleted.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tobira_firmware::ControllerId;

use super::resources::{id_cursor, millis, page_size, paged, stored_id, Id, Millis, Page};
use super::{now_ms, ChangeScope, Store, StoreError, StoreResult};

/// A token's last use is written at most this often: a busy integrator does
/// not turn every request into a write.
pub const TOKEN_USE_EVERY_MS: i64 = 60_000;

/// A controller's last contact is written at most this often while it is
/// online (its long-poll alone checks in twice a minute).
pub const CONTACT_EVERY_MS: i64 = 10_000;

/// What a user or token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users, tokens, controllers and threat levels.
    Admin,
    /// Zones, doors, people, cards, schedules, bookings.
    Facilities,
    /// Card lifecycle actions and alarms; reads everything.
    Operator,
    /// Security reviewer: reads everything, changes nothing.
    Security,
}

impl Role {
    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Self::Admin),
            "facilities" => Some(Self::Facilities),
            "operator" => Some(Self::Operator),
            "security" => Some(Self::Security),
            _ => None,
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Facilities => "facilities",
            Self::Operator => "operator",
            Self::Security => "security",
        }
    }

    /// May change zones, doors, people, cards, schedules, bookings.
    pub fn can_manage(self) -> bool {
        matches!(self, Self::Admin | Self::Facilities)
    }

    /// May report cards lost, suspend them, acknowledge alarms.
    pub fn can_operate(self) -> bool {
        matches!(self, Self::Admin | Self::Facilities | Self::Operator)
    }

    /// May manage users, tokens, controllers and threat levels.
    pub fn is_admin(self) -> bool {
        self == Self::Admin
    }
}

/// Who is asking: a user or an API token, with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name recorded in the audit log.
    pub actor: String,
    /// Role.
    pub role: Role,
    /// The API token's id, when a token authenticated.
    pub token_id: Option<i64>,
}

/// An API token as listed: never the token, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The token's id.
    pub id: Id,
    /// What it is for.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created.
    pub created_at: Millis,
    /// When it expires.
    pub expires_at: Millis,
    /// When it last authenticated a request (to within a minute); null = never.
    pub last_used_at: Option<Millis>,
    /// When it was revoked; null = not revoked.
    pub revoked_at: Option<Millis>,
}

type TokenRow = (i64, String, String, i64, i64, Option<i64>, Option<i64>);

const TOKEN_COLUMNS: &str =
    "SELECT id, name, role, created_at, expires_at, last_used_at, revoked_at FROM api_tokens";

fn token_info(row: TokenRow) -> StoreResult<TokenInfo> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("token {what}"));
    Ok(TokenInfo {
        id: stored_id(row.0)?,
        name: row.1,
        role: Role::parse(&row.2).ok_or_else(|| corrupt("role"))?,
        created_at: Millis::new(row.3).ok_or_else(|| corrupt("created_at"))?,
        expires_at: Millis::new(row.4).ok_or_else(|| corrupt("expires_at"))?,
        last_used_at: millis(row.5),
        revoked_at: millis(row.6),
    })
}

/// What a controller's credentials are worth right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerAuth {
    /// Unknown controller or wrong secret.
    Refused,
    /// Right secret, but an admin disabled the controller.
    Disabled,
    /// Welcome; `connected` when this is its first contact since the service
    /// started or since it was found offline.
    Accepted {
        /// First contact since start or since an outage.
        connected: bool,
    },
}

pub(super) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A controller's credentials, shown once when it is added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerCredentials {
    /// The controller's id.
    pub controller: u32,
    /// Its secret (only its hash is stored).
    pub secret: String,
}

/// Refuses a password that zxcvbn scores below 3 of 4 (crackable with 10^10
/// guesses or fewer), the user name counted as a known word: repeated
/// characters, keyboard rows, common words and passwords, the user's name.
fn check_password_strength(username: &str, password: &str) -> StoreResult<()> {
    let estimate = zxcvbn::zxcvbn(password, &[username]);
    if u8::from(estimate.score()) >= 3 {
        return Ok(());
    }
    let mut advice: Vec<String> = Vec::new();
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            advice.push(warning.to_string());
        }
        advice.extend(feedback.suggestions().iter().map(ToString::to_string));
    }
    Err(StoreError::Invalid(format!(
        "password is too easy to guess (strength {} of 4, at least 3 needed){}{}",
        u8::from(estimate.score()),
        if advice.is_empty() { "" } else { ": " },
        advice.join(" ")
    )))
}

/// The argon2 hash of a new password for `username`, after the rules every
/// new password meets (12 characters or more, zxcvbn strength 3 of 4).
pub(super) fn new_password_hash(username: &str, password: &str) -> StoreResult<String> {
    if password.chars().count() < 12 {
        return Err(StoreError::Invalid(
            "password must be at least 12 characters".into(),
        ));
    }
    check_password_strength(username, password)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map_err(|e| StoreError::Invalid(format!("password cannot be hashed: {e}")))?
        .to_string())
}

/// Spends the time of one password check for a user name that does not
/// exist: without it a login for an unknown name answers before argon2 would
/// have finished, and the answer time tells which names exist.
pub(super) fn check_against_nobody(password: &str) {
    static NOBODY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let hash = NOBODY.get_or_init(|| {
        Argon2::default()
            .hash_password(
                b"no user has this password",
                &SaltString::generate(&mut OsRng),
            )
            .ok()
            .map(|h| h.to_string())
    });
    if let Some(hash) = hash {
        let _ = password_matches(hash, password);
    }
}

/// Whether `password` matches the stored argon2 `hash`.
pub(super) fn password_matches(hash: &str, password: &str) -> StoreResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

impl Store {
    /// Adds an admin user with an argon2-hashed password.
    pub async fn create_user(
        &self,
        actor: &str,
        username: &str,
        password: &str,
        role: Role,
    ) -> StoreResult<i64> {
        if username.trim().is_empty() || username.len() > 64 {
            return Err(StoreError::Invalid(
                "user name must be 1–64 characters".into(),
            ));
        }
        crate::store::resources::check_name("user name", username, 64)?;
        let hash = new_password_hash(username, password)?;
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO admin_users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "a user with that name exists"))?;
        self.audit(
            &mut tx,
            actor,
            "user.create",
            &format!("user:{username}"),
            &serde_json::json!({"role": role.as_str()}),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Checks a user's password; `None` if unknown, disabled or wrong.
    pub async fn verify_user(
        &self,
        username: &str,
        password: &str,
    ) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT password_hash, role FROM admin_users WHERE username = $1 AND disabled = 0",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let hash: String = row.try_get("password_hash")?;
        let role: String = row.try_get("role")?;
        let parsed = PasswordHash::new(&hash).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
        {
            return Ok(None);
        }
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?;
        Ok(Some(Principal {
            actor: username.to_string(),
            role,
            token_id: None,
        }))
    }

    /// Creates an API token valid for `days`; returns it (only its hash is stored).
    pub async fn create_token(
        &self,
        actor: &str,
        name: &str,
        role: Role,
        days: u32,
    ) -> StoreResult<String> {
        if !(1..=3650).contains(&days) {
            return Err(StoreError::Invalid("tokens live 1 to 3650 days".into()));
        }
        crate::store::resources::check_name("token name", name, crate::store::resources::MAX_NAME)?;
        let token = format!("tbr_{}", random_hex(32));
        let expires = now_ms() + i64::from(days) * 86_400_000;
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO api_tokens (name, token_hash, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(name)
            .bind(sha256_hex(&token))
            .bind(role.as_str())
            .bind(now_ms())
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            actor,
            "token.create",
            &format!("token:{name}"),
            &serde_json::json!({"role": role.as_str(), "expires_at": expires}),
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The principal behind a valid, unexpired, unrevoked token.
    pub async fn verify_token(&self, token: &str) -> StoreResult<Option<Principal>> {
        self.verify_token_at(token, now_ms()).await
    }

    /// [`Store::verify_token`] at `now`: also records the token's use, at most
    /// once per [`TOKEN_USE_EVERY_MS`]. Nothing is cached, so a revoked token
    /// fails on its very next request.
    pub async fn verify_token_at(&self, token: &str, now: i64) -> StoreResult<Option<Principal>> {
        if !token.starts_with("tbr_") {
            return Ok(None);
        }
        let row: Option<(i64, String, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, name, role, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(sha256_hex(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, name, role, last_used)) = row else {
            return Ok(None);
        };
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?;
        if last_used.is_none_or(|at| now - at >= TOKEN_USE_EVERY_MS) {
            // The condition repeats the check, so concurrent requests write once.
            let mut tx = self.begin().await?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)")
                .bind(now)
                .bind(id)
                .bind(now - TOKEN_USE_EVERY_MS)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(Some(Principal {
            actor: format!("token:{name}"),
            role,
            token_id: Some(id),
        }))
    }

    /// API tokens by id, revoked and expired ones included.
    pub async fn list_tokens(
        &self,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<TokenInfo>> {
        let limit = page_size(limit)?;
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "{TOKEN_COLUMNS} WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(id_cursor(cursor)?)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(token_info)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |t| t.id.to_string()))
    }

    /// One API token.
    pub async fn token(&self, id: Id) -> StoreResult<TokenInfo> {
        token_info(
            self.row_by_id::<TokenRow>(TOKEN_COLUMNS, id, "token")
                .await?,
        )
    }

    /// Revokes a token: refused from its next request on.
    pub async fn revoke_token(&self, actor: &str, id: Id) -> StoreResult<TokenInfo> {
        let mut tx = self.begin().await?;
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT name, revoked_at FROM api_tokens WHERE id = $1")
                .bind(id.get())
                .fetch_optional(&mut *tx)
                .await?;
        let name = match row {
            None => return Err(StoreError::NotFound(format!("token {id}"))),
            Some((name, Some(_))) => {
                return Err(StoreError::Conflict(format!(
                    "token {id} ({name}) is already revoked"
                )))
            }
            Some((name, None)) => name,
        };
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            actor,
            "token.revoke",
            &format!("token:{name}"),
            &serde_json::json!({"id": id}),
        )
        .await?;
        tx.commit().await?;
        self.token(id).await
    }

    /// Registers a controller for a site and returns its credentials.
    pub async fn add_controller(
        &self,
        actor: &str,
        site: i64,
        name: &str,
    ) -> StoreResult<ControllerCredentials> {
        crate::store::resources::check_name(
            "controller name",
            name,
            crate::store::resources::MAX_NAME,
        )?;
        let secret = random_hex(32);
        let mut tx = self.begin().await?;
        let site_known: Option<i64> = sqlx::query_scalar("SELECT id FROM sites WHERE id = $1")
            .bind(site)
            .fetch_optional(&mut *tx)
            .await?;
        if site_known.is_none() {
            return Err(StoreError::MissingReference(format!("no site {site}")));
        }
        // Past every id ever given (the audit log keeps each `controller.add`)
        // or left in events and alarms: events are keyed by controller id,
        // and SQLite would hand a deleted highest id out again.
        let used: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(m), 0) FROM (SELECT MAX(id) AS m FROM controllers UNION ALL SELECT MAX(controller_id) FROM events UNION ALL SELECT MAX(controller_id) FROM alarms) ids",
        )
        .fetch_one(&mut *tx)
        .await?;
        let added: Vec<String> =
            sqlx::query_scalar("SELECT target FROM admin_audit WHERE action = 'controller.add'")
                .fetch_all(&mut *tx)
                .await?;
        let next = added
            .iter()
            .filter_map(|t| t.strip_prefix("controller:")?.parse::<i64>().ok())
            .fold(used, i64::max)
            + 1;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO controllers (id, site_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(next)
        .bind(site)
        .bind(name)
        .bind(sha256_hex(&secret))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::conflict_or(e, "another controller was added at the same time; try again")
        })?;
        let controller = u32::try_from(id)
            .map_err(|_| StoreError::Invalid("controller id out of range".into()))?;
        let version = self
            .record_change(
                &mut tx,
                ChangeScope::Structure,
                &format!("controller:{id}"),
                false,
            )
            .await?;
        self.audit(
            &mut tx,
            actor,
            "controller.add",
            &format!("controller:{id}"),
            &serde_json::json!({"name": name, "site": site}),
        )
        .await?;
        tx.commit().await?;
        self.publish(version, false);
        Ok(ControllerCredentials { controller, secret })
    }

    /// Checks a controller's secret (true only for an enabled controller).
    pub async fn verify_controller(&self, id: ControllerId, secret: &str) -> StoreResult<bool> {
        Ok(matches!(
            self.authenticate_controller(id, secret, now_ms()).await?,
            ControllerAuth::Accepted { .. }
        ))
    }

    /// Checks a controller's credentials at `now` and records its contact (at
    /// most once per [`CONTACT_EVERY_MS`], and always when it comes back from
    /// an outage, which clears the outage so that the next one alarms again).
    pub async fn authenticate_controller(
        &self,
        id: ControllerId,
        secret: &str,
        now: i64,
    ) -> StoreResult<ControllerAuth> {
        let cid = i64::from(id.0);
        let row: Option<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT secret_hash, disabled, last_seen_at, offline_alarm_at FROM controllers WHERE id = $1",
        )
        .bind(cid)
        .fetch_optional(&self.pool)
        .await?;
        let Some((hash, disabled, last_seen, offline_alarm)) = row else {
            return Ok(ControllerAuth::Refused);
        };
        if hash != sha256_hex(secret) {
            return Ok(ControllerAuth::Refused);
        }
        if disabled != 0 {
            return Ok(ControllerAuth::Disabled);
        }
        let connected = offline_alarm.is_some() || self.online().insert(cid);
        if connected || last_seen.is_none_or(|at| now - at >= CONTACT_EVERY_MS) {
            let mut tx = self.begin().await?;
            sqlx::query(
                "UPDATE controllers SET last_seen_at = $1, offline_alarm_at = NULL WHERE id = $2",
            )
            .bind(now)
            .bind(cid)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if offline_alarm.is_some() {
                // Back from an outage: the monitor and the alarm console see it now.
                self.note_activity();
            }
        }
        Ok(ControllerAuth::Accepted { connected })
    }

    /// Disables (`true`) or enables a controller: a disabled one is refused at
    /// sync from its next request on; its doors keep their cached policy.
    pub async fn set_controller_disabled(
        &self,
        actor: &str,
        id: Id,
        disabled: bool,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT disabled FROM controllers WHERE id = $1")
                .bind(id.get())
                .fetch_optional(&mut *tx)
                .await?;
        match current {
            None => return Err(StoreError::NotFound(format!("controller {id}"))),
            Some(d) if (d != 0) == disabled => {
                let state = if disabled { "disabled" } else { "enabled" };
                return Err(StoreError::Conflict(format!(
                    "controller {id} is already {state}"
                )));
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE controllers SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        let action = if disabled {
            "controller.disable"
        } else {
            "controller.enable"
        };
        self.audit(
            &mut tx,
            actor,
            action,
            &format!("controller:{id}"),
            &serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives a controller a new secret; the old one is refused from now on.
    pub async fn rotate_controller_secret(
        &self,
        actor: &str,
        id: Id,
    ) -> StoreResult<ControllerCredentials> {
        let controller = u32::try_from(id.get())
            .map_err(|_| StoreError::Invalid("controller id out of range".into()))?;
        let secret = random_hex(32);
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE controllers SET secret_hash = $1 WHERE id = $2")
            .bind(sha256_hex(&secret))
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("controller {id}")));
        }
        self.audit(
            &mut tx,
            actor,
            "controller.rotate_secret",
            &format!("controller:{id}"),
            &serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(ControllerCredentials { controller, secret })
    }

    /// Removes a controller no door refers to; otherwise a conflict naming the doors.
    pub async fn delete_controller(&self, actor: &str, id: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let doors: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, name FROM doors WHERE controller_id = $1 ORDER BY id LIMIT 21",
        )
        .bind(id.get())
        .fetch_all(&mut *tx)
        .await?;
        if !doors.is_empty() {
            let mut names: Vec<String> = doors
                .iter()
                .take(20)
                .map(|(door, name)| format!("{door} ({name})"))
                .collect();
            if doors.len() > 20 {
                names.push("…".into());
            }
            return Err(StoreError::Conflict(format!(
                "controller {id} still drives door {}; move or delete those doors first",
                names.join(", ")
            )));
        }
        super::resources::delete_row(
            &mut tx,
            "controllers",
            id,
            "controller",
            "the controller is still referred to",
        )
        .await?;
        let target = format!("controller:{id}");
        let version = self
            .record_change(&mut tx, ChangeScope::Structure, &target, false)
            .await?;
        self.audit(
            &mut tx,
            actor,
            "controller.delete",
            &target,
            &serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        self.online().remove(&id.get());
        self.publish(version, false);
        Ok(())
    }
}
