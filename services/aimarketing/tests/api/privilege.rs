//! The permission rule on ai-marketing (docs/SECURITY.md, "Permissions"): every RPC of
//! the package, served or not, refuses a caller lacking any permission it declares,
//! writing nothing.
//!
//! The callers are minted (a replica trusting test keys), so each holds exactly the
//! permissions the walk names; they act as acme's admin user.

use fusion_identity::domain::permissions::tenant_permissions;
use fusion_testkit::TestKeys;
use fusion_testkit::privilege::{self, Walk};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_aimarketing_rpc_refuses_a_caller_lacking_each_permission_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let keys = TestKeys::new();
    let (_replica, channel) = app.replica_trusting(&keys).await;
    let (tenant, user) = (app.acme.tenant_id, app.acme.user_id);
    // Rows for the walk to leave alone.
    app.prompt(&app.acme, "Follow-up", "Hi {{lead.first_name}}")
        .await;
    app.campaign(&app.acme, "Spring open homes").await;
    privilege::walk(&Walk {
        package: fusion_proto::aimarketing::v1::PACKAGE,
        policy: &fusion_aimarketing::grpc::policy(),
        channel,
        tenant_id: tenant,
        catalogue: &tenant_permissions(),
        mint: &|perms: &[&str]| keys.mint(tenant, user, perms),
        admin_url: &app.db.admin_url,
    })
    .await;
}
