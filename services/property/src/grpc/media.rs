//! `fusion.property.v1.MediaService`: images, floor plans, brochures, videos and
//! documents attached to a project, stage or lot.
//!
//! An upload is checked before a byte is stored (the metadata, and that the record it
//! is for is the caller's and live), streamed to the object store in parts while its
//! size, chunk size and SHA-256 are tracked, its content type read from its first bytes,
//! and only then recorded, in a transaction that re-checks the record under a lock. A
//! failed upload leaves neither a row nor an object. Deleting media is a soft delete
//! that keeps the object; the purge job removes both once retention has passed.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use fusion_db::list::{ListSpec, ScopeValue};
use fusion_db::resource::Read;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_db::{TenantTx, idempotency};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::download_media_response::Payload as Download;
use fusion_proto::property::v1::media_service_server::MediaService;
use fusion_proto::property::v1::upload_media_request::Payload as Upload;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::limits::next_message;
use fusion_service::standard::{Call, Kit, Method, Resource};

use super::caller;
use super::rpc;
use crate::api::{API, REQUEST_IDS};
use crate::domain::media::{self, MAX_CHUNK, MEDIA_TYPES, SNIFF_LEN};
use crate::domain::validate;
use crate::error::PropertyError;
use crate::media_store::{self, MediaStore};
use crate::store::lock_live;
use crate::store::media::{LIST, MediaRow, TABLE};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &["media_type", "title", "description", "position"];
const IMMUTABLE: &[&str] = &["mediable_type", "mediable_id", "file_name"];

/// Pieces of a download are sent in messages of at most this size.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

impl MediaRow {
    fn into_pb(self, state: &AppState) -> pb::Media {
        pb::Media {
            id: self.id,
            tenant_id: self.tenant_id,
            mediable_type: self.mediable_type,
            mediable_id: self.mediable_id,
            file_name: self.file_name,
            file_size: i64::from(self.file_size),
            mime_type: self.file_type,
            media_type: self.media_type,
            title: self.title.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            position: self.order,
            checksum: self.checksum.unwrap_or_default(),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: state.kit.purge_time(self.deleted_at),
            etag: etag(self.version),
        }
    }
}

/// Media on the standard methods other than Create (an upload is a client stream,
/// [`MediaService::upload_media`]): a media type must fit the stored file, and media
/// comes back only onto a live record.
struct Media;

impl Resource for Media {
    type Row = MediaRow;
    type Pb = pb::Media;
    type State = AppState;
    type Error = crate::error::PropertyError;

    const SINGULAR: &'static str = "Media";
    const FIELD: &'static str = "media";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = IMMUTABLE;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, row: MediaRow) -> pb::Media {
        row.into_pb(state)
    }

    fn id(m: &pb::Media) -> i64 {
        m.id
    }

    fn etag(m: &pb::Media) -> &str {
        &m.etag
    }

    fn populated(m: &pb::Media) -> Vec<&'static str> {
        populated(&[
            ("media_type", !m.media_type.is_empty()),
            ("title", !m.title.is_empty()),
            ("description", !m.description.is_empty()),
            ("position", m.position != 0),
        ])
    }

    fn values(
        _: &AppState,
        m: &pb::Media,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::PropertyError> {
        values(m, fields)
    }

    /// The stored file's content type decides which media types it can be.
    async fn on_update(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &MediaRow,
        m: &pb::Media,
        _: &mut Values,
    ) -> Result<(), crate::error::PropertyError> {
        let file_type = &current.file_type;
        let media_type = m.media_type.trim();
        if call.fields.contains(&"media_type") && !media::fits(media_type, file_type) {
            return Err(PropertyError::invalid(
                "media.media_type",
                format!("a {file_type} file cannot be a {media_type}"),
            ));
        }
        Ok(())
    }

    /// The record the media is for must be live (and stays so until commit).
    async fn on_undelete(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &MediaRow,
    ) -> Result<(), crate::error::PropertyError> {
        let parent = media::mediable_table(&current.mediable_type).unwrap_or(TABLE.name);
        if lock_live(tx, parent, current.mediable_id).await? {
            return Ok(());
        }
        Err(PropertyError::ParentDeleted {
            mediable_type: current.mediable_type.clone(),
            media_id: current.id,
        })
    }
}

/// The column values of the mutable fields in `fields`, validated (whether a media
/// type fits the file is checked against the stored row, in [`Media::on_update`]).
fn values(m: &pb::Media, fields: &[&str]) -> Result<Values, PropertyError> {
    values_of(DOMAIN, "media", fields, |field| {
        Ok(Some(match field {
            "media_type" => {
                validate::one_of(&m.media_type, MEDIA_TYPES)?;
                ("media_type", Val::text(&m.media_type))
            }
            "title" => {
                validate::max_len(&m.title, 255)?;
                ("title", Val::text(&m.title))
            }
            "description" => ("description", Val::text(&m.description)),
            "position" => {
                if m.position < 0 {
                    return Err("must not be negative".to_owned());
                }
                ("\"order\"", Val::Int32(Some(m.position)))
            }
            _ => return Ok(None),
        }))
    })
    .map_err(Into::into)
}

/// The metadata of an upload, checked.
struct NewMedia {
    mediable_type: &'static str,
    mediable_table: &'static str,
    mediable_id: i64,
    file_name: String,
    media_type: String,
    title: String,
    description: String,
    position: i32,
    request_id: Option<idempotency::RequestKey>,
}

impl NewMedia {
    fn from_pb(m: &pb::MediaUpload) -> Result<Self, Status> {
        let mut violations = Vec::new();
        let mediable = media::MEDIABLES
            .iter()
            .find(|(kind, _)| *kind == m.mediable_type.trim());
        fusion_service::api::check(
            &mut violations,
            "metadata.mediable_type",
            mediable.map(|_| ()).ok_or_else(|| {
                let kinds: Vec<&str> = media::MEDIABLES.iter().map(|(k, _)| *k).collect();
                format!("must be one of: {}", kinds.join(", "))
            }),
        );
        fusion_service::api::check(
            &mut violations,
            "metadata.mediable_id",
            if m.mediable_id > 0 {
                Ok(())
            } else {
                Err("must be a positive id".to_owned())
            },
        );
        fusion_service::api::check(
            &mut violations,
            "metadata.file_name",
            media::file_name(&m.file_name),
        );
        fusion_service::api::check(
            &mut violations,
            "metadata.media_type",
            validate::one_of(&m.media_type, MEDIA_TYPES),
        );
        fusion_service::api::check(
            &mut violations,
            "metadata.title",
            validate::max_len(&m.title, 255),
        );
        fusion_service::api::check(
            &mut violations,
            "metadata.position",
            if m.position < 0 {
                Err("must not be negative".to_owned())
            } else {
                Ok(())
            },
        );
        if !violations.is_empty() {
            return Err(PropertyError::Invalid(violations).into());
        }
        let (mediable_type, mediable_table) = *mediable.expect("checked above");
        Ok(Self {
            mediable_type,
            mediable_table,
            mediable_id: m.mediable_id,
            file_name: m.file_name.trim().to_owned(),
            media_type: m.media_type.trim().to_owned(),
            title: m.title.clone(),
            description: m.description.clone(),
            position: m.position,
            request_id: idempotency::request_key(DOMAIN, &m.request_id, m)
                .map_err(|_| PropertyError::invalid("metadata.request_id", "must be a UUID"))?,
        })
    }

    /// NOT_FOUND unless the record the media is for is live in the caller's tenant;
    /// key-share locks it until the transaction ends, so it cannot be deleted meanwhile.
    async fn require_mediable(&self, conn: &mut TenantTx) -> Result<(), Status> {
        if lock_live(conn, self.mediable_table, self.mediable_id).await? {
            Ok(())
        } else {
            Err(PropertyError::not_found(self.mediable_type, self.mediable_id).into())
        }
    }
}

/// What was stored.
struct Stored {
    size: i32,
    file_type: &'static str,
    checksum: String,
}

/// Takes an upload's content as it arrives: holds back the first bytes until the
/// content type can be told, then streams everything to the store.
struct Receiver<'a> {
    store: &'a MediaStore,
    key: &'a str,
    media_type: &'a str,
    max_bytes: u64,
    head: Vec<u8>,
    open: Option<(media_store::Upload, &'static str)>,
    hasher: Sha256,
    size: u64,
}

impl<'a> Receiver<'a> {
    fn new(store: &'a MediaStore, key: &'a str, media_type: &'a str, max_bytes: u64) -> Self {
        Self {
            store,
            key,
            media_type,
            max_bytes,
            head: Vec::with_capacity(SNIFF_LEN),
            open: None,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    async fn take(&mut self, chunk: &[u8]) -> Result<(), Status> {
        if chunk.len() > MAX_CHUNK {
            return Err(PropertyError::invalid(
                "chunk",
                format!("a chunk must be at most {MAX_CHUNK} bytes"),
            )
            .into());
        }
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(PropertyError::invalid(
                "chunk",
                format!(
                    "the file is larger than the limit of {} bytes",
                    self.max_bytes
                ),
            )
            .into());
        }
        self.hasher.update(chunk);
        match &mut self.open {
            Some((upload, _)) => upload.write(chunk).await.map_err(store_error),
            None => {
                self.head.extend_from_slice(chunk);
                if self.head.len() >= SNIFF_LEN {
                    self.start().await?;
                }
                Ok(())
            }
        }
    }

    /// Checks the content type and starts the object with the bytes held back.
    async fn start(&mut self) -> Result<(), Status> {
        let file_type = media::check_content(self.media_type, &self.head)
            .map_err(|e| PropertyError::invalid("chunk", e))?;
        let mut upload = self.store.upload(self.key).await.map_err(store_error)?;
        if let Err(e) = upload.write(&self.head).await {
            upload.abort().await;
            return Err(store_error(e));
        }
        self.head = Vec::new();
        self.open = Some((upload, file_type));
        Ok(())
    }

    async fn finish(mut self) -> Result<Stored, Status> {
        if self.size == 0 {
            return Err(PropertyError::invalid("chunk", "the file is empty").into());
        }
        if self.open.is_none() {
            self.start().await?;
        }
        let (upload, file_type) = self.open.take().expect("started above");
        if let Err(e) = upload.finish().await {
            // The object may or may not have become visible; make sure it is gone.
            let _ = self.store.remove(self.key).await;
            return Err(store_error(e));
        }
        Ok(Stored {
            size: i32::try_from(self.size).expect("bounded by the size limit"),
            file_type,
            checksum: format!("{:x}", self.hasher.finalize()),
        })
    }

    async fn abort(mut self) {
        if let Some((upload, _)) = self.open.take() {
            upload.abort().await;
        }
    }
}

/// An object-store failure: logged with its cause, returned opaque.
fn store_error(e: object_store::Error) -> Status {
    PropertyError::MediaStore(e).into()
}

/// The MediaService implementation.
#[derive(Clone, Debug)]
pub(crate) struct MediaApi {
    state: AppState,
}

impl MediaApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Records a stored upload, unless an earlier call with the same request id was
    /// recorded meanwhile (then that one is returned, and `false`).
    async fn record(
        &self,
        tenant_id: i64,
        new: &NewMedia,
        key: &str,
        stored: &Stored,
    ) -> Result<(pb::Media, bool), Status> {
        let mut tx = self.state.db.begin(tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, UPLOAD, new.request_id).await? {
            return Ok((saved, false));
        }
        new.require_mediable(&mut tx).await?;
        let id = TABLE
            .insert(
                &mut tx,
                vec![
                    ("mediable_type", Val::text(new.mediable_type)),
                    ("mediable_id", Val::Int(Some(new.mediable_id))),
                    ("file_name", Val::text(&new.file_name)),
                    ("file_path", Val::text(key)),
                    ("file_size", Val::Int32(Some(stored.size))),
                    ("file_type", Val::text(stored.file_type)),
                    ("media_type", Val::text(&new.media_type)),
                    ("title", Val::text(&new.title)),
                    ("description", Val::text(&new.description)),
                    ("\"order\"", Val::Int32(Some(new.position))),
                    ("checksum", Val::text(&stored.checksum)),
                ],
            )
            .await?;
        let created = TABLE
            .fetch::<MediaRow>(&mut tx, id, Read::live())
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, UPLOAD, new.request_id, &created)
            .await?;
        tx.commit().await?;
        Ok((created, true))
    }
}

const UPLOAD: &str = "UploadMedia";

/// The DownloadMedia stream.
pub(crate) type DownloadStream =
    Pin<Box<dyn Stream<Item = Result<pb::DownloadMediaResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MediaService for MediaApi {
    async fn upload_media(
        &self,
        req: Request<Streaming<pb::UploadMediaRequest>>,
    ) -> Result<Response<pb::Media>, Status> {
        let ctx = caller(&req)?;
        let mut stream = req.into_inner();
        let new = match next_message(
            &mut stream,
            self.state.config.service.stream_idle_timeout,
            DOMAIN,
        )
        .await?
        {
            Some(pb::UploadMediaRequest {
                payload: Some(Upload::Metadata(m)),
            }) => NewMedia::from_pb(&m)?,
            Some(_) => {
                return Err(PropertyError::invalid(
                    "metadata",
                    "the first message must carry the metadata",
                )
                .into());
            }
            None => {
                return Err(PropertyError::invalid(
                    "metadata",
                    "the stream ended before the metadata",
                )
                .into());
            }
        };

        // A retry of a recorded upload returns it without storing the bytes again; and
        // nothing is stored for a record that is not there.
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, UPLOAD, new.request_id).await? {
            return Ok(Response::new(saved));
        }
        new.require_mediable(&mut tx).await?;
        tx.commit().await?;

        let key = MediaStore::new_key(ctx.tenant_id);
        let store = &self.state.media;
        let mut receiver = Receiver::new(
            store,
            &key,
            &new.media_type,
            self.state.config.media_max_bytes,
        );
        let received: Result<(), Status> = async {
            // A stalled client ends the upload rather than holding its buffer open.
            while let Some(message) = next_message(
                &mut stream,
                self.state.config.service.stream_idle_timeout,
                DOMAIN,
            )
            .await?
            {
                match message.payload {
                    Some(Upload::Chunk(chunk)) => receiver.take(&chunk).await?,
                    Some(Upload::Metadata(_)) => {
                        return Err(API
                            .invalid("metadata", "only the first message may carry the metadata"));
                    }
                    None => {
                        return Err(API
                            .invalid("chunk", "every message after the first must carry a chunk"));
                    }
                }
            }
            Ok(())
        }
        .await;
        let stored = match received {
            Ok(()) => receiver.finish().await?,
            Err(e) => {
                receiver.abort().await;
                return Err(e);
            }
        };

        match self.record(ctx.tenant_id, &new, &key, &stored).await {
            Ok((created, true)) => Ok(Response::new(created)),
            recorded => {
                // Not recorded (an error, or a concurrent retry won): the object we
                // wrote belongs to nothing.
                if let Err(e) = store.remove(&key).await {
                    tracing::warn!(key, error = %e, "an unrecorded upload left its object behind");
                }
                recorded.map(|(saved, _)| Response::new(saved))
            }
        }
    }

    type DownloadMediaStream = DownloadStream;

    async fn download_media(
        &self,
        req: Request<pb::DownloadMediaRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        let ctx = caller(&req)?;
        let row: MediaRow = TABLE
            .get(
                &self.state.db,
                ctx.tenant_id,
                req.into_inner().id,
                Read::live(),
            )
            .await?;
        let mut content = self
            .state
            .media
            .read(&row.file_path)
            .await
            .map_err(|source| PropertyError::MediaUnreadable {
                media_id: row.id,
                source,
            })?;
        let media_id = row.id;
        let expected = row.checksum.clone();
        let first = pb::DownloadMediaResponse {
            payload: Some(Download::Metadata(row.into_pb(&self.state))),
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let chunk = |bytes: Vec<u8>| {
                Ok(pb::DownloadMediaResponse {
                    payload: Some(Download::Chunk(bytes)),
                })
            };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            let mut hasher = Sha256::new();
            let mut buf = Vec::with_capacity(DOWNLOAD_CHUNK);
            while let Some(piece) = content.next().await {
                let piece = match piece {
                    Ok(piece) => piece,
                    Err(source) => {
                        let unreadable = PropertyError::MediaUnreadable { media_id, source };
                        let _ = tx.send(Err(unreadable.into())).await;
                        return;
                    }
                };
                hasher.update(&piece);
                let mut rest = &piece[..];
                while !rest.is_empty() {
                    let take = (DOWNLOAD_CHUNK - buf.len()).min(rest.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() == DOWNLOAD_CHUNK {
                        let full = std::mem::replace(&mut buf, Vec::with_capacity(DOWNLOAD_CHUNK));
                        if tx.send(chunk(full)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if !buf.is_empty() && tx.send(chunk(buf)).await.is_err() {
                return;
            }
            // The bytes served must be the bytes uploaded; a client that got them all
            // still learns they are not to be trusted.
            let actual = format!("{:x}", hasher.finalize());
            if expected.as_deref().is_some_and(|e| e != actual) {
                let mismatch = PropertyError::ChecksumMismatch { media_id };
                let _ = tx.send(Err(mismatch.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_media(
        &self,
        req: Request<pb::GetMediaRequest>,
    ) -> Result<Response<pb::Media>, Status> {
        rpc::get::<Media, _>(&self.state, req, |r| r.id).await
    }

    async fn list_media(
        &self,
        req: Request<pb::ListMediaRequest>,
    ) -> Result<Response<pb::ListMediaResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let mut scope = Vec::new();
        if !r.mediable_type.is_empty() {
            let kind = r.mediable_type.trim();
            if media::mediable_table(kind).is_none() {
                return Err(PropertyError::invalid(
                    "mediable_type",
                    "must be one of: project, stage, lot",
                )
                .into());
            }
            scope.push(("mediable_type", ScopeValue::Text(kind.to_owned())));
        }
        if r.mediable_id != 0 {
            if r.mediable_type.is_empty() {
                return Err(PropertyError::invalid(
                    "mediable_type",
                    "is required with mediable_id (ids are per kind of record)",
                )
                .into());
            }
            API.require_id("mediable_id", r.mediable_id)?;
            scope.push(("mediable_id", ScopeValue::Int(r.mediable_id)));
        }
        rpc::page::<Media, _, _>(&self.state, &ctx, r, Some(&scope)).await
    }

    async fn update_media(
        &self,
        req: Request<pb::UpdateMediaRequest>,
    ) -> Result<Response<pb::Media>, Status> {
        rpc::update::<Media, _>(&self.state, req, |r| (r.media, r.update_mask)).await
    }

    /// The object stays until the purge job removes the row and it together.
    async fn delete_media(
        &self,
        req: Request<pb::DeleteMediaRequest>,
    ) -> Result<Response<pb::Media>, Status> {
        rpc::delete::<Media, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_media(
        &self,
        req: Request<pb::UndeleteMediaRequest>,
    ) -> Result<Response<pb::Media>, Status> {
        rpc::undelete::<Media, _>(&self.state, req, |r| r.id).await
    }
}
