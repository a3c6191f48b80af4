//! Credentials: admin users (argon2), API tokens and controller secrets (SHA-256
//! of 256-bit random values: fast to check on every request, useless if leaked).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tobira_firmware::ControllerId;

use super::{now_ms, ChangeScope, Store, StoreError, StoreResult};

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
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
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
        if password.chars().count() < 12 {
            return Err(StoreError::Invalid(
                "password must be at least 12 characters".into(),
            ));
        }
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map_err(|e| StoreError::Invalid(format!("password cannot be hashed: {e}")))?
            .to_string();
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
        if !token.starts_with("tbr_") {
            return Ok(None);
        }
        let row = sqlx::query("SELECT name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2")
            .bind(sha256_hex(token))
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let name: String = row.try_get("name")?;
        let role: String = row.try_get("role")?;
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?;
        Ok(Some(Principal {
            actor: format!("token:{name}"),
            role,
        }))
    }

    /// Registers a controller for a site and returns its credentials.
    pub async fn add_controller(
        &self,
        actor: &str,
        site: i64,
        name: &str,
    ) -> StoreResult<ControllerCredentials> {
        let secret = random_hex(32);
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO controllers (site_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(site)
        .bind(name)
        .bind(sha256_hex(&secret))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such site"))?;
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

    /// Checks a controller's secret and records that it was seen.
    pub async fn verify_controller(&self, id: ControllerId, secret: &str) -> StoreResult<bool> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT secret_hash FROM controllers WHERE id = $1")
                .bind(i64::from(id.0))
                .fetch_optional(&self.pool)
                .await?;
        Ok(stored.is_some_and(|h| h == sha256_hex(secret)))
    }
}
