//! What the admin's list pages read: a table sorted by a chosen column,
//! filtered and searched, counted and cut into numbered pages; the names of
//! the small tables for choosers; and what still refers to a row before it
//! is deleted. (The JSON API pages by id cursor instead.)

use sqlx::Row;

use crate::store::{Store, StoreError, StoreResult};

/// A table as a list page sees it. Every column named here is a fixed
/// identifier from the code, never from a request: requests choose among them
/// by position.
#[derive(Debug, Clone, Copy)]
pub struct BrowseTable {
    /// The table.
    pub table: &'static str,
    /// Its key column (`id`, or `uid` for cards).
    pub key: &'static str,
    /// Columns a page may sort by.
    pub sortable: &'static [&'static str],
    /// Columns a page may filter on by equality.
    pub filterable: &'static [&'static str],
    /// Columns the search box looks in, and how.
    pub searchable: &'static [Search],
}

/// How the search box looks in a column.
#[derive(Debug, Clone, Copy)]
pub enum Search {
    /// Any part of the text, case-insensitively (a full scan: small tables
    /// and names).
    Contains(&'static str),
    /// The start of an upper-case hexadecimal key (card UIDs), through the
    /// column's index; what is typed is read as hex, spaces and colons dropped.
    HexPrefix(&'static str),
}

/// What a list page asks for.
#[derive(Debug, Clone, Default)]
pub struct BrowseQuery {
    /// Sort by this column (one of the table's sortable ones); the key breaks ties.
    pub sort: Option<String>,
    /// Largest first.
    pub descending: bool,
    /// Column = value filters (columns among the filterable ones).
    pub filters: Vec<(String, FilterValue)>,
    /// Text every searchable column is searched for (case-insensitive part).
    pub search: Option<String>,
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return (1 to 200).
    pub limit: i64,
}

/// A filter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// A number column (ids, levels).
    Number(i64),
    /// A text column (kinds, states).
    Text(String),
}

/// One page of keys and how many rows match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Browsed {
    /// The rows' keys, in order, as text.
    pub keys: Vec<String>,
    /// Rows matching the filters and search.
    pub total: i64,
}

/// Something that still refers to a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// What kind of thing (`door`, `grant`, `booking`, `card`, …).
    pub kind: &'static str,
    /// Its key, as text.
    pub key: String,
    /// Its name or a short description.
    pub label: String,
}

/// The tables with an `id` and a `name` that choosers list in full.
const NAMED_TABLES: &[&str] = &[
    "sites",
    "zones",
    "schedules",
    "controllers",
    "access_groups",
    "doors",
];

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The range of upper-case hex keys that start with the hex digits of
/// `text` (spaces and colons between bytes dropped).
fn hex_prefix_range(text: &str) -> Option<(String, String)> {
    let digits = crate::store::resources::Uid::digits_as_typed(text)?;
    // Every key with this prefix continues with hex digits only, so all sort
    // before the prefix followed by `G` (after `F` and the digits in the C
    // collation and in the usual locales' alike), and no other key falls between.
    let high = format!("{digits}G");
    Some((digits, high))
}

/// `sql` with the filter values bound in order.
fn bound<'q>(
    sql: &'q str,
    binds: &[FilterValue],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for value in binds {
        q = match value {
            FilterValue::Number(n) => q.bind(*n),
            FilterValue::Text(t) => q.bind(t.clone()),
        };
    }
    q
}

impl Store {
    /// A sorted, filtered page of `spec`'s keys and the count of all matches.
    pub async fn browse(&self, spec: &BrowseTable, query: &BrowseQuery) -> StoreResult<Browsed> {
        let limit = query.limit.clamp(1, 200);
        let offset = query.offset.max(0);
        let sort = match &query.sort {
            Some(s) => *spec
                .sortable
                .iter()
                .find(|c| **c == s.as_str())
                .ok_or_else(|| StoreError::Invalid(format!("cannot sort by {s:?}")))?,
            None => spec.key,
        };
        let mut clauses = Vec::new();
        let mut binds: Vec<FilterValue> = Vec::new();
        for (column, value) in &query.filters {
            let column = spec
                .filterable
                .iter()
                .find(|c| **c == column.as_str())
                .ok_or_else(|| StoreError::Invalid(format!("cannot filter on {column:?}")))?;
            binds.push(value.clone());
            clauses.push(format!("{column} = ${}", binds.len()));
        }
        if let Some(text) = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let mut any = Vec::new();
            for search in spec.searchable {
                match search {
                    Search::Contains(column) => {
                        binds.push(FilterValue::Text(like_pattern(text)));
                        any.push(format!(
                            "LOWER(COALESCE({column}, '')) LIKE ${} ESCAPE '\\'",
                            binds.len()
                        ));
                    }
                    Search::HexPrefix(column) => {
                        let Some((low, high)) = hex_prefix_range(text) else {
                            continue;
                        };
                        binds.push(FilterValue::Text(low));
                        binds.push(FilterValue::Text(high));
                        let n = binds.len();
                        any.push(format!("({column} >= ${} AND {column} < ${n})", n - 1));
                    }
                }
            }
            // Text no column can match matches nothing.
            clauses.push(if any.is_empty() {
                "1 = 0".to_string()
            } else {
                format!("({})", any.join(" OR "))
            });
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let key = spec.key;
        let table = spec.table;
        // The key breaks ties; named twice (`ORDER BY uid, uid`) it made
        // SQLite sort 100,000 rows instead of reading its index in order.
        let order = if sort == key {
            format!("{key} {direction}")
        } else {
            format!("{sort} {direction}, {key} {direction}")
        };
        let count_sql = format!("SELECT COUNT(*) FROM {table}{filter}");
        // A search in text reads every row once anyway: the count rides along
        // with the page instead of a second scan. (A key-range search counts
        // through the index, cheaper than carrying a count over every match.)
        let scanning = query
            .search
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
            && spec
                .searchable
                .iter()
                .any(|s| matches!(s, Search::Contains(_)));
        if scanning {
            let sql = format!(
                "SELECT CAST({key} AS TEXT) AS browse_key, COUNT(*) OVER () FROM {table}{filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
            );
            let rows = bound(&sql, &binds).fetch_all(self.pool()).await?;
            let mut keys = Vec::with_capacity(rows.len());
            let mut total = None;
            for row in rows {
                keys.push(row.try_get::<String, _>(0)?);
                total = Some(row.try_get::<i64, _>(1)?);
            }
            let total = match total {
                Some(t) => t,
                // Past the last page: no row carried the count.
                None => bound(&count_sql, &binds)
                    .fetch_one(self.pool())
                    .await?
                    .try_get::<i64, _>(0)?,
            };
            return Ok(Browsed { keys, total });
        }
        let sql = format!(
            "SELECT CAST({key} AS TEXT) AS browse_key FROM {table}{filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        );
        // The page and the count on two connections at once: a deep page of
        // a large filtered list spends about as long on each.
        let (rows, count) = tokio::try_join!(
            bound(&sql, &binds).fetch_all(self.pool()),
            bound(&count_sql, &binds).fetch_one(self.pool()),
        )?;
        let keys = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let total = count.try_get::<i64, _>(0)?;
        Ok(Browsed { keys, total })
    }

    /// Every row of a small named table (`sites`, `zones`, `schedules`,
    /// `controllers`, `access_groups`, `doors`) as (id, name), by name.
    pub async fn names(&self, table: &str) -> StoreResult<Vec<(i64, String)>> {
        let table = NAMED_TABLES
            .iter()
            .find(|t| **t == table)
            .ok_or_else(|| StoreError::Invalid(format!("no name list for {table:?}")))?;
        Ok(
            sqlx::query_as(&format!("SELECT id, name FROM {table} ORDER BY name, id"))
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The names of some people, by id (a list page's people, not all 10,000).
    pub async fn people_names(&self, ids: &[i64]) -> StoreResult<Vec<(i64, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        // The ids are numbers formatted here, never request text.
        Ok(sqlx::query_as(&format!(
            "SELECT id, name FROM people WHERE id IN ({})",
            list.join(",")
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// What still refers to row `id` of `kind` (`site`, `zone`, `schedule`,
    /// `controller`, `door`, `person`, `group`): what blocks its deletion, or
    /// goes with it (a group's grants, a person's bookings), for the page to
    /// show before anyone presses delete.
    pub async fn references(&self, kind: &str, id: i64) -> StoreResult<Vec<Reference>> {
        let mut found = Vec::new();
        let mut add = |kind: &'static str, rows: Vec<(i64, String)>| {
            found.extend(rows.into_iter().map(|(key, label)| Reference {
                kind,
                key: key.to_string(),
                label,
            }));
        };
        let rows = |sql: &'static str| {
            let pool = self.pool();
            async move {
                sqlx::query_as::<_, (i64, String)>(sql)
                    .bind(id)
                    .fetch_all(pool)
                    .await
            }
        };
        match kind {
            "site" => {
                add(
                    "zone",
                    rows("SELECT id, name FROM zones WHERE site_id = $1 ORDER BY id").await?,
                );
                add(
                    "controller",
                    rows("SELECT id, name FROM controllers WHERE site_id = $1 ORDER BY id").await?,
                );
            }
            "zone" => {
                add(
                    "door",
                    rows("SELECT id, name FROM doors WHERE inside_zone_id = $1 OR outside_zone_id = $1 ORDER BY id")
                        .await?,
                );
                add(
                    "booking",
                    rows("SELECT b.id, p.name FROM bookings b JOIN people p ON p.id = b.person_id WHERE b.room_zone_id = $1 ORDER BY b.id")
                        .await?,
                );
                add("grant", self.grants_naming_zone(id).await?);
            }
            "schedule" => {
                add(
                    "zone",
                    rows("SELECT id, name FROM zones WHERE opening_schedule_id = $1 ORDER BY id")
                        .await?,
                );
                add(
                    "grant",
                    rows("SELECT g.id, a.name FROM grants g JOIN access_groups a ON a.id = g.group_id WHERE g.schedule_id = $1 ORDER BY g.id")
                        .await?,
                );
            }
            "controller" => {
                add(
                    "door",
                    rows("SELECT id, name FROM doors WHERE controller_id = $1 ORDER BY id").await?,
                );
            }
            "door" => {
                add("booking", self.bookings_through_door(id).await?);
            }
            "person" => {
                add("card", rows("SELECT CAST(0 AS BIGINT), uid FROM cards WHERE person_id = $1 ORDER BY uid").await?);
                add(
                    "booking",
                    rows("SELECT b.id, z.name FROM bookings b JOIN zones z ON z.id = b.room_zone_id WHERE b.person_id = $1 ORDER BY b.id")
                        .await?,
                );
                add(
                    "group",
                    rows("SELECT a.id, a.name FROM group_members m JOIN access_groups a ON a.id = m.group_id WHERE m.person_id = $1 ORDER BY a.id")
                        .await?,
                );
            }
            "group" => {
                add(
                    "grant",
                    rows("SELECT id, CAST(id AS TEXT) AS label FROM grants WHERE group_id = $1 ORDER BY id")
                        .await?,
                );
            }
            other => return Err(StoreError::Invalid(format!("no references for {other:?}"))),
        }
        // A card's key is its uid: the label carries it.
        for r in &mut found {
            if r.kind == "card" {
                r.key = r.label.clone();
            }
        }
        Ok(found)
    }

    /// Grants whose zone list names `zone` (the list is stored as JSON text;
    /// grants are few, so they are read and parsed here).
    async fn grants_naming_zone(&self, zone: i64) -> StoreResult<Vec<(i64, String)>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT g.id, g.zones, a.name FROM grants g JOIN access_groups a ON a.id = g.group_id ORDER BY g.id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, zones, _)| {
                serde_json::from_str::<Vec<i64>>(zones).is_ok_and(|z| z.contains(&zone))
            })
            .map(|(id, _, group)| (id, group))
            .collect())
    }

    /// Bookings whose path goes through `door`.
    async fn bookings_through_door(&self, door: i64) -> StoreResult<Vec<(i64, String)>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT b.id, b.path, p.name FROM bookings b JOIN people p ON p.id = b.person_id ORDER BY b.id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, path, _)| {
                serde_json::from_str::<Vec<i64>>(path).is_ok_and(|p| p.contains(&door))
            })
            .map(|(id, _, who)| (id, who))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hex_prefix_is_a_key_range() {
        let range = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(hex_prefix_range("04 a1:b2"), range("04A1B2", "04A1B2G"));
        assert_eq!(hex_prefix_range("0F"), range("0F", "0FG"));
        assert_eq!(hex_prefix_range("Tanaka"), None);
        assert_eq!(hex_prefix_range(" "), None);
    }

    #[test]
    fn search_text_cannot_widen_the_pattern() {
        assert_eq!(like_pattern("Tanaka"), "%tanaka%");
        assert_eq!(like_pattern("50%_\\"), "%50\\%\\_\\\\%");
    }
}
