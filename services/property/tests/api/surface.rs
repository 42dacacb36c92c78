//! What property serves, checked against the descriptor set: every RPC of its package is
//! public or needs a permission, and every service of its package answers health checks.

use fusion_property::grpc::policy;
use fusion_proto::property::v1::PACKAGE;
use fusion_testkit::surface;

use crate::helpers::TestApp;

#[test]
fn every_property_rpc_is_public_or_declares_a_permission() {
    let undeclared = surface::undeclared_rpcs(PACKAGE, &policy());
    assert!(
        undeclared.is_empty(),
        "refused to everyone until policy() declares a permission: {undeclared:#?}"
    );
}

#[test]
fn property_permissions_are_declared_only_for_property_rpcs() {
    let stray = surface::stray_permissions(PACKAGE, &policy());
    assert!(
        stray.is_empty(),
        "policy() names paths that are not RPCs of {PACKAGE}: {stray:#?}"
    );
}

#[tokio::test]
async fn every_property_service_reports_serving() {
    let app = TestApp::spawn().await;
    let not_serving = surface::services_not_serving(&app.channel, PACKAGE).await;
    assert!(not_serving.is_empty(), "not SERVING: {not_serving:#?}");
}

/// The standard methods and the reads; every other property RPC is a custom method that
/// writes.
const NOT_CUSTOM_WRITES: &[&str] = &[
    "Get", "List", "Create", "Update", "Delete", "Undelete", "Watch", "Upload", "Download",
];

#[test]
fn every_custom_method_that_writes_takes_a_request_id_kept_for_the_retention_time() {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(fusion_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set");
    let files: Vec<_> = set.file.iter().filter(|f| f.package() == PACKAGE).collect();
    let message = |full: &str| {
        let name = full.rsplit('.').next().unwrap_or_default();
        files
            .iter()
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("message {full}"))
    };
    let mut custom = Vec::new();
    for service in files.iter().flat_map(|f| &f.service) {
        for method in &service.method {
            if NOT_CUSTOM_WRITES
                .iter()
                .any(|verb| method.name().starts_with(verb))
            {
                continue;
            }
            let request = message(method.input_type());
            let field = request.field.iter().find(|f| f.name() == "request_id");
            assert!(
                field.is_some_and(
                    |f| f.r#type() == prost_types::field_descriptor_proto::Type::String
                ),
                "{} takes no string request_id",
                method.name()
            );
            custom.push(method.name().to_owned());
        }
    }
    assert!(custom.len() >= 9, "custom methods found: {custom:?}");

    // Each request_id comment of a custom method states the retention the server keeps.
    let days = fusion_db::idempotency::RETENTION.as_secs() / 86_400;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../proto/fusion/property/v1/lot.proto"),
    )
    .expect("lot.proto");
    let comments = text.matches(&format!("kept for {days} days")).count();
    assert!(
        comments > custom.len(),
        "{comments} mentions of a {days}-day retention for {} custom methods",
        custom.len()
    );
}
