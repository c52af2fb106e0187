//! The adapter for a tenant's own REST API described by `customApi` (SPEC §9.6).

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    Adapter, AdapterContext, AdapterError, AdapterResult, ChangesPage, ChangesRequest, FieldInfo,
    Record, RemoteWrite, TestOutcome,
};
use crate::domain::tenancy::Ctx;
use crate::features::integrations::model::Integration;

/// The adapter (not built yet).
#[derive(Debug)]
pub struct CustomRestAdapter;

impl CustomRestAdapter {
    /// Opens the adapter for an integration.
    pub async fn open(
        _cx: &AdapterContext,
        _ctx: &Ctx,
        _integration: &Integration,
    ) -> crate::error::Result<Self> {
        Ok(Self)
    }
}

fn todo() -> AdapterError {
    AdapterError::Unsupported("not built yet".into())
}

#[async_trait]
impl Adapter for CustomRestAdapter {
    async fn list_changes(&self, _req: ChangesRequest<'_>) -> AdapterResult<ChangesPage> {
        Err(todo())
    }
    async fn get(&self, _entity: &str, _id: &str) -> AdapterResult<Option<Record>> {
        Err(todo())
    }
    async fn create(
        &self,
        _entity: &str,
        _fields: &Map<String, Value>,
    ) -> AdapterResult<RemoteWrite> {
        Err(todo())
    }
    async fn update(
        &self,
        _entity: &str,
        _id: &str,
        _fields: &Map<String, Value>,
        _if_version: Option<&str>,
    ) -> AdapterResult<RemoteWrite> {
        Err(todo())
    }
    async fn describe(&self, _entity: &str) -> AdapterResult<Vec<FieldInfo>> {
        Err(todo())
    }
    async fn test(&self) -> AdapterResult<TestOutcome> {
        Err(todo())
    }
}
