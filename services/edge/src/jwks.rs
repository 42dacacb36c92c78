//! The edge's verification keys: identity's `GetJwks`, fetched over gRPC.

use futures::future::BoxFuture;
use tonic::transport::Channel;

use fusion_proto::identity::v1::GetJwksRequest;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_tenancy::{KeyProvider, PublicKey};

/// Fetches the key set from identity through its upstream channel.
pub struct IdentityJwks {
    channel: Channel,
}

impl IdentityJwks {
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
