//! The permission rule on property (docs/SECURITY.md, "Permissions"): every RPC refuses
//! a caller lacking any permission it declares, and writes nothing (the generated
//! walk).

use fusion_identity::domain::permissions::tenant_permissions;
use fusion_testkit::privilege::{self, Walk};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_property_rpc_refuses_a_caller_lacking_each_permission_and_writes_nothing() {
    let app = TestApp::spawn().await;
    // Rows for the walk to leave alone.
    let (_, stage) = app.project_with_stage(&app.acme, "untouched").await;
    app.lot(&app.acme, &stage, "1", "500000.00").await;
    let (tenant, user) = (app.acme.tenant_id, app.acme.user_id);
    privilege::walk(&Walk {
        package: fusion_proto::property::v1::PACKAGE,
        policy: &fusion_property::grpc::policy(),
        channel: app.channel.clone(),
        tenant_id: tenant,
        catalogue: &tenant_permissions(),
        mint: &|perms: &[&str]| app.keys.mint(tenant, user, perms),
        admin_url: &app.db.admin_url,
    })
    .await;
}
