//! User administration by an admin: the user list, role changes, disabling
//! and password resets, with the guard rails that keep an enabled admin.

use super::auth::{new_password_hash, Role};
use super::{Store, StoreError, StoreResult};

/// A web admin user as listed (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's id.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The role.
    pub role: Role,
    /// When the user was created (ms).
    pub created_at: i64,
    /// Whether the user is disabled (cannot log in, has no sessions).
    pub disabled: bool,
}

type UserRow = (i64, String, String, i64, i64);

const USER_COLUMNS: &str = "SELECT id, username, role, created_at, disabled FROM admin_users";

fn user_info(row: UserRow) -> StoreResult<UserInfo> {
    Ok(UserInfo {
        id: row.0,
        role: Role::parse(&row.2).ok_or_else(|| StoreError::Corrupt(format!("role {}", row.2)))?,
        username: row.1,
        created_at: row.3,
        disabled: row.4 != 0,
    })
}

/// Refuses a change that would leave no enabled admin: `user` is the target
/// as it is now, and the change takes away its admin role or disables it.
async fn keep_an_admin(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user: &UserInfo,
) -> StoreResult<()> {
    if user.role != Role::Admin || user.disabled {
        return Ok(());
    }
    let admins: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM admin_users WHERE role = 'admin' AND disabled = 0",
    )
    .fetch_one(&mut **tx)
    .await?;
    if admins <= 1 {
        return Err(StoreError::Conflict(format!(
            "{} is the last enabled admin; make another user admin first",
            user.username
        )));
    }
    Ok(())
}

/// The guard rails of giving `user` the role `role`, asked by `actor`: an
/// admin cannot take their own admin role away, and the last enabled admin
/// keeps theirs.
async fn role_guard(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &str,
    user: &UserInfo,
    role: Role,
) -> StoreResult<()> {
    if role == Role::Admin {
        return Ok(());
    }
    if user.username == actor && user.role == Role::Admin {
        return Err(StoreError::Conflict(
            "you cannot take your own admin role away; another admin can".into(),
        ));
    }
    keep_an_admin(tx, user).await
}

impl Store {
    /// Checks a role change against the guard rails of [`Store::set_user_role`]
    /// without making it (a request for approval is refused at once if it
    /// could never be applied). Applying checks again.
    pub(crate) async fn check_role_change(
        &self,
        actor: &str,
        id: i64,
        role: Role,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let user = Self::user_in(&mut tx, id).await?;
        role_guard(&mut tx, actor, &user, role).await
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> StoreResult<Vec<UserInfo>> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!("{USER_COLUMNS} ORDER BY username"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(user_info).collect()
    }

    /// One user.
    pub async fn user(&self, id: i64) -> StoreResult<UserInfo> {
        let row: Option<UserRow> = sqlx::query_as(&format!("{USER_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        user_info(row.ok_or_else(|| StoreError::NotFound(format!("user {id}")))?)
    }

    async fn user_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: i64) -> StoreResult<UserInfo> {
        let row: Option<UserRow> = sqlx::query_as(&format!("{USER_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        user_info(row.ok_or_else(|| StoreError::NotFound(format!("user {id}")))?)
    }

    /// Gives user `id` another role; it counts from the user's next request
    /// (sessions read the role on every request). An admin cannot take their
    /// own admin role away, and the last enabled admin keeps theirs. Setting
    /// the role a user has changes nothing.
    ///
    /// Two admins demoting each other at once cannot both pass the check:
    /// every change writes the next audit entry, whose sequence number only
    /// one of the two transactions can take.
    pub async fn set_user_role(&self, actor: &str, id: i64, role: Role) -> StoreResult<UserInfo> {
        let mut tx = self.begin().await?;
        let user = Self::user_in(&mut tx, id).await?;
        if user.role == role {
            return Ok(user);
        }
        role_guard(&mut tx, actor, &user, role).await?;
        sqlx::query("UPDATE admin_users SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            actor,
            "user.role",
            &format!("user:{}", user.username),
            &serde_json::json!({"old": user.role.as_str(), "new": role.as_str()}),
        )
        .await?;
        tx.commit().await?;
        Ok(UserInfo { role, ..user })
    }

    /// Disables (`true`) or enables user `id`. Disabling ends all the user's
    /// sessions at once and refuses their logins from then on. An admin cannot
    /// disable themselves, and the last enabled admin cannot be disabled.
    /// Asking for the state the user is in changes nothing.
    pub async fn set_user_disabled(
        &self,
        actor: &str,
        id: i64,
        disabled: bool,
    ) -> StoreResult<UserInfo> {
        let mut tx = self.begin().await?;
        let user = Self::user_in(&mut tx, id).await?;
        if user.disabled == disabled {
            return Ok(user);
        }
        if disabled {
            if user.username == actor {
                return Err(StoreError::Conflict(
                    "you cannot disable yourself; another admin can".into(),
                ));
            }
            keep_an_admin(&mut tx, &user).await?;
            sqlx::query("DELETE FROM ui_sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE admin_users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.audit(
            &mut tx,
            actor,
            action,
            &format!("user:{}", user.username),
            &serde_json::json!({"old": {"disabled": user.disabled}, "new": {"disabled": disabled}}),
        )
        .await?;
        tx.commit().await?;
        Ok(UserInfo { disabled, ..user })
    }

    /// Sets a new password for user `id` (the same rules as every new
    /// password) and ends all the user's sessions.
    pub async fn reset_user_password(
        &self,
        actor: &str,
        id: i64,
        new_password: &str,
    ) -> StoreResult<()> {
        let user = self.user(id).await?;
        // Hashing takes a while: outside the transaction.
        let hash = new_password_hash(&user.username, new_password)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE admin_users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        let ended = sqlx::query("DELETE FROM ui_sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            actor,
            "user.password_reset",
            &format!("user:{}", user.username),
            &serde_json::json!({"sessions_ended": ended.rows_affected()}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
