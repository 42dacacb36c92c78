//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_service::standard::Kit;

use crate::FinanceConfig;
use crate::error::FinanceError;
use crate::refs::Refs;
use crate::xero_sync::XeroLink;

/// Database, configuration, the clients of other contexts, Xero and the
/// standard-methods kit.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Application-role pool.
    pub db: Db,
    /// Settings.
    pub config: Arc<FinanceConfig>,
    /// Identity, crm and property, for reference checks.
    pub refs: Refs,
    /// What the standard methods of every finance resource share.
    pub kit: Kit,
    /// The Xero app, when configured.
    pub(crate) xero: Option<Arc<XeroLink>>,
}

impl AppState {
    /// Bundles the parts.
    pub(crate) fn new(
        db: Db,
        config: Arc<FinanceConfig>,
        refs: Refs,
        xero: Option<Arc<XeroLink>>,
    ) -> Self {
        let kit = Kit {
            db: db.clone(),
            pages: fusion_db::page::PageTokenCodec::new(&config.service.page_token_secret),
            api: fusion_service::api::Api::new(crate::DOMAIN),
            request_ids: crate::store::REQUEST_IDS,
            retention: config.purge_retention,
        };
        Self {
            db,
            config,
            refs,
            kit,
            xero,
        }
    }

    /// The Xero app, or FAILED_PRECONDITION `XERO_NOT_CONFIGURED` naming the variables
    /// to set.
    pub(crate) fn xero(&self) -> Result<&XeroLink, FinanceError> {
        self.xero.as_deref().ok_or_else(|| {
            FinanceError::XeroNotConfigured(self.config.xero.missing_variables().join(", "))
        })
    }
}
