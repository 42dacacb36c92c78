//! Verification keys from identity's `GetJwks`, fetched over gRPC: what the edge and
//! every service other than identity verify tokens with.

use futures::future::BoxFuture;
use tonic::transport::Channel;

use crate::{KeyProvider, PublicKey};
use fusion_proto::identity::v1::GetJwksRequest;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;

/// Fetches the key set from identity over a channel to it.
pub struct IdentityJwks {
    channel: Channel,
}

impl IdentityJwks {
    /// A provider reading identity's `GetJwks` over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }
}

impl KeyProvider for IdentityJwks {
    fn keys(&self) -> BoxFuture<'_, Result<Vec<PublicKey>, String>> {
        let mut client = AuthServiceClient::new(self.channel.clone());
        Box::pin(async move {
            let jwks = client
                .get_jwks(GetJwksRequest {})
                .await
                .map_err(|e| format!("GetJwks failed: {e}"))?;
            Ok(jwks
                .into_inner()
                .keys
                .into_iter()
                // Only keys for the one algorithm we accept.
                .filter(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA")
                .map(|k| PublicKey { kid: k.kid, x: k.x })
                .collect())
        })
    }
}
