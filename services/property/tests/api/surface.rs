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
