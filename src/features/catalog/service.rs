//! The provider catalog: seeding, tenant-visible reads and super-admin CRUD.

use std::sync::Arc;
use std::time::Duration;

use super::Catalog;
use crate::domain::pages::{PageRequest, Paged};
use crate::domain::tenancy::{Ctx, TenantId};
use crate::domain::validation::Violations;
use crate::error::{Error, Result};
use crate::features::catalog::defaults::fill_missing;
use crate::features::catalog::model::{CatalogEntry, CatalogEntryInput, built_ins};
use crate::platform::store::{Container, ETag, Filter, Op, Query, StoreError};

/// Filters of the tenant catalog listing.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter {
    /// Only this category.
    pub category: Option<String>,
    /// Case-insensitive text in name, displayName or description.
    pub search: Option<String>,
}

/// Writes the built-in entries that are missing, and fills in the default
/// field mappings of stored built-ins seeded before they existed
/// (idempotent; edits by admins are kept).
pub async fn seed(app: &Catalog) -> Result<usize> {
    let now = app.clock.now();
    let mut created = 0;
    for input in built_ins() {
        let id = input.id.clone().unwrap_or_default();
        if let Some(stored) = find(app, &id).await? {
            update_built_in(app, stored, &input).await?;
            continue;
        }
        let mut entry = CatalogEntry::from_input(id, input, now);
        entry.built_in = true;
        match app.store.insert(&entry).await {
            Ok(_) => {
                created += 1;
                app.entries.invalidate(&());
            }
            Err(StoreError::Conflict) => {} // another instance seeded it first
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

/// Brings a stored built-in up to the seed's default field mappings where
/// it has none (another instance doing the same first is fine).
async fn update_built_in(
    app: &Catalog,
    mut stored: CatalogEntry,
    seed: &CatalogEntryInput,
) -> Result<()> {
    if !stored.built_in || !fill_missing(&mut stored.shard_mappings, &seed.shard_mappings) {
        return Ok(());
    }
    let etag = ETag::new(stored.etag.clone());
    stored.updated_at = app.clock.now();
    match app.store.put(&stored, Some(&etag)).await {
        Ok(_)
        | Err(StoreError::Conflict | StoreError::PreconditionFailed | StoreError::NotFound) => {
            app.entries.invalidate(&());
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Looks an entry up by id in any category (the catalog is small).
pub async fn find(app: &Catalog, id: &str) -> Result<Option<CatalogEntry>> {
    let q = Query::cross_partition().eq("id", id).limit(2);
    let (mut items, _) = app.store.page::<CatalogEntry>(&q).await?;
    Ok(items.pop())
}

/// How long tenants' requests use a catalog read: another instance's admin
/// writes show within this time (this process's at once).
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// The whole catalog, sorted by id, from the cache when it is fresh.
async fn cached(app: &Catalog) -> Result<Arc<Vec<CatalogEntry>>> {
    app.entries.get_or_load(&(), all(app)).await
}

/// One entry the caller's tenant may use.
pub async fn get_visible(app: &Catalog, tenant: TenantId, id: &str) -> Result<CatalogEntry> {
    cached(app)
        .await?
        .iter()
        .find(|e| e.id == id && e.visible_to(tenant))
        .cloned()
        .ok_or(Error::NotFound("catalog entry"))
}

/// The entries the caller's tenant may use, sorted by id.
pub async fn list_visible(
    app: &Catalog,
    ctx: &Ctx,
    filter: &CatalogFilter,
) -> Result<Vec<CatalogEntry>> {
    let search = filter.search.as_deref().map(str::to_lowercase);
    let entries = cached(app).await?;
    Ok(entries
        .iter()
        .filter(|e| filter.category.as_ref().is_none_or(|c| &e.category == c))
        .filter(|e| e.visible_to(ctx.tenant()))
        .filter(|e| {
            search.as_deref().is_none_or(|s| {
                [&e.name, &e.display_name, &e.description, &e.id]
                    .iter()
                    .any(|f| f.to_lowercase().contains(s))
            })
        })
        .cloned()
        .collect())
}

async fn all(app: &Catalog) -> Result<Vec<CatalogEntry>> {
    let q = Query::cross_partition().order_by("id", false).limit(1000);
    Ok(app.store.all::<CatalogEntry>(q, 10).await?)
}

/// Every entry (super-admin), paged by id.
pub async fn admin_list(app: &Catalog, page: &PageRequest) -> Result<Paged<CatalogEntry>> {
    let q = Query::cross_partition()
        .order_by("id", false)
        .limit(page.limit)
        .after(page.continuation.clone());
    let (items, continuation_token) = app.store.page::<CatalogEntry>(&q).await?;
    Ok(Paged {
        items,
        continuation_token,
    })
}

/// One entry, whatever its visibility (super-admin).
pub async fn admin_get(app: &Catalog, id: &str) -> Result<CatalogEntry> {
    find(app, id).await?.ok_or(Error::NotFound("catalog entry"))
}

/// Creates an entry (super-admin).
pub async fn admin_create(app: &Catalog, input: CatalogEntryInput) -> Result<CatalogEntry> {
    let Some(id) = input.id.clone() else {
        return Err(Error::invalid("/id", "is required"));
    };
    if find(app, &id).await?.is_some() {
        return Err(Error::Conflict(format!(
            "catalog entry {id} already exists"
        )));
    }
    check_token_url(app, &input).await?;
    let entry = CatalogEntry::from_input(id, input, app.clock.now());
    let saved = app.store.insert(&entry).await.map_err(|e| match e {
        StoreError::Conflict => {
            Error::Conflict(format!("catalog entry {} already exists", entry.id))
        }
        e => e.into(),
    })?;
    app.entries.invalidate(&());
    Ok(saved)
}

/// Replaces an entry (super-admin); moving it to another category moves its document.
pub async fn admin_replace(
    app: &Catalog,
    id: &str,
    input: CatalogEntryInput,
    if_match: Option<&ETag>,
) -> Result<CatalogEntry> {
    if input.id.as_deref().is_some_and(|body_id| body_id != id) {
        return Err(Error::Invalid(Violations::one(
            "/id",
            "must match the id in the path",
        )));
    }
    check_token_url(app, &input).await?;
    let current = admin_get(app, id).await?;
    if if_match.is_some_and(|m| m.as_str() != current.etag) {
        return Err(Error::PreconditionFailed);
    }
    let mut next = CatalogEntry::from_input(id.to_owned(), input, current.created_at);
    next.built_in = current.built_in;
    next.updated_at = app.clock.now();
    if next.category == current.category {
        let saved = app.store.put(&next, Some(&ETag::new(current.etag))).await?;
        app.entries.invalidate(&());
        return Ok(saved);
    }
    let saved = app.store.insert(&next).await;
    app.entries.invalidate(&());
    let saved = saved?;
    let removed = app
        .store
        .remove::<CatalogEntry>(&current.category, id, Some(&ETag::new(current.etag)))
        .await;
    app.entries.invalidate(&());
    removed?;
    Ok(saved)
}

/// The server calls a provider's token URL, so where it points is checked
/// by the URL policy before it is stored (its form was checked with the
/// rest of the input).
async fn check_token_url(app: &Catalog, input: &CatalogEntryInput) -> Result<()> {
    let Some(oauth) = &input.oauth else {
        return Ok(());
    };
    match app.urls.parse_for_storage(&oauth.token_url).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::invalid("/oauth/tokenUrl", e.to_string())),
    }
}

/// Deletes an entry (super-admin); refused while integrations use it.
pub async fn admin_delete(app: &Catalog, id: &str, if_match: Option<&ETag>) -> Result<()> {
    let current = admin_get(app, id).await?;
    let used = Query::cross_partition()
        .filter(Filter::new("providerId", Op::Eq, id))
        .limit(1);
    // The integrations container read as documents: the catalog needs to
    // know only whether one names this provider.
    let users = app.store.query(Container::Integrations, &used).await?;
    if !users.items.is_empty() {
        return Err(Error::Conflict(format!(
            "catalog entry {id} is still used by integrations"
        )));
    }
    let etag = if_match.cloned().unwrap_or_else(|| ETag::new(current.etag));
    app.store
        .remove::<CatalogEntry>(&current.category, id, Some(&etag))
        .await?;
    app.entries.invalidate(&());
    Ok(())
}
