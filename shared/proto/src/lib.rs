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

generated!(identity, "fusion.identity.v1");

/// The encoded `FileDescriptorSet` of every Fusion proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fusion_descriptor");

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_describes_every_identity_service() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "fusion.identity.v1")
            .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
            .collect();
        for expected in [
            "AuthService",
            "TenantService",
            "PlanService",
            "UserService",
            "RoleService",
        ] {
            assert!(
                services.iter().any(|s| s == expected),
                "{expected} missing from {services:?}"
            );
        }
    }
}
