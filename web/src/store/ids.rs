//! Ids are never reused after a delete: on SQLite every table keyed by an
//! `INTEGER PRIMARY KEY` is rebuilt once with `AUTOINCREMENT`.
//!
//! Without `AUTOINCREMENT`, SQLite hands out the largest id plus one, so
//! deleting the newest person gave their id to the next one (the audit log
//! had `person:6` for two people). PostgreSQL's identity columns never reuse.
//!
//! Why here and not in a migration: SQLite cannot add `AUTOINCREMENT` to a
//! table, so the table is rebuilt (SQLite's documented twelve-step
//! procedure), which needs foreign keys off — otherwise dropping the old
//! `people` would cascade to enrollments, memberships and bookings — and sqlx
//! runs every SQLite migration inside a transaction, where
//! `PRAGMA foreign_keys` has no effect. The rebuild copies each table's own
//! current definition, so columns added by any migration are kept, and tables
//! added later get the same treatment.

use sqlx::Acquire;

use super::{StoreError, StoreResult};

/// The definition of `table` with `AUTOINCREMENT`, created under `name`; `None`
/// if the table has no `INTEGER PRIMARY KEY` column.
fn autoincrement_definition(sql: &str, name: &str) -> Option<String> {
    const KEY: &str = "INTEGER PRIMARY KEY";
    let upper = sql.to_ascii_uppercase();
    let key = upper.find(KEY)?;
    let open = upper.find('(')?;
    if key < open {
        return None;
    }
    let end = key + KEY.len();
    Some(format!(
        "CREATE TABLE \"{name}\" {}{} AUTOINCREMENT{}",
        &sql[open..key],
        &sql[key..end],
        &sql[end..]
    ))
}

/// Rebuilds every table that would reuse ids; does nothing once done.
pub(crate) async fn never_reuse_sqlite_ids(pool: &sqlx::AnyPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    let pending: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' AND upper(sql) LIKE '%INTEGER PRIMARY KEY%' \
         AND upper(sql) NOT LIKE '%AUTOINCREMENT%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    if pending.is_empty() {
        return Ok(());
    }
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let rebuilt = rebuild(&mut conn, &pending).await;
    // Back on whatever happened: this connection serves the store afterwards.
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    rebuilt
}

async fn rebuild(conn: &mut sqlx::AnyConnection, tables: &[(String, String)]) -> StoreResult<()> {
    let mut tx = conn.begin().await?;
    for (table, sql) in tables {
        let temp = format!("{table}__autoincrement");
        let Some(definition) = autoincrement_definition(sql, &temp) else {
            continue;
        };
        // Indexes and triggers go with the old table; their text recreates them.
        let dependents: Vec<String> = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE tbl_name = $1 AND type IN ('index', 'trigger') AND sql IS NOT NULL",
        )
        .bind(table.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let steps = [
            definition,
            format!("INSERT INTO \"{temp}\" SELECT * FROM \"{table}\""),
            format!("DROP TABLE \"{table}\""),
            format!("ALTER TABLE \"{temp}\" RENAME TO \"{table}\""),
        ];
        for step in steps.iter().chain(&dependents) {
            sqlx::query(step).execute(&mut *tx).await?;
        }
    }
    // Step 10 of the procedure: the copies must still satisfy every reference.
    let broken: Vec<String> = sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut *tx)
        .await?;
    if let Some(table) = broken.first() {
        return Err(StoreError::Corrupt(format!(
            "rebuilding tables for AUTOINCREMENT left a broken reference in {table}"
        )));
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_column_gains_autoincrement_and_the_table_its_new_name() {
        let sql =
            "CREATE TABLE sites (\n    id          INTEGER PRIMARY KEY,\n    name TEXT NOT NULL\n)";
        assert_eq!(
            autoincrement_definition(sql, "sites__autoincrement").unwrap(),
            "CREATE TABLE \"sites__autoincrement\" (\n    id          INTEGER PRIMARY KEY AUTOINCREMENT,\n    name TEXT NOT NULL\n)"
        );
        assert!(autoincrement_definition("CREATE TABLE t (uid TEXT PRIMARY KEY)", "x").is_none());
    }
}
