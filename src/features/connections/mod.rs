//! Connections and OAuth (SPEC §5.4): the credentials of an integration,
//! kept in the secret store, and kept fresh.
//!
//! - `service`: create (validated per type), list, delete, and the cleanup
//!   when an integration goes.
//! - `oauth`: the authorization-code flow with PKCE (`oauth/start`, the
//!   public callback).
//! - `refresh`: token refresh now and as periodic work, single flight
//!   across processes.
//! - `tokens`: token endpoints and the service-account assertion.

pub mod access;
mod input;
pub mod model;
pub mod oauth;
pub mod refresh;
pub mod service;
pub mod tokens;

use std::sync::Arc;

use url::Url;

use crate::clock::Clock;
use crate::config::OauthClients;
use crate::features::catalog::Catalog;
use crate::features::integrations::Integrations;
use crate::platform::events::Events;
use crate::platform::outbound::OutboundClient;
use crate::platform::secrets::SecretStore;
use crate::platform::store::Store;

/// Where OAuth flows start and end.
#[derive(Debug, Clone)]
pub struct OauthSettings {
    /// Client ids and secrets, with URL overrides, by provider.
    pub clients: OauthClients,
    /// The public base URL the provider redirects back to
    /// (`<base>/api/v1/integrations/oauth/callback`).
    pub redirect_base_url: Url,
    /// Origins a `returnUrl` may point to.
    pub allowed_return_origins: Vec<Url>,
}

/// The connections feature's context.
pub struct Connections {
    /// Document store (connections, OAuth states).
    pub store: Arc<dyn Store>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Events (`integration.token.*`).
    pub events: Arc<Events>,
    /// Where credentials live.
    pub secrets: Arc<dyn SecretStore>,
    /// The SSRF-guarded client every token request goes through.
    pub outbound: Arc<OutboundClient>,
    /// Providers' OAuth endpoints and accepted auth methods.
    pub catalog: Arc<Catalog>,
    /// The integrations whose credentials these are.
    pub integrations: Arc<Integrations>,
    /// OAuth clients and redirect settings.
    pub oauth: OauthSettings,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").finish_non_exhaustive()
    }
}
