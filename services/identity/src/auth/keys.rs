//! The platform's signing keys, shared by every identity replica through PostgreSQL.
//!
//! The newest live key signs; every key whose tokens may still be alive verifies. A
//! rotation retires the current key but keeps it verifying until `verify_until` (its
//! last token's expiry plus leeway). Other replicas pick up a new key when they meet
//! its `kid` (the verifier's cache asks [`KeyRing::keys`] for unknown key ids).

use std::sync::RwLock;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use sqlx::Row;

use fusion_db::Db;
use fusion_tenancy::{KeyProvider, PublicKey, TokenSigner};

/// Signing key and verification keys.
#[derive(Debug)]
pub struct KeyRing {
    db: Db,
    inner: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    signer: TokenSigner,
    public: Vec<PublicKey>,
}

const KEY_LOCK: i64 = 7_317_002;

impl KeyRing {
    /// Loads the keys, creating the first one if there is none (safe when several
    /// replicas start at once).
    pub async fn load_or_create(db: &Db) -> anyhow::Result<Self> {
        let ring = Self::load(db).await;
        if let Ok(ring) = ring {
            return Ok(ring);
        }
        let mut tx = db.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let existing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM identity.signing_keys WHERE retired_at IS NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        if existing == 0 {
            insert_key(&mut tx, &TokenSigner::generate(new_kid())).await?;
        }
        tx.commit().await?;
        Self::load(db).await
    }

    async fn load(db: &Db) -> anyhow::Result<Self> {
        let loaded = load_keys(db).await?;
        Ok(Self {
            db: db.clone(),
            inner: RwLock::new(loaded),
        })
    }

    /// The key new tokens are signed with.
    pub fn signer(&self) -> TokenSigner {
        self.inner.read().expect("key ring lock").signer.clone()
    }

    /// Every key that may verify a live token, newest first (what `GetJwks` publishes).
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.inner.read().expect("key ring lock").public.clone()
    }

    /// Re-reads the keys (after another replica rotated).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let loaded = load_keys(&self.db).await?;
        *self.inner.write().expect("key ring lock") = loaded;
        Ok(())
    }

    /// Creates a new signing key; the previous ones keep verifying for `keep_verifying`
    /// (the access-token lifetime plus leeway). Returns the new key id.
    pub async fn rotate(&self, keep_verifying: Duration) -> anyhow::Result<String> {
        let signer = TokenSigner::generate(new_kid());
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE identity.signing_keys
             SET retired_at = now(), verify_until = now() + $1, updated_at = now()
             WHERE retired_at IS NULL",
        )
        .bind(chrono::Duration::from_std(keep_verifying)?)
        .execute(&mut *tx)
        .await?;
        insert_key(&mut tx, &signer).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(signer.kid().to_owned())
    }
}

impl KeyProvider for KeyRing {
    fn keys(&self) -> BoxFuture<'_, Result<Vec<PublicKey>, String>> {
        Box::pin(async move {
            self.reload().await.map_err(|e| format!("{e:#}"))?;
            Ok(self.public_keys())
        })
    }
}

fn new_kid() -> String {
    format!("k{}", uuid::Uuid::now_v7().simple())
}

async fn insert_key(conn: &mut sqlx::PgConnection, signer: &TokenSigner) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO identity.signing_keys (kid, private_key, public_x) VALUES ($1, $2, $3)",
    )
    .bind(signer.kid())
    .bind(signer.pkcs8_der())
    .bind(signer.public_key().x)
    .execute(conn)
    .await?;
    Ok(())
}

async fn load_keys(db: &Db) -> anyhow::Result<Loaded> {
    let rows = sqlx::query(
        "SELECT kid, private_key, public_x, retired_at IS NULL AS live
         FROM identity.signing_keys
         WHERE retired_at IS NULL OR verify_until > now()
         ORDER BY created_at DESC, kid DESC",
    )
    .fetch_all(db.pool())
    .await
    .context("reading signing keys")?;
    let mut signer = None;
    let mut public = Vec::new();
    for row in rows {
        let kid: String = row.get("kid");
        public.push(PublicKey {
            kid: kid.clone(),
            x: row.get("public_x"),
        });
        if signer.is_none() && row.get::<bool, _>("live") {
            let der: Vec<u8> = row.get("private_key");
            signer = Some(TokenSigner::from_pkcs8_der(kid, &der).map_err(anyhow::Error::msg)?);
        }
    }
    let signer = signer.context("no live signing key")?;
    Ok(Loaded { signer, public })
}
