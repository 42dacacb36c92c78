//! `fusion.finance.v1.SettingsService`: the tenant's invoice number prefix and whether
//! approved invoices are pushed to Xero.

use tonic::{Request, Response, Status};

use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::settings_service_server::SettingsService;
use fusion_service::api::etag;

use crate::error::FinanceError;
use crate::grpc::{FinanceApi, parts, reply};
use crate::store::settings::{self, SettingsRow};

/// What UpdateFinanceSettings may change.
const MUTABLE: &[&str] = &["invoice_number_prefix", "sync_on_approval"];

fn to_pb(r: SettingsRow) -> pb::FinanceSettings {
    pb::FinanceSettings {
        invoice_number_prefix: r.invoice_number_prefix,
        sync_on_approval: r.sync_on_approval,
        next_invoice_number: r.next_invoice_number,
        etag: etag(r.version),
    }
}

/// A prefix of 1 to 20 letters, digits, `-`, `/` and `_`.
fn check_prefix(prefix: &str) -> Result<(), FinanceError> {
    let fine = (1..=20).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_'));
    if fine {
        Ok(())
    } else {
        Err(FinanceError::invalid(
            "settings.invoice_number_prefix",
            "1 to 20 letters, digits, \"-\", \"/\" or \"_\", such as INV-",
        ))
    }
}

#[tonic::async_trait]
impl SettingsService for FinanceApi {
    async fn get_finance_settings(
        &self,
        req: Request<pb::GetFinanceSettingsRequest>,
    ) -> Result<Response<pb::FinanceSettings>, Status> {
        let (ctx, _) = parts(req)?;
        let result = async {
            let mut tx = self.state.db.begin(ctx.tenant_id).await?;
            let row = settings::read(&mut tx).await?;
            tx.commit().await?;
            Ok::<_, FinanceError>(to_pb(row))
        };
        reply(result.await)
    }

    async fn update_finance_settings(
        &self,
        req: Request<pb::UpdateFinanceSettingsRequest>,
    ) -> Result<Response<pb::FinanceSettings>, Status> {
        let (ctx, r) = parts(req)?;
        let sent = r.settings.unwrap_or_default();
        let populated = fusion_service::api::populated(&[
            (
                "invoice_number_prefix",
                !sent.invoice_number_prefix.is_empty(),
            ),
            ("sync_on_approval", sent.sync_on_approval),
        ]);
        let mask = self
            .state
            .kit
            .api
            .mask(r.update_mask, MUTABLE, &[], &populated)?;
        if mask.has("invoice_number_prefix") {
            check_prefix(sent.invoice_number_prefix.trim())?;
        }
        let result = async {
            let mut tx = self.state.db.begin(ctx.tenant_id).await?;
            let current = settings::lock(&mut tx).await?;
            fusion_db::resource::check_etag(crate::DOMAIN, &sent.etag, current.version)?;
            let prefix = if mask.has("invoice_number_prefix") {
                sent.invoice_number_prefix.trim().to_owned()
            } else {
                current.invoice_number_prefix
            };
            let sync = if mask.has("sync_on_approval") {
                sent.sync_on_approval
            } else {
                current.sync_on_approval
            };
            let row = settings::write(&mut tx, &prefix, sync).await?;
            tx.commit().await?;
            Ok::<_, FinanceError>(to_pb(row))
        };
        reply(result.await)
    }
}
