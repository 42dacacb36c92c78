//! Pulling: what happened to our invoices in Xero, brought back.
//!
//! Two sources feed one reconciliation. Xero's webhook says an invoice of an
//! organisation changed: its events are queued by the endpoint (which must answer
//! within five seconds) and taken one at a time by a worker. The poll asks every
//! connected organisation, every `FINANCE_XERO_POLL_SECONDS`, for the invoices changed
//! since its last poll (`If-Modified-Since`), catching whatever a webhook missed.
//!
//! Events name a Xero organisation, not a tenant: the tenants connected to it are found
//! across tenants as the jobs role (policy `xero_jobs`, connected rows only). All else
//! happens in the tenant, as the application role, with the tenant's own session.
//!
//! Reconciling one invoice locks ours (found by its `xero_invoice_id`) and, in one
//! transaction: records each payment made in Xero that is not recorded yet (by its
//! `xero_payment_id`, unique per tenant), through the same `record_payment` as
//! `RecordPayment`, so a fully paid invoice becomes paid here and `finance.invoice.paid`
//! is announced; and voids ours when Xero voided it and nothing is paid. Repeated
//! deliveries and overlapping polls find nothing left to do. What does not fit (a
//! payment above what is due here, a status ours cannot take) is logged and left for a
//! person; it never blocks the rest.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use fusion_db::Db;
use fusion_db::resource::{Read, Val};

use super::{XeroLink, connection, xero_error};
use crate::error::FinanceError;
use crate::store::invoices::{AUTHORISED, NewPayment, TABLE, VOIDED, record_payment};
use crate::store::xero::{self as store, Polled};
use crate::xero::model::{self, InvoiceStatus};
use crate::xero::{WebhookEvent, XeroEventSink};

/// Webhook events waiting for the worker; past this many, events are dropped (and
/// left to the poll) rather than keeping Xero waiting.
const QUEUE: usize = 1024;

/// Reconciles invoices of connected tenants with their Xero organisations.
#[derive(Debug)]
pub(crate) struct Reconciler {
    /// The application role's pool: everything done in a tenant.
    db: Db,
    /// The jobs role's pool: finding the tenants of an organisation.
    jobs: PgPool,
    link: Arc<XeroLink>,
}

/// The webhook endpoint's hand-off to the worker.
#[derive(Debug)]
pub(crate) struct EventQueue(mpsc::Sender<WebhookEvent>);

impl XeroEventSink for EventQueue {
    fn accept(&self, events: Vec<WebhookEvent>) {
        for event in events.into_iter().filter(WebhookEvent::is_invoice) {
            if let Err(error) = self.0.try_send(event) {
                tracing::warn!(%error, "a Xero webhook event was dropped; the poll will catch it");
            }
        }
    }
}

impl Reconciler {
    /// A reconciler acting in tenants over `db`, finding them over `jobs`.
    pub(crate) fn new(db: Db, jobs: PgPool, link: Arc<XeroLink>) -> Self {
        Self { db, jobs, link }
    }

    /// Starts the worker taking webhook events until `stopped`; the queue is the
    /// endpoint's sink.
    pub(crate) fn spawn_worker(
        self: Arc<Self>,
        mut stopped: watch::Receiver<bool>,
    ) -> (EventQueue, JoinHandle<()>) {
        let (queue, mut events) = mpsc::channel::<WebhookEvent>(QUEUE);
        let worker = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => event,
                        None => break,
                    },
                    _ = stopped.wait_for(|&stop| stop) => break,
                };
                tokio::select! {
                    done = self.on_event(&event) => if let Err(error) = done {
                        tracing::warn!(invoice = %event.resource_id, organisation = %event.tenant_id, %error, "a Xero webhook event was not reconciled; the poll will retry");
                    },
                    _ = stopped.wait_for(|&stop| stop) => break,
                }
            }
        });
        (EventQueue(queue), worker)
    }

    /// Starts polling every connected tenant every `every` (the first at once) until
    /// `stopped`.
    pub(crate) fn spawn_poll(
        self: Arc<Self>,
        every: Duration,
        mut stopped: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.wait_for(|&stop| stop) => break,
                }
                tokio::select! {
                    () = self.poll() => {}
                    _ = stopped.wait_for(|&stop| stop) => break,
                }
            }
        })
    }

    /// An invoice event: reconciled in each tenant connected to the organisation that
    /// has that invoice.
    async fn on_event(&self, event: &WebhookEvent) -> Result<(), FinanceError> {
        let xero_invoice_id = event.resource_id.to_string();
        let tenants = store::tenants_of(&self.jobs, &event.tenant_id.to_string()).await?;
        for tenant_id in tenants {
            let reconciled = async {
                let mut tx = self.db.begin(tenant_id).await?;
                let ours = store::has_xero_invoice(&mut tx, &xero_invoice_id).await?;
                tx.commit().await?;
                if !ours {
                    return Ok(());
                }
                let session = connection::session(&self.db, &self.link, tenant_id).await?;
                let invoice = self
                    .link
                    .client
                    .get_invoice(&session, event.resource_id)
                    .await
                    .map_err(xero_error)?;
                self.reconcile(tenant_id, &invoice).await
            };
            if let Err(error) = reconciled.await {
                tracing::warn!(tenant_id, invoice = %event.resource_id, %error, "a Xero webhook event was not reconciled; the poll will retry");
            }
        }
        Ok(())
    }

    /// One poll of every connected tenant; a tenant that fails is logged and asked
    /// again next time from the same point.
    async fn poll(&self) {
        let tenants = match store::connected(&self.jobs).await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "the Xero poll could not list the connected tenants");
                return;
            }
        };
        for polled in tenants {
            if let Err(error) = self.poll_tenant(&polled).await {
                tracing::warn!(tenant_id = polled.tenant_id, %error, "the Xero poll of a tenant failed");
            }
        }
    }

    /// The invoices changed in the tenant's organisation since its last poll,
    /// reconciled; the poll's start is the next one's `If-Modified-Since`.
    async fn poll_tenant(&self, polled: &Polled) -> Result<(), FinanceError> {
        let started = Utc::now();
        let session = connection::session(&self.db, &self.link, polled.tenant_id).await?;
        let changed = self
            .link
            .client
            .invoices_modified_since(&session, polled.since)
            .await
            .map_err(xero_error)?;
        for invoice in &changed {
            self.reconcile(polled.tenant_id, invoice).await?;
        }
        let mut tx = self.db.begin(polled.tenant_id).await?;
        store::set_last_poll(&mut tx, started).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Brings `xero` (as Xero holds it now) into the tenant's invoice of that id, if it
    /// has one (see the module docs).
    async fn reconcile(&self, tenant_id: i64, xero: &model::Invoice) -> Result<(), FinanceError> {
        let mut tx = self.db.begin(tenant_id).await?;
        let Some(mut current) =
            store::lock_by_xero_id(&mut tx, &xero.invoice_id.to_string()).await?
        else {
            return Ok(());
        };
        let id = current.id;
        let mut changed = false;
        let recorded: HashSet<String> = current
            .payments
            .0
            .iter()
            .filter_map(|p| p.xero_payment_id.clone())
            .collect();
        for payment in &xero.payments {
            let payment_id = payment.payment_id.to_string();
            if recorded.contains(&payment_id) || payment.amount <= Decimal::ZERO {
                continue;
            }
            let new = NewPayment {
                amount: payment.amount,
                payment_date: payment.date,
                reference: payment.reference.as_deref().unwrap_or_default(),
                xero_payment_id: Some(&payment_id),
                user_id: None,
            };
            match record_payment(&mut tx, &current, &new).await {
                Ok(()) => {
                    changed = true;
                    current = TABLE.fetch(&mut tx, id, Read::live()).await?;
                }
                Err(
                    error @ (FinanceError::Overpayment { .. } | FinanceError::InvoiceStatus { .. }),
                ) => {
                    tracing::warn!(tenant_id, invoice_id = id, xero_payment = %payment_id, %error, "a payment made in Xero does not fit the invoice here; left for a person");
                }
                Err(error) => return Err(error),
            }
        }
        if xero.status == InvoiceStatus::Voided && current.status != VOIDED {
            if current.status == AUTHORISED && current.amount_paid == Decimal::ZERO {
                TABLE
                    .update(&mut tx, id, vec![("status", Val::text(VOIDED))])
                    .await?;
                changed = true;
            } else {
                tracing::warn!(tenant_id, invoice_id = id, status = %current.status, "the invoice was voided in Xero but cannot be voided here; left for a person");
            }
        }
        if changed {
            TABLE
                .update(
                    &mut tx,
                    id,
                    vec![("last_synced_at", Val::Timestamp(Some(Utc::now())))],
                )
                .await?;
            tracing::info!(tenant_id, invoice_id = id, "invoice reconciled from Xero");
        }
        tx.commit().await?;
        Ok(())
    }
}
