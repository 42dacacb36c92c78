//! Prompts over gRPC: templates checked with the position of each problem, content
//! versions, the platform's system prompts (read by every tenant, written by none,
//! copied to be changed), the model's limits, and rendering with what the caller may
//! read.

use tonic::Code;

use fusion_proto::aimarketing::v1 as pb;

use crate::helpers::{
    TestApp, assert_invalid, expect_code, mask, prompt_of, reason, violation_descriptions,
};

#[tokio::test]
async fn templates_are_checked_when_saved_with_the_position_of_each_problem() {
    let app = TestApp::spawn().await;
    let mut prompts = app.prompts();
    let create = |content: &str| pb::CreatePromptRequest {
        prompt: Some(prompt_of("Follow-up", content)),
        request_id: String::new(),
    };

    let refused = prompts
        .create_prompt(app.acme.req(create(
            "Hi {{lead.first_name}},\nyour budget is {{lead.budget}} }}",
        )))
        .await;
    let status = assert_invalid(refused, &["prompt.content", "prompt.content"]);
    let descriptions = violation_descriptions(&status);
    assert!(
        descriptions[0].starts_with("line 2, column 16 (offset 39): unknown variable lead.budget"),
        "{descriptions:?}"
    );
    assert_eq!(
        descriptions[1],
        "line 2, column 32 (offset 55): `}}` closes no `{{`"
    );

    let refused = prompts
        .create_prompt(app.acme.req(create("Dear {{ contact.first_name")))
        .await;
    let status = assert_invalid(refused, &["prompt.content"]);
    assert_eq!(
        violation_descriptions(&status),
        ["line 1, column 6 (offset 5): `{{` is not closed by `}}` before the next `{{` or the end"]
    );

    // Spaces inside braces, JSON and caller inputs are fine.
    let saved = prompts
        .create_prompt(app.acme.req(create(
            r#"Reply as {"greeting": "Hi {{ lead.first_name }}"} offering {{input.offer}}."#,
        )))
        .await
        .expect("a valid template is saved")
        .into_inner();

    // An update's content is checked the same way, and nothing changes.
    let refused = prompts
        .update_prompt(app.acme.req(pb::UpdatePromptRequest {
            prompt: Some(pb::Prompt {
                id: saved.id,
                content: "{{deal.price}}".into(),
                ..Default::default()
            }),
            update_mask: mask(&["content"]),
        }))
        .await;
    let status = assert_invalid(refused, &["prompt.content"]);
    assert!(violation_descriptions(&status)[0].contains("unknown variable deal.price"));
    let kept = prompts
        .get_prompt(app.acme.req(pb::GetPromptRequest { id: saved.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((kept.content, kept.content_version), (saved.content, 1));
}

#[tokio::test]
async fn every_content_change_is_a_new_version_listed_newest_first() {
    let app = TestApp::spawn().await;
    let mut prompts = app.prompts();
    let prompt = app
        .prompt(&app.acme, "Follow-up", "v1 {{lead.first_name}}")
        .await;
    assert_eq!(prompt.content_version, 1);
    let update = |prompt: pb::Prompt, paths: &[&str]| pb::UpdatePromptRequest {
        prompt: Some(prompt),
        update_mask: mask(paths),
    };
    // A change of anything but the content is no new version; nor is the same content.
    let renamed = prompts
        .update_prompt(app.acme.req(update(
            pb::Prompt {
                id: prompt.id,
                name: "Renamed".into(),
                content: prompt.content.clone(),
                ..Default::default()
            },
            &["name", "content"],
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.content_version, 1);
    for (n, content) in [(2, "v2 {{lead.last_name}}"), (3, "v3 {{user.name}}")] {
        let changed = prompts
            .update_prompt(app.acme.req(update(
                pb::Prompt {
                    id: prompt.id,
                    content: content.into(),
                    ..Default::default()
                },
                &["content"],
            )))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (changed.content_version, changed.content.as_str()),
            (n, content)
        );
    }

    let mut versions = Vec::new();
    let mut token = String::new();
    loop {
        let page = prompts
            .list_prompt_versions(app.acme.req(pb::ListPromptVersionsRequest {
                prompt_id: prompt.id,
                page_size: 2,
                page_token: token,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 3);
        versions.extend(page.prompt_versions);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let listed: Vec<(i32, &str, i64)> = versions
        .iter()
        .map(|v| (v.content_version, v.content.as_str(), v.author_user_id))
        .collect();
    let author = app.acme.user_id;
    assert_eq!(
        listed,
        [
            (3, "v3 {{user.name}}", author),
            (2, "v2 {{lead.last_name}}", author),
            (1, "v1 {{lead.first_name}}", author),
        ]
    );

    // Another tenant sees neither the prompt nor its versions.
    let status = expect_code(
        prompts
            .list_prompt_versions(app.globex.req(pb::ListPromptVersionsRequest {
                prompt_id: prompt.id,
                ..Default::default()
            }))
            .await,
        Code::NotFound,
    );
    assert_eq!(reason(&status), "NOT_FOUND");
}

#[tokio::test]
async fn a_system_prompt_is_read_by_every_tenant_written_by_none_and_copied_to_change() {
    let app = TestApp::spawn().await;
    let mut prompts = app.prompts();
    let system_of = |who: &crate::helpers::User| {
        let mut prompts = app.prompts();
        let req = who.req(pb::ListPromptsRequest {
            filter: "system = true".into(),
            ..Default::default()
        });
        async move {
            prompts
                .list_prompts(req)
                .await
                .unwrap()
                .into_inner()
                .prompts
        }
    };
    let acme_sees = system_of(&app.acme).await;
    let globex_sees = system_of(&app.globex).await;
    let names: Vec<&str> = acme_sees.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Lead follow-up email", "Lot description"]);
    assert_eq!(acme_sees, globex_sees);
    let system = acme_sees[0].clone();
    assert!(system.system && system.tenant_id == 0);
    for who in [&app.acme, &app.globex, &app.marketer] {
        let got = prompts
            .get_prompt(who.req(pb::GetPromptRequest { id: system.id }))
            .await
            .expect("every tenant reads a system prompt")
            .into_inner();
        assert_eq!(got, system);
    }
    // A tenant's own prompts are listed beside them.
    let own = app
        .prompt(&app.acme, "Acme's own", "Hi {{lead.first_name}}")
        .await;
    let all = prompts
        .list_prompts(app.acme.req(pb::ListPromptsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 3);
    assert!(all.prompts.iter().any(|p| p.id == own.id));

    // No write reaches a system prompt, and each says why.
    let update = prompts
        .update_prompt(app.acme.req(pb::UpdatePromptRequest {
            prompt: Some(pb::Prompt {
                id: system.id,
                name: "Mine now".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await;
    let delete = prompts
        .delete_prompt(app.globex.req(pb::DeletePromptRequest {
            id: system.id,
            etag: String::new(),
        }))
        .await;
    let undelete = prompts
        .undelete_prompt(app.acme.req(pb::UndeletePromptRequest { id: system.id }))
        .await;
    for refused in [update.map(|_| ()), delete.map(|_| ()), undelete.map(|_| ())] {
        let status = expect_code(refused, Code::FailedPrecondition);
        assert_eq!(reason(&status), "SYSTEM_PROMPT");
        assert!(status.message().contains("CopyPrompt"), "{status:?}");
    }
    let unchanged = prompts
        .get_prompt(app.globex.req(pb::GetPromptRequest { id: system.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, system);

    // A copy is the tenant's own, version 1 of the system prompt's content, and a
    // retry with the same request id makes one copy.
    let copy_request = pb::CopyPromptRequest {
        id: system.id,
        name: "Acme follow-up".into(),
        request_id: "0b1a3c36-6a6b-4a53-9f0e-6f7f4f3b2a11".into(),
    };
    let copy = prompts
        .copy_prompt(app.acme.req(copy_request.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = prompts
        .copy_prompt(app.acme.req(copy_request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, copy);
    assert!(!copy.system);
    assert_eq!(
        (
            copy.tenant_id,
            copy.name.as_str(),
            copy.content.as_str(),
            copy.content_version
        ),
        (
            app.acme.tenant_id,
            "Acme follow-up",
            system.content.as_str(),
            1
        )
    );
    assert_eq!(
        (
            copy.model.as_str(),
            copy.temperature.as_str(),
            copy.max_tokens,
            &copy.tags
        ),
        (
            system.model.as_str(),
            system.temperature.as_str(),
            system.max_tokens,
            &system.tags
        )
    );
    let edited = prompts
        .update_prompt(app.acme.req(pb::UpdatePromptRequest {
            prompt: Some(pb::Prompt {
                id: copy.id,
                content: format!("{} Mention the display village.", system.content),
                ..Default::default()
            }),
            update_mask: mask(&["content"]),
        }))
        .await
        .expect("the copy is the tenant's to change")
        .into_inner();
    assert_eq!(edited.content_version, 2);
    // Globex sees neither the copy nor anything but the two system prompts.
    expect_code(
        prompts
            .get_prompt(app.globex.req(pb::GetPromptRequest { id: copy.id }))
            .await,
        Code::NotFound,
    );
    let globex_all = prompts
        .list_prompts(app.globex.req(pb::ListPromptsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(globex_all.total_size, 2);
}

#[tokio::test]
async fn temperature_and_max_tokens_are_checked_against_the_model() {
    let app = TestApp::spawn().await;
    let mut prompts = app.prompts();
    let create = |prompt: pb::Prompt| pb::CreatePromptRequest {
        prompt: Some(prompt),
        request_id: String::new(),
    };
    let base = prompt_of("Limits", "Hi {{lead.first_name}}");

    // Defaults: the configured model, 0.70, 1024 tokens.
    let defaulted = prompts
        .create_prompt(app.acme.req(create(base.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            defaulted.model.as_str(),
            defaulted.temperature.as_str(),
            defaulted.max_tokens
        ),
        ("gpt-4o-mini", "0.70", 1024)
    );

    for (temperature, max_tokens, model, fields) in [
        ("2.01", 0, "", vec!["prompt.temperature"]),
        ("0.755", 0, "", vec!["prompt.temperature"]),
        ("0.5", 16_385, "gpt-4o-mini", vec!["prompt.max_tokens"]),
        ("0.5", -1, "gpt-4o-mini", vec!["prompt.max_tokens"]),
        // A model the service does not know gets the conservative 4096.
        ("0.5", 4_097, "llama3.1:8b", vec!["prompt.max_tokens"]),
        ("0.5", 100, "gpt 4", vec!["prompt.model"]),
    ] {
        let refused = prompts
            .create_prompt(app.acme.req(create(pb::Prompt {
                temperature: temperature.into(),
                max_tokens,
                model: model.into(),
                ..base.clone()
            })))
            .await;
        assert_invalid(refused, &fields);
    }
    let local = prompts
        .create_prompt(app.acme.req(create(pb::Prompt {
            temperature: "2".into(),
            max_tokens: 4_096,
            model: "llama3.1:8b".into(),
            ..base.clone()
        })))
        .await
        .expect("within the limits")
        .into_inner();
    assert_eq!(
        (local.temperature.as_str(), local.max_tokens),
        ("2.00", 4_096)
    );

    // A prompt of 16,000 tokens on gpt-4o cannot move to a model with a lower limit
    // unless its max_tokens comes down with it.
    let big = prompts
        .create_prompt(app.acme.req(create(pb::Prompt {
            max_tokens: 16_000,
            model: "gpt-4o".into(),
            ..base.clone()
        })))
        .await
        .unwrap()
        .into_inner();
    let update = |model: &str, max_tokens: i32, paths: &[&str]| pb::UpdatePromptRequest {
        prompt: Some(pb::Prompt {
            id: big.id,
            model: model.into(),
            max_tokens,
            ..Default::default()
        }),
        update_mask: mask(paths),
    };
    let refused = prompts
        .update_prompt(app.acme.req(update("gpt-3.5-turbo", 0, &["model"])))
        .await;
    let status = assert_invalid(refused, &["prompt.max_tokens"]);
    assert!(violation_descriptions(&status)[0].contains("lower it with the model"));
    let moved = prompts
        .update_prompt(
            app.acme
                .req(update("gpt-3.5-turbo", 4_000, &["model", "max_tokens"])),
        )
        .await
        .expect("both change together")
        .into_inner();
    assert_eq!(
        (moved.model.as_str(), moved.max_tokens),
        ("gpt-3.5-turbo", 4_000)
    );
}

/// The template every variable group is rendered with.
const EVERYTHING: &str = "Lead: {{lead.full_name}} ({{lead.email}}). \
    Contact: {{contact.first_name}} {{contact.last_name}}. \
    Deal: {{deal.title}} at {{deal.value}}. \
    Lot: {{lot.lot_number}}, {{lot.bedrooms}} bedrooms, {{lot.price}}. \
    Project: {{project.name}}, {{project.suburb}}. \
    From {{user.email}}; offer {{input.offer}}.";

#[tokio::test]
async fn rendering_reads_crm_and_property_as_the_caller() {
    let app = TestApp::spawn().await;
    let mut prompts = app.prompts();
    let lead = app.lead(&app.acme, "Mia", "Nguyen", &[]).await;
    let contact = app.contact(&app.acme, "Mia", "Nguyen-Tran").await;
    let lot = app.lot(&app.acme, "riverside").await;
    let deal = app.deal(&app.acme, lead.id, contact, lot.id).await;
    let prompt = app.prompt(&app.acme, "Everything", EVERYTHING).await;
    let render = |deal_id: i64, variables: Vec<pb::PromptVariable>| pb::RenderPromptRequest {
        id: prompt.id,
        deal_id,
        variables,
        ..Default::default()
    };
    let offer = || {
        vec![pb::PromptVariable {
            name: "input.offer".into(),
            value: "a free site visit".into(),
        }]
    };

    // The admin reads everything the deal leads to.
    let full = prompts
        .render_prompt(app.acme.req(render(deal.id, offer())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        full.text,
        "Lead: Mia Nguyen (nguyen@example.com). Contact: Mia Nguyen-Tran. \
         Deal: Lot 7 for the Nguyens at 549000.00. Lot: 7, 4 bedrooms, 549000.00. \
         Project: Riverside Estate, Yeronga. From admin@acme.test; offer a free site visit."
    );
    assert!(full.unfilled_variables.is_empty(), "{full:?}");
    assert_eq!(full.content_version, 1);

    // A user who may read everything but contacts gets no contact field, and no error.
    let no_contacts = app.user_without("crm.contacts.read").await;
    let partial = prompts
        .render_prompt(no_contacts.req(render(deal.id, offer())))
        .await
        .expect("rendered without contacts")
        .into_inner();
    assert_eq!(
        partial.unfilled_variables,
        ["contact.first_name", "contact.last_name"]
    );
    assert!(partial.text.contains("Contact:  ."), "{}", partial.text);
    assert!(!partial.text.contains("Nguyen-Tran"), "{}", partial.text);
    assert!(
        partial.text.contains("Lead: Mia Nguyen"),
        "{}",
        partial.text
    );

    // Without the inputs, and without a deal, what is not read is named.
    let bare = prompts
        .render_prompt(app.acme.req(render(0, Vec::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bare.unfilled_variables,
        [
            "lead.full_name",
            "lead.email",
            "contact.first_name",
            "contact.last_name",
            "deal.title",
            "deal.value",
            "lot.lot_number",
            "lot.bedrooms",
            "lot.price",
            "project.name",
            "project.suburb",
            "input.offer",
        ]
    );
    assert!(
        bare.text.ends_with("From admin@acme.test; offer ."),
        "{}",
        bare.text
    );

    // A variable passed wins over the record's; a lot named directly fills the lot.
    let named = prompts
        .render_prompt(app.acme.req(pb::RenderPromptRequest {
            id: prompt.id,
            lot_id: lot.id,
            lead_id: lead.id,
            variables: vec![pb::PromptVariable {
                name: "lead.full_name".into(),
                value: "Ms Nguyen".into(),
            }],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        named
            .text
            .starts_with("Lead: Ms Nguyen (nguyen@example.com)."),
        "{}",
        named.text
    );
    assert!(named.text.contains("Lot: 7, 4 bedrooms"), "{}", named.text);

    // Another tenant's records are not there for the caller: the fields that name them
    // are refused.
    let globex_prompt = app.prompt(&app.globex, "Theirs", EVERYTHING).await;
    let refused = prompts
        .render_prompt(app.globex.req(pb::RenderPromptRequest {
            id: globex_prompt.id,
            lead_id: lead.id,
            deal_id: deal.id,
            lot_id: lot.id,
            ..Default::default()
        }))
        .await;
    assert_invalid(refused, &["deal_id"]);
    let refused = prompts
        .render_prompt(app.globex.req(pb::RenderPromptRequest {
            id: globex_prompt.id,
            lead_id: lead.id,
            ..Default::default()
        }))
        .await;
    assert_invalid(refused, &["lead_id"]);
    let refused = prompts
        .render_prompt(app.acme.req(pb::RenderPromptRequest {
            id: prompt.id,
            variables: vec![pb::PromptVariable {
                name: "lead.budget".into(),
                value: "lots".into(),
            }],
            ..Default::default()
        }))
        .await;
    assert_invalid(refused, &["variables[0].name"]);
    // And another tenant's prompt is not found.
    expect_code(
        prompts
            .render_prompt(app.globex.req(render(0, Vec::new())))
            .await,
        Code::NotFound,
    );
}
