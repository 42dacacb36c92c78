//! Every Fusion CRM gRPC API, generated once for all services (tonic 0.14,
//! `tonic-prost-build`, vendored `protoc`), its descriptor set for server
//! reflection, what the set says about each package's services and RPCs
//! ([`descriptor`]), and the [`errors`] builders every service uses.

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

/// The encoded `FileDescriptorSet` of every Fusion proto, for server reflection and
/// [`descriptor`].
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fusion_descriptor");
