//! The four simple resources — developers, projects, stages and features — over the
//! wire: the standard methods, validation naming each field, tenant isolation,
//! permissions, etags, request ids, paging, and each resource's own rules.

use std::future::Future;
use std::time::Duration;

use prost_types::FieldMask;
use tonic::{Code, Status};

use fusion_proto::google::r#type::Date;
use fusion_proto::property::v1 as pb;

use crate::helpers::{TestApp, User, expect_code, reason, violated_fields};

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// The violated fields, sorted.
fn fields(status: &Status) -> Vec<String> {
    let mut fields = violated_fields(status);
    fields.sort();
    fields
}

/// Follows `next_page_token` from the first page (`page("")`) to the last, checking
/// that every page reports `total` and holds at most two rows. Returns the ids in the
/// order visited and the number of pages.
async fn every_page<F, Fut>(total: i32, mut page: F) -> (Vec<i64>, usize)
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = (Vec<i64>, String, i32)>,
{
    let mut ids = Vec::new();
    let mut token = String::new();
    for pages in 1..=10 {
        let (page_ids, next, page_total) = page(token).await;
        assert_eq!(page_total, total, "total_size on page {pages}");
        assert!(page_ids.len() <= 2, "page {pages} holds {page_ids:?}");
        ids.extend(page_ids);
        if next.is_empty() {
            return (ids, pages);
        }
        token = next;
    }
    panic!("paging did not end after 10 pages: {ids:?}");
}

/// Asserts `visited` holds each of `expected` exactly once.
#[track_caller]
fn assert_each_once(visited: &[i64], expected: &[i64]) {
    let mut visited = visited.to_vec();
    let mut expected = expected.to_vec();
    visited.sort_unstable();
    expected.sort_unstable();
    assert_eq!(visited, expected, "every row exactly once");
}

#[track_caller]
fn assert_bad_token<T: std::fmt::Debug>(result: Result<T, Status>) {
    let status = expect_code(result, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["page_token"]);
}

// ---------------------------------------------------------------------------------------
// Developers
// ---------------------------------------------------------------------------------------

fn developer(slug: &str) -> pb::Developer {
    pb::Developer {
        name: format!("Developer {slug}"),
        slug: slug.into(),
        ..Default::default()
    }
}

async fn create_developer(app: &TestApp, who: &User, d: pb::Developer) -> pb::Developer {
    app.developers()
        .create_developer(who.req(pb::CreateDeveloperRequest {
            developer: Some(d),
            request_id: String::new(),
        }))
        .await
        .expect("developer created")
        .into_inner()
}

async fn get_developer(app: &TestApp, who: &User, id: i64) -> Result<pb::Developer, Status> {
    app.developers()
        .get_developer(who.req(pb::GetDeveloperRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_developer(
    app: &TestApp,
    who: &User,
    d: pb::Developer,
    update_mask: Option<FieldMask>,
) -> Result<pb::Developer, Status> {
    app.developers()
        .update_developer(who.req(pb::UpdateDeveloperRequest {
            developer: Some(d),
            update_mask,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete_developer(
    app: &TestApp,
    who: &User,
    id: i64,
    etag: &str,
) -> Result<pb::Developer, Status> {
    app.developers()
        .delete_developer(who.req(pb::DeleteDeveloperRequest {
            id,
            etag: etag.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn undelete_developer(app: &TestApp, who: &User, id: i64) -> Result<pb::Developer, Status> {
    app.developers()
        .undelete_developer(who.req(pb::UndeleteDeveloperRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_developers(
    app: &TestApp,
    who: &User,
    r: pb::ListDevelopersRequest,
) -> Result<pb::ListDevelopersResponse, Status> {
    app.developers()
        .list_developers(who.req(r))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_developer_is_created_read_listed_deleted_and_restored() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let created = create_developer(
        &app,
        who,
        pb::Developer {
            name: "Harbour Homes".into(),
            slug: "harbour-homes".into(),
            website_uri: "https://harbour.example".into(),
            email: "sales@harbour.example".into(),
            phone: "+61 2 9000 0000".into(),
            description: "Builds by the water".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(created.id > 0);
    assert_eq!(created.tenant_id, 1);
    assert_eq!(
        (
            created.name.as_str(),
            created.slug.as_str(),
            created.website_uri.as_str(),
            created.email.as_str(),
            created.phone.as_str(),
            created.description.as_str(),
        ),
        (
            "Harbour Homes",
            "harbour-homes",
            "https://harbour.example",
            "sales@harbour.example",
            "+61 2 9000 0000",
            "Builds by the water",
        )
    );
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(created.delete_time.is_none() && created.purge_time.is_none());
    assert!(!created.etag.is_empty());

    assert_eq!(get_developer(&app, who, created.id).await.unwrap(), created);
    let listed = list_developers(&app, who, Default::default())
        .await
        .unwrap();
    assert_eq!(listed.developers, std::slice::from_ref(&created));
    assert_eq!(listed.total_size, 1);
    assert!(listed.next_page_token.is_empty());

    let deleted = delete_developer(&app, who, created.id, &created.etag)
        .await
        .unwrap();
    let (deleted_at, purge_at) = (
        deleted.delete_time.expect("delete_time set"),
        deleted.purge_time.expect("purge_time set"),
    );
    assert!(purge_at.seconds > deleted_at.seconds);
    // AIP-164: Get still finds the soft-deleted developer, with its delete_time.
    let found = get_developer(&app, who, created.id).await.unwrap();
    assert_eq!(found.delete_time, deleted.delete_time);
    expect_code(
        update_developer(&app, who, created.clone(), mask(&["name"])).await,
        Code::NotFound,
    );
    expect_code(
        delete_developer(&app, who, created.id, "").await,
        Code::NotFound,
    );
    let live = list_developers(&app, who, Default::default())
        .await
        .unwrap();
    assert_eq!((live.developers.len(), live.total_size), (0, 0));
    let all = list_developers(
        &app,
        who,
        pb::ListDevelopersRequest {
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.developers, [deleted]);
    assert_eq!(all.total_size, 1);

    let restored = undelete_developer(&app, who, created.id).await.unwrap();
    assert!(restored.delete_time.is_none() && restored.purge_time.is_none());
    assert_eq!(restored.name, "Harbour Homes");
    assert_eq!(
        get_developer(&app, who, created.id).await.unwrap().slug,
        "harbour-homes"
    );
}

#[tokio::test]
async fn a_developer_update_changes_the_masked_fields_the_populated_ones_without_a_mask_and_all_for_star()
 {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let created = create_developer(
        &app,
        who,
        pb::Developer {
            name: "Before".into(),
            slug: "before".into(),
            website_uri: "https://before.example".into(),
            email: "a@before.example".into(),
            phone: "1".into(),
            description: "old".into(),
            ..Default::default()
        },
    )
    .await;

    // A mask: only the named field changes, whatever else is sent.
    let masked = update_developer(
        &app,
        who,
        pb::Developer {
            id: created.id,
            name: "Ignored".into(),
            website_uri: "https://after.example".into(),
            ..Default::default()
        },
        mask(&["website_uri"]),
    )
    .await
    .unwrap();
    assert_eq!(masked.website_uri, "https://after.example");
    assert_eq!(masked.name, "Before");
    assert_eq!(masked.email, "a@before.example");
    assert_ne!(masked.etag, created.etag);

    // A masked field sent empty is cleared.
    let cleared = update_developer(
        &app,
        who,
        pb::Developer {
            id: created.id,
            ..Default::default()
        },
        mask(&["email"]),
    )
    .await
    .unwrap();
    assert_eq!(cleared.email, "");
    assert_eq!(cleared.phone, "1");

    // No mask: the populated fields change and the rest stay.
    let populated = update_developer(
        &app,
        who,
        pb::Developer {
            id: created.id,
            phone: "2".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(populated.phone, "2");
    assert_eq!(
        (
            populated.name.as_str(),
            populated.slug.as_str(),
            populated.website_uri.as_str(),
            populated.description.as_str()
        ),
        ("Before", "before", "https://after.example", "old")
    );

    // `*`: every mutable field takes the sent value, unset ones become empty.
    let replaced = update_developer(
        &app,
        who,
        pb::Developer {
            id: created.id,
            name: "After".into(),
            slug: "after".into(),
            ..Default::default()
        },
        mask(&["*"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replaced.name.as_str(),
            replaced.slug.as_str(),
            replaced.website_uri.as_str(),
            replaced.email.as_str(),
            replaced.phone.as_str(),
            replaced.description.as_str()
        ),
        ("After", "after", "", "", "", "")
    );
    assert_eq!(replaced.create_time, created.create_time);
    assert_eq!(
        get_developer(&app, who, created.id).await.unwrap(),
        replaced
    );
}

#[tokio::test]
async fn invalid_developer_requests_are_refused_naming_each_field() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let status = expect_code(
        app.developers()
            .create_developer(who.req(pb::CreateDeveloperRequest {
                developer: Some(pb::Developer {
                    name: "  ".into(),
                    slug: "Not A Slug".into(),
                    website_uri: "ftp://files.example".into(),
                    email: "nobody".into(),
                    phone: "9".repeat(51),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        fields(&status),
        [
            "developer.email",
            "developer.name",
            "developer.phone",
            "developer.slug",
            "developer.website_uri"
        ]
    );
    for bad in ["-lead", "trail-", "dou--ble", "under_score", "UPPER"] {
        let status = expect_code(
            app.developers()
                .create_developer(who.req(pb::CreateDeveloperRequest {
                    developer: Some(developer(bad)),
                    request_id: String::new(),
                }))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["developer.slug"], "{bad:?}");
    }
    let status = expect_code(
        app.developers()
            .create_developer(who.req(pb::CreateDeveloperRequest {
                developer: Some(developer("fine")),
                request_id: "not-a-uuid".into(),
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["request_id"]);

    let d = create_developer(&app, who, developer("valid")).await;
    let status = expect_code(
        update_developer(
            &app,
            who,
            pb::Developer {
                id: d.id,
                slug: "Bad Slug".into(),
                ..Default::default()
            },
            mask(&["slug"]),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["developer.slug"]);
    // An unknown or output-only path in the mask is the mask's fault.
    for path in ["colour", "create_time", "id", "tenant_id"] {
        let status = expect_code(
            update_developer(&app, who, d.clone(), mask(&[path])).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    let status = expect_code(
        update_developer(
            &app,
            who,
            pb::Developer {
                name: "No id".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["developer.id"]);
    for status in [
        expect_code(get_developer(&app, who, 0).await, Code::InvalidArgument),
        expect_code(
            delete_developer(&app, who, -1, "").await,
            Code::InvalidArgument,
        ),
        expect_code(
            undelete_developer(&app, who, 0).await,
            Code::InvalidArgument,
        ),
    ] {
        assert_eq!(violated_fields(&status), ["id"]);
    }
    for (request, field) in [
        (
            pb::ListDevelopersRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListDevelopersRequest {
                filter: "website_uri = \"x\"".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            pb::ListDevelopersRequest {
                order_by: "slug".into(),
                ..Default::default()
            },
            "order_by",
        ),
        (
            pb::ListDevelopersRequest {
                page_token: "forged".into(),
                ..Default::default()
            },
            "page_token",
        ),
    ] {
        let status = expect_code(
            list_developers(&app, who, request).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    // Nothing was written by any of the refused calls.
    let d_now = get_developer(&app, who, d.id).await.unwrap();
    assert_eq!(d_now, d);
}

#[tokio::test]
async fn developer_slugs_are_unique_in_a_tenant() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let create = |d: pb::Developer, who: &User, request_id: &str| {
        let req = who.req(pb::CreateDeveloperRequest {
            developer: Some(d),
            request_id: request_id.into(),
        });
        let mut client = app.developers();
        async move { client.create_developer(req).await }
    };
    create(developer("first"), who, "").await.unwrap();
    // The same slug in another tenant is no conflict.
    create(developer("first"), &app.globex, "").await.unwrap();

    let status = expect_code(
        create(developer("first"), who, "").await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("slug"), "{}", status.message());
    let other = create_developer(&app, who, developer("other")).await;
    expect_code(
        update_developer(
            &app,
            who,
            pb::Developer {
                id: other.id,
                slug: "first".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::AlreadyExists,
    );
    assert_eq!(
        get_developer(&app, who, other.id).await.unwrap().slug,
        "other"
    );
}

#[tokio::test]
async fn a_developer_with_live_projects_cannot_be_deleted_nor_a_project_restored_onto_a_deleted_one()
 {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let d = create_developer(&app, who, developer("builder")).await;
    let p = create_project(
        &app,
        who,
        pb::Project {
            developer_id: d.id,
            ..project("built")
        },
    )
    .await;
    let status = expect_code(
        delete_developer(&app, who, d.id, "").await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_CHILDREN");
    assert!(get_developer(&app, who, d.id).await.is_ok());

    delete_project(&app, who, p.id, "").await.unwrap();
    delete_developer(&app, who, d.id, "").await.unwrap();
    let status = expect_code(
        undelete_project(&app, who, p.id).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "DEVELOPER_DELETED");
    undelete_developer(&app, who, d.id).await.unwrap();
    let restored = undelete_project(&app, who, p.id).await.unwrap();
    assert_eq!(restored.developer_id, d.id);
}

#[tokio::test]
async fn a_developer_cannot_be_deleted_while_a_project_for_it_is_being_created() {
    let app = TestApp::spawn().await;
    let d = create_developer(&app, &app.acme, developer("racing")).await;
    // A CreateProject for the developer caught between its check and its commit: it
    // holds the key-share lock CreateProject takes on the developer and has inserted
    // its row, exactly as the handler does.
    let db = app.db.app_db(fusion_property::SCHEMA).await;
    let mut creating = db.begin(1).await.unwrap();
    sqlx::query(
        "SELECT id FROM property.developers WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE",
    )
    .bind(d.id)
    .execute(&mut *creating)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO property.projects (tenant_id, developer_id, name, slug, status, total_lots, available_lots)
         VALUES (1, $1, 'Racing', 'racing', 'selling', 0, 0)",
    )
    .bind(d.id)
    .execute(&mut *creating)
    .await
    .unwrap();
    let mut client = app.developers();
    let request = app.acme.req(pb::DeleteDeveloperRequest {
        id: d.id,
        etag: String::new(),
    });
    let deleting = tokio::spawn(async move { client.delete_developer(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !deleting.is_finished(),
        "the delete waits for the project being created"
    );
    creating.commit().await.unwrap();
    let status = expect_code(
        deleting.await.unwrap().map(tonic::Response::into_inner),
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_CHILDREN");
    assert!(get_developer(&app, &app.acme, d.id).await.is_ok());
}

// ---------------------------------------------------------------------------------------
// Projects
// ---------------------------------------------------------------------------------------

fn project(slug: &str) -> pb::Project {
    pb::Project {
        name: format!("Project {slug}"),
        slug: slug.into(),
        status: "selling".into(),
        ..Default::default()
    }
}

async fn try_create_project(
    app: &TestApp,
    who: &User,
    p: pb::Project,
) -> Result<pb::Project, Status> {
    app.projects()
        .create_project(who.req(pb::CreateProjectRequest {
            project: Some(p),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn create_project(app: &TestApp, who: &User, p: pb::Project) -> pb::Project {
    try_create_project(app, who, p)
        .await
        .expect("project created")
}

async fn get_project(app: &TestApp, who: &User, id: i64) -> Result<pb::Project, Status> {
    app.projects()
        .get_project(who.req(pb::GetProjectRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_project(
    app: &TestApp,
    who: &User,
    p: pb::Project,
    update_mask: Option<FieldMask>,
) -> Result<pb::Project, Status> {
    app.projects()
        .update_project(who.req(pb::UpdateProjectRequest {
            project: Some(p),
            update_mask,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete_project(
    app: &TestApp,
    who: &User,
    id: i64,
    etag: &str,
) -> Result<pb::Project, Status> {
    app.projects()
        .delete_project(who.req(pb::DeleteProjectRequest {
            id,
            etag: etag.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn undelete_project(app: &TestApp, who: &User, id: i64) -> Result<pb::Project, Status> {
    app.projects()
        .undelete_project(who.req(pb::UndeleteProjectRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_projects(
    app: &TestApp,
    who: &User,
    r: pb::ListProjectsRequest,
) -> Result<pb::ListProjectsResponse, Status> {
    app.projects()
        .list_projects(who.req(r))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_project_is_created_read_listed_deleted_and_restored() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let d = create_developer(&app, who, developer("lendlease")).await;
    let created = create_project(
        &app,
        who,
        pb::Project {
            developer_id: d.id,
            name: "Springfield Rise".into(),
            slug: "springfield-rise".into(),
            description: "A new estate".into(),
            address: "1 Main Rd".into(),
            suburb: "Springfield Lakes".into(),
            state: "QLD".into(),
            postcode: "4300".into(),
            country: "Australia".into(),
            latitude: "-27.66800000".into(),
            longitude: "152.91900000".into(),
            status: "planning".into(),
            featured: true,
            ..Default::default()
        },
    )
    .await;
    assert!(created.id > 0);
    assert_eq!(created.tenant_id, 1);
    assert_eq!(created.developer_id, d.id);
    assert_eq!(
        (
            created.name.as_str(),
            created.slug.as_str(),
            created.suburb.as_str(),
            created.state.as_str(),
            created.postcode.as_str(),
            created.country.as_str(),
            created.status.as_str(),
        ),
        (
            "Springfield Rise",
            "springfield-rise",
            "Springfield Lakes",
            "QLD",
            "4300",
            "Australia",
            "planning"
        )
    );
    assert_eq!(
        (created.latitude.as_str(), created.longitude.as_str()),
        ("-27.66800000", "152.91900000")
    );
    assert!(created.featured);
    // The stock figures start empty.
    assert_eq!((created.lot_count, created.available_lot_count), (0, 0));
    assert_eq!(
        (created.min_price.as_str(), created.max_price.as_str()),
        ("", "")
    );
    assert!(created.delete_time.is_none() && created.purge_time.is_none());

    assert_eq!(get_project(&app, who, created.id).await.unwrap(), created);
    let listed = list_projects(&app, who, Default::default()).await.unwrap();
    assert_eq!(listed.projects, std::slice::from_ref(&created));
    assert_eq!(listed.total_size, 1);

    let deleted = delete_project(&app, who, created.id, &created.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some() && deleted.purge_time.is_some());
    // AIP-164: Get still finds the soft-deleted project, with its delete_time.
    let found = get_project(&app, who, created.id).await.unwrap();
    assert_eq!(found.delete_time, deleted.delete_time);
    expect_code(
        update_project(&app, who, created.clone(), mask(&["name"])).await,
        Code::NotFound,
    );
    expect_code(
        delete_project(&app, who, created.id, "").await,
        Code::NotFound,
    );
    assert_eq!(
        list_projects(&app, who, Default::default())
            .await
            .unwrap()
            .total_size,
        0
    );
    let all = list_projects(
        &app,
        who,
        pb::ListProjectsRequest {
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.projects, [deleted]);

    let restored = undelete_project(&app, who, created.id).await.unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(
        get_project(&app, who, created.id).await.unwrap().name,
        "Springfield Rise"
    );
}

#[tokio::test]
async fn a_project_update_changes_the_masked_fields_the_populated_ones_without_a_mask_and_all_for_star()
 {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let d = create_developer(&app, who, developer("owner")).await;
    let created = create_project(
        &app,
        who,
        pb::Project {
            developer_id: d.id,
            suburb: "Old Suburb".into(),
            latitude: "-27.5".into(),
            longitude: "153".into(),
            featured: true,
            ..project("changing")
        },
    )
    .await;

    let masked = update_project(
        &app,
        who,
        pb::Project {
            id: created.id,
            name: "Ignored".into(),
            status: "sold_out".into(),
            ..Default::default()
        },
        mask(&["status"]),
    )
    .await
    .unwrap();
    assert_eq!(masked.status, "sold_out");
    assert_eq!(masked.name, created.name);
    assert_ne!(masked.etag, created.etag);

    // Without a mask `false` cannot be told from unset; with one it unfeatures.
    let unset = update_project(
        &app,
        who,
        pb::Project {
            id: created.id,
            suburb: "New Suburb".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(unset.suburb, "New Suburb");
    assert!(unset.featured);
    assert_eq!(unset.developer_id, d.id);
    assert_eq!(unset.latitude, created.latitude);
    assert_eq!(unset.status, "sold_out");
    let unfeatured = update_project(
        &app,
        who,
        pb::Project {
            id: created.id,
            ..Default::default()
        },
        mask(&["featured", "latitude"]),
    )
    .await
    .unwrap();
    assert!(!unfeatured.featured);
    assert_eq!(unfeatured.latitude, "");
    assert_eq!(unfeatured.longitude, created.longitude);

    let replaced = update_project(
        &app,
        who,
        pb::Project {
            id: created.id,
            ..project("replaced")
        },
        mask(&["*"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replaced.slug.as_str(),
            replaced.status.as_str(),
            replaced.suburb.as_str(),
            replaced.longitude.as_str()
        ),
        ("replaced", "selling", "", "")
    );
    assert_eq!(replaced.developer_id, 0, "`*` with 0 clears the developer");
    assert!(!replaced.featured);
    assert_eq!(get_project(&app, who, created.id).await.unwrap(), replaced);
}

#[tokio::test]
async fn invalid_project_requests_are_refused_naming_each_field() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let status = expect_code(
        try_create_project(
            &app,
            who,
            pb::Project {
                developer_id: -3,
                name: String::new(),
                slug: "Bad_Slug".into(),
                postcode: "1".repeat(21),
                latitude: "91".into(),
                longitude: "-180.5".into(),
                status: "sold".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        fields(&status),
        [
            "project.developer_id",
            "project.latitude",
            "project.longitude",
            "project.name",
            "project.postcode",
            "project.slug",
            "project.status"
        ]
    );
    for (latitude, longitude, field) in [
        ("north", "", "project.latitude"),
        ("-27.123456789", "", "project.latitude"),
        ("-90.00000001", "", "project.latitude"),
        ("", "180.00000001", "project.longitude"),
        ("", "1000", "project.longitude"),
        ("", "1.5e2", "project.longitude"),
    ] {
        let status = expect_code(
            try_create_project(
                &app,
                who,
                pb::Project {
                    latitude: latitude.into(),
                    longitude: longitude.into(),
                    ..project("coords")
                },
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            [field],
            "{latitude:?} {longitude:?}"
        );
    }
    // The edges are allowed.
    let edge = create_project(
        &app,
        who,
        pb::Project {
            latitude: "-90".into(),
            longitude: "180".into(),
            ..project("edge")
        },
    )
    .await;
    let status = expect_code(
        update_project(
            &app,
            who,
            pb::Project {
                id: edge.id,
                latitude: "90.1".into(),
                ..Default::default()
            },
            mask(&["latitude"]),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["project.latitude"]);
    let status = expect_code(
        update_project(
            &app,
            who,
            pb::Project {
                id: edge.id,
                status: "open".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["project.status"]);
    // The stock figures and other output-only fields cannot be masked.
    for path in [
        "lot_count",
        "available_lot_count",
        "min_price",
        "max_price",
        "create_time",
        "colour",
    ] {
        let status = expect_code(
            update_project(&app, who, edge.clone(), mask(&[path])).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    let status = expect_code(
        update_project(&app, who, project("no-id"), None).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["project.id"]);
    let status = expect_code(
        list_projects(
            &app,
            who,
            pb::ListProjectsRequest {
                filter: "address = \"x\"".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter"]);
    assert_eq!(get_project(&app, who, edge.id).await.unwrap(), edge);
}

#[tokio::test]
async fn a_projects_developer_must_be_a_live_developer_of_the_same_tenant() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let live = create_developer(&app, who, developer("live")).await;
    let gone = create_developer(&app, who, developer("gone")).await;
    delete_developer(&app, who, gone.id, "").await.unwrap();
    let foreign = create_developer(&app, &app.globex, developer("foreign")).await;
    for (id, what) in [
        (999_999, "missing"),
        (gone.id, "deleted"),
        (foreign.id, "another tenant's"),
    ] {
        let status = expect_code(
            try_create_project(
                &app,
                who,
                pb::Project {
                    developer_id: id,
                    ..project(&format!("p-{id}"))
                },
            )
            .await,
            Code::NotFound,
        );
        assert!(
            status.message().contains("developer"),
            "{what}: {}",
            status.message()
        );
    }
    assert_eq!(
        list_projects(&app, who, Default::default())
            .await
            .unwrap()
            .total_size,
        0
    );
    let p = create_project(
        &app,
        who,
        pb::Project {
            developer_id: live.id,
            ..project("fine")
        },
    )
    .await;
    assert_eq!(p.developer_id, live.id);
    for id in [999_999, gone.id, foreign.id] {
        expect_code(
            update_project(
                &app,
                who,
                pb::Project {
                    id: p.id,
                    developer_id: id,
                    ..Default::default()
                },
                None,
            )
            .await,
            Code::NotFound,
        );
    }
    assert_eq!(
        get_project(&app, who, p.id).await.unwrap().developer_id,
        live.id
    );
    let cleared = update_project(
        &app,
        who,
        pb::Project {
            id: p.id,
            ..Default::default()
        },
        mask(&["developer_id"]),
    )
    .await
    .unwrap();
    assert_eq!(cleared.developer_id, 0);
}

#[tokio::test]
async fn a_project_with_live_stages_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (p, stage) = app.project_with_stage(who, "parent").await;
    let status = expect_code(
        delete_project(&app, who, p.id, "").await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_CHILDREN");
    assert!(get_project(&app, who, p.id).await.is_ok());
    // A deleted stage no longer holds it.
    delete_stage(&app, who, stage.id, "").await.unwrap();
    let deleted = delete_project(&app, who, p.id, "").await.unwrap();
    assert!(deleted.delete_time.is_some());
}

#[tokio::test]
async fn a_project_cannot_be_deleted_while_a_stage_for_it_is_being_created() {
    let app = TestApp::spawn().await;
    let p = create_project(&app, &app.acme, project("racing")).await;
    // A CreateStage caught between its check and its commit, as the handler does it.
    let db = app.db.app_db(fusion_property::SCHEMA).await;
    let mut creating = db.begin(1).await.unwrap();
    sqlx::query(
        "SELECT id FROM property.projects WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE",
    )
    .bind(p.id)
    .execute(&mut *creating)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO property.stages (tenant_id, project_id, name, status) VALUES (1, $1, 'S', 'planned')",
    )
    .bind(p.id)
    .execute(&mut *creating)
    .await
    .unwrap();
    let mut client = app.projects();
    let request = app.acme.req(pb::DeleteProjectRequest {
        id: p.id,
        etag: String::new(),
    });
    let deleting = tokio::spawn(async move { client.delete_project(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !deleting.is_finished(),
        "the delete waits for the stage being created"
    );
    creating.commit().await.unwrap();
    let status = expect_code(
        deleting.await.unwrap().map(tonic::Response::into_inner),
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_CHILDREN");
}

#[tokio::test]
async fn projects_filter_by_a_bounding_box_of_latitude_and_longitude() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    for (slug, latitude, longitude) in [
        ("brisbane", "-27.47000000", "153.02000000"),
        ("gold-coast", "-28.00000000", "153.40000000"),
        ("sydney", "-33.87000000", "151.21000000"),
        ("london", "51.51000000", "-0.13000000"),
        ("nowhere", "", ""),
    ] {
        create_project(
            &app,
            who,
            pb::Project {
                latitude: latitude.into(),
                longitude: longitude.into(),
                ..project(slug)
            },
        )
        .await;
    }
    // Another tenant's project inside every box.
    create_project(
        &app,
        &app.globex,
        pb::Project {
            latitude: "-27.50000000".into(),
            longitude: "153.00000000".into(),
            ..project("brisbane")
        },
    )
    .await;
    let slugs = |filter: &str| {
        let filter = filter.to_owned();
        let app = &app;
        async move {
            let r = list_projects(
                app,
                who,
                pb::ListProjectsRequest {
                    filter,
                    order_by: "name".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(r.total_size as usize, r.projects.len());
            r.projects.into_iter().map(|p| p.slug).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        slugs("latitude >= -28.5 AND latitude <= -27 AND longitude >= 152.5 AND longitude <= 154")
            .await,
        ["brisbane", "gold-coast"]
    );
    assert_eq!(
        slugs("latitude >= -34 AND latitude <= -27 AND longitude >= 150 AND longitude <= 154")
            .await,
        ["brisbane", "gold-coast", "sydney"]
    );
    // The edges are inside.
    assert_eq!(
        slugs("latitude >= -27.47 AND latitude <= -27.47 AND longitude >= 153.02 AND longitude <= 153.02")
            .await,
        ["brisbane"]
    );
    assert_eq!(
        slugs("latitude >= 0 AND longitude >= -1 AND longitude <= 1").await,
        ["london"]
    );
    assert!(
        slugs("latitude >= 10 AND latitude <= 20 AND longitude >= 10 AND longitude <= 20")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn project_slugs_are_unique_in_a_tenant() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let create = |p: pb::Project, who: &User, request_id: &str| {
        let req = who.req(pb::CreateProjectRequest {
            project: Some(p),
            request_id: request_id.into(),
        });
        let mut client = app.projects();
        async move { client.create_project(req).await }
    };
    create(project("first"), who, "").await.unwrap();
    // The same slug in another tenant is no conflict.
    create(project("first"), &app.globex, "").await.unwrap();

    expect_code(create(project("first"), who, "").await, Code::AlreadyExists);
    let other = create_project(&app, who, project("other")).await;
    expect_code(
        update_project(
            &app,
            who,
            pb::Project {
                id: other.id,
                slug: "first".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::AlreadyExists,
    );
    assert_eq!(
        get_project(&app, who, other.id).await.unwrap().slug,
        "other"
    );
}

// ---------------------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------------------

fn stage(project_id: i64, name: &str) -> pb::Stage {
    pb::Stage {
        project_id,
        name: name.into(),
        status: "planned".into(),
        ..Default::default()
    }
}

async fn try_create_stage(app: &TestApp, who: &User, s: pb::Stage) -> Result<pb::Stage, Status> {
    app.stages()
        .create_stage(who.req(pb::CreateStageRequest {
            stage: Some(s),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn create_stage(app: &TestApp, who: &User, s: pb::Stage) -> pb::Stage {
    try_create_stage(app, who, s).await.expect("stage created")
}

async fn get_stage(app: &TestApp, who: &User, id: i64) -> Result<pb::Stage, Status> {
    app.stages()
        .get_stage(who.req(pb::GetStageRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_stage(
    app: &TestApp,
    who: &User,
    s: pb::Stage,
    update_mask: Option<FieldMask>,
) -> Result<pb::Stage, Status> {
    app.stages()
        .update_stage(who.req(pb::UpdateStageRequest {
            stage: Some(s),
            update_mask,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete_stage(app: &TestApp, who: &User, id: i64, etag: &str) -> Result<pb::Stage, Status> {
    app.stages()
        .delete_stage(who.req(pb::DeleteStageRequest {
            id,
            etag: etag.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn undelete_stage(app: &TestApp, who: &User, id: i64) -> Result<pb::Stage, Status> {
    app.stages()
        .undelete_stage(who.req(pb::UndeleteStageRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_stages(
    app: &TestApp,
    who: &User,
    r: pb::ListStagesRequest,
) -> Result<pb::ListStagesResponse, Status> {
    app.stages()
        .list_stages(who.req(r))
        .await
        .map(tonic::Response::into_inner)
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

#[tokio::test]
async fn a_stage_is_created_read_listed_updated_deleted_and_restored() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let p = create_project(&app, who, project("staged")).await;
    let created = create_stage(
        &app,
        who,
        pb::Stage {
            description: "The first release".into(),
            release_date: date(2026, 3, 1),
            position: 2,
            ..stage(p.id, "Stage 1")
        },
    )
    .await;
    assert!(created.id > 0);
    assert_eq!((created.tenant_id, created.project_id), (1, p.id));
    assert_eq!(
        (
            created.name.as_str(),
            created.description.as_str(),
            created.status.as_str(),
            created.position
        ),
        ("Stage 1", "The first release", "planned", 2)
    );
    assert_eq!(created.release_date, date(2026, 3, 1));
    assert!(created.delete_time.is_none() && created.purge_time.is_none());
    assert_eq!(get_stage(&app, who, created.id).await.unwrap(), created);
    let listed = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            project_id: p.id,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.stages, std::slice::from_ref(&created));
    assert_eq!(listed.total_size, 1);

    let masked = update_stage(
        &app,
        who,
        pb::Stage {
            id: created.id,
            name: "Ignored".into(),
            status: "released".into(),
            ..Default::default()
        },
        mask(&["status"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (masked.status.as_str(), masked.name.as_str()),
        ("released", "Stage 1")
    );
    assert_ne!(masked.etag, created.etag);
    let populated = update_stage(
        &app,
        who,
        pb::Stage {
            id: created.id,
            position: 5,
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(populated.position, 5);
    assert_eq!(populated.release_date, date(2026, 3, 1));
    assert_eq!(populated.description, "The first release");
    assert_eq!(populated.status, "released");
    let replaced = update_stage(
        &app,
        who,
        pb::Stage {
            id: created.id,
            name: "Stage One".into(),
            status: "selling".into(),
            ..Default::default()
        },
        mask(&["*"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replaced.name.as_str(),
            replaced.status.as_str(),
            replaced.description.as_str(),
            replaced.position
        ),
        ("Stage One", "selling", "", 0)
    );
    assert_eq!(replaced.release_date, None);
    assert_eq!(replaced.project_id, p.id);

    let deleted = delete_stage(&app, who, created.id, &replaced.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some() && deleted.purge_time.is_some());
    // AIP-164: Get still finds the soft-deleted stage, with its delete_time.
    let found = get_stage(&app, who, created.id).await.unwrap();
    assert_eq!(found.delete_time, deleted.delete_time);
    expect_code(
        update_stage(&app, who, replaced.clone(), mask(&["name"])).await,
        Code::NotFound,
    );
    expect_code(
        delete_stage(&app, who, created.id, "").await,
        Code::NotFound,
    );
    assert_eq!(
        list_stages(&app, who, Default::default())
            .await
            .unwrap()
            .total_size,
        0
    );
    let all = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.stages, [deleted]);
    let restored = undelete_stage(&app, who, created.id).await.unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(
        get_stage(&app, who, created.id).await.unwrap().name,
        "Stage One"
    );
}

#[tokio::test]
async fn invalid_stage_requests_are_refused_naming_each_field() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let status = expect_code(
        try_create_stage(
            &app,
            who,
            pb::Stage {
                project_id: 0,
                name: " ".into(),
                status: "open".into(),
                release_date: date(2026, 2, 30),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        fields(&status),
        [
            "stage.name",
            "stage.project_id",
            "stage.release_date",
            "stage.status"
        ]
    );
    let status = expect_code(
        try_create_stage(&app, who, stage(-4, "Negative")).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["stage.project_id"]);
    let p = create_project(&app, who, project("p")).await;
    let s = create_stage(&app, who, stage(p.id, "Valid")).await;
    let status = expect_code(
        update_stage(
            &app,
            who,
            pb::Stage {
                id: s.id,
                status: "bogus".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["stage.status"]);
    let status = expect_code(
        update_stage(
            &app,
            who,
            pb::Stage {
                id: s.id,
                release_date: date(2026, 13, 1),
                ..Default::default()
            },
            mask(&["release_date"]),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["stage.release_date"]);
    for path in ["colour", "create_time", "project_id", "tenant_id"] {
        let status = expect_code(
            update_stage(&app, who, s.clone(), mask(&[path])).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    let status = expect_code(
        update_stage(&app, who, stage(p.id, "No id"), None).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["stage.id"]);
    let status = expect_code(
        list_stages(
            &app,
            who,
            pb::ListStagesRequest {
                project_id: -1,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["project_id"]);
    assert_eq!(get_stage(&app, who, s.id).await.unwrap(), s);
}

#[tokio::test]
async fn a_stage_needs_a_live_project_of_the_same_tenant() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let gone = create_project(&app, who, project("gone")).await;
    delete_project(&app, who, gone.id, "").await.unwrap();
    let foreign = create_project(&app, &app.globex, project("foreign")).await;
    for id in [999_999, gone.id, foreign.id] {
        let status = expect_code(
            try_create_stage(&app, who, stage(id, "Orphan")).await,
            Code::NotFound,
        );
        assert!(status.message().contains("project"), "{}", status.message());
    }
    assert_eq!(
        list_stages(
            &app,
            who,
            pb::ListStagesRequest {
                show_deleted: true,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .total_size,
        0
    );
    assert_eq!(
        list_stages(&app, &app.globex, Default::default())
            .await
            .unwrap()
            .total_size,
        0
    );
}

#[tokio::test]
async fn a_stages_project_cannot_be_changed() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let home = create_project(&app, who, project("home")).await;
    let away = create_project(&app, who, project("away")).await;
    let s = create_stage(&app, who, stage(home.id, "Stage 1")).await;
    let status = expect_code(
        update_stage(
            &app,
            who,
            pb::Stage {
                id: s.id,
                project_id: away.id,
                name: "Moved".into(),
                ..Default::default()
            },
            mask(&["name", "project_id"]),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    for update_mask in [None, mask(&["*"])] {
        let status = expect_code(
            update_stage(
                &app,
                who,
                pb::Stage {
                    id: s.id,
                    project_id: away.id,
                    ..stage(away.id, "Moved")
                },
                update_mask.clone(),
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            ["stage.project_id"],
            "{update_mask:?}"
        );
    }
    assert_eq!(get_stage(&app, who, s.id).await.unwrap(), s);
    // The whole stage sent back unchanged, project included, is fine (AIP-203).
    let renamed = update_stage(
        &app,
        who,
        pb::Stage {
            name: "Renamed".into(),
            ..s.clone()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.project_id),
        ("Renamed", home.id)
    );
}

#[tokio::test]
async fn list_stages_is_scoped_to_one_project_when_asked() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let a = create_project(&app, who, project("a")).await;
    let b = create_project(&app, who, project("b")).await;
    let a1 = create_stage(
        &app,
        who,
        pb::Stage {
            position: 1,
            ..stage(a.id, "A1")
        },
    )
    .await;
    let a2 = create_stage(
        &app,
        who,
        pb::Stage {
            position: 2,
            ..stage(a.id, "A2")
        },
    )
    .await;
    let b1 = create_stage(&app, who, stage(b.id, "B1")).await;
    let (foreign, foreign_stage) = app.project_with_stage(&app.globex, "foreign").await;
    let names = |project_id: i64| {
        let app = &app;
        async move {
            let r = list_stages(
                app,
                who,
                pb::ListStagesRequest {
                    project_id,
                    order_by: "name".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(r.total_size as usize, r.stages.len());
            r.stages.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(names(a.id).await, [a1.id, a2.id]);
    assert_eq!(names(b.id).await, [b1.id]);
    assert_eq!(names(0).await, [a1.id, a2.id, b1.id]);
    assert!(names(foreign.id).await.is_empty());
    // Default order is the display order within the project.
    let ordered = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            project_id: a.id,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ids: Vec<i64> = ordered.stages.iter().map(|s| s.id).collect();
    assert_eq!(ids, [a1.id, a2.id]);
    // Filtering on project_id agrees with the scope.
    let filtered = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            filter: format!("project_id = {}", b.id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(filtered.stages, [b1]);
    let theirs = list_stages(&app, &app.globex, Default::default())
        .await
        .unwrap();
    let ids: Vec<i64> = theirs.stages.iter().map(|s| s.id).collect();
    assert_eq!(ids, [foreign_stage.id]);
}

#[tokio::test]
async fn stages_page_through_every_row_once_and_a_page_token_is_bound_to_its_project_and_filter() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let a = create_project(&app, who, project("a")).await;
    let b = create_project(&app, who, project("b")).await;
    let mut created = Vec::new();
    for i in 0..5 {
        // Every stage has order 0: paging must break the ties.
        created.push(
            create_stage(&app, who, stage(a.id, &format!("S{i}")))
                .await
                .id,
        );
    }
    create_stage(&app, who, stage(b.id, "Elsewhere")).await;
    let page = |token: String| {
        let app = &app;
        async move {
            let r = list_stages(
                app,
                who,
                pb::ListStagesRequest {
                    project_id: a.id,
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            (
                r.stages.iter().map(|s| s.id).collect::<Vec<_>>(),
                r.next_page_token,
                r.total_size,
            )
        }
    };
    let (visited, pages) = every_page(5, page).await;
    assert_eq!(pages, 3);
    assert_each_once(&visited, &created);

    let first = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            project_id: a.id,
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (project_id, filter) in [(b.id, ""), (0, ""), (a.id, "status = \"planned\"")] {
        assert_bad_token(
            list_stages(
                &app,
                who,
                pb::ListStagesRequest {
                    project_id,
                    filter: filter.into(),
                    page_size: 2,
                    page_token: first.next_page_token.clone(),
                    ..Default::default()
                },
            )
            .await,
        );
    }

    delete_stage(&app, who, created[4], "").await.unwrap();
    let live = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            project_id: a.id,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(live.total_size, 4);
    let all = list_stages(
        &app,
        who,
        pb::ListStagesRequest {
            project_id: a.id,
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.total_size, 5);
    let deleted: Vec<i64> = all
        .stages
        .iter()
        .filter(|s| s.delete_time.is_some())
        .map(|s| s.id)
        .collect();
    assert_eq!(deleted, [created[4]]);
}

#[tokio::test]
async fn a_stage_with_live_lots_cannot_be_deleted_nor_restored_into_a_deleted_project() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (p, s) = app.project_with_stage(who, "stocked").await;
    let lot = app.lot(who, &s, "1", "500000.00").await;
    let status = expect_code(
        delete_stage(&app, who, s.id, "").await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_CHILDREN");
    assert!(get_stage(&app, who, s.id).await.is_ok());
    app.lots()
        .delete_lot(who.req(pb::DeleteLotRequest {
            id: lot.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    delete_stage(&app, who, s.id, "").await.unwrap();

    delete_project(&app, who, p.id, "").await.unwrap();
    let status = expect_code(
        undelete_stage(&app, who, s.id).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PROJECT_DELETED");
    undelete_project(&app, who, p.id).await.unwrap();
    undelete_stage(&app, who, s.id).await.unwrap();
}

#[tokio::test]
async fn another_tenants_stage_is_not_found_and_never_listed_or_counted() {
    let app = TestApp::spawn().await;
    let (_, mine) = app.project_with_stage(&app.acme, "mine").await;
    let (_, theirs) = app.project_with_stage(&app.globex, "theirs").await;
    let them = &app.globex;
    expect_code(get_stage(&app, them, mine.id).await, Code::NotFound);
    expect_code(
        update_stage(
            &app,
            them,
            pb::Stage {
                id: mine.id,
                name: "Hijacked".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::NotFound,
    );
    expect_code(delete_stage(&app, them, mine.id, "").await, Code::NotFound);
    expect_code(undelete_stage(&app, them, mine.id).await, Code::NotFound);
    delete_stage(&app, &app.acme, mine.id, "").await.unwrap();
    expect_code(undelete_stage(&app, them, mine.id).await, Code::NotFound);
    undelete_stage(&app, &app.acme, mine.id).await.unwrap();
    assert_eq!(
        get_stage(&app, &app.acme, mine.id).await.unwrap().name,
        mine.name
    );
    for (show_deleted, project_id) in [(false, 0), (true, 0), (false, mine.project_id)] {
        let listed = list_stages(
            &app,
            them,
            pb::ListStagesRequest {
                show_deleted,
                project_id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let ids: Vec<i64> = listed.stages.iter().map(|s| s.id).collect();
        let expected: &[i64] = if project_id == 0 { &[theirs.id] } else { &[] };
        assert_eq!(ids, expected);
        assert_eq!(listed.total_size as usize, expected.len());
    }
}

#[tokio::test]
async fn project_and_stage_statuses_move_from_any_value_to_any_other_and_only_when_sent() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    const PROJECT: [&str; 5] = ["planning", "selling", "sold_out", "completed", "on_hold"];
    const STAGE: [&str; 5] = ["planned", "released", "selling", "sold_out", "completed"];
    let p = create_project(&app, who, project("statuses")).await;
    let s = create_stage(&app, who, stage(p.id, "S1")).await;
    let (mut project_now, mut stage_now) = (p.status.clone(), s.status.clone());
    // Every ordered pair: forwards, backwards and sideways are all allowed.
    for (all, is_project) in [(PROJECT, true), (STAGE, false)] {
        for from in all {
            for to in all.into_iter().filter(|to| *to != from) {
                for status in [from, to] {
                    let now = if is_project {
                        &mut project_now
                    } else {
                        &mut stage_now
                    };
                    if now == status {
                        continue;
                    }
                    let changed = if is_project {
                        let sent = pb::Project {
                            id: p.id,
                            status: status.into(),
                            ..Default::default()
                        };
                        update_project(&app, who, sent, mask(&["status"]))
                            .await
                            .map(|x| x.status)
                    } else {
                        let sent = pb::Stage {
                            id: s.id,
                            status: status.into(),
                            ..Default::default()
                        };
                        update_stage(&app, who, sent, mask(&["status"]))
                            .await
                            .map(|x| x.status)
                    };
                    let changed = changed.unwrap_or_else(|e| panic!("{now} -> {status}: {e:?}"));
                    assert_eq!(changed, status);
                    *now = status.to_owned();
                }
            }
        }
    }
    // Any other value is refused.
    let status = expect_code(
        update_stage(
            &app,
            who,
            pb::Stage {
                id: s.id,
                status: "closed".into(),
                ..Default::default()
            },
            mask(&["status"]),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["stage.status"]);
    // The server never sets them itself: selling the last lot leaves both as they were.
    let lot = app
        .lot(who, &get_stage(&app, who, s.id).await.unwrap(), "1", "1.00")
        .await;
    app.lots()
        .reserve_lot(who.req(pb::ReserveLotRequest {
            id: lot.id,
            ..Default::default()
        }))
        .await
        .unwrap();
    let p = get_project(&app, who, p.id).await.unwrap();
    assert_eq!(
        (p.available_lot_count, p.status.as_str()),
        (0, project_now.as_str())
    );
    assert_eq!(get_stage(&app, who, s.id).await.unwrap().status, stage_now);
}

// ---------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------

fn feature(name: &str) -> pb::Feature {
    pb::Feature {
        name: name.into(),
        ..Default::default()
    }
}

async fn try_create_feature(
    app: &TestApp,
    who: &User,
    f: pb::Feature,
) -> Result<pb::Feature, Status> {
    app.features()
        .create_feature(who.req(pb::CreateFeatureRequest {
            feature: Some(f),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn create_feature(app: &TestApp, who: &User, f: pb::Feature) -> pb::Feature {
    try_create_feature(app, who, f)
        .await
        .expect("feature created")
}

async fn get_feature(app: &TestApp, who: &User, id: i64) -> Result<pb::Feature, Status> {
    app.features()
        .get_feature(who.req(pb::GetFeatureRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_feature(
    app: &TestApp,
    who: &User,
    f: pb::Feature,
    update_mask: Option<FieldMask>,
) -> Result<pb::Feature, Status> {
    app.features()
        .update_feature(who.req(pb::UpdateFeatureRequest {
            feature: Some(f),
            update_mask,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete_feature(
    app: &TestApp,
    who: &User,
    id: i64,
    etag: &str,
) -> Result<pb::Feature, Status> {
    app.features()
        .delete_feature(who.req(pb::DeleteFeatureRequest {
            id,
            etag: etag.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn undelete_feature(app: &TestApp, who: &User, id: i64) -> Result<pb::Feature, Status> {
    app.features()
        .undelete_feature(who.req(pb::UndeleteFeatureRequest { id }))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_features(
    app: &TestApp,
    who: &User,
    r: pb::ListFeaturesRequest,
) -> Result<pb::ListFeaturesResponse, Status> {
    app.features()
        .list_features(who.req(r))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_feature_is_created_read_listed_updated_deleted_and_restored() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let created = create_feature(
        &app,
        who,
        pb::Feature {
            name: "Pool".into(),
            category: "Outdoor".into(),
            description: "A lap pool".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(created.id > 0);
    assert_eq!(created.tenant_id, 1);
    assert_eq!(
        (
            created.name.as_str(),
            created.category.as_str(),
            created.description.as_str()
        ),
        ("Pool", "Outdoor", "A lap pool")
    );
    assert!(created.delete_time.is_none() && created.purge_time.is_none());
    assert_eq!(get_feature(&app, who, created.id).await.unwrap(), created);
    let listed = list_features(&app, who, Default::default()).await.unwrap();
    assert_eq!(listed.features, std::slice::from_ref(&created));
    assert_eq!(listed.total_size, 1);

    let masked = update_feature(
        &app,
        who,
        pb::Feature {
            id: created.id,
            name: "Ignored".into(),
            category: "Leisure".into(),
            ..Default::default()
        },
        mask(&["category"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (masked.name.as_str(), masked.category.as_str()),
        ("Pool", "Leisure")
    );
    assert_ne!(masked.etag, created.etag);
    let populated = update_feature(
        &app,
        who,
        pb::Feature {
            id: created.id,
            description: "Heated".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            populated.name.as_str(),
            populated.category.as_str(),
            populated.description.as_str()
        ),
        ("Pool", "Leisure", "Heated")
    );
    let replaced = update_feature(
        &app,
        who,
        pb::Feature {
            id: created.id,
            name: "Lap pool".into(),
            ..Default::default()
        },
        mask(&["*"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replaced.name.as_str(),
            replaced.category.as_str(),
            replaced.description.as_str()
        ),
        ("Lap pool", "", "")
    );

    let deleted = delete_feature(&app, who, created.id, &replaced.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some() && deleted.purge_time.is_some());
    // AIP-164: Get still finds the soft-deleted feature, with its delete_time.
    let found = get_feature(&app, who, created.id).await.unwrap();
    assert_eq!(found.delete_time, deleted.delete_time);
    expect_code(
        update_feature(&app, who, replaced.clone(), mask(&["name"])).await,
        Code::NotFound,
    );
    expect_code(
        delete_feature(&app, who, created.id, "").await,
        Code::NotFound,
    );
    assert_eq!(
        list_features(&app, who, Default::default())
            .await
            .unwrap()
            .total_size,
        0
    );
    let all = list_features(
        &app,
        who,
        pb::ListFeaturesRequest {
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.features, [deleted]);
    let restored = undelete_feature(&app, who, created.id).await.unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(
        get_feature(&app, who, created.id).await.unwrap().name,
        "Lap pool"
    );
}

#[tokio::test]
async fn invalid_feature_requests_are_refused_naming_each_field() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let status = expect_code(
        try_create_feature(
            &app,
            who,
            pb::Feature {
                name: String::new(),
                category: "c".repeat(101),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(fields(&status), ["feature.category", "feature.name"]);
    let status = expect_code(
        try_create_feature(&app, who, feature(&"n".repeat(256))).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["feature.name"]);
    let f = create_feature(&app, who, feature("Garden")).await;
    let status = expect_code(
        update_feature(
            &app,
            who,
            pb::Feature {
                id: f.id,
                ..Default::default()
            },
            mask(&["name"]),
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["feature.name"]);
    for path in ["colour", "create_time", "id"] {
        let status = expect_code(
            update_feature(&app, who, f.clone(), mask(&[path])).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    let status = expect_code(
        update_feature(&app, who, feature("No id"), None).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["feature.id"]);
    for status in [
        expect_code(get_feature(&app, who, 0).await, Code::InvalidArgument),
        expect_code(
            delete_feature(&app, who, 0, "").await,
            Code::InvalidArgument,
        ),
        expect_code(undelete_feature(&app, who, -2).await, Code::InvalidArgument),
    ] {
        assert_eq!(violated_fields(&status), ["id"]);
    }
    let status = expect_code(
        list_features(
            &app,
            who,
            pb::ListFeaturesRequest {
                order_by: "description".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["order_by"]);
    assert_eq!(get_feature(&app, who, f.id).await.unwrap(), f);
}

#[tokio::test]
async fn feature_names_are_unique_in_a_tenant_whatever_their_case() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let pool = create_feature(&app, who, feature("Pool")).await;
    for name in ["pool", "POOL", " Pool "] {
        let status = expect_code(
            try_create_feature(&app, who, feature(name)).await,
            Code::AlreadyExists,
        );
        assert!(
            status.message().contains("name"),
            "{name:?}: {}",
            status.message()
        );
    }
    let garden = create_feature(&app, who, feature("Garden")).await;
    expect_code(
        update_feature(
            &app,
            who,
            pb::Feature {
                id: garden.id,
                name: "pOOl".into(),
                ..Default::default()
            },
            None,
        )
        .await,
        Code::AlreadyExists,
    );
    assert_eq!(
        get_feature(&app, who, garden.id).await.unwrap().name,
        "Garden"
    );
    // A feature may change the case of its own name.
    let shouting = update_feature(
        &app,
        who,
        pb::Feature {
            id: pool.id,
            name: "POOL".into(),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(shouting.name, "POOL");
    // Another tenant has its own names.
    create_feature(&app, &app.globex, feature("pool")).await;
    // A deleted feature's name is free again; the old one then cannot come back.
    delete_feature(&app, who, pool.id, "").await.unwrap();
    let successor = create_feature(&app, who, feature("pool")).await;
    let status = expect_code(
        undelete_feature(&app, who, pool.id).await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("name"), "{}", status.message());
    // Still deleted: Get shows it with its delete_time (AIP-164).
    assert!(
        get_feature(&app, who, pool.id)
            .await
            .unwrap()
            .delete_time
            .is_some()
    );
    delete_feature(&app, who, successor.id, "").await.unwrap();
    assert_eq!(
        undelete_feature(&app, who, pool.id).await.unwrap().name,
        "POOL"
    );
}

#[tokio::test]
async fn deleting_a_feature_removes_its_name_from_lots_and_undeleting_restores_it() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, s) = app.project_with_stage(who, "featured").await;
    let pool = create_feature(&app, who, feature("Pool")).await;
    let garden = create_feature(&app, who, feature("Garden")).await;
    let mut lots = Vec::new();
    for (number, ids) in [
        ("1", vec![pool.id, garden.id]),
        ("2", vec![pool.id]),
        ("3", vec![garden.id]),
    ] {
        let lot = app
            .lots()
            .create_lot(who.req(pb::CreateLotRequest {
                lot: Some(pb::Lot {
                    stage_id: s.id,
                    lot_number: number.into(),
                    price: "1.00".into(),
                    feature_ids: ids,
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        lots.push(lot.id);
    }
    let names = || {
        let lots = lots.clone();
        let app = &app;
        async move {
            let mut all = Vec::new();
            for id in lots {
                all.push(app.get_lot(&app.acme, id).await.features);
            }
            all
        }
    };
    let with = |name: &str| {
        let filter = format!("features:\"{name}\"");
        let app = &app;
        async move {
            app.lots()
                .list_lots(who.req(pb::ListLotsRequest {
                    filter,
                    order_by: "lot_number".into(),
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner()
                .lots
                .into_iter()
                .map(|l| l.lot_number)
                .collect::<Vec<_>>()
        }
    };
    let before: [Vec<String>; 3] = [
        vec!["Garden".into(), "Pool".into()],
        vec!["Pool".into()],
        vec!["Garden".into()],
    ];
    assert_eq!(names().await, before);
    assert_eq!(with("Pool").await, ["1", "2"]);

    delete_feature(&app, who, pool.id, "").await.unwrap();
    assert_eq!(
        names().await,
        [vec!["Garden".to_owned()], vec![], vec!["Garden".to_owned()]]
    );
    assert!(with("Pool").await.is_empty());
    assert_eq!(with("Garden").await, ["1", "3"]);
    // The ids follow the names, so a lot read back can be written back unchanged.
    let first = app.get_lot(who, lots[0]).await;
    assert_eq!(first.feature_ids, [garden.id]);
    app.lots()
        .update_lot(who.req(pb::UpdateLotRequest {
            lot: Some(first),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["feature_ids".into()],
            }),
        }))
        .await
        .expect("a lot read back can be written back");

    // Restoring the feature restores it on the lots still linked to it; lot 1 was
    // written back without it.
    undelete_feature(&app, who, pool.id).await.unwrap();
    assert_eq!(
        names().await,
        [
            vec!["Garden".to_owned()],
            vec!["Pool".to_owned()],
            vec!["Garden".to_owned()]
        ]
    );
    assert_eq!(with("Pool").await, ["2"]);
}
