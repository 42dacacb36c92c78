//! The checks, each a method of [`Suite`] that panics with a readable message when the
//! service does not conform; [`Suite::run`] runs them all and reports.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt::Debug;

use prost_reflect::{DynamicMessage, MessageDescriptor, Value as Field};
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use super::{Caller, Check, DynamicClient, Outcome, ResourceSpec, Target, Valid, attempt};
use super::{OUTPUT_ONLY, field_behaviors, from_json, to_json};
use crate::{reason, violated_fields};

/// Where the suite's resources come from.
pub(super) trait Source {
    /// Whether the resource is made by its standard Create.
    const CREATES: bool;
    /// A valid Create body (only asked when [`Source::CREATES`]).
    async fn valid(&self, who: &Caller, n: usize) -> Valid;
    /// A resource made some other way (only asked when not [`Source::CREATES`]).
    async fn other(&self, who: &Caller, n: usize) -> Value;
}

/// Resources made by the standard Create from a valid body.
pub(super) struct ByCreate<F>(pub F);

impl<F, V> Source for ByCreate<F>
where
    F: AsyncFn(&Caller, usize) -> V,
    V: Into<Valid>,
{
    const CREATES: bool = true;
    async fn valid(&self, who: &Caller, n: usize) -> Valid {
        (self.0)(who, n).await.into()
    }
    async fn other(&self, _: &Caller, _: usize) -> Value {
        unreachable!("made by Create")
    }
}

/// Resources made some other way (media: UploadMedia).
pub(super) struct ByOther<F>(pub F);

impl<F> Source for ByOther<F>
where
    F: AsyncFn(&Caller, usize) -> Value,
{
    const CREATES: bool = false;
    async fn valid(&self, _: &Caller, _: usize) -> Valid {
        unreachable!("no standard Create")
    }
    async fn other(&self, who: &Caller, n: usize) -> Value {
        (self.0)(who, n).await
    }
}

/// One resource's run of the suite.
pub(super) struct Suite<'a, S> {
    target: &'a Target,
    spec: &'a ResourceSpec,
    source: S,
    client: DynamicClient,
    resource: MessageDescriptor,
    /// The repeated field of the List response holding the resources.
    list_field: String,
    /// The next unique number for a valid instance.
    next: Cell<usize>,
}

impl<'a, S: Source> Suite<'a, S> {
    pub(super) fn new(target: &'a Target, spec: &'a ResourceSpec, source: S) -> Self {
        let problems = spec.problems();
        assert!(
            problems.is_empty(),
            "the conformance spec of {} is wrong:\n{}",
            spec.plural,
            problems.join("\n")
        );
        let resource = spec.message();
        let list = DynamicClient::method(spec.service, &spec.method("List")).output();
        let list_field = list
            .fields()
            .find(|f| f.is_list() && f.kind().as_message() == Some(&resource))
            .map(|f| f.name().to_owned())
            .unwrap_or_else(|| panic!("{} repeats no {}", list.name(), resource.name()));
        Self {
            target,
            spec,
            source,
            client: DynamicClient::new(target.channel.clone()),
            resource,
            list_field,
            next: Cell::new(1),
        }
    }

    /// Runs every check that applies, then fails listing the failures.
    pub(super) async fn run(&self) {
        let name = self.spec.plural;
        let mut failures = Vec::new();
        for check in Check::ALL {
            let outcome = match self.skipped(check) {
                Some(why) => Outcome::Skipped(why),
                None => attempt(self.check(check)).await,
            };
            match outcome {
                Outcome::Passed(took) => {
                    eprintln!("[{name}] ok      {} ({took:.1?})", check.name());
                }
                Outcome::Skipped(why) => {
                    eprintln!("[{name}] skipped {}: {why}", check.name());
                }
                Outcome::Failed(why) => {
                    eprintln!("[{name}] FAILED  {}: {why}", check.name());
                    failures.push(format!("[{name}] {}: {why}", check.name()));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} conformance checks failed for {} ({}):\n{}",
            failures.len(),
            Check::ALL.len(),
            name,
            self.spec.service,
            failures.join("\n")
        );
    }

    fn skipped(&self, check: Check) -> Option<String> {
        if let Some((_, why)) = self.spec.skip.iter().find(|(c, _)| *c == check) {
            return Some((*why).to_owned());
        }
        if check.needs_create() && !S::CREATES {
            return Some(format!("{} has no standard Create", self.spec.singular));
        }
        None
    }

    async fn check(&self, check: Check) {
        match check {
            Check::CreateThenGet => self.create_then_get_round_trips().await,
            Check::RequiredFields => self.a_missing_required_field_is_invalid().await,
            Check::LengthLimit => self.an_over_long_field_is_invalid().await,
            Check::RequestIdReplay => self.a_retried_request_id_returns_the_first_result().await,
            Check::RequestIdMismatch => {
                self.a_request_id_reused_with_another_body_is_invalid()
                    .await
            }
            Check::OtherTenant => self.another_tenants_resource_is_not_found().await,
            Check::ReadPermission => self.reading_needs_the_read_permission().await,
            Check::WritePermission => self.writing_needs_the_write_permission().await,
            Check::UnknownMaskPath => self.an_unknown_update_mask_path_is_invalid().await,
            Check::StaleEtag => self.a_stale_etag_is_aborted().await,
            Check::MaskedFieldsOnly => self.an_update_changes_only_the_masked_fields().await,
            Check::Paging => self.pages_return_every_row_once_in_order().await,
            Check::PageTokens => self.a_tampered_or_reused_page_token_is_invalid().await,
            Check::PageSize => {
                self.a_negative_page_size_is_invalid_and_a_large_one_clamped()
                    .await
            }
            Check::Filters => self.every_declared_filter_parses().await,
            Check::ShowDeleted => self.deleted_rows_are_listed_only_with_show_deleted().await,
            Check::OutputOnlyIgnored => self.output_only_fields_sent_are_ignored().await,
            Check::DeleteUndelete => self.delete_marks_and_undelete_restores().await,
        }
    }

    // -----------------------------------------------------------------------------------
    // The checks
    // -----------------------------------------------------------------------------------

    async fn create_then_get_round_trips(&self) {
        let created = self.fresh().await;
        assert!(
            id(&created) > 0,
            "the created resource has no id: {created}"
        );
        assert!(
            created.get("delete_time").is_none(),
            "a new resource has a delete_time: {created}"
        );
        let got = self.get_ok(&self.target.owner, id(&created)).await;
        assert_same("Get returns what was created", &created, &got);
    }

    async fn a_missing_required_field_is_invalid(&self) {
        let owner = &self.target.owner;
        for field in self.spec.required {
            let mut valid = self.valid(owner).await;
            object(&mut valid.resource).remove(*field);
            let status = refused(
                &format!("{} without {field}", self.spec.method("Create")),
                self.create(owner, &valid, "").await,
                Code::InvalidArgument,
            );
            self.assert_names(&status, field);
        }
    }

    async fn an_over_long_field_is_invalid(&self) {
        let owner = &self.target.owner;
        let (field, max) = self.spec.length_limited;
        let mut valid = self.valid(owner).await;
        object(&mut valid.resource).insert(field.to_owned(), json!("x".repeat(max + 1)));
        let status = refused(
            &format!(
                "{} with {} characters of {field}",
                self.spec.method("Create"),
                max + 1
            ),
            self.create(owner, &valid, "").await,
            Code::InvalidArgument,
        );
        self.assert_names(&status, field);

        let mut valid = self.valid(owner).await;
        object(&mut valid.resource).insert(field.to_owned(), json!("x".repeat(max)));
        let created = self.create(owner, &valid, "").await.unwrap_or_else(|s| {
            panic!(
                "{} with {max} characters of {field} (the maximum): {}",
                self.spec.method("Create"),
                show(&s)
            )
        });
        assert_eq!(
            created[field],
            json!("x".repeat(max)),
            "{field} is kept whole"
        );
    }

    async fn a_retried_request_id_returns_the_first_result(&self) {
        let owner = &self.target.owner;
        let before = self.count(owner).await;
        let valid = self.valid(owner).await;
        let request_id = uuid::Uuid::new_v4().to_string();
        let first = self.create_ok(owner, &valid, &request_id).await;
        let retried = self
            .create(owner, &valid, &request_id)
            .await
            .unwrap_or_else(|s| panic!("the retry with the same request_id: {}", show(&s)));
        assert_same("the retry returns the first result", &first, &retried);
        assert_eq!(
            self.count(owner).await,
            before + 1,
            "a create and its retry write one row"
        );
    }

    async fn a_request_id_reused_with_another_body_is_invalid(&self) {
        let owner = &self.target.owner;
        let request_id = uuid::Uuid::new_v4().to_string();
        let first = self.valid(owner).await;
        let other = self.valid(owner).await;
        self.create_ok(owner, &first, &request_id).await;
        let before = self.count(owner).await;
        let status = refused(
            "the same request_id with another body",
            self.create(owner, &other, &request_id).await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["request_id"],
            "the violation names request_id: {}",
            show(&status)
        );
        assert_eq!(
            reason(&status),
            "REQUEST_ID_REUSED",
            "the reason says the id was reused: {}",
            show(&status)
        );
        let malformed = refused(
            "a request_id that is not a UUID",
            self.create(owner, &other, "not-a-uuid").await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&malformed),
            ["request_id"],
            "the violation names request_id: {}",
            show(&malformed)
        );
        assert_eq!(self.count(owner).await, before, "nothing was written");
    }

    async fn another_tenants_resource_is_not_found(&self) {
        let (owner, stranger) = (&self.target.owner, &self.target.stranger);
        let mine = self.fresh().await;
        let id = id(&mine);
        refused(
            "Get by another tenant",
            self.get(stranger, id).await,
            Code::NotFound,
        );
        refused(
            "Update by another tenant",
            self.update(
                stranger,
                self.change(id, 1, None),
                &[self.spec.mutable[0].0],
            )
            .await,
            Code::NotFound,
        );
        refused(
            "Delete by another tenant",
            self.delete(stranger, id, "").await,
            Code::NotFound,
        );
        refused(
            "Undelete of a live resource by another tenant",
            self.undelete(stranger, id).await,
            Code::NotFound,
        );
        let now = self.get_ok(owner, id).await;
        assert_same("another tenant changed nothing", &mine, &now);
        self.never_listed_for(stranger, id, "live").await;

        self.delete(owner, id, "")
            .await
            .unwrap_or_else(|s| panic!("the owner's Delete: {}", show(&s)));
        refused(
            "Undelete of a deleted resource by another tenant",
            self.undelete(stranger, id).await,
            Code::NotFound,
        );
        refused(
            "Get of a deleted resource by another tenant",
            self.get(stranger, id).await,
            Code::NotFound,
        );
        self.never_listed_for(stranger, id, "deleted").await;
        self.undelete(owner, id).await.unwrap_or_else(|s| {
            panic!(
                "the owner's Undelete after another tenant's (it must still be deleted): {}",
                show(&s)
            )
        });
    }

    async fn reading_needs_the_read_permission(&self) {
        let who = &self.target.without_read;
        let permission = self.spec.read_permission;
        let mine = self.fresh().await;
        let status = refused(
            "Get without the read permission",
            self.get(who, id(&mine)).await,
            Code::PermissionDenied,
        );
        assert_names_permission(&status, permission);
        let status = refused(
            "List without the read permission",
            self.list(who, json!({})).await,
            Code::PermissionDenied,
        );
        assert_names_permission(&status, permission);
    }

    async fn writing_needs_the_write_permission(&self) {
        let (owner, who) = (&self.target.owner, &self.target.without_write);
        let permission = self.spec.write_permission;
        let mine = self.fresh().await;
        let id = id(&mine);
        let before = self.count(owner).await;
        if S::CREATES {
            let valid = self.valid(who).await;
            let status = refused(
                "Create without the write permission",
                self.create(who, &valid, "").await,
                Code::PermissionDenied,
            );
            assert_names_permission(&status, permission);
        }
        let status = refused(
            "Update without the write permission",
            self.update(who, self.change(id, 1, None), &[self.spec.mutable[0].0])
                .await,
            Code::PermissionDenied,
        );
        assert_names_permission(&status, permission);
        let status = refused(
            "Delete without the write permission",
            self.delete(who, id, "").await,
            Code::PermissionDenied,
        );
        assert_names_permission(&status, permission);
        let status = refused(
            "Undelete without the write permission",
            self.undelete(who, id).await,
            Code::PermissionDenied,
        );
        assert_names_permission(&status, permission);
        assert_same(
            "a caller without the write permission changed nothing",
            &mine,
            &self.get_ok(owner, id).await,
        );
        assert_eq!(self.count(owner).await, before, "nothing was created");
    }

    async fn an_unknown_update_mask_path_is_invalid(&self) {
        let owner = &self.target.owner;
        let mine = self.fresh().await;
        let id = id(&mine);
        let status = refused(
            "Update with the mask path no_such_field",
            self.update(owner, self.change(id, 1, None), &["no_such_field"])
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["update_mask"],
            "the violation names update_mask: {}",
            show(&status)
        );
        assert_same(
            "a refused update changed nothing",
            &mine,
            &self.get_ok(owner, id).await,
        );
    }

    async fn a_stale_etag_is_aborted(&self) {
        let owner = &self.target.owner;
        let mine = self.fresh().await;
        let (id, stale) = (id(&mine), etag(&mine));
        assert!(
            !stale.is_empty(),
            "the created resource has no etag: {mine}"
        );
        let (first, second) = (self.spec.mutable[0].0, self.spec.mutable[1].0);
        let updated = self
            .update(owner, self.change(id, 1, Some(&stale)), &[first])
            .await
            .unwrap_or_else(|s| panic!("Update with the current etag: {}", show(&s)));
        assert_ne!(etag(&updated), stale, "an update changes the etag");
        let mut change = self.change(id, 2, Some(&stale));
        object(&mut change).remove(first);
        for (what, result) in [
            (
                "Update with a stale etag",
                self.update(owner, change, &[second]).await,
            ),
            (
                "Delete with a stale etag",
                self.delete(owner, id, &stale).await,
            ),
        ] {
            let status = refused(what, result, Code::Aborted);
            assert_eq!(
                reason(&status),
                "ETAG_MISMATCH",
                "{what}: {}",
                show(&status)
            );
        }
        assert_same(
            "the refused calls changed nothing",
            &updated,
            &self.get_ok(owner, id).await,
        );
    }

    async fn an_update_changes_only_the_masked_fields(&self) {
        let owner = &self.target.owner;
        let mine = self.fresh().await;
        let id = id(&mine);
        let [(first, _), (second, _)] = &self.spec.mutable;
        let sent = self.change(id, 2, None);
        for field in [first, second] {
            assert_ne!(
                mine.get(*field),
                sent.get(*field),
                "the spec's new value of {field} is what a valid instance already has"
            );
        }
        let updated = self
            .update(owner, sent.clone(), &[first])
            .await
            .unwrap_or_else(|s| panic!("Update masking {first}: {}", show(&s)));
        assert_eq!(
            updated.get(*first),
            sent.get(*first),
            "the masked field {first} takes the sent value"
        );
        let unchanged = [*first, "update_time", "etag"];
        assert_same(
            &format!("only {first} changes (the body also set {second})"),
            &without(&mine, &unchanged),
            &without(&updated, &unchanged),
        );
        assert_same(
            "Get returns the updated resource",
            &updated,
            &self.get_ok(owner, id).await,
        );
    }

    async fn output_only_fields_sent_are_ignored(&self) {
        let owner = &self.target.owner;
        let sent = self.output_only_values();
        let mut valid = self.valid(owner).await;
        for (field, value) in &sent {
            object(&mut valid.resource).insert(field.clone(), value.clone());
        }
        let created = self.create_ok(owner, &valid, "").await;
        self.assert_none_landed("Create", &created, &sent);

        let id = id(&created);
        let mut body = self.change(id, 1, None);
        for (field, value) in sent.iter().filter(|(field, _)| field != "id") {
            object(&mut body).insert(field.clone(), value.clone());
        }
        // An empty mask updates the fields the body sets: the mutable one changes, the
        // OUTPUT_ONLY ones are not "set" by a client whatever it sends.
        let updated = self
            .update(owner, body.clone(), &[])
            .await
            .unwrap_or_else(|s| {
                panic!(
                    "Update (empty mask) with OUTPUT_ONLY fields sent: {}",
                    show(&s)
                )
            });
        let (first, _) = &self.spec.mutable[0];
        assert_eq!(
            updated.get(*first),
            body.get(*first),
            "the mutable field {first} takes the sent value"
        );
        self.assert_none_landed("Update", &updated, &sent);
        self.assert_none_landed("Get", &self.get_ok(owner, id).await, &sent);
    }

    /// For each scalar OUTPUT_ONLY field of the resource, a value no server would
    /// produce (in the canonical JSON): ids and counts far beyond any test's, a time
    /// in 2001, a marker string. Booleans and enums are left out: any value sent could
    /// be the right one.
    fn output_only_values(&self) -> Vec<(String, Value)> {
        use prost_reflect::Kind;
        let mut sent = Vec::new();
        for field in self.resource.fields() {
            if field.is_list() || field.is_map() || !field_behaviors(&field).contains(&OUTPUT_ONLY)
            {
                continue;
            }
            let value = match field.kind() {
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!("987654321987"),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!(987_654_321),
                Kind::Double | Kind::Float => json!(987_654.5),
                Kind::String => json!("output-only-value-sent-by-a-client"),
                Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                    json!("2001-02-03T04:05:06Z")
                }
                _ => continue,
            };
            // The canonical form, as the service's answers are compared in it.
            let canonical = to_json(&from_json(
                self.resource.clone(),
                json!({ field.name(): value }),
            ));
            sent.push((field.name().to_owned(), canonical[field.name()].clone()));
        }
        // Every resource has an OUTPUT_ONLY create_time: finding none means the
        // annotations were not read, and the check would prove nothing.
        assert!(
            sent.iter().any(|(field, _)| field == "create_time"),
            "no OUTPUT_ONLY create_time found on {}: {sent:?}",
            self.resource.full_name()
        );
        sent
    }

    #[track_caller]
    fn assert_none_landed(&self, call: &str, resource: &Value, sent: &[(String, Value)]) {
        for (field, value) in sent {
            assert_ne!(
                resource.get(field),
                Some(value),
                "{call} took the OUTPUT_ONLY field {field} from the client: {resource}"
            );
        }
    }

    async fn pages_return_every_row_once_in_order(&self) {
        const ROWS: usize = 120;
        const PAGE: usize = 7;
        let owner = &self.target.owner;
        let mut created = HashSet::new();
        for _ in 0..ROWS {
            created.insert(id(&self.fresh().await));
        }
        let one_page = self.list_ok(owner, json!({ "page_size": 1000 })).await;
        let expected = self.ids(&one_page);
        assert_eq!(
            total(&one_page),
            expected.len(),
            "total_size of one page of 1000 holding every row"
        );
        let mut visited = Vec::new();
        let mut token = String::new();
        for page in 1.. {
            assert!(
                page <= expected.len() / PAGE + 2,
                "paging did not end after {page} pages of {PAGE}"
            );
            let r = self
                .list_ok(owner, json!({ "page_size": PAGE, "page_token": token }))
                .await;
            let ids = self.ids(&r);
            assert!(ids.len() <= PAGE, "page {page} holds {} rows", ids.len());
            assert_eq!(total(&r), expected.len(), "total_size on page {page}");
            visited.extend(ids);
            token = next_token(&r);
            if token.is_empty() {
                break;
            }
        }
        let distinct: HashSet<i64> = visited.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            visited.len(),
            "a row came twice: {visited:?}"
        );
        assert!(
            created.is_subset(&distinct),
            "created rows missing from the pages: {:?}",
            created.difference(&distinct).collect::<Vec<_>>()
        );
        assert_eq!(
            visited, expected,
            "pages of {PAGE} list the rows of one page of 1000, in the same order"
        );
    }

    async fn a_tampered_or_reused_page_token_is_invalid(&self) {
        let owner = &self.target.owner;
        self.fresh().await;
        self.fresh().await;
        let first = self.list_ok(owner, json!({ "page_size": 1 })).await;
        let token = next_token(&first);
        assert!(
            !token.is_empty(),
            "a page of 1 of 2 or more rows has a next token"
        );
        self.list(owner, json!({ "page_size": 1, "page_token": token }))
            .await
            .unwrap_or_else(|s| panic!("the untouched token: {}", show(&s)));

        let status = refused(
            "List with a tampered page token",
            self.list(
                owner,
                json!({ "page_size": 1, "page_token": tamper(&token) }),
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["page_token"],
            "{}",
            show(&status)
        );
        if let Some(filter) = self.spec.filters.first() {
            let status = refused(
                &format!("List with the token of an unfiltered list and filter {filter:?}"),
                self.list(
                    owner,
                    json!({ "page_size": 1, "page_token": token, "filter": filter }),
                )
                .await,
                Code::InvalidArgument,
            );
            assert_eq!(
                violated_fields(&status),
                ["page_token"],
                "{}",
                show(&status)
            );
        }
        // show_deleted is part of the query too (and the only part of a List without
        // a filter): a cursor into the live rows must not continue a list of them all.
        let status = refused(
            "List with the token of a list of live rows and show_deleted",
            self.list(
                owner,
                json!({ "page_size": 1, "page_token": token, "show_deleted": true }),
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["page_token"],
            "{}",
            show(&status)
        );
    }

    async fn a_negative_page_size_is_invalid_and_a_large_one_clamped(&self) {
        let owner = &self.target.owner;
        self.fresh().await;
        let status = refused(
            "List with page_size -1",
            self.list(owner, json!({ "page_size": -1 })).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["page_size"], "{}", show(&status));
        let r = self
            .list(owner, json!({ "page_size": 5000 }))
            .await
            .unwrap_or_else(|s| panic!("List with page_size 5000 (clamped): {}", show(&s)));
        let rows = self.ids(&r).len();
        assert!(rows <= 1000, "page_size 5000 returned {rows} rows");
        assert_eq!(
            rows,
            total(&r).min(1000),
            "page_size 5000 returns every row up to 1000"
        );
        let r = self.list_ok(owner, json!({})).await;
        assert_eq!(
            self.ids(&r).len(),
            total(&r).min(50),
            "page_size 0 means 50"
        );
    }

    async fn every_declared_filter_parses(&self) {
        let owner = &self.target.owner;
        self.fresh().await;
        let mut refused = Vec::new();
        for filter in self.spec.filters {
            if let Err(status) = self.list(owner, json!({ "filter": filter })).await {
                refused.push(format!("{filter:?}: {}", show(&status)));
            }
        }
        assert!(
            refused.is_empty(),
            "filters refused:\n{}",
            refused.join("\n")
        );
    }

    async fn deleted_rows_are_listed_only_with_show_deleted(&self) {
        let owner = &self.target.owner;
        let mine = self.fresh().await;
        let id = id(&mine);
        self.delete(owner, id, "")
            .await
            .unwrap_or_else(|s| panic!("Delete: {}", show(&s)));
        let live = self.every_row(owner, false).await;
        assert!(
            live.iter().all(|r| self::id(r) != id),
            "a deleted row is listed without show_deleted"
        );
        let all = self.every_row(owner, true).await;
        let deleted = all
            .iter()
            .find(|r| self::id(r) == id)
            .unwrap_or_else(|| panic!("a deleted row is not listed with show_deleted"));
        assert!(
            deleted.get("delete_time").is_some(),
            "the deleted row is listed without delete_time: {deleted}"
        );
    }

    async fn delete_marks_and_undelete_restores(&self) {
        let owner = &self.target.owner;
        let mine = self.fresh().await;
        let id = id(&mine);
        let live = refused(
            "Undelete of a live resource",
            self.undelete(owner, id).await,
            Code::AlreadyExists,
        );
        assert_eq!(reason(&live), "NOT_DELETED", "{}", show(&live));
        let deleted = self
            .delete(owner, id, &etag(&mine))
            .await
            .unwrap_or_else(|s| panic!("Delete with the current etag: {}", show(&s)));
        assert_eq!(self::id(&deleted), id, "Delete returns the resource");
        let delete_time = timestamp(&deleted, "delete_time")
            .unwrap_or_else(|| panic!("Delete returns no delete_time: {deleted}"));
        if self.resource.get_field_by_name("purge_time").is_some() {
            if self.spec.purged {
                let purge_time = timestamp(&deleted, "purge_time")
                    .unwrap_or_else(|| panic!("Delete returns no purge_time: {deleted}"));
                assert!(
                    purge_time > delete_time,
                    "purge_time {purge_time} is not after delete_time {delete_time}"
                );
            } else {
                assert!(
                    timestamp(&deleted, "purge_time").is_none(),
                    "a resource that is never purged reports a purge_time: {deleted}"
                );
            }
        }
        refused(
            "a second Delete",
            self.delete(owner, id, "").await,
            Code::NotFound,
        );
        // AIP-164: Get still finds a soft-deleted resource, as Delete returned it.
        let got = self
            .get(owner, id)
            .await
            .unwrap_or_else(|s| panic!("Get of a deleted resource (AIP-164): {}", show(&s)));
        assert_same(
            "Get of a deleted resource returns it as Delete did",
            &deleted,
            &got,
        );
        refused(
            "Update of a deleted resource",
            self.update(owner, self.change(id, 1, None), &[self.spec.mutable[0].0])
                .await,
            Code::NotFound,
        );
        let restored = self
            .undelete(owner, id)
            .await
            .unwrap_or_else(|s| panic!("Undelete: {}", show(&s)));
        for field in ["delete_time", "purge_time"] {
            assert!(
                restored.get(field).is_none(),
                "Undelete leaves {field} set: {restored}"
            );
        }
        assert_same(
            "Get returns the restored resource",
            &restored,
            &self.get_ok(owner, id).await,
        );
    }

    // -----------------------------------------------------------------------------------
    // Calls
    // -----------------------------------------------------------------------------------

    async fn call(&self, who: &Caller, verb: &str, request: Value) -> Result<Value, Status> {
        self.client
            .call(who, self.spec.service, &self.spec.method(verb), request)
            .await
    }

    /// A valid body, its resource in the canonical JSON (proto field names).
    async fn valid(&self, who: &Caller) -> Valid {
        let n = self.next.get();
        self.next.set(n + 1);
        let mut valid = self.source.valid(who, n).await;
        valid.resource = to_json(&from_json(self.resource.clone(), valid.resource));
        valid
    }

    /// A new resource of the owner's.
    async fn fresh(&self) -> Value {
        let owner = &self.target.owner;
        if S::CREATES {
            let valid = self.valid(owner).await;
            self.create_ok(owner, &valid, "").await
        } else {
            let n = self.next.get();
            self.next.set(n + 1);
            self.source.other(owner, n).await
        }
    }

    async fn create(&self, who: &Caller, valid: &Valid, request_id: &str) -> Result<Value, Status> {
        let mut request = valid.request.clone();
        request.insert(self.spec.field.to_owned(), valid.resource.clone());
        if !request_id.is_empty() {
            request.insert("request_id".to_owned(), json!(request_id));
        }
        self.call(who, "Create", Value::Object(request)).await
    }

    async fn create_ok(&self, who: &Caller, valid: &Valid, request_id: &str) -> Value {
        self.create(who, valid, request_id)
            .await
            .unwrap_or_else(|s| {
                panic!(
                    "{} of a valid instance {}: {}",
                    self.spec.method("Create"),
                    valid.resource,
                    show(&s)
                )
            })
    }

    async fn get(&self, who: &Caller, id: i64) -> Result<Value, Status> {
        self.call(who, "Get", json!({ "id": id })).await
    }

    async fn get_ok(&self, who: &Caller, id: i64) -> Value {
        self.get(who, id)
            .await
            .unwrap_or_else(|s| panic!("{} {id}: {}", self.spec.method("Get"), show(&s)))
    }

    /// Update with the resource `body` and the mask `paths`.
    async fn update(&self, who: &Caller, body: Value, paths: &[&str]) -> Result<Value, Status> {
        let method = DynamicClient::method(self.spec.service, &self.spec.method("Update"));
        let mut request = from_json(method.input(), json!({ self.spec.field: body }));
        let mask = method
            .input()
            .get_field_by_name("update_mask")
            .and_then(|f| f.kind().as_message().cloned())
            .expect("an Update request has an update_mask");
        let mut mask = DynamicMessage::new(mask);
        mask.set_field_by_name(
            "paths",
            Field::List(
                paths
                    .iter()
                    .map(|p| Field::String((*p).to_owned()))
                    .collect(),
            ),
        );
        request.set_field_by_name("update_mask", Field::Message(mask));
        self.client
            .call_message(who, &method, request)
            .await
            .map(|m| to_json(&m))
    }

    async fn delete(&self, who: &Caller, id: i64, etag: &str) -> Result<Value, Status> {
        self.call(who, "Delete", json!({ "id": id, "etag": etag }))
            .await
    }

    async fn undelete(&self, who: &Caller, id: i64) -> Result<Value, Status> {
        self.call(who, "Undelete", json!({ "id": id })).await
    }

    async fn list(&self, who: &Caller, request: Value) -> Result<Value, Status> {
        self.call(who, "List", request).await
    }

    async fn list_ok(&self, who: &Caller, request: Value) -> Value {
        self.list(who, request.clone())
            .await
            .unwrap_or_else(|s| panic!("{} {request}: {}", self.spec.method("List"), show(&s)))
    }

    /// The rows of a List response.
    fn rows(&self, response: &Value) -> Vec<Value> {
        response
            .get(&self.list_field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn ids(&self, response: &Value) -> Vec<i64> {
        self.rows(response).iter().map(id).collect()
    }

    /// Every row the owner can list, following the page tokens.
    async fn every_row(&self, who: &Caller, show_deleted: bool) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut token = String::new();
        for _ in 0..100 {
            let r = self
                .list_ok(
                    who,
                    json!({ "page_size": 1000, "page_token": token, "show_deleted": show_deleted }),
                )
                .await;
            rows.extend(self.rows(&r));
            token = next_token(&r);
            if token.is_empty() {
                return rows;
            }
        }
        panic!("listing did not end after 100 pages of 1000");
    }

    /// Another tenant's resource `id` (`state`: live or deleted) is in none of `who`'s
    /// pages, with or without `show_deleted`, so no list and no total counts it.
    async fn never_listed_for(&self, who: &Caller, id: i64, state: &str) {
        for show_deleted in [false, true] {
            let listed = self.every_row(who, show_deleted).await;
            assert!(
                !listed.iter().any(|row| self::id(row) == id),
                "another tenant's {state} resource {id} is listed (show_deleted {show_deleted})"
            );
        }
    }

    /// How many live rows `who` can list (total_size).
    async fn count(&self, who: &Caller) -> usize {
        total(&self.list_ok(who, json!({ "page_size": 1 })).await)
    }

    /// An Update body for resource `id` setting the first `fields` mutable fields to the
    /// spec's new values, with `etag` if given.
    fn change(&self, id: i64, fields: usize, etag: Option<&str>) -> Value {
        let mut body = json!({ "id": id });
        for (field, value) in self.spec.mutable.iter().take(fields) {
            object(&mut body).insert((*field).to_owned(), value.clone());
        }
        if let Some(etag) = etag {
            object(&mut body).insert("etag".to_owned(), json!(etag));
        }
        // The canonical JSON, so that values compare with what the service returns.
        to_json(&from_json(self.resource.clone(), body))
    }

    /// Asserts the status's violations name `field` (bare or under the resource field).
    #[track_caller]
    fn assert_names(&self, status: &Status, field: &str) {
        let fields = violated_fields(status);
        let prefixed = format!("{}.{field}", self.spec.field);
        assert!(
            fields.iter().any(|f| f == field || *f == prefixed),
            "the violations {fields:?} do not name {prefixed}: {}",
            show(status)
        );
    }
}

// ---------------------------------------------------------------------------------------
// JSON and status helpers
// ---------------------------------------------------------------------------------------

fn object(value: &mut Value) -> &mut serde_json::Map<String, Value> {
    value
        .as_object_mut()
        .unwrap_or_else(|| panic!("not a JSON object"))
}

/// An int64 field: the JSON mapping writes it as a string.
fn int(value: Option<&Value>) -> i64 {
    match value {
        None => 0,
        Some(Value::String(s)) => s.parse().unwrap_or_else(|_| panic!("not an int64: {s}")),
        Some(v) => v.as_i64().unwrap_or_else(|| panic!("not an int64: {v}")),
    }
}

fn id(resource: &Value) -> i64 {
    int(resource.get("id"))
}

fn etag(resource: &Value) -> String {
    resource
        .get("etag")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn total(response: &Value) -> usize {
    usize::try_from(int(response.get("total_size"))).expect("a non-negative total_size")
}

fn next_token(response: &Value) -> String {
    response
        .get("next_page_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn timestamp(resource: &Value, field: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let text = resource.get(field)?.as_str()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{field} {text:?} is no RFC 3339 time: {e}")),
    )
}

/// `resource` without `fields`.
fn without(resource: &Value, fields: &[&str]) -> Value {
    let mut copy = resource.clone();
    for field in fields {
        object(&mut copy).remove(*field);
    }
    copy
}

/// A token with one character changed.
fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() / 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Asserts two resources are equal, naming the fields that differ.
#[track_caller]
fn assert_same(what: &str, expected: &Value, actual: &Value) {
    if expected == actual {
        return;
    }
    let (Some(e), Some(a)) = (expected.as_object(), actual.as_object()) else {
        panic!("{what}: expected {expected}, got {actual}");
    };
    let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|k| e.get(*k) != a.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("unset".to_owned(), Value::to_string);
            format!("{k}: expected {}, got {}", show(e.get(k)), show(a.get(k)))
        })
        .collect();
    panic!("{what}, but {}", differences.join("; "));
}

/// Asserts `result` failed with `code`; returns the status.
#[track_caller]
fn refused<T: Debug>(what: &str, result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        Err(status) => panic!("{what}: expected {code:?}, got {}", show(&status)),
        Ok(v) => panic!("{what}: expected {code:?}, got Ok({v:?})"),
    }
}

/// Asserts a PERMISSION_DENIED status's ErrorInfo names `permission`.
#[track_caller]
fn assert_names_permission(status: &Status, permission: &str) {
    let named = status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("permission").cloned())
        .unwrap_or_default();
    assert_eq!(
        named,
        permission,
        "the ErrorInfo (reason {:?}) names the missing permission: {}",
        reason(status),
        show(status)
    );
}

/// A status as `CODE: message [violations]`.
fn show(status: &Status) -> String {
    let fields = violated_fields(status);
    if fields.is_empty() {
        format!("{:?}: {}", status.code(), status.message())
    } else {
        format!(
            "{:?}: {} (violations: {})",
            status.code(),
            status.message(),
            fields.join(", ")
        )
    }
}
