//! Sites (with their threat level and time zone) and their holiday calendars.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{id_cursor, page_size, paged, stored_id, Change, Id, Name, Page, ThreatLevel};
use crate::store::{ChangeScope, Store, StoreError, StoreResult};

/// A building or estate with its own threat level and holiday calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Site {
    /// The site's id.
    pub id: Id,
    /// Its name.
    pub name: String,
    /// IANA time zone for schedules, e.g. `Asia/Tokyo`.
    pub time_zone: String,
    /// The site-wide threat level.
    pub threat: ThreatLevel,
}

/// The JSON Schema pattern of a time zone name.
pub const TIME_ZONE_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9_+-]{1,30}){0,2}$";

/// What a client sends to create or update a site.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteInput {
    /// The site's name.
    pub name: Name,
    /// IANA time zone name; on create defaults to `Asia/Tokyo`, on update
    /// omitted keeps the current one.
    #[serde(default)]
    #[schema(
        pattern = "^[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9_+-]{1,30}){0,2}$",
        max_length = 92
    )]
    pub time_zone: Option<String>,
}

fn check_time_zone(tz: &str) -> StoreResult<()> {
    let part_ok = |p: &str, first: bool| {
        let len = p.chars().count();
        (1..=30).contains(&len)
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'))
            && (!first || p.starts_with(|c: char| c.is_ascii_alphabetic()))
    };
    let parts: Vec<&str> = tz.split('/').collect();
    let ok =
        (1..=3).contains(&parts.len()) && parts.iter().enumerate().all(|(i, p)| part_ok(p, i == 0));
    if !ok {
        return Err(StoreError::Invalid(format!(
            "{tz:?} is not a time zone name like Asia/Tokyo"
        )));
    }
    // The shape alone let `Asia/Tokio` through; controllers read schedules in
    // this zone, so it must be one the tz database knows.
    jiff::tz::TimeZone::get(tz).map(|_| ()).map_err(|_| {
        StoreError::Invalid(format!(
            "{tz:?} is not in the tz database (a name like Asia/Tokyo)"
        ))
    })
}

/// A new threat level.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreatInput {
    /// The threat level.
    pub threat: ThreatLevel,
}

/// A holiday in a site's calendar: schedules treat it as the "holiday" day type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Holiday {
    /// The site.
    pub site_id: Id,
    /// The date, `YYYY-MM-DD`, in the site's time zone.
    pub date: String,
    /// What the holiday is.
    pub name: String,
}

/// What a client sends to add or rename a holiday.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayInput {
    /// What the holiday is, e.g. 勤労感謝の日.
    pub name: Name,
}

/// Checks a `YYYY-MM-DD` date (RFC 3339 full-date) and returns it.
pub fn check_date(s: &str) -> StoreResult<String> {
    let bad = || StoreError::Invalid(format!("{s:?} is not a date YYYY-MM-DD"));
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse::<u16>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad());
    };
    let year = i16::try_from(y).map_err(|_| bad())?;
    let month = u8::try_from(m).map_err(|_| bad())?;
    let day = u8::try_from(d).map_err(|_| bad())?;
    tobira_firmware::LocalDate::new(year, month, day).map_err(|_| bad())?;
    Ok(s.to_string())
}

type SiteRow = (i64, String, String, String);

fn site(row: SiteRow) -> StoreResult<Site> {
    Ok(Site {
        id: stored_id(row.0)?,
        name: row.1,
        time_zone: row.2,
        threat: ThreatLevel::parse(&row.3)?,
    })
}

impl Store {
    /// Sites by id.
    pub async fn list_sites(
        &self,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Site>> {
        let limit = page_size(limit)?;
        let rows: Vec<SiteRow> = sqlx::query_as(
            "SELECT id, name, time_zone, threat FROM sites WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(id_cursor(cursor)?)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(site)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |s| s.id.to_string()))
    }

    /// One site.
    pub async fn site(&self, id: Id) -> StoreResult<Site> {
        let row: Option<SiteRow> =
            sqlx::query_as("SELECT id, name, time_zone, threat FROM sites WHERE id = $1")
                .bind(id.get())
                .fetch_optional(self.pool())
                .await?;
        site(row.ok_or_else(|| StoreError::NotFound(format!("site {id}")))?)
    }

    /// Adds a site.
    pub async fn create_site(&self, actor: &str, input: &SiteInput) -> StoreResult<Site> {
        let tz = input
            .time_zone
            .clone()
            .unwrap_or_else(|| "Asia/Tokyo".into());
        check_time_zone(&tz)?;
        let mut tx = self.begin().await?;
        let id: i64 =
            sqlx::query_scalar("INSERT INTO sites (name, time_zone) VALUES ($1, $2) RETURNING id")
                .bind(input.name.as_str())
                .bind(&tz)
                .fetch_one(&mut *tx)
                .await?;
        let id = stored_id(id)?;
        let target = format!("site:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name, "time_zone": tz});
        self.finish(
            tx,
            Change {
                actor,
                action: "site.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.site(id).await
    }

    /// Renames a site or changes its time zone.
    pub async fn update_site(&self, actor: &str, id: Id, input: &SiteInput) -> StoreResult<Site> {
        if let Some(tz) = &input.time_zone {
            check_time_zone(tz)?;
        }
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE sites SET name = $1, time_zone = COALESCE($2, time_zone) WHERE id = $3",
        )
        .bind(input.name.as_str())
        .bind(input.time_zone.clone())
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("site {id}")));
        }
        let target = format!("site:{id}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name, "time_zone": input.time_zone});
        self.finish(
            tx,
            Change {
                actor,
                action: "site.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.site(id).await
    }

    /// Removes a site that nothing refers to any more.
    pub async fn delete_site(&self, actor: &str, id: Id) -> StoreResult<()> {
        let tx = self.begin().await?;
        self.delete_structure(
            tx,
            actor,
            "site",
            "sites",
            id,
            "the site still has zones, controllers or holidays",
        )
        .await
    }

    /// Sets a site's threat level: an urgent change for every controller of the site.
    pub async fn set_site_threat(
        &self,
        actor: &str,
        id: Id,
        threat: ThreatLevel,
    ) -> StoreResult<Site> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE sites SET threat = $1 WHERE id = $2")
            .bind(threat.as_str())
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("site {id}")));
        }
        let target = format!("site:{id}");
        let version = self
            .record_change(&mut tx, ChangeScope::Threat, &target, true)
            .await?;
        let detail = serde_json::json!({"threat": threat});
        self.finish(
            tx,
            Change {
                actor,
                action: "site.threat",
                target,
                detail,
                version: Some((version, true)),
            },
        )
        .await?;
        self.site(id).await
    }

    /// A site's holidays by date.
    pub async fn list_holidays(
        &self,
        site: Id,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Holiday>> {
        self.site(site).await?;
        let limit = page_size(limit)?;
        let after = match cursor {
            Some(c) => check_date(c).map_err(|_| StoreError::Invalid("bad cursor".into()))?,
            None => String::new(),
        };
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT site_id, date, name FROM holidays WHERE site_id = $1 AND date > $2 ORDER BY date LIMIT $3",
        )
        .bind(site.get())
        .bind(after)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(|(s, date, name)| {
                Ok(Holiday {
                    site_id: stored_id(s)?,
                    date,
                    name,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |h| h.date.clone()))
    }

    /// Adds a holiday, or renames it if the date is already one.
    pub async fn put_holiday(
        &self,
        actor: &str,
        site: Id,
        date: &str,
        input: &HolidayInput,
    ) -> StoreResult<Holiday> {
        let date = check_date(date)?;
        self.site(site).await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO holidays (site_id, date, name) VALUES ($1, $2, $3) ON CONFLICT (site_id, date) DO UPDATE SET name = excluded.name",
        )
        .bind(site.get())
        .bind(&date)
        .bind(input.name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "no such site"))?;
        let target = format!("site:{site}/holiday:{date}");
        let version = self.structure_change(&mut tx, &target).await?;
        let detail = serde_json::json!({"name": input.name});
        self.finish(
            tx,
            Change {
                actor,
                action: "holiday.put",
                target,
                detail,
                version,
            },
        )
        .await?;
        Ok(Holiday {
            site_id: site,
            date,
            name: input.name.as_str().to_string(),
        })
    }

    /// Removes a holiday.
    pub async fn delete_holiday(&self, actor: &str, site: Id, date: &str) -> StoreResult<()> {
        let date = check_date(date)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM holidays WHERE site_id = $1 AND date = $2")
            .bind(site.get())
            .bind(&date)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "holiday {date} at site {site}"
            )));
        }
        let target = format!("site:{site}/holiday:{date}");
        let version = self.structure_change(&mut tx, &target).await?;
        self.finish(
            tx,
            Change {
                actor,
                action: "holiday.delete",
                target,
                detail: serde_json::json!({}),
                version,
            },
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_time_zones() {
        assert!(check_date("2026-11-23").is_ok());
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-11-23",
            "2026-1-23",
            "２０２６-11-23",
            "2026-11-2x",
        ] {
            assert!(check_date(bad).is_err(), "{bad}");
        }
        assert!(check_time_zone("Asia/Tokyo").is_ok());
        assert!(check_time_zone("America/Argentina/Buenos_Aires").is_ok());
        assert!(check_time_zone("UTC").is_ok());
        for bad in [
            "",
            "/Tokyo",
            "Asia//Tokyo",
            "Asia/Tokyo/a/b",
            "1Asia",
            "Asia/東京",
            "Asia/Tokio",
            "Europe/Atlantis",
        ] {
            assert!(check_time_zone(bad).is_err(), "{bad}");
        }
    }
}
