//! TenantService.

use tonic::Code;

use fusion_proto::identity::v1 as pb;
use prost_types::FieldMask;

use crate::helpers::{PASSWORD, TestApp, as_user, claims_of, expect_code, reason, violated_fields};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

#[tokio::test]
async fn creating_a_tenant_creates_its_built_in_roles_and_first_admin() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    assert_eq!(tenant.slug, "acme");
    assert_eq!(tenant.subscription_status, "trial");
    assert!(!tenant.etag.is_empty());
    assert_eq!(admin.tenant_id, tenant.id);
    let roles = app
        .roles()
        .list_roles(as_user(&admin, pb::ListRolesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = roles.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin",
            "finance",
            "marketing",
            "sales_agent",
            "sales_manager",
            "system",
            "viewer"
        ]
    );
    assert!(roles.roles.iter().all(|r| r.built_in));
    let me = app
        .users()
        .get_user(as_user(&admin, pb::GetUserRequest { id: admin.user_id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.role_names, ["admin"]);
    assert_eq!(me.role_ids, [roles.roles[0].id]);
}

#[tokio::test]
async fn create_tenant_validates_every_field() {
    let app = TestApp::spawn().await;
    let status = expect_code(
        app.tenants()
            .create_tenant(as_user(
                &app.platform,
                pb::CreateTenantRequest {
                    tenant: Some(pb::Tenant {
                        name: String::new(),
                        slug: "Not A Slug".into(),
                        domain: "not a domain".into(),
                        subscription_status: "gold".into(),
                        ..Default::default()
                    }),
                    admin_email: "nope".into(),
                    admin_name: String::new(),
                    admin_password: "short".into(),
                    request_id: "not-a-uuid".into(),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "tenant.name",
            "tenant.slug",
            "tenant.domain",
            "tenant.subscription_status",
            "admin_email",
            "admin_name",
            "admin_password"
        ]
    );
}

#[tokio::test]
async fn slugs_and_admin_emails_are_unique() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let request = |slug: &str, email: &str, request_id: &str| pb::CreateTenantRequest {
        tenant: Some(pb::Tenant {
            name: "x".into(),
            slug: slug.into(),
            subscription_status: "active".into(),
            ..Default::default()
        }),
        admin_email: email.into(),
        admin_name: "X".into(),
        admin_password: PASSWORD.into(),
        request_id: request_id.into(),
    };
    let dup_slug = expect_code(
        app.tenants()
            .create_tenant(as_user(&app.platform, request("acme", "other@x.test", "")))
            .await,
        Code::AlreadyExists,
    );
    assert!(dup_slug.message().contains("slug"), "{dup_slug:?}");
    let dup_email = expect_code(
        app.tenants()
            .create_tenant(as_user(
                &app.platform,
                request("other", "ADMIN@acme.test", ""),
            ))
            .await,
        Code::AlreadyExists,
    );
    assert!(dup_email.message().contains("email"), "{dup_email:?}");
    // Request-id replay and reuse: the conformance suite.
}

#[tokio::test]
async fn only_the_platform_role_creates_and_lists_tenants() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let status = expect_code(
        app.tenants()
            .create_tenant(as_user(&admin, pb::CreateTenantRequest::default()))
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(reason(&status), "PERMISSION_DENIED");
    expect_code(
        app.tenants()
            .list_tenants(as_user(&admin, pb::ListTenantsRequest::default()))
            .await,
        Code::PermissionDenied,
    );
    let all = app
        .tenants()
        .list_tenants(as_user(&app.platform, pb::ListTenantsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 2);
    let slugs: Vec<_> = all.tenants.iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(slugs, ["platform", "acme"]);
}

#[tokio::test]
async fn another_tenant_is_not_found() {
    let app = TestApp::spawn().await;
    let (acme, acme_admin) = app.create_tenant("acme").await;
    let (globex, _) = app.create_tenant("globex").await;
    let own = app
        .tenants()
        .get_tenant(as_user(&acme_admin, pb::GetTenantRequest { id: acme.id }))
        .await
        .unwrap();
    assert_eq!(own.into_inner().slug, "acme");
    expect_code(
        app.tenants()
            .get_tenant(as_user(&acme_admin, pb::GetTenantRequest { id: globex.id }))
            .await,
        Code::NotFound,
    );
    expect_code(
        app.tenants()
            .update_tenant(as_user(
                &acme_admin,
                pb::UpdateTenantRequest {
                    tenant: Some(pb::Tenant {
                        id: globex.id,
                        name: "pwned".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                },
            ))
            .await,
        Code::NotFound,
    );
    // A stale etag must not tell an existing tenant from a missing one.
    for id in [globex.id, globex.id + 1000] {
        expect_code(
            app.tenants()
                .update_tenant(as_user(
                    &acme_admin,
                    pb::UpdateTenantRequest {
                        tenant: Some(pb::Tenant {
                            id,
                            name: "pwned".into(),
                            etag: "\"999\"".into(),
                            ..Default::default()
                        }),
                        update_mask: mask(&["name"]),
                    },
                ))
                .await,
            Code::NotFound,
        );
    }
}

#[tokio::test]
async fn update_honours_the_mask_the_etag_and_billing_rights() {
    let app = TestApp::spawn().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let updated = app
        .tenants()
        .update_tenant(as_user(
            &admin,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    id: acme.id,
                    name: "Acme Homes".into(),
                    domain: "ignored.test".into(),
                    etag: acme.etag.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Acme Homes");
    assert_eq!(updated.domain, "", "fields outside the mask are untouched");
    assert_ne!(updated.etag, acme.etag);
    expect_code(
        app.tenants()
            .update_tenant(as_user(
                &admin,
                pb::UpdateTenantRequest {
                    tenant: Some(pb::Tenant {
                        id: acme.id,
                        name: "Stale".into(),
                        etag: acme.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                },
            ))
            .await,
        Code::Aborted,
    );
    let status = expect_code(
        app.tenants()
            .update_tenant(as_user(
                &admin,
                pb::UpdateTenantRequest {
                    tenant: Some(pb::Tenant {
                        id: acme.id,
                        slug: "renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["slug"]),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    expect_code(
        app.tenants()
            .update_tenant(as_user(
                &admin,
                pb::UpdateTenantRequest {
                    tenant: Some(pb::Tenant {
                        id: acme.id,
                        subscription_status: "active".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["subscription_status"]),
                },
            ))
            .await,
        Code::PermissionDenied,
    );
    let upgraded = app
        .tenants()
        .update_tenant(as_user(
            &app.platform,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    id: acme.id,
                    subscription_status: "active".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["subscription_status"]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(upgraded.subscription_status, "active");
}

#[tokio::test]
async fn deleting_a_tenant_locks_its_users_out_until_undeleted() {
    let app = TestApp::spawn().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let deleted = app
        .tenants()
        .delete_tenant(as_user(
            &app.platform,
            pb::DeleteTenantRequest {
                id: acme.id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // Tenants are never purged (removing one must first remove its data in every
    // context), so a deleted tenant reports no purge time.
    assert!(deleted.delete_time.is_some() && deleted.purge_time.is_none());
    expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::Unauthenticated,
    );
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: admin.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    // AIP-164: Get still finds the soft-deleted tenant, with its delete_time.
    let found = app
        .tenants()
        .get_tenant(as_user(&app.platform, pb::GetTenantRequest { id: acme.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(found.delete_time.is_some(), "{found:?}");
    let listed = app
        .tenants()
        .list_tenants(as_user(
            &app.platform,
            pb::ListTenantsRequest {
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 2);
    app.tenants()
        .undelete_tenant(as_user(
            &app.platform,
            pb::UndeleteTenantRequest { id: acme.id },
        ))
        .await
        .unwrap();
    expect_code(
        app.tenants()
            .undelete_tenant(as_user(
                &app.platform,
                pb::UndeleteTenantRequest { id: acme.id },
            ))
            .await,
        Code::AlreadyExists,
    );
    app.login("admin@acme.test", PASSWORD)
        .await
        .expect("restored tenant's admin logs in");
    expect_code(
        app.tenants()
            .delete_tenant(as_user(
                &app.platform,
                pb::DeleteTenantRequest {
                    id: app.platform.tenant_id,
                    etag: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn list_tenants_filters_and_orders_across_pages() {
    let app = TestApp::spawn().await;
    for slug in ["alpha", "bravo", "charlie", "delta", "echo"] {
        app.create_tenant(slug).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .tenants()
            .list_tenants(as_user(
                &app.platform,
                pb::ListTenantsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    filter: r#"subscription_status = "trial" AND NOT slug = "charlie""#.into(),
                    order_by: "slug desc".into(),
                    show_deleted: false,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 4);
        seen.extend(page.tenants.into_iter().map(|t| t.slug));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["echo", "delta", "bravo", "alpha"]);
    let bad = expect_code(
        app.tenants()
            .list_tenants(as_user(
                &app.platform,
                pb::ListTenantsRequest {
                    filter: "colour = red".into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&bad), ["filter"]);
    assert!(bad.message().contains("position"), "{bad:?}");
    // Reused page tokens and negative page sizes: the conformance suite.
}

#[tokio::test]
async fn seeding_twice_creates_nothing_new() {
    let app = TestApp::spawn().await;
    let db = &app.app.state().db;
    let platform =
        fusion_identity::bootstrap::ensure_platform(db, "ops@platform.test", "another password")
            .await
            .unwrap();
    assert_eq!(
        platform, app.platform.tenant_id,
        "the existing platform tenant is kept"
    );
    let first = fusion_identity::bootstrap::ensure_tenant(
        db,
        "acme",
        "Acme Homes",
        "admin@acme.test",
        "fusion-demo",
    )
    .await
    .unwrap();
    let second = fusion_identity::bootstrap::ensure_tenant(
        db,
        "acme",
        "Acme Homes",
        "admin@acme.test",
        "fusion-demo",
    )
    .await
    .unwrap();
    assert_eq!(first, second);
    let all = app
        .tenants()
        .list_tenants(as_user(&app.platform, pb::ListTenantsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 2);
    app.login("admin@acme.test", "fusion-demo")
        .await
        .expect("the seeded admin logs in");
}

/// A tenant update naming only `time_zone`.
fn zone_update(id: i64, time_zone: &str) -> pb::UpdateTenantRequest {
    pb::UpdateTenantRequest {
        tenant: Some(pb::Tenant {
            id,
            time_zone: time_zone.into(),
            ..Default::default()
        }),
        update_mask: mask(&["time_zone"]),
    }
}

#[tokio::test]
async fn a_tenant_admin_sets_the_time_zone_and_access_tokens_carry_it() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    // A tenant created without a zone is in UTC, and so are its tokens.
    assert_eq!(tenant.time_zone, "UTC");
    assert_eq!(claims_of(&admin.access_token)["tz"], "UTC");
    let updated = app
        .tenants()
        .update_tenant(as_user(&admin, zone_update(tenant.id, "Australia/Sydney")))
        .await
        .expect("a tenant admin sets its tenant's zone")
        .into_inner();
    assert_eq!(updated.time_zone, "Australia/Sydney");
    assert_eq!(updated.name, tenant.name, "the mask named only time_zone");
    let got = app
        .tenants()
        .get_tenant(as_user(&admin, pb::GetTenantRequest { id: tenant.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.time_zone, "Australia/Sydney");
    // Login and Refresh issue tokens carrying the zone (the `tz` claim).
    let session = app
        .login("admin@acme.test", PASSWORD)
        .await
        .expect("admin logs in");
    assert_eq!(claims_of(&session.access_token)["tz"], "Australia/Sydney");
    let refreshed = app
        .auth()
        .refresh(pb::RefreshRequest {
            refresh_token: session.refresh_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(claims_of(&refreshed.access_token)["tz"], "Australia/Sydney");
    // The platform can filter tenants by zone.
    let listed = app
        .tenants()
        .list_tenants(as_user(
            &app.platform,
            pb::ListTenantsRequest {
                filter: r#"time_zone = "Australia/Sydney""#.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.tenants.iter().map(|t| t.id).collect::<Vec<_>>(),
        [tenant.id]
    );
}

#[tokio::test]
async fn an_unknown_time_zone_is_invalid_on_create_and_update() {
    let app = TestApp::spawn().await;
    let create = |slug: &str, time_zone: &str| pb::CreateTenantRequest {
        tenant: Some(pb::Tenant {
            name: "x".into(),
            slug: slug.into(),
            subscription_status: "trial".into(),
            time_zone: time_zone.into(),
            ..Default::default()
        }),
        admin_email: format!("admin@{slug}.test"),
        admin_name: "X".into(),
        admin_password: PASSWORD.into(),
        request_id: String::new(),
    };
    let status = expect_code(
        app.tenants()
            .create_tenant(as_user(&app.platform, create("mars", "Mars/Olympus_Mons")))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["tenant.time_zone"]);
    assert!(status.message().contains("Mars/Olympus_Mons"), "{status:?}");
    let kiwi = app
        .tenants()
        .create_tenant(as_user(&app.platform, create("kiwi", "Pacific/Auckland")))
        .await
        .expect("a known zone is accepted on create")
        .into_inner();
    assert_eq!(kiwi.time_zone, "Pacific/Auckland");
    let admin = app.login("admin@kiwi.test", PASSWORD).await.unwrap();
    assert_eq!(claims_of(&admin.access_token)["tz"], "Pacific/Auckland");
    for bad in ["pacific/auckland", "+12:00", "", "NZST"] {
        let status = expect_code(
            app.tenants()
                .update_tenant(as_user(&admin, zone_update(kiwi.id, bad)))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["tenant.time_zone"], "{bad:?}");
    }
    let unchanged = app
        .tenants()
        .get_tenant(as_user(&admin, pb::GetTenantRequest { id: kiwi.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.time_zone, "Pacific/Auckland");
    // With an empty mask a zone that is sent is set, and checked the same way.
    let empty_mask = |time_zone: &str| pb::UpdateTenantRequest {
        update_mask: None,
        ..zone_update(kiwi.id, time_zone)
    };
    let status = expect_code(
        app.tenants()
            .update_tenant(as_user(&admin, empty_mask("Mars/Olympus_Mons")))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["tenant.time_zone"]);
    let tokyo = app
        .tenants()
        .update_tenant(as_user(&admin, empty_mask("Asia/Tokyo")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (tokyo.time_zone.as_str(), tokyo.name.as_str()),
        ("Asia/Tokyo", "x")
    );
}

#[tokio::test]
async fn a_user_without_tenants_write_cannot_set_the_time_zone() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    let (_, viewer) = app
        .create_user(&admin, "viewer@acme.test", &["viewer"])
        .await;
    let status = expect_code(
        app.tenants()
            .update_tenant(as_user(&viewer, zone_update(tenant.id, "Australia/Sydney")))
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(reason(&status), "PERMISSION_DENIED");
    let got = app
        .tenants()
        .get_tenant(as_user(&viewer, pb::GetTenantRequest { id: tenant.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.time_zone, "UTC");
    // Nor may an admin set another tenant's zone: that tenant is not found.
    let (globex, _) = app.create_tenant("globex").await;
    expect_code(
        app.tenants()
            .update_tenant(as_user(&admin, zone_update(globex.id, "Australia/Sydney")))
            .await,
        Code::NotFound,
    );
}
