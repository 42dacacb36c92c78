//! Conversations and their messages: the conversation's row and its description for the
//! standard methods, and the statements SendMessage and ListMessages make.
//!
//! A conversation belongs to the user who created it (`user_id`, the caller) and may
//! be about a crm lead, checked with crm as the caller when it is set. Its messages
//! are never changed once written: SendMessage inserts the user's message, and later
//! the reply, each in its own transaction with the conversation's `message_count` and
//! `updated_at` (not its version: a message does not make an editor's etag stale).

use chrono::{DateTime, Utc};

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Read, Table, Val, Values};
use fusion_proto::aimarketing::v1 as pb;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_service::validate;

use crate::domain::models;
use crate::error::AiMarketingError;
use crate::store::{prompts, values_of};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "ai_marketing.ai_conversations",
    select: SELECT,
    what: "conversation",
};

const SELECT: &str = "id, tenant_id, user_id, lead_id, title, context, prompt_id, model, \
    message_count, version, created_at, updated_at, deleted_at";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("owner_user_id", "user_id", FieldKind::Int),
    FieldSpec::new("lead_id", "lead_id", FieldKind::Int),
    FieldSpec::new("prompt_id", "prompt_id", FieldKind::Int),
    FieldSpec::new("title", "title", FieldKind::Text),
    FieldSpec::new("model", "model", FieldKind::Text),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["title", "create_time", "update_time"],
    default_order: "update_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// A conversation's messages, oldest first.
pub(crate) const MESSAGES: ListSpec = ListSpec {
    table: "ai_marketing.ai_messages",
    select: MESSAGE_SELECT,
    fields: &[],
    order_fields: &[],
    default_order: "id",
    soft_delete: false,
    tenant_scoped: true,
};

const MESSAGE_SELECT: &str = "id, conversation_id, role, content, tokens, model, prompt_tokens, \
    finish_reason, latency_ms, prompt_id, prompt_content_version, user_id, created_at";

/// What Create sets and Update may change.
pub(crate) const MUTABLE: &[&str] = &["lead_id", "title", "context", "prompt_id", "model"];

/// The longest background text.
pub(crate) const MAX_CONTEXT: usize = 20_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct ConversationRow {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: Option<i64>,
    pub lead_id: Option<i64>,
    pub title: Option<String>,
    pub context: Option<String>,
    pub prompt_id: Option<i64>,
    pub model: Option<String>,
    pub message_count: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(ConversationRow);

/// Conversations on the standard methods: created by the caller, the lead checked
/// with crm as the caller, the prompt one the tenant sees (its own or a system one).
pub(crate) struct Conversations;

impl Resource for Conversations {
    type Row = ConversationRow;
    type Pb = pb::Conversation;
    type State = AppState;
    type Error = AiMarketingError;

    const SINGULAR: &'static str = "Conversation";
    const FIELD: &'static str = "conversation";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: ConversationRow) -> pb::Conversation {
        to_pb(&state.kit, r)
    }

    fn id(c: &pb::Conversation) -> i64 {
        c.id
    }

    fn etag(c: &pb::Conversation) -> &str {
        &c.etag
    }

    fn populated(c: &pb::Conversation) -> Vec<&'static str> {
        populated(&[
            ("lead_id", c.lead_id != 0),
            ("title", !c.title.is_empty()),
            ("context", !c.context.is_empty()),
            ("prompt_id", c.prompt_id != 0),
            ("model", !c.model.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        c: &pb::Conversation,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, AiMarketingError> {
        values_of("conversation", fields, |field| {
            Ok(Some(match field {
                "lead_id" => ("lead_id", optional_id(c.lead_id)?),
                "prompt_id" => ("prompt_id", optional_id(c.prompt_id)?),
                "title" => {
                    validate::max_len(&c.title, 255)?;
                    ("title", Val::text(c.title.trim()))
                }
                "context" => {
                    validate::max_len(&c.context, MAX_CONTEXT)?;
                    ("context", Val::text(&c.context))
                }
                "model" => match c.model.trim() {
                    "" => ("model", Val::Text(None)),
                    model => {
                        models::check_name(model)?;
                        ("model", Val::text(model))
                    }
                },
                _ => return Ok(None),
            }))
        })
    }

    /// The caller is the owner; the lead and the prompt are checked.
    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        c: &pb::Conversation,
        values: &mut Values,
    ) -> Result<(), AiMarketingError> {
        check_references(call, tx, c).await?;
        values.push(("user_id", Val::Int(Some(call.caller.user_id))));
        Ok(())
    }

    /// A lead or prompt the update names is checked.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        _: &ConversationRow,
        c: &pb::Conversation,
        _: &mut Values,
    ) -> Result<(), AiMarketingError> {
        check_references(call, tx, c).await
    }
}

/// 0 for none, else a positive id.
fn optional_id(id: i64) -> Result<Val, String> {
    if id < 0 {
        return Err("must be a positive id, or 0 for none".into());
    }
    Ok(Val::Int(Some(id).filter(|id| *id > 0)))
}

/// The lead (with crm, as the caller) and the prompt (one the tenant sees) the call
/// writes, when set.
async fn check_references(
    call: &Call<'_, AppState>,
    tx: &mut TenantTx,
    c: &pb::Conversation,
) -> Result<(), AiMarketingError> {
    if call.fields.contains(&"lead_id") && c.lead_id > 0 {
        let field = "conversation.lead_id";
        call.state
            .refs
            .lead(field, c.lead_id)
            .await?
            .required(field, "lead", c.lead_id)?;
    }
    if call.fields.contains(&"prompt_id") && c.prompt_id > 0 {
        prompts::visible(tx, c.prompt_id).await.map_err(|_| {
            AiMarketingError::invalid(
                "conversation.prompt_id",
                format!("no prompt {} in this tenant", c.prompt_id),
            )
        })?;
    }
    Ok(())
}

pub(crate) fn to_pb(kit: &Kit, r: ConversationRow) -> pb::Conversation {
    pb::Conversation {
        id: r.id,
        tenant_id: r.tenant_id,
        owner_user_id: r.user_id.unwrap_or_default(),
        lead_id: r.lead_id.unwrap_or_default(),
        title: r.title.unwrap_or_default(),
        context: r.context.unwrap_or_default(),
        prompt_id: r.prompt_id.unwrap_or_default(),
        model: r.model.unwrap_or_default(),
        message_count: r.message_count,
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: kit.purge_time(r.deleted_at),
        etag: etag(r.version),
    }
}

/// Live conversation `id`.
pub(crate) async fn live(tx: &mut TenantTx, id: i64) -> Result<ConversationRow, AiMarketingError> {
    Ok(TABLE.fetch(tx, id, Read::live()).await?)
}

/// Live conversation `id`, locked until the transaction ends (one SendMessage at a
/// time stores into a conversation, so its messages keep their order).
pub(crate) async fn lock_live(
    tx: &mut TenantTx,
    id: i64,
) -> Result<ConversationRow, AiMarketingError> {
    Ok(TABLE.fetch(tx, id, Read::live().for_update()).await?)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub role: String,
    pub content: String,
    pub tokens: Option<i32>,
    pub model: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub finish_reason: Option<String>,
    pub latency_ms: Option<i32>,
    pub prompt_id: Option<i64>,
    pub prompt_content_version: Option<i32>,
    pub user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn message_pb(r: MessageRow) -> pb::Message {
    pb::Message {
        id: r.id,
        conversation_id: r.conversation_id,
        role: r.role,
        content: r.content,
        completion_token_count: r.tokens.unwrap_or_default(),
        prompt_token_count: r.prompt_tokens.unwrap_or_default(),
        model: r.model.unwrap_or_default(),
        finish_reason: r.finish_reason.unwrap_or_default(),
        latency: r.latency_ms.map(|ms| prost_types::Duration {
            seconds: i64::from(ms / 1000),
            nanos: (ms % 1000) * 1_000_000,
        }),
        prompt_id: r.prompt_id.unwrap_or_default(),
        prompt_content_version: r.prompt_content_version.unwrap_or_default(),
        sender_user_id: r.user_id.unwrap_or_default(),
        create_time: Some(ts(r.created_at)),
    }
}

/// A message to store.
#[derive(Debug)]
pub(crate) struct NewMessage<'a> {
    pub conversation_id: i64,
    pub role: &'static str,
    pub content: &'a str,
    /// The reply's tokens (the seed's `tokens`).
    pub completion_tokens: Option<i32>,
    pub prompt_tokens: Option<i32>,
    pub model: Option<&'a str>,
    pub finish_reason: Option<&'a str>,
    pub latency_ms: Option<i32>,
    pub prompt_id: Option<i64>,
    pub prompt_content_version: Option<i32>,
    /// Who sent it (none for a reply).
    pub user_id: Option<i64>,
}

/// Inserts `message` and counts it on its conversation; returns it as stored.
pub(crate) async fn insert_message(
    tx: &mut TenantTx,
    message: &NewMessage<'_>,
) -> Result<MessageRow, AiMarketingError> {
    let row: MessageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ai_marketing.ai_messages
             (tenant_id, conversation_id, role, content, tokens, prompt_tokens, model,
              finish_reason, latency_ms, prompt_id, prompt_content_version, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING {MESSAGE_SELECT}"
    )))
    .bind(tx.tenant_id())
    .bind(message.conversation_id)
    .bind(message.role)
    .bind(message.content)
    .bind(message.completion_tokens)
    .bind(message.prompt_tokens)
    .bind(message.model)
    .bind(message.finish_reason)
    .bind(message.latency_ms)
    .bind(message.prompt_id)
    .bind(message.prompt_content_version)
    .bind(message.user_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE ai_marketing.ai_conversations
            SET message_count = message_count + 1, updated_at = now()
          WHERE id = $1",
    )
    .bind(message.conversation_id)
    .execute(&mut **tx)
    .await?;
    Ok(row)
}

/// The newest `limit` messages of conversation `id`, oldest first: the history a
/// reply is asked with (older ones could not fit any model's window).
pub(crate) async fn recent_messages(
    tx: &mut TenantTx,
    id: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, AiMarketingError> {
    let mut rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_SELECT} FROM ai_marketing.ai_messages
          WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2"
    )))
    .bind(id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.reverse();
    Ok(rows)
}
