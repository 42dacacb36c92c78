//! ai-marketing settings: the shared service settings, where the contexts it reads
//! from live, its service account, soft-delete retention, and the platform's model
//! provider.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `AIMARKETING`, ports 50055/9005 |
//! | `AIMARKETING_IDENTITY_URL` | `http://127.0.0.1:50051` | identity: token keys, and the user a prompt is rendered for |
//! | `AIMARKETING_CRM_URL` | `http://127.0.0.1:50053` | crm: the leads, contacts and deals prompts are rendered with and campaigns target |
//! | `AIMARKETING_PROPERTY_URL` | `http://127.0.0.1:50052` | property: the lots and projects prompts are rendered with |
//! | `AIMARKETING_SERVICE_CLIENT_SECRET`, else `SERVICE_CLIENT_SECRET` | none | ai-marketing's platform service account secret: its event consumer then acts as ai-marketing's system account in each event's tenant (and can trace a won deal that names only its contact to the contact's lead), and it reads each tenant's plan for the monthly token allowance (`ai_tokens_per_month`); without it no allowance is enforced |
//! | `AIMARKETING_SERVICE_CLIENT_ID`, else `SERVICE_CLIENT_ID` | `sa_platform_ai-marketing` | that account's client id |
//! | `AIMARKETING_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `AIMARKETING_PURGE_RETENTION_DAYS` | `30` | soft-deleted prompts, conversations and campaigns are removed after this long (needs the jobs URL) |
//! | `AI_OPENAI_BASE_URL` | none | the platform's OpenAI-compatible Chat Completions API (`https://api.openai.com/v1`, a local Ollama's `http://localhost:11434/v1`); without it (and without a tenant's own) no model is called |
//! | `AI_OPENAI_API_KEY` | none | its bearer key (a local server may need none) |
//! | `AI_DEFAULT_MODEL` | `gpt-4o-mini` | the model of a prompt or conversation that names none |
//! | `AI_FIRST_BYTE_TIMEOUT_SECONDS` | `60` | how long a provider may take to start answering (DEADLINE_EXCEEDED `AI_TIMEOUT` after) |
//! | `AI_IDLE_TIMEOUT_SECONDS` | `30` | how long a provider's stream may stall between two pieces |
//! | `AI_TENANT_PROVIDERS_MAY_BE_PRIVATE` | `false` | whether a tenant's own provider may be on a loopback, private or link-local address (a single-company install with a local Ollama); by default such a `provider_base_uri` is refused, so no tenant points the service at the platform's own network |
//! | `AI_SECRET_KEY` | none | base64 of 32 random bytes: the AES-256-GCM key tenants' provider API keys are sealed with; without it no tenant can store a key |

use std::fmt;
use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ClientCredentials, ServiceConfig, parse_or, var};

use crate::domain::models;
use crate::provider::Timeouts;
use crate::settings::cipher::KeyCipher;

/// The service's name: in logs and metrics, and the platform service account identity
/// knows it by (`sa_platform_ai-marketing`).
pub const SERVICE: &str = "ai-marketing";

/// The platform's model provider.
#[derive(Clone)]
pub struct Provider {
    /// The base URL, without a trailing slash (`https://api.openai.com/v1`).
    pub base_url: String,
    /// The bearer key, when the provider needs one.
    pub api_key: Option<String>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl Provider {
    /// The provider `AI_OPENAI_BASE_URL` and `AI_OPENAI_API_KEY` name, if any; a key
    /// without a URL, or a URL that is not http(s), is refused.
    fn from_values(
        base_url: Option<String>,
        api_key: Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        match (base_url, api_key) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ConfigError::Missing(
                "AI_OPENAI_BASE_URL".to_owned(),
                "AI_OPENAI_API_KEY is set: set the URL of the provider it is for",
            )),
            (Some(url), api_key) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                if let Err(reason) = fusion_service::validate::url(&url) {
                    return Err(ConfigError::Invalid {
                        name: "AI_OPENAI_BASE_URL".to_owned(),
                        value: url,
                        reason,
                    });
                }
                Ok(Some(Self {
                    base_url: url,
                    api_key,
                }))
            }
        }
    }
}

/// Everything the ai-marketing service reads at start.
#[derive(Clone, Debug)]
pub struct AiMarketingConfig {
    /// Addresses, database, JWT issuer/audience, page-token key.
    pub service: ServiceConfig,
    /// Identity's gRPC address.
    pub identity_url: String,
    /// Crm's gRPC address.
    pub crm_url: String,
    /// Property's gRPC address.
    pub property_url: String,
    /// Ai-marketing's platform service account, with which its event consumer acts in
    /// each event's tenant and it reads each tenant's plan (the monthly token
    /// allowance); without it, it acts as nobody and no allowance is enforced.
    pub service_credentials: Option<ClientCredentials>,
    /// The platform's model provider; none means only tenants with their own call a
    /// model.
    pub provider: Option<Provider>,
    /// The model of a prompt or conversation that names none.
    pub default_model: String,
    /// How long a provider is waited for.
    pub provider_timeouts: Timeouts,
    /// Seals tenants' provider API keys at rest; none means no tenant can store one.
    pub secret_key: Option<KeyCipher>,
    /// Whether a tenant's own provider may be on a loopback, private or link-local
    /// address.
    pub tenant_providers_may_be_private: bool,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How long soft-deleted rows are kept.
    pub purge_retention: Duration,
}

impl AiMarketingConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env("AIMARKETING", SERVICE, 50055, 9005)?;
        let mut config = Self::with_defaults(service).model_provider_from_env()?;
        if let Some(url) = var("AIMARKETING_IDENTITY_URL") {
            config.identity_url = url;
        }
        if let Some(url) = var("AIMARKETING_CRM_URL") {
            config.crm_url = url;
        }
        if let Some(url) = var("AIMARKETING_PROPERTY_URL") {
            config.property_url = url;
        }
        config.service_credentials = ClientCredentials::from_env("AIMARKETING", SERVICE)?;
        config.migrate_on_start = parse_or("AIMARKETING_MIGRATE_ON_START", true)?;
        config.purge_retention =
            Duration::from_secs(parse_or::<u64>("AIMARKETING_PURGE_RETENTION_DAYS", 30)? * 86_400);
        Ok(config)
    }

    /// The same configuration with the platform's model provider, default model,
    /// timeouts and key cipher read from the `AI_*` variables (a whole stack started
    /// in one process reads these and builds the rest itself).
    pub fn model_provider_from_env(mut self) -> Result<Self, ConfigError> {
        self.provider = Provider::from_values(var("AI_OPENAI_BASE_URL"), var("AI_OPENAI_API_KEY"))?;
        if let Some(model) = var("AI_DEFAULT_MODEL") {
            let model = model.trim().to_owned();
            models::check_name(&model).map_err(|reason| ConfigError::Invalid {
                name: "AI_DEFAULT_MODEL".to_owned(),
                value: model.clone(),
                reason,
            })?;
            self.default_model = model;
        }
        self.provider_timeouts.first_byte = Duration::from_secs(parse_or(
            "AI_FIRST_BYTE_TIMEOUT_SECONDS",
            self.provider_timeouts.first_byte.as_secs(),
        )?);
        self.provider_timeouts.idle = Duration::from_secs(parse_or(
            "AI_IDLE_TIMEOUT_SECONDS",
            self.provider_timeouts.idle.as_secs(),
        )?);
        self.tenant_providers_may_be_private =
            parse_or("AI_TENANT_PROVIDERS_MAY_BE_PRIVATE", false)?;
        if let Some(key) = var("AI_SECRET_KEY") {
            let cipher = KeyCipher::from_base64(&key).map_err(|e| ConfigError::Invalid {
                name: "AI_SECRET_KEY".to_owned(),
                value: "<hidden>".to_owned(),
                reason: e.to_string(),
            })?;
            self.secret_key = Some(cipher);
        }
        Ok(self)
    }

    /// Defaults around a shared service configuration (tests build theirs this way).
    pub fn with_defaults(service: ServiceConfig) -> Self {
        Self {
            service,
            identity_url: "http://127.0.0.1:50051".to_owned(),
            crm_url: "http://127.0.0.1:50053".to_owned(),
            property_url: "http://127.0.0.1:50052".to_owned(),
            service_credentials: None,
            provider: None,
            default_model: "gpt-4o-mini".to_owned(),
            provider_timeouts: Timeouts::default(),
            secret_key: None,
            tenant_providers_may_be_private: false,
            migrate_on_start: true,
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_needs_an_http_url_and_its_key_is_never_printed() {
        assert!(Provider::from_values(None, None).unwrap().is_none());
        assert!(Provider::from_values(None, Some("sk-1".into())).is_err());
        assert!(Provider::from_values(Some("ftp://x".into()), None).is_err());
        let local = Provider::from_values(Some("http://localhost:11434/v1/".into()), None)
            .unwrap()
            .unwrap();
        assert_eq!(local.base_url, "http://localhost:11434/v1");
        let openai = Provider::from_values(
            Some("https://api.openai.com/v1".into()),
            Some("sk-secret".into()),
        )
        .unwrap()
        .unwrap();
        assert!(!format!("{openai:?}").contains("sk-secret"));
    }
}
