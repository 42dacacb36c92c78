//! Media: streaming uploads checked before and while they are stored, downloads that
//! return the uploaded bytes, soft delete that keeps the object until purge, and the
//! S3-compatible backend against a local server that speaks the S3 API.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use fusion_property::media_store::StoreConfig;
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::download_media_response::Payload as Download;
use fusion_proto::property::v1::upload_media_request::Payload as Upload;

use crate::helpers::{
    READER, TestApp, User, expect_code, media_dir, reason, test_config, violated_fields,
};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const PDF_MAGIC: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

/// A PNG-looking file of `len` bytes with varied content.
pub(crate) fn png(len: usize) -> Vec<u8> {
    let mut bytes = PNG_MAGIC.to_vec();
    bytes.extend((0..len.saturating_sub(PNG_MAGIC.len())).map(|i| (i * 31 % 251) as u8));
    bytes.truncate(len);
    bytes
}

pub(crate) fn meta(kind: &str, id: i64, media_type: &str) -> pb::MediaUpload {
    pb::MediaUpload {
        mediable_type: kind.into(),
        mediable_id: id,
        file_name: "site plan.png".into(),
        media_type: media_type.into(),
        title: "Site plan".into(),
        ..Default::default()
    }
}

fn metadata_message(m: pb::MediaUpload) -> pb::UploadMediaRequest {
    pb::UploadMediaRequest {
        payload: Some(Upload::Metadata(m)),
    }
}

fn chunk_message(bytes: &[u8]) -> pb::UploadMediaRequest {
    pb::UploadMediaRequest {
        payload: Some(Upload::Chunk(bytes.to_vec())),
    }
}

/// Sends exactly these messages as one UploadMedia stream.
async fn upload_raw(
    app: &TestApp,
    who: &User,
    messages: Vec<pb::UploadMediaRequest>,
) -> Result<pb::Media, Status> {
    app.media()
        .upload_media(who.req(futures::stream::iter(messages)))
        .await
        .map(|r| r.into_inner())
}

/// Uploads `content` in chunks of `chunk` bytes.
pub(crate) async fn upload(
    app: &TestApp,
    who: &User,
    m: pb::MediaUpload,
    content: &[u8],
    chunk: usize,
) -> Result<pb::Media, Status> {
    let mut messages = vec![metadata_message(m)];
    messages.extend(content.chunks(chunk).map(chunk_message));
    upload_raw(app, who, messages).await
}

/// Downloads media `id`: its metadata, then its content.
async fn download(app: &TestApp, who: &User, id: i64) -> Result<(pb::Media, Vec<u8>), Status> {
    let mut stream = app
        .media()
        .download_media(who.req(pb::DownloadMediaRequest { id }))
        .await?
        .into_inner();
    let first = stream.next().await.expect("a first message")?;
    let Some(Download::Metadata(media)) = first.payload else {
        panic!("the first message carries the metadata: {first:?}");
    };
    let mut content = Vec::new();
    while let Some(message) = stream.next().await {
        match message?.payload {
            Some(Download::Chunk(bytes)) => {
                assert!(!bytes.is_empty() && bytes.len() <= 1024 * 1024);
                content.extend(bytes);
            }
            other => panic!("only chunks follow the metadata: {other:?}"),
        }
    }
    Ok((media, content))
}

/// Expects every write to media `id` by `who` (update, delete, undelete) to fail with
/// `code`.
async fn writes_refused(app: &TestApp, who: &User, id: i64, code: Code) {
    let mut client = app.media();
    let update = pb::UpdateMediaRequest {
        media: Some(pb::Media {
            id,
            title: "Mine now".into(),
            ..Default::default()
        }),
        update_mask: None,
    };
    expect_code(client.update_media(who.req(update)).await, code);
    expect_code(delete(app, who, id).await, code);
    expect_code(
        client
            .undelete_media(who.req(pb::UndeleteMediaRequest { id }))
            .await,
        code,
    );
}

/// Deletes media `id` without an etag.
async fn delete(app: &TestApp, who: &User, id: i64) -> Result<pb::Media, Status> {
    app.media()
        .delete_media(who.req(pb::DeleteMediaRequest {
            id,
            etag: String::new(),
        }))
        .await
        .map(|r| r.into_inner())
}

/// Files under `dir`, at any depth.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}

/// The storage key of media `id`, read as the owner role.
async fn key_of(app: &TestApp, id: i64) -> String {
    let owner = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
    // The owner sees soft-deleted rows only (the purge policy); read live ones as the
    // tenant.
    let mut tx = app.app.state().db.begin(app.acme.tenant_id).await.unwrap();
    let live: Option<String> =
        sqlx::query_scalar("SELECT file_path FROM property.property_media WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    match live {
        Some(key) => key,
        None => sqlx::query_scalar("SELECT file_path FROM property.property_media WHERE id = $1")
            .bind(id)
            .fetch_one(&owner)
            .await
            .unwrap(),
    }
}

async fn media_rows(app: &TestApp, who: &User) -> i64 {
    let mut tx = app.app.state().db.begin(who.tenant_id).await.unwrap();
    let n = sqlx::query_scalar("SELECT count(*) FROM property.property_media")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn uploaded_media_downloads_byte_for_byte_with_its_checksum() {
    let app = TestApp::spawn().await;
    let (_, stage) = app.project_with_stage(&app.acme, "riverside").await;
    let lot = app.lot(&app.acme, &stage, "101", "500000.00").await;
    let content = png(2 * 1024 * 1024 + 12_345);

    let media = upload(
        &app,
        &app.acme,
        meta("lot", lot.id, "image"),
        &content,
        1024 * 1024,
    )
    .await
    .unwrap();
    assert!(media.id > 0);
    assert_eq!(
        (
            media.tenant_id,
            media.mediable_type.as_str(),
            media.mediable_id
        ),
        (1, "lot", lot.id)
    );
    assert_eq!(media.file_size, content.len() as i64);
    assert_eq!(media.mime_type, "image/png");
    assert_eq!(media.checksum, format!("{:x}", Sha256::digest(&content)));
    assert_eq!(
        (media.file_name.as_str(), media.title.as_str()),
        ("site plan.png", "Site plan")
    );
    assert!(!media.etag.is_empty() && media.create_time.is_some());

    let (described, downloaded) = download(&app, &app.acme, media.id).await.unwrap();
    assert_eq!(described, media);
    assert!(downloaded == content, "the downloaded bytes differ");
    let got = app
        .media()
        .get_media(app.acme.req(pb::GetMediaRequest { id: media.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, media);
    assert_eq!(files_under(&media_dir(&app.db)), 1);
}

#[tokio::test]
async fn refused_uploads_leave_neither_a_row_nor_an_object() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;
    let acme = &app.acme;
    let good = || meta("project", project.id, "image");

    // The stream must open with the metadata, and the metadata must be valid.
    let status = expect_code(
        upload_raw(&app, acme, vec![chunk_message(&png(100))]).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["metadata"]);
    expect_code(upload_raw(&app, acme, vec![]).await, Code::InvalidArgument);
    let bad = pb::MediaUpload {
        mediable_type: "contact".into(),
        mediable_id: 0,
        file_name: "../../etc/passwd".into(),
        media_type: "spreadsheet".into(),
        title: "x".repeat(256),
        position: -1,
        request_id: "not-a-uuid".into(),
        ..Default::default()
    };
    let status = expect_code(
        upload(&app, acme, bad, &png(100), 100).await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "metadata.file_name",
            "metadata.media_type",
            "metadata.mediable_id",
            "metadata.mediable_type",
            "metadata.position",
            "metadata.title",
        ]
    );

    // The content: not empty, chunks of at most 1 MiB, the kind it claims to be, no
    // second metadata, no message without a payload.
    let status = expect_code(
        upload(&app, acme, good(), &[], 1).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("empty"), "{status:?}");
    let big = png(1024 * 1024 + 1);
    expect_code(
        upload(&app, acme, good(), &big, big.len()).await,
        Code::InvalidArgument,
    );
    let status = expect_code(
        upload(&app, acme, good(), PDF_MAGIC, 64).await,
        Code::InvalidArgument,
    );
    assert!(
        status.message().contains("application/pdf"),
        "names the content found: {status:?}"
    );
    let text = b"just some text, pretending to be a picture".repeat(500);
    let status = expect_code(
        upload(&app, acme, good(), &text, 4096).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("no known type"), "{status:?}");
    expect_code(
        upload_raw(
            &app,
            acme,
            vec![
                metadata_message(good()),
                chunk_message(&png(20_000)),
                metadata_message(good()),
            ],
        )
        .await,
        Code::InvalidArgument,
    );
    expect_code(
        upload_raw(
            &app,
            acme,
            vec![
                metadata_message(good()),
                chunk_message(&png(20_000)),
                pb::UploadMediaRequest { payload: None },
            ],
        )
        .await,
        Code::InvalidArgument,
    );

    assert_eq!(media_rows(&app, acme).await, 0);
    assert_eq!(files_under(&media_dir(&app.db)), 0);
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_and_not_kept() {
    let app = TestApp::spawn().await;
    let mut config = test_config(&app.db);
    config.media_max_bytes = 64 * 1024;
    let small = TestApp::replica_with(&app.keys, config).await;
    let channel = fusion_testkit::connect_channel(small.grpc_addr()).await;
    let mut client =
        fusion_proto::property::v1::media_service_client::MediaServiceClient::new(channel);
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;

    let send = |content: Vec<u8>| {
        let messages = vec![
            metadata_message(meta("project", project.id, "image")),
            chunk_message(&content[..content.len() / 2]),
            chunk_message(&content[content.len() / 2..]),
        ];
        app.acme.req(futures::stream::iter(messages))
    };
    let status = expect_code(
        client.upload_media(send(png(64 * 1024 + 1))).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("65536"), "{status:?}");
    assert_eq!(files_under(&media_dir(&app.db)), 0);
    let exact = client
        .upload_media(send(png(64 * 1024)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exact.file_size, 64 * 1024);
    small.stop().await.unwrap();
}

#[tokio::test]
async fn media_of_another_tenant_is_not_found_and_its_records_take_no_uploads() {
    let app = TestApp::spawn().await;
    let (project, stage) = app.project_with_stage(&app.acme, "riverside").await;
    let lot = app.lot(&app.acme, &stage, "101", "500000.00").await;
    let media = upload(
        &app,
        &app.acme,
        meta("lot", lot.id, "image"),
        &png(5000),
        1000,
    )
    .await
    .unwrap();
    let globex = &app.globex;

    for (kind, id) in [
        ("project", project.id),
        ("stage", stage.id),
        ("lot", lot.id),
    ] {
        let status = expect_code(
            upload(&app, globex, meta(kind, id, "image"), &png(5000), 1000).await,
            Code::NotFound,
        );
        assert!(status.message().contains(kind), "{status:?}");
    }
    let mut client = app.media();
    expect_code(
        client
            .get_media(globex.req(pb::GetMediaRequest { id: media.id }))
            .await,
        Code::NotFound,
    );
    expect_code(download(&app, globex, media.id).await, Code::NotFound);
    writes_refused(&app, globex, media.id, Code::NotFound).await;
    let listed = client
        .list_media(globex.req(pb::ListMediaRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.media.is_empty() && listed.total_size == 0);
    assert_eq!(media_rows(&app, globex).await, 0);
    assert_eq!(files_under(&media_dir(&app.db)), 1);
}

#[tokio::test]
async fn a_reader_sees_and_downloads_media_but_cannot_change_it() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;
    let media = upload(
        &app,
        &app.acme,
        meta("project", project.id, "brochure"),
        PDF_MAGIC,
        8,
    )
    .await
    .unwrap();
    assert_eq!(media.mime_type, "application/pdf");
    let reader = app.user(1, 12, READER);
    let mut client = app.media();

    let (_, content) = download(&app, &reader, media.id).await.unwrap();
    assert_eq!(content, PDF_MAGIC);
    client
        .list_media(reader.req(pb::ListMediaRequest::default()))
        .await
        .unwrap();
    let status = expect_code(
        upload(
            &app,
            &reader,
            meta("project", project.id, "image"),
            &png(100),
            100,
        )
        .await,
        Code::PermissionDenied,
    );
    assert!(
        status.message().contains("property.media.write"),
        "{status:?}"
    );
    writes_refused(&app, &reader, media.id, Code::PermissionDenied).await;
}

#[tokio::test]
async fn deleted_media_keeps_its_object_until_purged() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;
    let content = png(30_000);
    let media = upload(
        &app,
        &app.acme,
        meta("project", project.id, "image"),
        &content,
        7000,
    )
    .await
    .unwrap();
    let key = key_of(&app, media.id).await;
    let store = app.app.state().media.clone();
    let mut client = app.media();

    expect_code(
        client
            .delete_media(app.acme.req(pb::DeleteMediaRequest {
                id: media.id,
                etag: "\"stale\"".into(),
            }))
            .await,
        Code::Aborted,
    );
    let deleted = client
        .delete_media(app.acme.req(pb::DeleteMediaRequest {
            id: media.id,
            etag: media.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some() && deleted.purge_time.is_some());
    expect_code(download(&app, &app.acme, media.id).await, Code::NotFound);
    // AIP-164: Get still finds the soft-deleted media, with its delete_time.
    let found = client
        .get_media(app.acme.req(pb::GetMediaRequest { id: media.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(found.delete_time.is_some(), "{found:?}");
    let shown = client
        .list_media(app.acme.req(pb::ListMediaRequest {
            show_deleted: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.media.len(), 1);
    assert!(store.exists(&key).await.unwrap(), "the object is kept");

    let restored = client
        .undelete_media(app.acme.req(pb::UndeleteMediaRequest { id: media.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(restored.delete_time.is_none());
    let (_, back) = download(&app, &app.acme, media.id).await.unwrap();
    assert!(back == content);
    expect_code(
        client
            .undelete_media(app.acme.req(pb::UndeleteMediaRequest { id: media.id }))
            .await,
        Code::AlreadyExists,
    );

    // Live media is never purged; deleted media past retention goes with its object.
    let owner = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
    let purged = fusion_property::jobs::purge_media(&owner, &store, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(purged, 0);
    delete(&app, &app.acme, media.id).await.unwrap();
    let kept = fusion_property::jobs::purge_media(&owner, &store, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(kept, 0, "not yet past retention");
    let purged = fusion_property::jobs::purge_media(&owner, &store, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(!store.exists(&key).await.unwrap(), "the object went too");
    assert_eq!(files_under(&media_dir(&app.db)), 0);
    expect_code(
        client
            .undelete_media(app.acme.req(pb::UndeleteMediaRequest { id: media.id }))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn a_record_with_live_media_cannot_be_deleted_and_media_of_a_deleted_record_stays_deleted() {
    let app = TestApp::spawn().await;
    let (project, stage) = app.project_with_stage(&app.acme, "riverside").await;
    let lot = app.lot(&app.acme, &stage, "101", "500000.00").await;
    let photo = upload(
        &app,
        &app.acme,
        meta("lot", lot.id, "image"),
        &png(500),
        500,
    )
    .await
    .unwrap();
    let plan = upload(
        &app,
        &app.acme,
        meta("stage", stage.id, "floor_plan"),
        PDF_MAGIC,
        64,
    )
    .await
    .unwrap();
    let mut client = app.media();

    let status = expect_code(
        app.lots()
            .delete_lot(app.acme.req(pb::DeleteLotRequest {
                id: lot.id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_MEDIA");
    delete(&app, &app.acme, photo.id).await.unwrap();
    app.lots()
        .delete_lot(app.acme.req(pb::DeleteLotRequest {
            id: lot.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    let status = expect_code(
        client
            .undelete_media(app.acme.req(pb::UndeleteMediaRequest { id: photo.id }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARENT_DELETED");
    expect_code(
        upload(
            &app,
            &app.acme,
            meta("lot", lot.id, "image"),
            &png(500),
            500,
        )
        .await,
        Code::NotFound,
    );

    let status = expect_code(
        app.stages()
            .delete_stage(app.acme.req(pb::DeleteStageRequest {
                id: stage.id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_MEDIA");
    delete(&app, &app.acme, plan.id).await.unwrap();
    app.stages()
        .delete_stage(app.acme.req(pb::DeleteStageRequest {
            id: stage.id,
            etag: String::new(),
        }))
        .await
        .unwrap();

    upload(
        &app,
        &app.acme,
        meta("project", project.id, "image"),
        &png(500),
        500,
    )
    .await
    .unwrap();
    let status = expect_code(
        app.projects()
            .delete_project(app.acme.req(pb::DeleteProjectRequest {
                id: project.id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "HAS_MEDIA");
}

#[tokio::test]
async fn media_lists_per_record_in_display_order_with_filters_and_bound_pages() {
    let app = TestApp::spawn().await;
    let (project, stage) = app.project_with_stage(&app.acme, "riverside").await;
    let lot = app.lot(&app.acme, &stage, "101", "500000.00").await;
    let other = app.lot(&app.acme, &stage, "102", "510000.00").await;
    for (order, title) in [(2, "Kitchen"), (0, "Front"), (1, "Garden")] {
        let mut m = meta("lot", lot.id, "image");
        m.position = order;
        m.title = title.into();
        upload(&app, &app.acme, m, &png(300), 300).await.unwrap();
    }
    upload(
        &app,
        &app.acme,
        meta("lot", other.id, "floor_plan"),
        PDF_MAGIC,
        64,
    )
    .await
    .unwrap();
    upload(
        &app,
        &app.acme,
        meta("project", project.id, "image"),
        &png(300),
        300,
    )
    .await
    .unwrap();
    let mut client = app.media();
    let list = |r: pb::ListMediaRequest| {
        let mut client = client.clone();
        let req = app.acme.req(r);
        async move { client.list_media(req).await }
    };

    let first = list(pb::ListMediaRequest {
        mediable_type: "lot".into(),
        mediable_id: lot.id,
        page_size: 2,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    let titles: Vec<&str> = first.media.iter().map(|m| m.title.as_str()).collect();
    assert_eq!(titles, ["Front", "Garden"]);
    assert_eq!(first.total_size, 3);
    let second = list(pb::ListMediaRequest {
        mediable_type: "lot".into(),
        mediable_id: lot.id,
        page_size: 2,
        page_token: first.next_page_token.clone(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(second.media.len(), 1);
    assert_eq!(second.media[0].title, "Kitchen");
    assert!(second.next_page_token.is_empty());

    // A token is bound to the record it was made for.
    expect_code(
        list(pb::ListMediaRequest {
            mediable_type: "lot".into(),
            mediable_id: other.id,
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
    );
    let all_lots = list(pb::ListMediaRequest {
        mediable_type: "lot".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(all_lots.total_size, 4);
    let plans = list(pb::ListMediaRequest {
        filter: "media_type = \"floor_plan\" AND mime_type = \"application/pdf\"".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(plans.media.len(), 1);
    assert_eq!(plans.media[0].mediable_id, other.id);

    let status = expect_code(
        list(pb::ListMediaRequest {
            mediable_id: lot.id,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["mediable_type"]);
    expect_code(
        list(pb::ListMediaRequest {
            mediable_type: "contact".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
    );
    expect_code(
        list(pb::ListMediaRequest {
            filter: "checksum = \"x\"".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
    );
    client
        .list_media(app.acme.req(pb::ListMediaRequest {
            order_by: "file_size desc, create_time".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
}

#[tokio::test]
async fn updates_change_only_masked_fields_and_a_kind_must_fit_the_content() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;
    let media = upload(
        &app,
        &app.acme,
        meta("project", project.id, "image"),
        &png(300),
        300,
    )
    .await
    .unwrap();
    let mut client = app.media();
    let update = |m: pb::Media, paths: &[&str]| {
        app.acme.req(pb::UpdateMediaRequest {
            media: Some(m),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        })
    };

    let changed = client
        .update_media(update(
            pb::Media {
                id: media.id,
                title: "Aerial view".into(),
                description: "ignored: not in the mask".into(),
                position: 3,
                media_type: "floor_plan".into(),
                etag: media.etag.clone(),
                ..Default::default()
            },
            &["title", "position", "media_type"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            changed.title.as_str(),
            changed.position,
            changed.media_type.as_str()
        ),
        ("Aerial view", 3, "floor_plan")
    );
    assert_eq!(changed.description, "");
    assert_ne!(changed.etag, media.etag);

    expect_code(
        client
            .update_media(update(
                pb::Media {
                    id: media.id,
                    title: "Stale".into(),
                    etag: media.etag.clone(),
                    ..Default::default()
                },
                &["title"],
            ))
            .await,
        Code::Aborted,
    );
    let status = expect_code(
        client
            .update_media(update(
                pb::Media {
                    id: media.id,
                    media_type: "video".into(),
                    ..Default::default()
                },
                &["media_type"],
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["media.media_type"]);
    assert!(status.message().contains("image/png"), "{status:?}");
    for immutable in ["mediable_id", "file_name", "file_size", "checksum"] {
        expect_code(
            client
                .update_media(update(
                    pb::Media {
                        id: media.id,
                        ..Default::default()
                    },
                    &[immutable],
                ))
                .await,
            Code::InvalidArgument,
        );
    }
    expect_code(
        client
            .update_media(update(
                pb::Media {
                    id: media.id,
                    position: -1,
                    ..Default::default()
                },
                &["position"],
            ))
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn a_retried_upload_returns_the_first_and_keeps_one_object() {
    let app = TestApp::spawn().await;
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;
    let mut m = meta("project", project.id, "image");
    m.request_id = uuid::Uuid::new_v4().to_string();

    let first = upload(&app, &app.acme, m.clone(), &png(4000), 1000)
        .await
        .unwrap();
    let again = upload(&app, &app.acme, m.clone(), &png(4000), 1000)
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(media_rows(&app, &app.acme).await, 1);
    assert_eq!(files_under(&media_dir(&app.db)), 1);

    // Concurrent first attempts both store bytes, but one is recorded and the loser's
    // object is removed.
    m.request_id = uuid::Uuid::new_v4().to_string();
    let content = png(4000);
    let (a, b) = tokio::join!(
        upload(&app, &app.acme, m.clone(), &content, 1000),
        upload(&app, &app.acme, m.clone(), &content, 1000),
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(media_rows(&app, &app.acme).await, 2);
    assert_eq!(files_under(&media_dir(&app.db)), 2);
}

/// A local S3-compatible server (moto's, which implements the S3 REST API) on a free
/// loopback port, stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl S3Server {
    async fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = S3Server { child, endpoint };
        for _ in 0..200 {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "the S3 test server exited ({status}): install it with pip install \"moto[server]\""
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                // Create the bucket with a plain S3 CreateBucket call.
                let status = http_put(&format!("{}/fusion-media", server.endpoint)).await;
                assert!(status.starts_with("HTTP/1.1 200"), "{status}");
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.child.kill().ok();
        panic!("the S3 test server did not start");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Sends an empty HTTP/1.1 PUT and returns the status line.
async fn http_put(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_s3_backend_stores_serves_and_purges_media() {
    let s3 = S3Server::start().await;
    let app = TestApp::spawn().await;
    let mut config = test_config(&app.db);
    config.media_store = StoreConfig::S3 {
        bucket: "fusion-media".into(),
        endpoint: Some(s3.endpoint.clone()),
        region: "us-east-1".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
    };
    let on_s3 = TestApp::replica_with(&app.keys, config).await;
    let channel = fusion_testkit::connect_channel(on_s3.grpc_addr()).await;
    let mut client =
        fusion_proto::property::v1::media_service_client::MediaServiceClient::new(channel);
    let (project, _) = app.project_with_stage(&app.acme, "riverside").await;
    // Larger than one 5 MiB part, so the multipart upload has two.
    let content = png(6 * 1024 * 1024 + 321);
    let mut messages = vec![metadata_message(meta("project", project.id, "image"))];
    messages.extend(content.chunks(1024 * 1024).map(chunk_message));

    let media = client
        .upload_media(app.acme.req(futures::stream::iter(messages)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(media.file_size, content.len() as i64);
    let mut stream = client
        .download_media(app.acme.req(pb::DownloadMediaRequest { id: media.id }))
        .await
        .unwrap()
        .into_inner();
    let mut back = Vec::new();
    while let Some(message) = stream.next().await {
        if let Some(Download::Chunk(bytes)) = message.unwrap().payload {
            back.extend(bytes);
        }
    }
    assert!(back == content, "the bytes from S3 differ");
    assert_eq!(
        files_under(&media_dir(&app.db)),
        0,
        "nothing written locally"
    );

    let key = key_of(&app, media.id).await;
    let store = on_s3.state().media.clone();
    assert!(store.exists(&key).await.unwrap());
    delete(&app, &app.acme, media.id).await.unwrap();
    let owner = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
    let purged = fusion_property::jobs::purge_media(&owner, &store, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(!store.exists(&key).await.unwrap());
    on_s3.stop().await.unwrap();
}
