//! The one filtered read of the admin audit log (who, what, on what, words in
//! the detail, when), newest first with a keyset cursor by sequence number:
//! the `/audit` page and `GET /api/v1/audit` both read it.

use serde::Deserialize;
use utoipa::IntoParams;

use super::audit::{audit_row, AuditEntry};
use super::resources::Millis;
use super::{Store, StoreError, StoreResult};

/// Which audit entries to find. All filters combine with AND; an empty one
/// is not used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Exactly this actor (user name, `token:NAME`, `cli`).
    #[param(max_length = 200)]
    pub actor: Option<String>,
    /// An action name (`card.report_lost`), or, ending in `.`, every
    /// action that starts with it (`card.`).
    #[param(max_length = 200)]
    pub action: Option<String>,
    /// Exactly this target (`person:12`, `card:04A23B1C`).
    #[param(max_length = 200)]
    pub target: Option<String>,
    /// Words anywhere in the detail, ignoring case.
    #[param(max_length = 200)]
    pub text: Option<String>,
    /// From this instant (inclusive).
    pub from: Option<Millis>,
    /// Up to this instant (exclusive).
    pub to: Option<Millis>,
    /// Only this sequence number (a link from the chain check).
    #[param(minimum = 1)]
    pub seq: Option<i64>,
}

/// The longest filter text accepted: longer is a mistake, not a search.
pub const MAX_FILTER_TEXT: usize = 200;

/// `text` as a `LIKE … ESCAPE '\'` pattern: `%`, `_` and `\` taken literally.
fn escaped(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

enum Bind {
    Int(i64),
    Text(String),
}

impl AuditFilter {
    /// Refuses a filter that cannot mean anything: overlong text, an empty
    /// period, a sequence number below 1.
    pub fn check(&self) -> StoreResult<()> {
        for (name, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("text", &self.text),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FILTER_TEXT)
            {
                return Err(StoreError::Invalid(format!(
                    "{name} is longer than {MAX_FILTER_TEXT} characters"
                )));
            }
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to <= from {
                return Err(StoreError::Invalid(
                    "the period ends before it starts".into(),
                ));
            }
        }
        if self.seq.is_some_and(|s| s < 1) {
            return Err(StoreError::Invalid("seq must be 1 or more".into()));
        }
        Ok(())
    }

    /// The filter with surrounding blanks dropped and empty texts unused.
    pub fn trimmed(self) -> AuditFilter {
        let t = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        AuditFilter {
            actor: t(self.actor),
            action: t(self.action),
            target: t(self.target),
            text: t(self.text),
            ..self
        }
    }

    /// The WHERE clause (after `WHERE`) and its values, in `$n` order.
    fn condition(&self, before_seq: Option<i64>) -> (String, Vec<Bind>) {
        let mut conds: Vec<String> = Vec::new();
        let mut binds = Vec::new();
        let mut cond = |sql: &str, value: Bind| {
            binds.push(value);
            conds.push(sql.replace('?', &format!("${}", binds.len())));
        };
        cond("seq < ?", Bind::Int(before_seq.unwrap_or(i64::MAX)));
        if let Some(v) = &self.actor {
            cond("actor = ?", Bind::Text(v.clone()));
        }
        match &self.action {
            Some(v) if v.ends_with('.') => {
                cond(
                    "action LIKE ? ESCAPE '\\'",
                    Bind::Text(format!("{}%", escaped(v))),
                );
            }
            Some(v) => cond("action = ?", Bind::Text(v.clone())),
            None => {}
        }
        if let Some(v) = &self.target {
            cond("target = ?", Bind::Text(v.clone()));
        }
        if let Some(v) = &self.text {
            cond(
                "LOWER(detail) LIKE ? ESCAPE '\\'",
                Bind::Text(format!("%{}%", escaped(&v.to_lowercase()))),
            );
        }
        if let Some(v) = self.from {
            cond("at >= ?", Bind::Int(v.get()));
        }
        if let Some(v) = self.to {
            cond("at < ?", Bind::Int(v.get()));
        }
        if let Some(v) = self.seq {
            cond("seq = ?", Bind::Int(v));
        }
        (conds.join(" AND "), binds)
    }
}

impl Store {
    /// Audit entries that match `filter`, newest first, older than
    /// `before_seq` (the keyset cursor: the last seq of the previous page).
    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let filter = filter.clone().trimmed();
        filter.check()?;
        let (condition, binds) = filter.condition(before_seq);
        let sql = format!(
            "SELECT seq, at, actor, action, target, detail, prev, link FROM admin_audit \
             WHERE {condition} ORDER BY seq DESC LIMIT ${}",
            binds.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(audit_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_a_like_pattern_with_its_wildcards_escaped() {
        let f = AuditFilter {
            action: Some("card_x.".into()),
            text: Some("50%".into()),
            ..AuditFilter::default()
        };
        let (sql, binds) = f.condition(Some(9));
        assert_eq!(
            sql,
            "seq < $1 AND action LIKE $2 ESCAPE '\\' AND LOWER(detail) LIKE $3 ESCAPE '\\'"
        );
        let texts: Vec<String> = binds
            .into_iter()
            .filter_map(|b| match b {
                Bind::Text(t) => Some(t),
                Bind::Int(_) => None,
            })
            .collect();
        assert_eq!(texts, vec!["card\\_x.%".to_string(), "%50\\%%".to_string()]);
    }
}
