//! What a context serves, checked against the descriptor set: every RPC of its package
//! has a permission in its policy, and every service of its package answers health
//! checks. Each context's API tests call these, so a new RPC or service cannot be
//! forgotten.

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use fusion_proto::descriptor;
use fusion_tenancy::MethodPolicy;

fn rpc_paths(package: &str) -> Vec<String> {
    let paths: Vec<String> = descriptor::rpcs_of(package)
        .into_iter()
        .map(|rpc| rpc.path)
        .collect();
    assert!(
        !paths.is_empty(),
        "the descriptor set has no RPC in {package}"
    );
    paths
}

/// The RPCs of `package` that `policy` neither makes public nor gives a permission:
/// the tenancy layer refuses them to everyone.
pub fn undeclared_rpcs(package: &str, policy: &MethodPolicy) -> Vec<String> {
    rpc_paths(package)
        .into_iter()
        .filter(|path| !policy.is_declared(path))
        .collect()
}

/// The paths `policy` gives a permission that are not RPCs of `package` (a typo, or a
/// renamed or removed RPC), sorted.
pub fn stray_permissions(package: &str, policy: &MethodPolicy) -> Vec<String> {
    let rpcs = rpc_paths(package);
    let mut stray: Vec<String> = policy
        .declared()
        .map(|(path, _)| path)
        .filter(|path| !rpcs.iter().any(|rpc| rpc == path))
        .map(str::to_owned)
        .collect();
    stray.sort();
    stray
}

/// The services of `package` that the server on `channel` does not report SERVING.
pub async fn services_not_serving(channel: &Channel, package: &str) -> Vec<String> {
    let services = descriptor::services_of(package);
    assert!(
        !services.is_empty(),
        "the descriptor set has no service in {package}"
    );
    let mut health = HealthClient::new(channel.clone());
    let mut not_serving = Vec::new();
    for service in services {
        let status = health
            .check(HealthCheckRequest {
                service: service.clone(),
            })
            .await
            .map(|r| r.into_inner().status)
            .ok();
        if status != Some(ServingStatus::Serving as i32) {
            not_serving.push(service);
        }
    }
    not_serving
}
