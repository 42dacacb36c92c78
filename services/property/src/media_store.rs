//! Where media bytes live: one [`object_store::ObjectStore`] — the trait every backend
//! implements — chosen by configuration. The local filesystem is the default; an
//! S3-compatible store (AWS, MinIO, Ceph, R2…) is one setting away.
//!
//! Objects are written with a multipart upload, so an upload never holds more than a
//! few parts in memory and becomes visible only when complete (the local filesystem
//! writes a temporary file and renames it). Keys are random (`tenants/<id>/media/<uuid>`),
//! never derived from the caller's file name.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

/// Which backend holds the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// Files under a directory (created if missing).
    Local {
        /// The root directory.
        dir: PathBuf,
    },
    /// An S3-compatible bucket. Credentials not given here come from the usual `AWS_*`
    /// environment (or the pod's web identity).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Endpoint of a non-AWS store, e.g. `http://minio:9000`; `None` means AWS.
        endpoint: Option<String>,
        /// Region.
        region: String,
        /// Access key id, when not from the environment.
        access_key_id: Option<String>,
        /// Secret access key, when not from the environment.
        secret_access_key: Option<String>,
    },
}

/// Size of the parts an upload is written in: S3 needs every part but the last to be
/// at least 5 MiB.
const PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The media object store.
#[derive(Clone, Debug)]
pub struct MediaStore {
    inner: Arc<dyn ObjectStore>,
}

impl MediaStore {
    /// Opens the configured backend.
    pub fn open(config: &StoreConfig) -> anyhow::Result<Self> {
        let inner: Arc<dyn ObjectStore> = match config {
            StoreConfig::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the media directory {}", dir.display()))?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(dir).with_context(
                        || format!("opening the media directory {}", dir.display()),
                    )?,
                )
            }
            StoreConfig::S3 {
                bucket,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
            } => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region);
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        // MinIO and most S3-compatible stores address buckets by path.
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(key) = access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                Arc::new(builder.build().context("configuring the S3 media store")?)
            }
        };
        Ok(Self { inner })
    }

    /// A fresh, unguessable key for a tenant's new object.
    pub fn new_key(tenant_id: i64) -> String {
        format!("tenants/{tenant_id}/media/{}", uuid::Uuid::now_v7())
    }

    /// Starts writing object `key`; nothing is visible until [`Upload::finish`].
    pub async fn upload(&self, key: &str) -> Result<Upload, object_store::Error> {
        let multipart = self.inner.put_multipart(&Path::from(key)).await?;
        Ok(Upload {
            writer: WriteMultipart::new_with_chunk_size(multipart, PART_SIZE),
        })
    }

    /// The content of object `key`, as it streams from the backend.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        let got = self.inner.get(&Path::from(key)).await?;
        Ok(got.into_stream().map_err(Into::into).boxed())
    }

    /// Removes object `key`; removing one that is already gone succeeds.
    pub async fn remove(&self, key: &str) -> Result<(), object_store::Error> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether object `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, object_store::Error> {
        match self.inner.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// An object being written.
#[derive(Debug)]
pub struct Upload {
    writer: WriteMultipart,
}

impl Upload {
    /// Appends `data`, waiting while too many parts are in flight.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), object_store::Error> {
        self.writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.writer.write(data);
        Ok(())
    }

    /// Completes the object, making it visible.
    pub async fn finish(self) -> Result<(), object_store::Error> {
        self.writer.finish().await.map(|_| ())
    }

    /// Abandons the object and whatever parts were written.
    pub async fn abort(self) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(error = %e, "aborting a media upload failed");
        }
    }
}
