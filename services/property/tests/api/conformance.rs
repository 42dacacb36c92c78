//! The AIP conformance suite (`fusion_testkit::conformance`) for every property
//! resource: one spec each, one test each, and a test that no resource is left out.

use serde_json::json;

use fusion_testkit::conformance::{self, Caller, ResourceSpec, Target, json_of};

use crate::helpers::{TestApp, User, WRITER};
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
            "total_lots > 0",
            "available_lots > 0",
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
            "order > 0",
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
            r#"estimated_completion < "2030-01-01""#,
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
            r#"file_type = "image/png""#,
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
