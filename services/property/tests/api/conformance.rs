//! The AIP conformance suite (`fusion_testkit::conformance`) for every property
//! resource: one spec each, one test each, and a test that no resource is left out.

use serde_json::{Value, json};
use tonic::{Code, Status};

use fusion_testkit::conformance::{self, Caller, DynamicClient, ResourceSpec, Target, json_of};

use crate::helpers::{READER, TestApp, User, WRITER, expect_code, reason, violated_fields};
use crate::media::{meta, png, upload};

const PACKAGE: &str = "fusion.property.v1";

/// A filter on `create_time`, which every List accepts.
const SINCE_2020: &str = r#"create_time > "2020-01-01T00:00:00Z""#;

fn developers() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.property.v1.DeveloperService",
        singular: "Developer",
        plural: "Developers",
        field: "developer",
        read_permission: "property.developers.read",
        write_permission: "property.developers.write",
        required: &["name", "slug"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed developer")),
            ("description", json!("Changed description")),
        ],
        filters: &[r#"name = "x""#, r#"slug = "x""#, SINCE_2020],
        purged: true,
        skip: &[],
    }
}

fn projects() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.property.v1.ProjectService",
        singular: "Project",
        plural: "Projects",
        field: "project",
        read_permission: "property.projects.read",
        write_permission: "property.projects.write",
        required: &["name", "slug", "status"],
        length_limited: ("suburb", 100),
        mutable: [
            ("name", json!("Renamed project")),
            ("suburb", json!("Newtown")),
        ],
        filters: &[
            "developer_id = 1",
            r#"name = "x""#,
            r#"slug = "x""#,
            r#"suburb = "x""#,
            r#"state = "NSW""#,
            r#"postcode = "2000""#,
            r#"country = "Australia""#,
            r#"status = "selling""#,
            "featured = true",
            "latitude >= -34 AND latitude <= -33",
            "longitude >= 151 AND longitude <= 152",
            "lot_count > 0",
            "available_lot_count > 0",
            "min_price >= 100000",
            "max_price <= 900000",
            SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn stages() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.property.v1.StageService",
        singular: "Stage",
        plural: "Stages",
        field: "stage",
        read_permission: "property.stages.read",
        write_permission: "property.stages.write",
        required: &["project_id", "name", "status"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed stage")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            "project_id = 1",
            r#"name = "x""#,
            r#"status = "selling""#,
            r#"release_date >= "2024-01-01""#,
            "position > 0",
            SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn features() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.property.v1.FeatureService",
        singular: "Feature",
        plural: "Features",
        field: "feature",
        read_permission: "property.features.read",
        write_permission: "property.features.write",
        required: &["name"],
        length_limited: ("category", 100),
        mutable: [
            ("category", json!("Outdoor")),
            ("description", json!("Changed description")),
        ],
        filters: &[r#"name = "Pool""#, r#"category = "Outdoor""#, SINCE_2020],
        purged: true,
        skip: &[],
    }
}

fn lots() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.property.v1.LotService",
        singular: "Lot",
        plural: "Lots",
        field: "lot",
        read_permission: "property.lots.read",
        write_permission: "property.lots.write",
        required: &["stage_id", "lot_number"],
        length_limited: ("street_name", 255),
        mutable: [
            ("street_name", json!("Changed Street")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            "stage_id = 1",
            "project_id = 1",
            r#"lot_number = "101""#,
            r#"street_name = "x""#,
            "price >= 100000",
            "land_size > 300",
            "land_price > 100000",
            "house_price > 100000",
            "bedrooms >= 3",
            "bathrooms >= 2",
            "garage >= 1",
            r#"status = "available""#,
            r#"sale_status = "Display home""#,
            r#"estimated_completion_date < "2030-01-01""#,
            r#"features:"Pool""#,
            "latitude >= -34 AND latitude <= -33",
            "longitude >= 151 AND longitude <= 152",
            SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn media() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.property.v1.MediaService",
        singular: "Media",
        plural: "Media",
        field: "media",
        read_permission: "property.media.read",
        write_permission: "property.media.write",
        // Not checked: media are made by the client-streaming UploadMedia, whose
        // metadata and request_id media.rs tests.
        required: &[],
        length_limited: ("title", 255),
        mutable: [
            ("title", json!("Renamed media")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            r#"mediable_type = "project""#,
            "mediable_id = 1",
            r#"media_type = "image""#,
            r#"mime_type = "image/png""#,
            r#"title = "x""#,
            SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

#[test]
fn every_property_resource_has_a_conformance_spec() {
    conformance::assert_every_resource_is_covered(
        PACKAGE,
        &[
            developers(),
            projects(),
            stages(),
            features(),
            lots(),
            media(),
        ],
    );
}

fn caller(user: &User) -> Caller {
    Caller::new(user.tenant_id, user.token.clone())
}

/// Acme's manager acting, Globex's manager as the other tenant, and Acme users each
/// lacking one of `spec`'s permissions.
fn target(app: &TestApp, spec: &ResourceSpec) -> Target {
    let all_but =
        |missing: &str| -> Vec<&str> { WRITER.iter().copied().filter(|p| *p != missing).collect() };
    Target {
        channel: app.channel.clone(),
        owner: caller(&app.acme),
        stranger: caller(&app.globex),
        without_read: caller(&app.user(1, 12, &all_but(spec.read_permission))),
        without_write: caller(&app.user(1, 13, &all_but(spec.write_permission))),
    }
}

#[tokio::test]
async fn developers_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = developers();
    conformance::run(
        &target(&app, &spec),
        &spec,
        async |_, n| json!({ "name": format!("Developer {n}"), "slug": format!("developer-{n}") }),
    )
    .await;
}

#[tokio::test]
async fn projects_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = projects();
    conformance::run(&target(&app, &spec), &spec, async |_, n| {
        json!({
            "name": format!("Project {n}"),
            "slug": format!("project-{n}"),
            "status": "selling",
            "suburb": "Paddington",
        })
    })
    .await;
}

#[tokio::test]
async fn stages_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "conformance").await;
    let spec = stages();
    conformance::run(&target(&app, &spec), &spec, async |_, n| {
        json!({ "project_id": project.id, "name": format!("Stage {n}"), "status": "selling" })
    })
    .await;
}

#[tokio::test]
async fn features_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = features();
    conformance::run(
        &target(&app, &spec),
        &spec,
        async |_, n| json!({ "name": format!("Feature {n}"), "category": "Indoor" }),
    )
    .await;
}

#[tokio::test]
async fn lots_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let (_, stage) = app.project_with_stage(&app.acme, "conformance").await;
    let spec = lots();
    conformance::run(&target(&app, &spec), &spec, async |_, n| {
        json!({ "stage_id": stage.id, "lot_number": n.to_string(), "price": "500000.00" })
    })
    .await;
}

#[tokio::test]
async fn media_conform_to_the_standard_methods_but_create() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "conformance").await;
    let spec = media();
    // The suite only asks for the owner's (Acme's) media.
    conformance::run_without_create(&target(&app, &spec), &spec, async |_, n| {
        let mut m = meta("project", project.id, "image");
        m.title = format!("Media {n}");
        let media = upload(&app, &app.acme, m, &png(1024), 1024)
            .await
            .expect("media uploaded");
        json_of("fusion.property.v1.Media", &media)
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// What holds for every resource but the suite leaves out: the reasons of its refusals,
// another tenant's rows never counted, a page token bound to its order, and a call
// without a token.
// ---------------------------------------------------------------------------------------

/// An int64 of the JSON mapping (written as a string).
fn int(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::String(s)) => s.parse().expect("an int64"),
        Some(v) => v.as_i64().expect("an integer"),
        None => 0,
    }
}

fn id(resource: &Value) -> i64 {
    int(resource.get("id"))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// A valid resource of a user's to create, the `n`-th.
type Body<'a> = &'a dyn Fn(&User, usize) -> Value;

/// A List's ids, total_size and next page token.
type Page = (Vec<i64>, i64, String);

/// Calls `spec`'s standard method `verb` with a JSON request.
struct Methods<'a> {
    client: DynamicClient,
    spec: &'a ResourceSpec,
}

impl Methods<'_> {
    async fn call(&self, who: &Caller, verb: &str, request: Value) -> Result<Value, Status> {
        self.client
            .call(who, self.spec.service, &self.spec.method(verb), request)
            .await
    }

    async fn ok(&self, who: &Caller, verb: &str, request: Value) -> Value {
        let what = format!("{} {request}", self.spec.method(verb));
        self.call(who, verb, request)
            .await
            .unwrap_or_else(|s| panic!("{what}: {s:?}"))
    }

    /// The ids and total_size of a List, and its next page token.
    async fn list(&self, who: &Caller, request: Value) -> Page {
        let r = self.ok(who, "List", request).await;
        let rows = r.get(self.spec.plural.to_lowercase().as_str());
        let ids = rows
            .and_then(Value::as_array)
            .map(|rows| rows.iter().map(id).collect())
            .unwrap_or_default();
        (
            ids,
            int(r.get("total_size")),
            text(&r, "next_page_token").into(),
        )
    }

    fn create_request(&self, resource: Value, request_id: &str) -> Value {
        json!({ self.spec.field: resource, "request_id": request_id })
    }
}

/// Asserts the rules every resource shares beyond the suite, on `mine` (three of Acme's
/// rows) and `theirs` (one of Globex's). `body(user, n)` is a valid resource of `user`'s
/// to create, for the resources created by Create.
async fn assert_the_rules_beyond_the_suite(
    app: &TestApp,
    spec: &ResourceSpec,
    order_by: &str,
    mine: [Value; 3],
    theirs: Value,
    body: Option<Body<'_>>,
) {
    let m = Methods {
        client: DynamicClient::new(app.channel.clone()),
        spec,
    };
    let (acme, globex) = (caller(&app.acme), caller(&app.globex));
    let mut my_ids: Vec<i64> = mine.iter().map(id).collect();
    my_ids.sort_unstable();

    // Another tenant's rows are never listed nor counted, deleted or not.
    for show_deleted in [false, true] {
        for (who, expected) in [(&acme, my_ids.clone()), (&globex, vec![id(&theirs)])] {
            let (mut ids, total, _) = m
                .list(
                    who,
                    json!({ "show_deleted": show_deleted, "page_size": 1000 }),
                )
                .await;
            ids.sort_unstable();
            assert_eq!(ids, expected, "{} of tenant {}", spec.plural, who.tenant_id);
            assert_eq!(
                total,
                expected.len() as i64,
                "total_size of {}",
                spec.plural
            );
        }
    }

    // Pages in a declared order visit every row once; their token is bound to the order.
    let mut visited = Vec::new();
    let mut token = String::new();
    for _ in 0..3 {
        let request = json!({ "page_size": 2, "page_token": token, "order_by": order_by });
        let (ids, total, next) = m.list(&acme, request).await;
        assert_eq!(total, 3, "total_size of each page ordered by {order_by}");
        visited.extend(ids);
        token = next;
        if token.is_empty() {
            break;
        }
    }
    visited.sort_unstable();
    assert_eq!(visited, my_ids, "pages ordered by {order_by}");
    let (_, _, first) = m
        .list(&acme, json!({ "page_size": 2, "order_by": order_by }))
        .await;
    let status = expect_code(
        m.call(
            &acme,
            "List",
            json!({ "page_size": 2, "page_token": first }),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["page_token"], "{}", spec.plural);

    // A reader reads.
    let reader = caller(&app.user(1, 14, READER));
    m.ok(&reader, "Get", json!({ "id": id(&mine[0]) })).await;
    m.list(&reader, json!({})).await;

    // The reasons: a stale etag, and undeleting a live row.
    let (field, value) = (spec.mutable[0].0, &spec.mutable[0].1);
    let stale = text(&mine[0], "etag").to_owned();
    let changed = json!({ "id": id(&mine[0]), field: value, "etag": stale });
    let updated = m.ok(&acme, "Update", json!({ spec.field: changed })).await;
    for (verb, request) in [
        ("Update", json!({ spec.field: changed })),
        ("Delete", json!({ "id": id(&mine[0]), "etag": stale })),
    ] {
        let status = expect_code(m.call(&acme, verb, request).await, Code::Aborted);
        assert_eq!(reason(&status), "ETAG_MISMATCH", "{verb} {}", spec.plural);
    }
    let status = expect_code(
        m.call(&acme, "Undelete", json!({ "id": id(&mine[0]) }))
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(reason(&status), "NOT_DELETED", "{}", spec.plural);

    // A deleted row is still read by Get (AIP-164) and not found by Update until
    // restored.
    let deleted = id(&mine[1]);
    m.ok(&acme, "Delete", json!({ "id": deleted })).await;
    let got = m.ok(&acme, "Get", json!({ "id": deleted })).await;
    assert!(
        got.get("delete_time").is_some(),
        "Get of a deleted {}: {got}",
        spec.plural
    );
    expect_code(
        m.call(
            &acme,
            "Update",
            json!({ spec.field: { "id": deleted, field: value } }),
        )
        .await,
        Code::NotFound,
    );

    // An id must be positive.
    for verb in ["Get", "Delete", "Undelete"] {
        let status = expect_code(
            m.call(&acme, verb, json!({ "id": 0 })).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["id"], "{verb} {}", spec.plural);
    }
    let status = expect_code(
        m.call(&acme, "Update", json!({ spec.field: { field: value } }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), [format!("{}.id", spec.field)]);

    // Without a token every method is UNAUTHENTICATED and changes nothing.
    let anonymous = Caller::new(1, "");
    let mine_now = m.ok(&acme, "Get", json!({ "id": id(&mine[2]) })).await;
    let mut calls = vec![
        ("Get", json!({ "id": id(&mine[2]) })),
        ("List", json!({})),
        (
            "Update",
            json!({ spec.field: { "id": id(&mine[2]), field: value } }),
        ),
        ("Delete", json!({ "id": id(&mine[2]) })),
        ("Undelete", json!({ "id": deleted })),
    ];
    if let Some(body) = body {
        calls.push(("Create", m.create_request(body(&app.acme, 100), "")));
    }
    for (verb, request) in calls {
        let status = expect_code(
            m.call(&anonymous, verb, request).await,
            Code::Unauthenticated,
        );
        assert_eq!(reason(&status), "TOKEN_MISSING", "{verb} {}", spec.plural);
    }
    assert_eq!(
        m.ok(&acme, "Get", json!({ "id": id(&mine[2]) })).await,
        mine_now
    );
    assert_ne!(updated, mine[0]);

    // A request id is a UUID, bound to its body, and the caller's tenant's own.
    let Some(body) = body else { return };
    let status = expect_code(
        m.call(
            &acme,
            "Create",
            m.create_request(body(&app.acme, 101), "not-a-uuid"),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["request_id"], "{}", spec.plural);
    let request_id = "0b7e3f2a-5c1d-4e8f-9a6b-3d2c1e0f9a8b";
    let first = m
        .ok(
            &acme,
            "Create",
            m.create_request(body(&app.acme, 102), request_id),
        )
        .await;
    let status = expect_code(
        m.call(
            &acme,
            "Create",
            m.create_request(body(&app.acme, 103), request_id),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(reason(&status), "REQUEST_ID_REUSED", "{}", spec.plural);
    let theirs = m
        .ok(
            &globex,
            "Create",
            m.create_request(body(&app.globex, 102), request_id),
        )
        .await;
    assert_ne!(
        id(&theirs),
        id(&first),
        "{}: request ids are per tenant",
        spec.plural
    );
}

/// Creates `resource` for `who`.
async fn create(app: &TestApp, spec: &ResourceSpec, who: &User, resource: Value) -> Value {
    Methods {
        client: DynamicClient::new(app.channel.clone()),
        spec,
    }
    .ok(&caller(who), "Create", json!({ spec.field: resource }))
    .await
}

/// Runs [`assert_the_rules_beyond_the_suite`] for a resource created by Create; returns
/// the ids of Acme's first row and of Globex's row.
async fn check_created(
    app: &TestApp,
    spec: ResourceSpec,
    order_by: &str,
    body: Body<'_>,
) -> (i64, i64) {
    let mut mine = Vec::new();
    for n in 0..3 {
        mine.push(create(app, &spec, &app.acme, body(&app.acme, n)).await);
    }
    let theirs = create(app, &spec, &app.globex, body(&app.globex, 50)).await;
    let ids = (id(&mine[0]), id(&theirs));
    let mine: [Value; 3] = mine.try_into().expect("three rows");
    assert_the_rules_beyond_the_suite(app, &spec, order_by, mine, theirs, Some(body)).await;
    ids
}

/// Of `ids` (Acme's, Globex's), `who`'s.
fn of(who: &User, ids: (i64, i64)) -> i64 {
    if who.tenant_id == 1 { ids.0 } else { ids.1 }
}

#[tokio::test]
async fn every_resource_keeps_the_rules_beyond_the_suite() {
    let app = TestApp::spawn().await;
    check_created(
        &app,
        developers(),
        "name desc",
        &|_, n| json!({ "name": format!("Developer {n}"), "slug": format!("developer-{n}") }),
    )
    .await;
    check_created(
        &app,
        features(),
        "category desc",
        &|_, n| json!({ "name": format!("Feature {n}"), "category": "Indoor" }),
    )
    .await;
    let projects = check_created(&app, projects(), "available_lot_count", &|_, n| {
        json!({ "name": format!("Project {n}"), "slug": format!("project-{n}"), "status": "selling" })
    })
    .await;
    let stages = check_created(&app, stages(), "name", &|who, n| {
        json!({ "project_id": of(who, projects), "name": format!("Stage {n}"), "status": "selling" })
    })
    .await;
    check_created(&app, lots(), "price desc", &|who, n| {
        json!({ "stage_id": of(who, stages), "lot_number": format!("R{n}"), "price": "500000.00" })
    })
    .await;

    let mut uploads = Vec::new();
    for (who, n) in [(&app.acme, 3), (&app.globex, 1)] {
        for _ in 0..n {
            let m = meta("project", of(who, projects), "image");
            let uploaded = upload(&app, who, m, &png(1024), 1024)
                .await
                .expect("media uploaded");
            uploads.push(json_of("fusion.property.v1.Media", &uploaded));
        }
    }
    let theirs = uploads.pop().expect("Globex's media");
    let mine: [Value; 3] = uploads.try_into().expect("three of Acme's media");
    let order_by = "file_size desc, create_time";
    assert_the_rules_beyond_the_suite(&app, &media(), order_by, mine, theirs, None).await;
}
