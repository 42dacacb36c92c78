//! Every Fusion CRM gRPC API, generated once for all services (tonic 0.14,
//! `tonic-prost-build`, vendored `protoc`), its descriptor set for server
//! reflection, and the [`errors`] builders every service uses.

pub mod errors;

/// Generated code is exempt from the workspace lints it was not written for.
macro_rules! generated {
    ($name:ident, $package:literal) => {
        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod $name {
            pub mod v1 {
                tonic::include_proto!($package);
            }
        }
    };
}

/// The Fusion packages, nested as their proto package names (`fusion.<context>.v1`) so
/// that prost's relative paths to other packages, such as
/// `super::super::super::google::r#type::Date`, resolve from the crate root.
mod fusion {
    generated!(identity, "fusion.identity.v1");
    generated!(property, "fusion.property.v1");
    generated!(crm, "fusion.crm.v1");
}

pub use fusion::{crm, identity, property};

/// The googleapis types the Fusion protos use as field types.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod google {
    /// `google.type`: `Date`.
    pub mod r#type {
        tonic::include_proto!("google.r#type");
    }
}

/// The encoded `FileDescriptorSet` of every Fusion proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fusion_descriptor");

#[cfg(test)]
mod tests {
    use prost::Message;

    fn services_of(package: &str) -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        set.file
            .iter()
            .filter(|f| f.package() == package)
            .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
            .collect()
    }

    fn assert_services(package: &str, expected: &[&str]) {
        let services = services_of(package);
        for expected in expected {
            assert!(
                services.iter().any(|s| s == expected),
                "{expected} missing from {services:?}"
            );
        }
    }

    #[test]
    fn descriptor_set_describes_every_identity_service() {
        assert_services(
            "fusion.identity.v1",
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
            "fusion.crm.v1",
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
            "fusion.property.v1",
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
}
