//! The contexts acting as one CRM through integration events, called through the edge
//! with real NATS: a won deal sells its lot, a lost or reopened deal releases the lot
//! taken for it, a second winner is refused or flagged, and agents see on their open
//! deals what happened to the lot they are selling.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;

use fusion_e2e::{Login, Stack, with_token};
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::{
    deal_service_client::DealServiceClient, note_service_client::NoteServiceClient,
    task_service_client::TaskServiceClient,
};
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::tenant_service_client::TenantServiceClient;
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;

/// How long an event's effect may take to appear before a test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// The demo stock of acme, seeded through the edge, and acme's admin.
struct World {
    stack: Stack,
    acme: Login,
    /// Available lots of the demo project nobody has touched.
    free_lots: Vec<i64>,
}

impl World {
    async fn start() -> Self {
        Self::start_in("UTC").await
    }

    /// [`World::start`] with acme in time zone `zone`, set before any event of acme's
    /// is consumed (the consumers' service tokens carry the zone they were issued in).
    async fn start_in(zone: &str) -> Self {
        let stack = Stack::spawn_with_events(|_| {}).await;
        let mut acme = stack.login("admin@acme.test").await.unwrap();
        if zone != "UTC" {
            TenantServiceClient::new(stack.channel.clone())
                .update_tenant(with_token(
                    &acme.token,
                    idpb::UpdateTenantRequest {
                        tenant: Some(idpb::Tenant {
                            id: acme.tenant_id,
                            time_zone: zone.into(),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["time_zone".into()],
                        }),
                    },
                ))
                .await
                .unwrap();
            acme = stack.login("admin@acme.test").await.unwrap();
        }
        let stock = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
            .await
            .unwrap();
        let free_lots = LotServiceClient::new(stack.channel.clone())
            .list_lots(with_token(
                &acme.token,
                pb::ListLotsRequest {
                    project_id: stock.project_id,
                    filter: r#"status = "available""#.into(),
                    page_size: 100,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .lots
            .into_iter()
            .map(|l| l.id)
            .collect::<Vec<_>>();
        assert!(free_lots.len() >= 4, "the demo project has available lots");
        Self {
            stack,
            acme,
            free_lots,
        }
    }

    fn deals(&self) -> DealServiceClient<Channel> {
        DealServiceClient::new(self.stack.channel.clone())
    }

    fn lots(&self) -> LotServiceClient<Channel> {
        LotServiceClient::new(self.stack.channel.clone())
    }

    fn req<T>(&self, message: T) -> tonic::Request<T> {
        with_token(&self.acme.token, message)
    }

    async fn deal(&self, title: &str, lot_id: i64) -> crm::Deal {
        self.deals()
            .create_deal(self.req(crm::CreateDealRequest {
                deal: Some(crm::Deal {
                    title: title.into(),
                    lot_id,
                    assignee_user_id: self.acme.user_id,
                    value: "600000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn get_deal(&self, id: i64) -> crm::Deal {
        self.deals()
            .get_deal(self.req(crm::GetDealRequest { id }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn lot(&self, id: i64) -> pb::Lot {
        self.lots()
            .get_lot(self.req(pb::GetLotRequest { id }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn win(&self, id: i64) -> Result<crm::Deal, tonic::Status> {
        self.deals()
            .win_deal(self.req(crm::WinDealRequest {
                id,
                ..Default::default()
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn reserve(&self, lot_id: i64, deal_id: i64) -> Result<pb::Lot, tonic::Status> {
        self.lots()
            .reserve_lot(self.req(pb::ReserveLotRequest {
                id: lot_id,
                deposit_amount: "5000.00".into(),
                reason: "deposit paid".into(),
                deal_id,
                ..Default::default()
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn hold(&self, lot_id: i64, deal_id: i64) -> Result<pb::Lot, tonic::Status> {
        self.lots()
            .hold_lot(self.req(pb::HoldLotRequest {
                id: lot_id,
                deal_id,
                ..Default::default()
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The lot's status changes, newest first.
    async fn history(&self, lot_id: i64) -> Vec<pb::LotStatusChange> {
        self.lots()
            .list_lot_status_changes(self.req(pb::ListLotStatusChangesRequest {
                lot_id,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .lot_status_changes
    }

    /// Polls the lot until `check` holds, failing after [`DEADLINE`].
    async fn lot_until(&self, id: i64, what: &str, check: impl Fn(&pb::Lot) -> bool) -> pb::Lot {
        until(what, || async {
            Some(self.lot(id).await).filter(|l| check(l))
        })
        .await
    }
}

/// Polls `probe` until it returns something, failing after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    fusion_testkit::until(DEADLINE, what, probe).await
}

#[tokio::test]
async fn losing_a_deal_releases_the_lot_reserved_for_it_and_no_other() {
    let w = World::start().await;
    let (mine, theirs) = (w.free_lots[0], w.free_lots[1]);
    let lost = w.deal("Buyer who walks away", mine).await;
    let other = w.deal("Buyer who stays", theirs).await;
    let reserved = w.reserve(mine, lost.id).await.unwrap();
    assert_eq!(
        (reserved.status.as_str(), reserved.deal_id),
        ("reserved", lost.id)
    );
    w.reserve(theirs, other.id).await.unwrap();

    w.deals()
        .lose_deal(w.req(crm::LoseDealRequest {
            id: lost.id,
            reason: "finance fell through".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let released = w
        .lot_until(mine, "the lost deal's lot is available again", |l| {
            l.status == "available"
        })
        .await;
    assert_eq!(released.deal_id, 0, "the lot no longer names the lost deal");
    let history = w.history(mine).await;
    assert!(
        history
            .iter()
            .any(|c| c.to_status == "available" && c.deal_id == lost.id),
        "the release names the deal: {history:?}"
    );
    let kept = w.lot(theirs).await;
    assert_eq!((kept.status.as_str(), kept.deal_id), ("reserved", other.id));
}

#[tokio::test]
async fn a_won_deal_reopened_gives_its_exchanged_lot_back() {
    let w = World::start().await;
    let lot = w.free_lots[0];
    let deal = w.deal("Buyer who changes their mind", lot).await;
    w.win(deal.id).await.unwrap();
    let sold = w
        .lot_until(lot, "the won deal's lot is exchanged", |l| {
            l.status == "exchanged"
        })
        .await;
    assert_eq!(sold.deal_id, deal.id);

    w.deals()
        .move_deal_stage(w.req(crm::MoveDealStageRequest {
            id: deal.id,
            stage: "property_reserved".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let back = w
        .lot_until(lot, "the reopened deal's lot is available again", |l| {
            l.status == "available"
        })
        .await;
    assert_eq!(back.deal_id, 0);
}

#[tokio::test]
async fn of_two_deals_on_one_lot_the_second_winner_is_refused() {
    let w = World::start().await;
    let lot = w.free_lots[0];
    let first = w.deal("First buyer", lot).await;
    let second = w.deal("Second buyer", lot).await;
    w.win(first.id).await.unwrap();
    let refused = w.win(second.id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        w.get_deal(second.id).await.status,
        "open",
        "nothing written"
    );
    let sold = w
        .lot_until(lot, "the first winner's lot is exchanged", |l| {
            l.status == "exchanged"
        })
        .await;
    assert_eq!(sold.deal_id, first.id);
}

#[tokio::test]
async fn a_deal_won_on_a_lot_sold_without_crm_is_flagged_with_a_task_for_its_assignee() {
    // Kiritimati is UTC+14: most of the time its date is not UTC's.
    let zone: chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
    let w = World::start_in(zone.name()).await;
    let lot = w.free_lots[0];
    let deal = w.deal("Buyer too late", lot).await;
    // The lot is reserved and exchanged by hand in property (a sale crm cannot see).
    w.reserve(lot, 0).await.unwrap();
    w.lots()
        .exchange_lot(w.req(pb::ExchangeLotRequest {
            id: lot,
            reason: "sold off-market".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    w.win(deal.id).await.unwrap();

    let flagged = until("the won deal is flagged with a lot conflict", || async {
        Some(w.get_deal(deal.id).await).filter(|d| d.lot_conflict.is_some())
    })
    .await;
    let conflict = flagged.lot_conflict.unwrap();
    assert_eq!(conflict.lot_status, "exchanged");
    assert_eq!(conflict.sold_to_deal_id, 0);
    let tasks = TaskServiceClient::new(w.stack.channel.clone())
        .list_tasks(w.req(crm::ListTasksRequest {
            taskable_type: "deal".into(),
            taskable_id: deal.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(tasks.len(), 1, "one task for the conflict: {tasks:?}");
    assert_eq!(tasks[0].assignee_user_id, w.acme.user_id);
    assert_ne!(
        tasks[0].assigner_user_id, 0,
        "the task is assigned by crm's system account of the tenant"
    );
    // Due at the last second of the tenant's today, in the tenant's zone.
    let due = tasks[0].due_time.expect("a due time");
    let due = chrono::DateTime::from_timestamp(due.seconds, 0).unwrap();
    let local = due.with_timezone(&zone);
    assert_eq!(
        local.time(),
        chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
        "{local}"
    );
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    assert!(
        local.date_naive() == today || local.date_naive() == today.pred_opt().unwrap(),
        "due {local}, today in the tenant's zone is {today}"
    );
    let lot = w.lot(lot).await;
    assert_eq!(
        (lot.status.as_str(), lot.deal_id),
        ("exchanged", 0),
        "the lot is untouched"
    );
}

#[tokio::test]
async fn agents_selling_a_lot_see_a_note_when_it_is_reserved_for_another_deal() {
    let w = World::start().await;
    let lot = w.free_lots[0];
    let reserving = w.deal("Buyer who reserves", lot).await;
    let watching = w.deal("Buyer still deciding", lot).await;
    let elsewhere = w.deal("Buyer of another lot", w.free_lots[1]).await;
    w.reserve(lot, reserving.id).await.unwrap();

    let notes = |deal_id: i64| {
        let w = &w;
        async move {
            NoteServiceClient::new(w.stack.channel.clone())
                .list_notes(w.req(crm::ListNotesRequest {
                    notable_type: "deal".into(),
                    notable_id: deal_id,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner()
                .notes
        }
    };
    let seen = until("the other open deal on the lot gets a note", || async {
        Some(notes(watching.id).await).filter(|n| !n.is_empty())
    })
    .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].content.contains("reserved"),
        "{:?}",
        seen[0].content
    );
    assert!(
        notes(reserving.id).await.is_empty(),
        "not on the deal it was reserved for"
    );
    assert!(
        notes(elsewhere.id).await.is_empty(),
        "not on a deal for another lot"
    );
}

#[tokio::test]
async fn a_hold_for_a_deal_must_name_an_open_deal_of_that_lot() {
    let w = World::start().await;
    let (lot, other_lot) = (w.free_lots[0], w.free_lots[1]);
    let deal = w.deal("Buyer of the other lot", other_lot).await;
    for (deal_id, what) in [
        (deal.id, "a deal for another lot"),
        (999_999, "no such deal"),
    ] {
        let refused = w.hold(lot, deal_id).await.unwrap_err();
        assert!(
            matches!(
                refused.code(),
                Code::FailedPrecondition | Code::InvalidArgument
            ),
            "{what}: {refused:?}"
        );
        assert_eq!(
            w.lot(lot).await.status,
            "available",
            "{what}: nothing written"
        );
    }
    let held = w.hold(other_lot, deal.id).await.unwrap();
    assert_eq!((held.status.as_str(), held.deal_id), ("hold", deal.id));
}

#[tokio::test]
async fn a_lot_held_for_one_deal_is_not_reserved_for_another_and_sells_to_its_own() {
    use tonic_types::StatusExt as _;

    let w = World::start().await;
    let lot = w.free_lots[0];
    let (mine, rival) = (w.deal("Holder", lot).await, w.deal("Rival", lot).await);
    let held = w.hold(lot, mine.id).await.unwrap();
    assert_eq!(held.deal_id, mine.id);
    let refused = w.reserve(lot, rival.id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "LOT_HELD_FOR_ANOTHER_DEAL"
    );

    w.win(mine.id).await.unwrap();
    let sold = w
        .lot_until(lot, "the held lot is exchanged for its deal", |l| {
            l.status == "exchanged"
        })
        .await;
    assert_eq!(sold.deal_id, mine.id);
    // A closed deal can no longer take a lot.
    let other_lot = w.free_lots[1];
    let closed = w.reserve(other_lot, mine.id).await.unwrap_err();
    assert_eq!(
        closed.get_details_error_info().unwrap().reason,
        "DEAL_CLOSED"
    );
    assert_eq!(w.lot(other_lot).await.status, "available");
}

#[tokio::test]
async fn deals_won_while_nats_is_down_sell_their_lots_once_when_it_returns() {
    let mut w = World::start().await;
    // Lots of a stage of their own, each with an open deal.
    let stage_id = w.lot(w.free_lots[0]).await.stage_id;
    let mut deals = Vec::new();
    for n in 0..24 {
        let lot = w
            .lots()
            .create_lot(w.req(pb::CreateLotRequest {
                lot: Some(pb::Lot {
                    stage_id,
                    lot_number: format!("9{n:02}"),
                    price: "610000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        deals.push((w.deal(&format!("Buyer {n}"), lot.id).await.id, lot.id));
    }
    let (before, rest) = deals.split_at(4);
    for &(deal, _) in before {
        w.win(deal).await.unwrap();
    }
    let (_, first_lot) = before[0];
    w.lot_until(first_lot, "flowing before the outage", |l| {
        l.status == "exchanged"
    })
    .await;

    w.stack.nats.as_mut().expect("a stack with events").stop();
    let outage = Instant::now();
    for &(deal, _) in rest {
        // Writes never wait on the broker: the events wait in crm's outbox.
        w.win(deal).await.expect("WinDeal while NATS is down");
        tokio::time::sleep(Duration::from_millis(500)).await; // pacing the calls, not an assertion
    }
    assert!(outage.elapsed() >= Duration::from_secs(10));
    w.stack.nats.as_mut().unwrap().resume();

    for &(deal, lot) in &deals {
        let sold = w
            .lot_until(
                lot,
                "every won deal's lot exchanged after the outage",
                |l| l.status == "exchanged",
            )
            .await;
        assert_eq!(sold.deal_id, deal);
        let exchanges = w
            .history(lot)
            .await
            .into_iter()
            .filter(|c| c.to_status == "exchanged")
            .count();
        assert_eq!(
            exchanges, 1,
            "lot {lot} was exchanged once, not once per delivery"
        );
    }
}

/// Housekeeping (the three relays, inbox pruning, purge) connects as each context's
/// jobs role, never as the owner of every schema: once the stack runs, the database
/// sees a session of each jobs role and none of `fusion_owner`.
#[tokio::test]
async fn housekeeping_runs_as_each_contexts_jobs_role_never_as_the_schema_owner() {
    let stack = Stack::spawn_with_events(|_| {}).await;
    let admin = sqlx::PgPool::connect(&stack.db.admin_url).await.unwrap();
    let sessions = || async {
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT usename::text FROM pg_stat_activity
              WHERE datname = current_database() AND usename IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&admin)
        .await
        .unwrap();
        users
    };
    let users = until("every relay connects as its jobs role", || async {
        let users = sessions().await;
        [
            "fusion_identity_jobs",
            "fusion_property_jobs",
            "fusion_crm_jobs",
        ]
        .iter()
        .all(|role| users.iter().any(|u| u == role))
        .then_some(users)
    })
    .await;
    assert!(
        !users.iter().any(|u| u == fusion_db::OWNER_ROLE),
        "a running service holds a session as the owner: {users:?}"
    );
}
