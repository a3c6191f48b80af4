//! Web admin sessions and login throttling: sessions keyed by the SHA-256 of
//! a random 256-bit id, idle and absolute timeouts at an injected `now`,
//! failed logins counted per account and per address, all in the admin audit.

use sqlx::Row;

use super::auth::{
    check_against_nobody, new_password_hash, password_matches, random_hex, sha256_hex, Principal,
    Role,
};
use super::{Store, StoreError, StoreResult};

/// Failures (per account or per address) allowed before logins wait.
pub const FREE_FAILURES: i64 = 5;

/// The longest wait after repeated failures.
pub const MAX_LOCK_MS: i64 = 15 * 60 * 1000;

/// A failure count whose last failure is older than this starts again at
/// zero, so that an office address's old typos do not lock it for ever.
pub const FORGET_FAILURES_MS: i64 = 60 * 60 * 1000;

/// The longest user name looked up; longer ones are counted under their prefix.
const MAX_USERNAME: usize = 64;

/// How long sessions live, configured on the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long (ms) ends.
    pub idle_ms: i64,
    /// A session this old (ms) ends, however busy.
    pub max_ms: i64,
}

impl Default for SessionPolicy {
    /// 30 minutes idle, 12 hours at most.
    fn default() -> Self {
        SessionPolicy {
            idle_ms: 30 * 60 * 1000,
            max_ms: 12 * 60 * 60 * 1000,
        }
    }
}

/// A session just opened at login: the id goes into the cookie and is never
/// stored; only its hash is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie value (64 hex digits).
    pub id: String,
    /// Who logged in.
    pub principal: Principal,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who it belongs to: the same principal an API token produces.
    pub principal: Principal,
    /// The token every state-changing form of this session carries.
    pub csrf_token: String,
    /// When it was opened (ms).
    pub created_at: i64,
    /// When it was last used (ms), before this request.
    pub last_seen_at: i64,
}

/// What a session cookie is worth at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Valid; its last use is now `now`.
    Active(Session),
    /// It existed but timed out (idle or absolute) or its user was disabled;
    /// it is deleted.
    Expired,
    /// No such session (never, or logged out).
    Unknown,
}

/// Why a login failed, as recorded in the audit log (the page says the same
/// thing for the first three, so that it does not tell which names exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// No user by that name.
    UnknownUser,
    /// The user is disabled.
    Disabled,
    /// The password is wrong.
    WrongPassword,
    /// The account or the address waits after repeated failures; the password
    /// was not even checked.
    Throttled,
}

impl FailureClass {
    /// The name in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::Disabled => "disabled",
            Self::WrongPassword => "wrong_password",
            Self::Throttled => "throttled",
        }
    }
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in with a new session.
    Opened(NewSession),
    /// Refused; `retry_at` (ms) is set when logins from this account or
    /// address now wait until then.
    Refused {
        /// Why (for the audit log; the page shows one message for all).
        class: FailureClass,
        /// Logins wait until this time (ms), if they now do.
        retry_at: Option<i64>,
    },
    /// Refused without checking the password: too many recent failures.
    Throttled {
        /// When the next attempt is looked at (ms).
        retry_at: i64,
    },
}

/// The wait after the `failures`-th failure in a row: none up to
/// [`FREE_FAILURES`], then 1 s, doubling with each failure, at most
/// [`MAX_LOCK_MS`].
pub fn lock_ms(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = u32::try_from(failures - FREE_FAILURES).unwrap_or(u32::MAX);
    1000_i64
        .checked_mul(2_i64.checked_pow(doublings).unwrap_or(i64::MAX))
        .unwrap_or(i64::MAX)
        .min(MAX_LOCK_MS)
}

fn account_key(username: &str) -> String {
    username.chars().take(MAX_USERNAME).collect()
}

impl Store {
    /// Logs `username` in from `address` at `now`: refused while the account
    /// or the address waits after repeated failures, otherwise the password
    /// is checked; a success opens a new session (ending `previous`, the
    /// session the browser came with, if any: an id is never kept across a
    /// login) and resets the account's failures. Every outcome is audited.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        address: &str,
        previous: Option<&str>,
        policy: SessionPolicy,
        now: i64,
    ) -> StoreResult<LoginOutcome> {
        let account = account_key(username);
        let locked: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(locked_until) FROM login_failures WHERE (scope = 'account' AND subject = $1) OR (scope = 'address' AND subject = $2)",
        )
        .bind(&account)
        .bind(address)
        .fetch_one(&self.pool)
        .await?;
        if let Some(until) = locked.filter(|until| *until > now) {
            self.audit_login_failure(&account, address, FailureClass::Throttled, Some(until))
                .await?;
            return Ok(LoginOutcome::Throttled { retry_at: until });
        }
        let user = sqlx::query(
            "SELECT id, password_hash, role, disabled FROM admin_users WHERE username = $1",
        )
        .bind(&account)
        .fetch_optional(&self.pool)
        .await?;
        let checked = match &user {
            None => {
                check_against_nobody(password);
                Err(FailureClass::UnknownUser)
            }
            Some(row) => {
                let hash: String = row.try_get("password_hash")?;
                let disabled: i64 = row.try_get("disabled")?;
                // The password is checked first, so that a disabled account
                // costs the same time as an active one.
                if !password_matches(&hash, password)? {
                    Err(FailureClass::WrongPassword)
                } else if disabled != 0 {
                    Err(FailureClass::Disabled)
                } else {
                    let id: i64 = row.try_get("id")?;
                    let role: String = row.try_get("role")?;
                    let role = Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?;
                    Ok((id, role))
                }
            }
        };
        let (user_id, role) = match checked {
            Ok(found) => found,
            Err(class) => {
                let retry_at = self.count_failure(&account, address, class, now).await?;
                return Ok(LoginOutcome::Refused { class, retry_at });
            }
        };
        let id = random_hex(32);
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE scope = 'account' AND subject = $1")
            .bind(&account)
            .execute(&mut *tx)
            .await?;
        if let Some(previous) = previous {
            sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
                .bind(sha256_hex(previous))
                .execute(&mut *tx)
                .await?;
        }
        // Sessions that timed out are removed here rather than by a timer.
        sqlx::query("DELETE FROM ui_sessions WHERE last_seen_at <= $1 OR created_at <= $2")
            .bind(now.saturating_sub(policy.idle_ms))
            .bind(now.saturating_sub(policy.max_ms))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (id_hash, user_id, csrf_token, address, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(sha256_hex(&id))
        .bind(user_id)
        .bind(random_hex(32))
        .bind(address)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            &account,
            "session.login",
            &format!("user:{account}"),
            &serde_json::json!({"address": address}),
        )
        .await?;
        tx.commit().await?;
        Ok(LoginOutcome::Opened(NewSession {
            id,
            principal: Principal {
                actor: account,
                role,
                token_id: None,
            },
        }))
    }

    /// Counts a failure against the account and the address; returns until
    /// when logins now wait, if they do.
    async fn count_failure(
        &self,
        account: &str,
        address: &str,
        class: FailureClass,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin().await?;
        let mut retry_at = None;
        for (scope, subject) in [("account", account), ("address", address)] {
            let failures: i64 = sqlx::query_scalar(
                "INSERT INTO login_failures (scope, subject, failures, last_failed_at, locked_until) VALUES ($1, $2, 1, $3, 0) \
                 ON CONFLICT (scope, subject) DO UPDATE SET \
                 failures = CASE WHEN login_failures.last_failed_at < $4 THEN 1 ELSE login_failures.failures + 1 END, \
                 last_failed_at = $5 RETURNING failures",
            )
            .bind(scope)
            .bind(subject)
            .bind(now)
            .bind(now.saturating_sub(FORGET_FAILURES_MS))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let wait = lock_ms(failures);
            if wait > 0 {
                let until = now.saturating_add(wait);
                sqlx::query(
                    "UPDATE login_failures SET locked_until = $1 WHERE scope = $2 AND subject = $3",
                )
                .bind(until)
                .bind(scope)
                .bind(subject)
                .execute(&mut *tx)
                .await?;
                retry_at = retry_at.max(Some(until));
            }
        }
        self.audit(
            &mut tx,
            account,
            "session.login_failed",
            &format!("user:{account}"),
            &login_failure_detail(address, class, retry_at),
        )
        .await?;
        tx.commit().await?;
        Ok(retry_at)
    }

    async fn audit_login_failure(
        &self,
        account: &str,
        address: &str,
        class: FailureClass,
        retry_at: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        self.audit(
            &mut tx,
            account,
            "session.login_failed",
            &format!("user:{account}"),
            &login_failure_detail(address, class, retry_at),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the session behind cookie value `id` still holds at `now`,
    /// without counting this as a use (an open live stream checks this: a
    /// screen nobody touches still times out).
    pub async fn session_alive(
        &self,
        id: &str,
        policy: SessionPolicy,
        now: i64,
    ) -> StoreResult<bool> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT s.created_at, s.last_seen_at, u.disabled FROM ui_sessions s JOIN admin_users u ON u.id = s.user_id WHERE s.id_hash = $1",
        )
        .bind(sha256_hex(id))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(created_at, last_seen_at, disabled)| {
            disabled == 0
                && now.saturating_sub(last_seen_at) < policy.idle_ms
                && now.saturating_sub(created_at) < policy.max_ms
        }))
    }

    /// The session behind cookie value `id` at `now`. An active session's
    /// last use becomes `now`; a timed-out one, or one whose user was
    /// disabled, is deleted.
    pub async fn session(
        &self,
        id: &str,
        policy: SessionPolicy,
        now: i64,
    ) -> StoreResult<SessionState> {
        let hash = sha256_hex(id);
        let row = sqlx::query(
            "SELECT s.csrf_token, s.created_at, s.last_seen_at, u.username, u.role, u.disabled FROM ui_sessions s JOIN admin_users u ON u.id = s.user_id WHERE s.id_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SessionState::Unknown);
        };
        let created_at: i64 = row.try_get("created_at")?;
        let last_seen_at: i64 = row.try_get("last_seen_at")?;
        let disabled: i64 = row.try_get("disabled")?;
        let mut tx = self.begin().await?;
        if disabled != 0
            || now.saturating_sub(last_seen_at) >= policy.idle_ms
            || now.saturating_sub(created_at) >= policy.max_ms
        {
            sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(SessionState::Expired);
        }
        sqlx::query("UPDATE ui_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let role: String = row.try_get("role")?;
        Ok(SessionState::Active(Session {
            principal: Principal {
                actor: row.try_get("username")?,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
                token_id: None,
            },
            csrf_token: row.try_get("csrf_token")?,
            created_at,
            last_seen_at,
        }))
    }

    /// Ends the session behind cookie value `id` (audited); false if there
    /// was none.
    pub async fn logout(&self, id: &str) -> StoreResult<bool> {
        let hash = sha256_hex(id);
        let mut tx = self.begin().await?;
        let user: Option<String> = sqlx::query_scalar(
            "SELECT u.username FROM ui_sessions s JOIN admin_users u ON u.id = s.user_id WHERE s.id_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            &user,
            "session.logout",
            &format!("user:{user}"),
            &serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Changes `username`'s own password after checking the current one; the
    /// new one meets the same rules as at `create-user`. The user's other
    /// sessions end (the one with cookie value `keep` stays).
    pub async fn change_own_password(
        &self,
        username: &str,
        current: &str,
        new: &str,
        keep: Option<&str>,
    ) -> StoreResult<()> {
        let hash: Option<String> = sqlx::query_scalar(
            "SELECT password_hash FROM admin_users WHERE username = $1 AND disabled = 0",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        let Some(hash) = hash else {
            return Err(StoreError::NotFound(format!("user {username}")));
        };
        if !password_matches(&hash, current)? {
            return Err(StoreError::Invalid("the current password is wrong".into()));
        }
        if new == current {
            return Err(StoreError::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        let new_hash = new_password_hash(username, new)?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE admin_users SET password_hash = $1 WHERE username = $2")
            .bind(new_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM ui_sessions WHERE user_id = (SELECT id FROM admin_users WHERE username = $1) AND id_hash <> $2",
        )
        .bind(username)
        .bind(keep.map(sha256_hex).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            username,
            "user.password_change",
            &format!("user:{username}"),
            &serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// The time zone pages show times in: the first site's (the zone a new
    /// site gets, Asia/Tokyo, before there is one).
    pub async fn display_time_zone(&self) -> StoreResult<String> {
        let zone: Option<String> =
            sqlx::query_scalar("SELECT time_zone FROM sites ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(zone.unwrap_or_else(|| "Asia/Tokyo".to_string()))
    }
}

fn login_failure_detail(
    address: &str,
    class: FailureClass,
    retry_at: Option<i64>,
) -> serde_json::Value {
    serde_json::json!({"address": address, "reason": class.as_str(), "retry_at": retry_at})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_starts_after_five_failures_doubles_and_is_capped() {
        assert_eq!(lock_ms(4), 0);
        assert_eq!(lock_ms(5), 1000);
        assert_eq!(lock_ms(6), 2000);
        assert_eq!(lock_ms(10), 32_000);
        assert_eq!(lock_ms(15), 900_000);
        assert_eq!(lock_ms(500), MAX_LOCK_MS);
    }
}
