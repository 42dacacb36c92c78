//! The property context through the edge: demo stock seeded as each tenant's admin,
//! tenant isolation on every route, a spoofed tenant header ignored, and the live
//! availability stream relayed by the gateway.

use std::time::Duration;

use futures::StreamExt as _;
use tonic::Code;

use fusion_e2e::{Stack, with_token};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;
use fusion_proto::property::v1::project_service_client::ProjectServiceClient;

fn lots(stack: &Stack) -> LotServiceClient<tonic::transport::Channel> {
    LotServiceClient::new(stack.channel.clone())
}

async fn lot_ids(stack: &Stack, req: tonic::Request<pb::ListLotsRequest>) -> Vec<i64> {
    lots(stack)
        .list_lots(req)
        .await
        .expect("list lots through the edge")
        .into_inner()
        .lots
        .into_iter()
        .map(|l| l.id)
        .collect()
}

#[tokio::test]
async fn demo_stock_is_seeded_once_per_tenant_and_each_tenant_sees_only_its_own() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    let first = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .expect("acme seeded through the edge");
    assert!(first.created);
    let again = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    assert_eq!((again.project_id, again.created), (first.project_id, false));
    fusion_stack::seed::property(stack.channel.clone(), &globex.token)
        .await
        .expect("globex seeded");

    let project = ProjectServiceClient::new(stack.channel.clone())
        .get_project(with_token(
            &acme.token,
            pb::GetProjectRequest {
                id: first.project_id,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // 12 lots, one reserved and one held by the seed.
    assert_eq!((project.lot_count, project.available_lot_count), (12, 10));

    let acme_lots = lot_ids(
        &stack,
        with_token(&acme.token, pb::ListLotsRequest::default()),
    )
    .await;
    let globex_lots = lot_ids(
        &stack,
        with_token(&globex.token, pb::ListLotsRequest::default()),
    )
    .await;
    assert_eq!((acme_lots.len(), globex_lots.len()), (12, 12));
    assert!(acme_lots.iter().all(|id| !globex_lots.contains(id)));

    // A spoofed tenant header is dropped by the edge: globex still sees globex.
    let mut spoofed = with_token(&globex.token, pb::ListLotsRequest::default());
    spoofed
        .metadata_mut()
        .insert("x-tenant-id", acme.tenant_id.to_string().parse().unwrap());
    assert_eq!(lot_ids(&stack, spoofed).await, globex_lots);

    // Another tenant's lot is not found, to read or to sell.
    let status = lots(&stack)
        .get_lot(with_token(
            &globex.token,
            pb::GetLotRequest { id: acme_lots[0] },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = lots(&stack)
        .reserve_lot(with_token(
            &globex.token,
            pb::ReserveLotRequest {
                id: acme_lots[0],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn the_availability_stream_is_relayed_through_the_edge() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let seeded = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    let available = lots(&stack)
        .list_lots(with_token(
            &acme.token,
            pb::ListLotsRequest {
                project_id: seeded.project_id,
                filter: r#"status = "available""#.into(),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .lots
        .remove(0);
    let mut stream = lots(&stack)
        .watch_lot_availability(with_token(
            &acme.token,
            pb::WatchLotAvailabilityRequest {
                project_id: seeded.project_id,
            },
        ))
        .await
        .expect("the edge relays the stream")
        .into_inner();
    lots(&stack)
        .hold_lot(with_token(
            &acme.token,
            pb::HoldLotRequest {
                id: available.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("stream open")
        .expect("not an error");
    assert_eq!(
        (event.lot_id, event.to_status.as_str()),
        (available.id, "hold")
    );
    assert_eq!(event.sequence, 1, "the stream numbers its events");
}

#[tokio::test]
async fn media_streams_both_ways_through_the_edge_and_stays_within_its_tenant() {
    use fusion_proto::property::v1::download_media_response::Payload as Download;
    use fusion_proto::property::v1::media_service_client::MediaServiceClient;
    use fusion_proto::property::v1::upload_media_request::Payload as Upload;

    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    let seeded = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    let mut media = MediaServiceClient::new(stack.channel.clone());
    let listed = media
        .list_media(with_token(
            &acme.token,
            pb::ListMediaRequest {
                mediable_type: "project".into(),
                mediable_id: seeded.project_id,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.media.len(), 1, "the seeded site plan");
    assert_eq!(listed.media[0].mime_type, "image/png");

    // A 3 MiB upload in 1 MiB chunks, relayed by the edge in both directions.
    let mut content = b"%PDF-1.7\n".to_vec();
    content.extend((0..3 * 1024 * 1024).map(|i| (i % 253) as u8));
    let mut messages = vec![pb::UploadMediaRequest {
        payload: Some(Upload::Metadata(pb::MediaUpload {
            mediable_type: "project".into(),
            mediable_id: seeded.project_id,
            file_name: "brochure.pdf".into(),
            media_type: "brochure".into(),
            ..Default::default()
        })),
    }];
    messages.extend(content.chunks(1024 * 1024).map(|c| pb::UploadMediaRequest {
        payload: Some(Upload::Chunk(c.to_vec())),
    }));
    let brochure = media
        .upload_media(with_token(&acme.token, futures::stream::iter(messages)))
        .await
        .expect("uploaded through the edge")
        .into_inner();
    assert_eq!(brochure.file_size, content.len() as i64);
    let mut stream = media
        .download_media(with_token(
            &acme.token,
            pb::DownloadMediaRequest { id: brochure.id },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut back = Vec::new();
    while let Some(message) = stream.next().await {
        if let Some(Download::Chunk(bytes)) = message.unwrap().payload {
            back.extend(bytes);
        }
    }
    assert!(back == content, "the bytes through the edge differ");

    let status = media
        .download_media(with_token(
            &globex.token,
            pb::DownloadMediaRequest { id: brochure.id },
        ))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
