//! What the descriptor set knows about the API, read from it so that nothing else keeps
//! a copy: the services of a package (health checks) and their RPCs (routing at the
//! edge, the per-context permission tests).

use std::sync::LazyLock;

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

static SET: LazyLock<FileDescriptorSet> = LazyLock::new(|| {
    FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET)
        .expect("the compiled descriptor set decodes")
});

/// One RPC of a service in the descriptor set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rpc {
    /// The HTTP/2 path it is called on: `/fusion.crm.v1.LeadService/GetLead`.
    pub path: String,
    /// The client sends a stream.
    pub client_streaming: bool,
    /// The server answers with a stream.
    pub server_streaming: bool,
}

fn files(package: Option<&str>) -> impl Iterator<Item = &'static FileDescriptorProto> + '_ {
    SET.file
        .iter()
        .filter(move |f| package.is_none_or(|p| f.package() == p))
}

fn services(package: Option<&str>) -> Vec<String> {
    files(package)
        .flat_map(|f| {
            f.service
                .iter()
                .map(|s| format!("{}.{}", f.package(), s.name()))
        })
        .collect()
}

fn rpcs_in(package: Option<&str>) -> Vec<Rpc> {
    files(package)
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method.iter().map(move |m| Rpc {
                    path: format!("/{}.{}/{}", f.package(), s.name(), m.name()),
                    client_streaming: m.client_streaming(),
                    server_streaming: m.server_streaming(),
                })
            })
        })
        .collect()
}

/// Fully-qualified names of the services in `package` (`fusion.crm.v1.LeadService`, ...);
/// empty for a package with none.
pub fn services_of(package: &str) -> Vec<String> {
    services(Some(package))
}

/// Every RPC of every service in `package`.
pub fn rpcs_of(package: &str) -> Vec<Rpc> {
    rpcs_in(Some(package))
}

/// Every RPC of every service in the descriptor set.
pub fn rpcs() -> Vec<Rpc> {
    rpcs_in(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{aimarketing, crm, finance, identity, property};

    fn assert_services(package: &str, expected: &[&str]) {
        let services = services_of(package);
        for expected in expected {
            let name = format!("{package}.{expected}");
            assert!(services.contains(&name), "{name} missing from {services:?}");
        }
    }

    #[test]
    fn descriptor_set_describes_every_identity_service() {
        assert_services(
            identity::v1::PACKAGE,
            &[
                "AuthService",
                "TenantService",
                "PlanService",
                "UserService",
                "RoleService",
            ],
        );
    }

    #[test]
    fn descriptor_set_describes_every_crm_service() {
        assert_services(
            crm::v1::PACKAGE,
            &[
                "LeadService",
                "ContactService",
                "DealService",
                "TaskService",
                "NoteService",
                "PipelineService",
                "SearchService",
                "DuplicateService",
            ],
        );
    }

    #[test]
    fn descriptor_set_describes_every_property_service() {
        assert_services(
            property::v1::PACKAGE,
            &[
                "DeveloperService",
                "ProjectService",
                "StageService",
                "LotService",
                "FeatureService",
                "MediaService",
            ],
        );
    }

    #[test]
    fn descriptor_set_describes_every_aimarketing_service() {
        assert_services(
            aimarketing::v1::PACKAGE,
            &[
                "PromptService",
                "ConversationService",
                "AiSettingsService",
                "MatchService",
                "CampaignService",
            ],
        );
    }

    #[test]
    fn a_package_without_services_has_none() {
        assert_eq!(services_of("google.type"), Vec::<String>::new());
        assert_eq!(services_of("fusion.nowhere.v1"), Vec::<String>::new());
        assert_eq!(rpcs_of("fusion.nowhere.v1"), Vec::new());
    }

    #[test]
    fn rpcs_are_named_by_their_path_and_say_which_side_streams() {
        let rpcs = rpcs_of(crm::v1::PACKAGE);
        let find = |path: &str| {
            rpcs.iter()
                .find(|r| r.path == path)
                .unwrap_or_else(|| panic!("{path} missing"))
        };
        let get = find("/fusion.crm.v1.LeadService/GetLead");
        assert!(!get.client_streaming && !get.server_streaming);
        assert!(find("/fusion.crm.v1.LeadService/ImportLeads").client_streaming);
        assert!(find("/fusion.crm.v1.LeadService/ExportLeads").server_streaming);
        assert!(rpcs.iter().all(|r| r.path.starts_with("/fusion.crm.v1.")));
    }

    #[test]
    fn every_rpc_is_in_exactly_one_package() {
        let by_package: usize = [
            identity::v1::PACKAGE,
            property::v1::PACKAGE,
            crm::v1::PACKAGE,
            finance::v1::PACKAGE,
            aimarketing::v1::PACKAGE,
        ]
        .iter()
        .map(|p| rpcs_of(p).len())
        .sum();
        assert_eq!(by_package, rpcs().len());
    }
}
