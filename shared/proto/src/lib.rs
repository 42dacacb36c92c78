//! Every Fusion CRM gRPC API, generated once for all services (tonic 0.14,
//! `tonic-prost-build`, vendored `protoc`), its descriptor set for server
//! reflection, what the set says about each package's services and RPCs
//! ([`descriptor`]), the [`errors`] builders every service uses, and the served call's
//! [`deadline`].

pub mod deadline;
pub mod descriptor;
pub mod errors;

/// Generated code is exempt from the workspace lints it was not written for.
macro_rules! generated {
    ($name:ident, $package:literal) => {
        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod $name {
            pub mod v1 {
                /// The proto package, as it appears in service names and RPC paths.
                pub const PACKAGE: &str = $package;

                tonic::include_proto!($package);
            }
        }
    };
}

/// The Fusion packages, nested as their proto package names (`fusion.<context>.v1`) so
/// that prost's relative paths to other packages, such as
/// `super::super::super::google::r#type::Date`, resolve from the crate root.
mod fusion {
    generated!(common, "fusion.common.v1");
    generated!(identity, "fusion.identity.v1");
    generated!(property, "fusion.property.v1");
    generated!(crm, "fusion.crm.v1");
    generated!(finance, "fusion.finance.v1");
    generated!(aimarketing, "fusion.aimarketing.v1");
}

/// `fusion.common.v1`: the shapes every package may share (`ResourceRef`); it has no
/// services.
pub use fusion::common;
pub use fusion::{aimarketing, crm, finance, identity, property};

/// The googleapis types the Fusion protos use as field types.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod google {
    /// `google.type`: `Date`.
    pub mod r#type {
        tonic::include_proto!("google.r#type");
    }
}

/// The encoded `FileDescriptorSet` of every Fusion proto, for server reflection and
/// [`descriptor`].
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fusion_descriptor");

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn common_resource_ref_is_generated_and_described() {
        let r = crate::common::v1::ResourceRef {
            r#type: "lead".to_owned(),
            id: 7,
        };
        let decoded = crate::common::v1::ResourceRef::decode(r.encode_to_vec().as_slice())
            .expect("round trip");
        assert_eq!(decoded, r);
        assert_eq!(crate::common::v1::PACKAGE, "fusion.common.v1");

        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        // The package has several files (resource_ref.proto, event.proto), no services.
        let files: Vec<_> = set
            .file
            .iter()
            .filter(|f| f.package() == "fusion.common.v1")
            .collect();
        assert!(!files.is_empty(), "fusion.common.v1 in the descriptor set");
        assert!(
            files
                .iter()
                .flat_map(|f| &f.message_type)
                .any(|m| m.name() == "ResourceRef")
        );
        assert!(files.iter().all(|f| f.service.is_empty()));
    }
}
