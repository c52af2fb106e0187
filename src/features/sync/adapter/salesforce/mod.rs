//! The adapter for the Salesforce REST API (SPEC §9.1).
//!
//! Changes are read with SOQL ordered by `SystemModstamp, Id`; the cursor is
//! that pair of the last record returned, so records sharing one timestamp
//! across a page boundary are neither lost nor repeated. A query asks for
//! one record more than the run may take: whether that extra record exists
//! makes `more` exact. Within a run the query's `nextRecordsUrl` is the
//! page token; a call continuing it passes the run's remaining budget as
//! `max` (as the port defines `max`), so the query's extra record falls
//! past that budget and `more` stays exact across its batches. Writes use `POST`/`PATCH /sobjects/{type}`, with
//! `If-Unmodified-Since` as Salesforce's concurrency check.

mod calls;
pub mod soql;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use calls::Api;
pub use calls::{DEFAULT_USAGE_THRESHOLD, parse_usage};
use soql::Cursor;

use super::{
    Adapter, AdapterContext, AdapterError, AdapterResult, ChangesPage, ChangesRequest, Credentials,
    FieldInfo, Record, RemoteWrite, TestOutcome,
};
use crate::domain::tenancy::Ctx;
use crate::error::Error;
use crate::features::integrations::model::Integration;
use crate::platform::outbound::OutboundClient;

/// The API version used when configuration names none.
pub const DEFAULT_API_VERSION: &str = "v60.0";

/// The Salesforce adapter of one integration.
pub struct SalesforceAdapter {
    api: Api,
    batch_size: Option<u32>,
}

impl std::fmt::Debug for SalesforceAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceAdapter")
            .field("instance", &self.api.instance.as_str())
            .field("version", &self.api.version)
            .finish_non_exhaustive()
    }
}

/// `v60.0` from `v60.0` or `60.0`; anything else is refused.
fn normalise_version(raw: &str) -> AdapterResult<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(DEFAULT_API_VERSION.to_owned());
    }
    let digits = raw.strip_prefix('v').unwrap_or(raw);
    let ok = digits.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.len() <= 3
            && b.len() <= 2
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if ok {
        Ok(format!("v{digits}"))
    } else {
        Err(AdapterError::Rejected(format!(
            "{:?} is not a Salesforce API version (v60.0)",
            soql::shorten(raw)
        )))
    }
}

impl SalesforceAdapter {
    /// Opens the adapter for an integration: its instance URL (set from the
    /// OAuth token answer's `instance_url`) and its connection's credentials.
    pub async fn open(
        cx: &AdapterContext,
        ctx: &Ctx,
        integration: &Integration,
    ) -> crate::error::Result<Self> {
        let Some(instance) = integration.instance_url.as_deref() else {
            return Err(Error::Conflict(
                "the Salesforce integration has no instance URL yet; connect it first".into(),
            ));
        };
        let credentials =
            Credentials::open(cx.connections.clone(), ctx.clone(), integration.id).await?;
        Self::new(
            cx.outbound.clone(),
            instance,
            &cx.providers.salesforce_api_version,
            credentials,
        )
        .map_err(|e| Error::Conflict(e.to_string()))
    }

    /// An adapter for the org at `instance_url` (`https://acme.my.salesforce.com`),
    /// API `api_version` (`v60.0`; empty: the default), calling through
    /// `outbound` with `credentials` (tests and the benchmark use this directly).
    pub fn new(
        outbound: Arc<OutboundClient>,
        instance_url: &str,
        api_version: &str,
        credentials: Credentials,
    ) -> AdapterResult<Self> {
        let mut instance = Url::parse(instance_url.trim()).map_err(|e| {
            AdapterError::Rejected(format!("the Salesforce instance URL is invalid: {e}"))
        })?;
        if !matches!(instance.scheme(), "https" | "http") || instance.host().is_none() {
            return Err(AdapterError::Rejected(
                "the Salesforce instance URL must be an https URL with a host".into(),
            ));
        }
        instance.set_path("/");
        instance.set_query(None);
        instance.set_fragment(None);
        let version = normalise_version(api_version)?;
        Ok(Self {
            api: Api::new(outbound, instance, version, credentials),
            batch_size: None,
        })
    }

    /// Asks for `n` records per query batch (`Sforce-Query-Options:
    /// batchSize`, which Salesforce keeps within 200–2,000).
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n.clamp(200, 2000));
        self
    }

    /// Stops calling once the org's daily API usage reaches `percent`
    /// (default [`DEFAULT_USAGE_THRESHOLD`]).
    pub fn with_usage_threshold(mut self, percent: u8) -> Self {
        self.api.usage_threshold = percent.clamp(1, 100);
        self
    }

    /// The org's daily API usage `(used, max)` as last reported.
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        self.api.usage()
    }

    fn query_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.batch_size
            .and_then(|n| HeaderValue::from_str(&format!("batchSize={n}")).ok())
            .map(|v| (HeaderName::from_static("sforce-query-options"), v))
            .into_iter()
            .collect()
    }

    fn sobject_url(&self, entity: &str, rest: &str) -> AdapterResult<Url> {
        let entity = soql::entity(entity)?;
        self.api.data_url(&format!("sobjects/{entity}/{rest}"))
    }
}

/// A query answer (`GET /query`, `GET /query/{locator}`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryAnswer {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    next_records_url: Option<String>,
    #[serde(default)]
    records: Vec<Map<String, Value>>,
}

/// Drops `attributes` from a record and the related records in it.
fn strip_attributes(fields: &mut Map<String, Value>) {
    fields.remove("attributes");
    for v in fields.values_mut() {
        if let Value::Object(inner) = v {
            strip_attributes(inner);
        }
    }
}

/// A record as Salesforce sends it, without `attributes`.
fn record(mut fields: Map<String, Value>) -> AdapterResult<Record> {
    strip_attributes(&mut fields);
    let id = fields
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| AdapterError::BadAnswer("a Salesforce record has no Id".into()))?
        .to_owned();
    let modified_at = ["SystemModstamp", "LastModifiedDate"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_str))
        .and_then(soql::parse_datetime);
    Ok(Record {
        id,
        modified_at,
        fields,
    })
}

/// Top-level field names of a write.
fn check_write(fields: &Map<String, Value>) -> AdapterResult<()> {
    for k in fields.keys() {
        soql::entity(k).map_err(|_| {
            AdapterError::Rejected(format!(
                "{:?} is not a Salesforce field API name",
                soql::shorten(k)
            ))
        })?;
    }
    Ok(())
}

/// An `If-Unmodified-Since` value (HTTP date) from a version read earlier:
/// a Salesforce dateTime, RFC 3339 or already an HTTP date.
fn http_date(version: &str) -> AdapterResult<HeaderValue> {
    let t = soql::parse_datetime(version)
        .or_else(|| {
            chrono::DateTime::parse_from_rfc2822(version)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        })
        .ok_or_else(|| {
            AdapterError::Rejected(format!(
                "{:?} is not a Salesforce modification time",
                soql::shorten(version)
            ))
        })?;
    HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .map_err(|e| AdapterError::Rejected(e.to_string()))
}

/// `14800` as `14,800`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Adapter for SalesforceAdapter {
    async fn list_changes(&self, req: ChangesRequest<'_>) -> AdapterResult<ChangesPage> {
        let max = req.max.clamp(1, soql::MAX_PAGE);
        let url = match req.page_token {
            Some(token) => self.api.next_records_url(token)?,
            None => {
                let cursor = req.cursor.map(Cursor::from_value).transpose()?;
                let q = soql::changes_query(
                    req.entity,
                    req.fields,
                    cursor.as_ref(),
                    req.filters,
                    max + 1,
                )?;
                let mut url = self.api.data_url("query")?;
                url.query_pairs_mut().append_pair("q", &q);
                url
            }
        };
        let answer: QueryAnswer = self
            .api
            .call(Method::GET, url, None, &self.query_headers())
            .await?
            .json()?;
        let total = answer.records.len();
        let mut records = Vec::with_capacity(total.min(max));
        for fields in answer.records.into_iter().take(max) {
            records.push(record(fields)?);
        }
        let cursor = match records.last() {
            Some(last) => Some(
                Cursor {
                    modstamp: last.modified_at.ok_or_else(|| {
                        AdapterError::BadAnswer(format!(
                            "Salesforce record {} has no readable SystemModstamp",
                            last.id
                        ))
                    })?,
                    id: last.id.clone(),
                }
                .to_value(),
            ),
            None => None,
        };
        // Records past `max` in this batch (at least the query's extra one):
        // more exist; the next call queries again from the cursor. Otherwise
        // the query's own locator continues it, and a finished query that
        // never reached its extra record has nothing more.
        let (page_token, more) = if total > max {
            (None, true)
        } else if !answer.done {
            let next = answer.next_records_url.ok_or_else(|| {
                AdapterError::BadAnswer(
                    "Salesforce said more records follow but gave no nextRecordsUrl".into(),
                )
            })?;
            (Some(next), true)
        } else {
            (None, false)
        };
        Ok(ChangesPage {
            records,
            cursor,
            page_token,
            more,
        })
    }

    async fn get(&self, entity: &str, id: &str) -> AdapterResult<Option<Record>> {
        let url = self.sobject_url(entity, soql::record_id(id)?)?;
        match self.api.call(Method::GET, url, None, &[]).await {
            Ok(answer) => Ok(Some(record(answer.json()?)?)),
            Err(AdapterError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(
        &self,
        entity: &str,
        fields: &Map<String, Value>,
    ) -> AdapterResult<RemoteWrite> {
        check_write(fields)?;
        let url = self.sobject_url(entity, "")?;
        let body = Value::Object(fields.clone());
        let answer: Value = self
            .api
            .call(Method::POST, url, Some(&body), &[])
            .await?
            .json()?;
        let id = answer.get("id").and_then(Value::as_str).ok_or_else(|| {
            AdapterError::BadAnswer("Salesforce's create answer has no id".into())
        })?;
        Ok(RemoteWrite {
            id: id.to_owned(),
            version: None,
        })
    }

    async fn update(
        &self,
        entity: &str,
        id: &str,
        fields: &Map<String, Value>,
        if_version: Option<&str>,
    ) -> AdapterResult<RemoteWrite> {
        check_write(fields)?;
        let url = self.sobject_url(entity, soql::record_id(id)?)?;
        let mut headers = Vec::new();
        if let Some(v) = if_version {
            headers.push((reqwest::header::IF_UNMODIFIED_SINCE, http_date(v)?));
        }
        let body = Value::Object(fields.clone());
        self.api
            .call(Method::PATCH, url, Some(&body), &headers)
            .await?;
        Ok(RemoteWrite {
            id: id.to_owned(),
            version: None,
        })
    }

    async fn describe(&self, entity: &str) -> AdapterResult<Vec<FieldInfo>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Field {
            name: String,
            #[serde(default)]
            label: String,
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            createable: bool,
            #[serde(default)]
            nillable: bool,
            #[serde(default)]
            defaulted_on_create: bool,
        }
        #[derive(Deserialize)]
        struct Describe {
            fields: Vec<Field>,
        }
        let url = self.sobject_url(entity, "describe")?;
        let d: Describe = self.api.call(Method::GET, url, None, &[]).await?.json()?;
        Ok(d.fields
            .into_iter()
            .map(|f| FieldInfo {
                required: f.createable && !f.nillable && !f.defaulted_on_create,
                name: f.name,
                label: f.label,
                kind: f.kind,
            })
            .collect())
    }

    async fn test(&self) -> AdapterResult<TestOutcome> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Limit {
            max: u64,
            remaining: u64,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Limits {
            daily_api_requests: Limit,
        }
        let url = self.api.data_url("limits")?;
        let l: Limits = self.api.call(Method::GET, url, None, &[]).await?.json()?;
        Ok(TestOutcome {
            detail: format!(
                "Salesforce API {} answered; {} of {} API calls left today",
                self.api.version,
                grouped(l.daily_api_requests.remaining),
                grouped(l.daily_api_requests.max)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_dates_are_normalised() {
        assert_eq!(normalise_version("60.0").ok().as_deref(), Some("v60.0"));
        assert_eq!(
            normalise_version("").ok().as_deref(),
            Some(DEFAULT_API_VERSION)
        );
        assert!(normalise_version("v60/../x").is_err());
        assert_eq!(
            http_date("2024-05-01T10:00:00.000+0000")
                .ok()
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .as_deref(),
            Some("Wed, 01 May 2024 10:00:00 GMT")
        );
        assert_eq!(grouped(14800), "14,800");
        assert_eq!(grouped(100), "100");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn records_lose_attributes_at_every_level() {
        let raw = serde_json::json!({
            "attributes": {"type": "Opportunity", "url": "/x"},
            "Id": "006000000000001AAA",
            "SystemModstamp": "2024-05-01T10:00:00.000+0000",
            "Account": {"attributes": {"type": "Account"}, "Industry": "Energy"}
        });
        let Value::Object(m) = raw else {
            unreachable!()
        };
        let r = record(m).expect("record");
        assert_eq!(
            r.fields["Account"],
            serde_json::json!({"Industry": "Energy"})
        );
        assert!(!r.fields.contains_key("attributes"));
        assert!(r.modified_at.is_some());
    }
}
