//! Sync links: which shard an external record became, and the hash of
//! what was last written, so an unchanged record is not rewritten and a
//! record is never made into a second shard.
//!
//! Ids are derived, never random: the shard's from (tenant, integration,
//! entity, external id), so a run that died after writing shards and before
//! recording their links writes the same shards again on resume; the link's
//! from (integration, entity, external id), so a page's links are read in
//! one query by id (one query per page on Cosmos DB, not one read per record).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::super::model::SyncLink;
use crate::domain::tenancy::TenantId;
use crate::platform::store::{Filter, Op, Query, Store, StoreResult};

/// The namespace of derived sync ids (UUID v5).
const NAMESPACE: Uuid = Uuid::from_u128(0x5c1b_7e2a_9f34_4d0e_8a61_c3f0_2b9d_4e17);

/// The shard a record becomes.
pub fn shard_id(tenant: TenantId, integration: Uuid, entity: &str, external_id: &str) -> Uuid {
    let name = format!("shard\n{tenant}\n{integration}\n{entity}\n{external_id}");
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// The link of a record.
pub fn link_id(integration: Uuid, entity: &str, external_id: &str) -> String {
    let name = format!("link\n{integration}\n{entity}\n{external_id}");
    Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// The hash of mapped content: SHA-256 of its JSON text (object keys are
/// sorted, so equal content hashes equally).
pub fn content_hash(data: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    // Writing a Map into a hasher cannot fail.
    let _ = serde_json::to_writer(HashWriter(&mut h), data);
    hex(&h.finalize())
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The links of `ids` (link ids) in the tenant's partition, by link id:
/// one query per chunk of 1,000 ids.
pub async fn read_many(
    store: &dyn Store,
    tenant: TenantId,
    ids: &[String],
) -> StoreResult<HashMap<String, SyncLink>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let max = u32::try_from(chunk.len()).unwrap_or(1000);
        let q = Query::partition(tenant.key())
            .filter(Filter::new("id", Op::In, json!(chunk)))
            .limit(max);
        let links: Vec<SyncLink> = store.all(q, 10).await?;
        out.extend(links.into_iter().map(|l| (l.id.clone(), l)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let t = TenantId(Uuid::nil());
        let i = Uuid::from_u128(7);
        assert_eq!(
            shard_id(t, i, "Account", "001"),
            shard_id(t, i, "Account", "001")
        );
        assert_ne!(
            shard_id(t, i, "Account", "001"),
            shard_id(t, i, "Contact", "001")
        );
        assert_ne!(link_id(i, "Account", "001"), link_id(i, "Account", "002"));
    }

    #[test]
    fn equal_content_hashes_equally_whatever_the_order() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,2]}}"#).expect("json");
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"a":{"x":[1,2],"y":2},"b":1}"#).expect("json");
        assert_eq!(content_hash(&a), content_hash(&b));
        let c: Map<String, Value> = serde_json::from_str(r#"{"b":2}"#).expect("json");
        assert_ne!(content_hash(&a), content_hash(&c));
    }
}
