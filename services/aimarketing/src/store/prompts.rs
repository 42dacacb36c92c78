//! Prompts: their row, their description for the standard methods, their content
//! versions, copies, and the platform's system prompts.
//!
//! System prompts are tenant 0's rows: the `platform_prompts` policies let every
//! tenant read them, and no policy lets a tenant write them, so a statement that tries
//! finds no row. The hooks here refuse them first, by name (SYSTEM_PROMPT), so a
//! tenant learns to copy one rather than reading NOT_FOUND. Lists read through
//! row-level security alone ([`VISIBLE`]), so they hold the tenant's prompts and the
//! system prompts; everything else is the kit's, bound to the caller's tenant.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::types::Json;

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Read, Table, Val, Values};
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::errors::FieldViolation;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Locking, Method, Resource};
use fusion_service::validate;

use crate::domain::{models, template};
use crate::error::AiMarketingError;
use crate::store::{places, tags_of, tags_val, values_of};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "ai_marketing.ai_prompts",
    select: SELECT,
    what: "prompt",
};

const SELECT: &str = "id, tenant_id, category, name, description, content, model, temperature, \
    max_tokens, tags, is_system, content_version, version, created_at, updated_at, deleted_at";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("category", "category", FieldKind::Text),
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("model", "model", FieldKind::Text),
    FieldSpec::new("tags", "tags", FieldKind::Tags),
    FieldSpec::new("system", "is_system", FieldKind::Bool),
    FieldSpec::new("content_version", "content_version", FieldKind::Int),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

/// The tenant's own prompts: what the kit's Create writes to.
pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "category", "create_time", "update_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

/// What ListPrompts reads: every row row-level security shows the tenant, its own and
/// the platform's.
pub(crate) const VISIBLE: ListSpec = ListSpec {
    tenant_scoped: false,
    ..LIST
};

/// A prompt's versions, newest first.
pub(crate) const VERSIONS: ListSpec = ListSpec {
    table: "ai_marketing.ai_prompt_versions",
    select: "prompt_id, content_version, content, author_user_id, created_at",
    fields: &[FieldSpec::new(
        "content_version",
        "content_version",
        FieldKind::Int,
    )],
    order_fields: &["content_version"],
    default_order: "content_version desc",
    soft_delete: false,
    tenant_scoped: false,
};

/// What Create sets and Update may change.
pub(crate) const MUTABLE: &[&str] = &[
    "category",
    "name",
    "description",
    "content",
    "model",
    "temperature",
    "max_tokens",
    "tags",
];

/// The longest template.
pub(crate) const MAX_CONTENT: usize = 20_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct PromptRow {
    pub id: i64,
    pub tenant_id: i64,
    pub category: String,
    pub name: String,
    pub description: Option<String>,
    pub content: String,
    pub model: String,
    pub temperature: Decimal,
    pub max_tokens: i32,
    pub tags: Option<serde_json::Value>,
    pub is_system: bool,
    pub content_version: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(PromptRow);

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct VersionRow {
    pub prompt_id: i64,
    pub content_version: i32,
    pub content: String,
    pub author_user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// Prompts on the standard methods: content checked as a template and versioned,
/// `max_tokens` checked against the model, system prompts refused to every write.
pub(crate) struct Prompts;

impl Resource for Prompts {
    type Row = PromptRow;
    type Pb = pb::Prompt;
    type State = AppState;
    type Error = AiMarketingError;

    const SINGULAR: &'static str = "Prompt";
    const FIELD: &'static str = "prompt";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: PromptRow) -> pb::Prompt {
        to_pb(&state.kit, r)
    }

    fn id(p: &pb::Prompt) -> i64 {
        p.id
    }

    fn etag(p: &pb::Prompt) -> &str {
        &p.etag
    }

    fn populated(p: &pb::Prompt) -> Vec<&'static str> {
        populated(&[
            ("category", !p.category.is_empty()),
            ("name", !p.name.is_empty()),
            ("description", !p.description.is_empty()),
            ("content", !p.content.is_empty()),
            ("model", !p.model.is_empty()),
            ("temperature", !p.temperature.is_empty()),
            ("max_tokens", p.max_tokens != 0),
            ("tags", !p.tags.is_empty()),
        ])
    }

    /// Checked field by field; the content as a template (one violation per problem,
    /// with its position). `max_tokens` is checked against the model where the sent
    /// and stored values meet (`on_create`, `on_update`).
    fn values(
        state: &AppState,
        p: &pb::Prompt,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, AiMarketingError> {
        let creating = method == Method::Create;
        let mut problems = Vec::new();
        if fields.contains(&"content") {
            problems = content_problems(&p.content);
        }
        let values = values_of("prompt", fields, |field| {
            Ok(Some(match field {
                "category" => {
                    validate::required(&p.category, 100)?;
                    ("category", Val::text(&p.category))
                }
                "name" => {
                    validate::name(&p.name)?;
                    ("name", Val::text(&p.name))
                }
                "description" => {
                    validate::max_len(&p.description, 10_000)?;
                    ("description", Val::text(&p.description))
                }
                // Checked above, kept exactly as written.
                "content" => ("content", Val::Text(Some(p.content.clone()))),
                "model" => ("model", Val::text(&model_of(state, &p.model, method)?)),
                "temperature" => match p.temperature.trim() {
                    "" if creating => return Ok(None),
                    raw => (
                        "temperature",
                        Val::Decimal(Some(models::parse_temperature(raw)?)),
                    ),
                },
                "max_tokens" => match p.max_tokens {
                    0 if creating => return Ok(None),
                    n => ("max_tokens", Val::Int32(Some(n))),
                },
                "tags" => ("tags", tags_val(&p.tags)?),
                _ => return Ok(None),
            }))
        });
        match values {
            Ok(values) if problems.is_empty() => Ok(values),
            Ok(_) => Err(AiMarketingError::Invalid(problems)),
            Err(AiMarketingError::Invalid(mut violations)) => {
                violations.extend(problems);
                Err(AiMarketingError::Invalid(violations))
            }
            Err(e) => Err(e),
        }
    }

    /// Sets `max_tokens` (the model's default, or the one sent, checked against it).
    async fn on_create(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        p: &pb::Prompt,
        values: &mut Values,
    ) -> Result<(), AiMarketingError> {
        let model = model_of(call.state, &p.model, Method::Create)
            .map_err(|e| AiMarketingError::invalid("prompt.model", e))?;
        let max_tokens = match p.max_tokens {
            0 => models::default_max_tokens(&model),
            n => {
                models::check_max_tokens(&model, n)
                    .map_err(|e| AiMarketingError::invalid("prompt.max_tokens", e))?;
                n
            }
        };
        set(values, "max_tokens", Val::Int32(Some(max_tokens)));
        Ok(())
    }

    /// Version 1 of the content.
    async fn after_insert(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        id: i64,
        p: &pb::Prompt,
    ) -> Result<(), AiMarketingError> {
        insert_version(tx, id, 1, &p.content, call.caller.user_id).await
    }

    /// A system prompt is refused by name before anything is locked.
    async fn before_lock(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        id: i64,
        _: Locking,
    ) -> Result<(), AiMarketingError> {
        refuse_system(tx, id).await
    }

    /// Keeps `max_tokens` within the model the prompt will have, and makes a changed
    /// content the next version.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &PromptRow,
        p: &pb::Prompt,
        values: &mut Values,
    ) -> Result<(), AiMarketingError> {
        let changing = |f: &str| call.fields.contains(&f);
        let model = if changing("model") {
            p.model.trim()
        } else {
            &current.model
        };
        let max_tokens = if changing("max_tokens") {
            p.max_tokens
        } else {
            current.max_tokens
        };
        if let Err(e) = models::check_max_tokens(model, max_tokens) {
            let advice = if changing("max_tokens") {
                e
            } else {
                format!("{e}; lower it with the model")
            };
            return Err(AiMarketingError::invalid("prompt.max_tokens", advice));
        }
        if changing("content") && p.content != current.content {
            let next = current.content_version + 1;
            insert_version(tx, current.id, next, &p.content, call.caller.user_id).await?;
            set(values, "content_version", Val::Int32(Some(next)));
        }
        Ok(())
    }
}

/// The model a request names: empty on create is the configured default, on update
/// refused.
fn model_of(state: &AppState, raw: &str, method: Method) -> Result<String, String> {
    match (raw.trim(), method) {
        ("", Method::Create) => Ok(state.config.default_model.clone()),
        ("", Method::Update) => Err("is required: a model name such as gpt-4o-mini".into()),
        (name, _) => {
            models::check_name(name)?;
            Ok(name.to_owned())
        }
    }
}

/// The violations of `content` as a template: required, at most [`MAX_CONTENT`]
/// characters, and one violation of `prompt.content` per problem the parser reports.
pub(crate) fn content_problems(content: &str) -> Vec<FieldViolation> {
    let violation = |description: String| FieldViolation::new("prompt.content", description);
    if let Err(e) = validate::required(content, MAX_CONTENT) {
        return vec![violation(e)];
    }
    match template::parse(content) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|p| violation(p.to_string()))
            .collect(),
    }
}

/// Sets (or replaces) column `column` in `values`.
fn set(values: &mut Values, column: &'static str, value: Val) {
    values.retain(|(c, _)| *c != column);
    values.push((column, value));
}

/// SYSTEM_PROMPT when `id` is a system prompt.
pub(crate) async fn refuse_system(tx: &mut TenantTx, id: i64) -> Result<(), AiMarketingError> {
    let system: Option<bool> =
        sqlx::query_scalar("SELECT is_system FROM ai_marketing.ai_prompts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    if system == Some(true) {
        Err(AiMarketingError::SystemPrompt { id })
    } else {
        Ok(())
    }
}

async fn insert_version(
    tx: &mut TenantTx,
    prompt_id: i64,
    content_version: i32,
    content: &str,
    author_user_id: i64,
) -> Result<(), AiMarketingError> {
    sqlx::query(
        "INSERT INTO ai_marketing.ai_prompt_versions
             (tenant_id, prompt_id, content_version, content, author_user_id)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tx.tenant_id())
    .bind(prompt_id)
    .bind(content_version)
    .bind(content)
    .bind(author_user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The live prompt `id` the caller's tenant sees: its own or a system prompt.
pub(crate) async fn visible(tx: &mut TenantTx, id: i64) -> Result<PromptRow, AiMarketingError> {
    Ok(TABLE.fetch(tx, id, Read::live()).await?)
}

/// Copies `source` into a new prompt of the transaction's tenant named `name`, version
/// 1 of the source's content, written by `author_user_id`; returns the copy's id.
pub(crate) async fn copy(
    tx: &mut TenantTx,
    source: &PromptRow,
    name: &str,
    author_user_id: i64,
) -> Result<i64, AiMarketingError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ai_marketing.ai_prompts
             (tenant_id, category, name, description, content, model, temperature, max_tokens, tags)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING id",
    )
    .bind(tx.tenant_id())
    .bind(&source.category)
    .bind(name)
    .bind(&source.description)
    .bind(&source.content)
    .bind(&source.model)
    .bind(source.temperature)
    .bind(source.max_tokens)
    .bind(source.tags.clone().map(Json))
    .fetch_one(&mut **tx)
    .await?;
    insert_version(tx, id, 1, &source.content, author_user_id).await?;
    Ok(id)
}

/// The wire form of a stored prompt.
pub(crate) fn to_pb(kit: &Kit, r: PromptRow) -> pb::Prompt {
    pb::Prompt {
        id: r.id,
        tenant_id: r.tenant_id,
        category: r.category,
        name: r.name,
        description: r.description.unwrap_or_default(),
        content: r.content,
        model: r.model,
        temperature: places(r.temperature, 2),
        max_tokens: r.max_tokens,
        tags: tags_of(r.tags.as_ref()),
        system: r.is_system,
        content_version: r.content_version,
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: kit.purge_time(r.deleted_at),
        etag: etag(r.version),
    }
}

/// The wire form of a stored version.
pub(crate) fn version_pb(r: VersionRow) -> pb::PromptVersion {
    pb::PromptVersion {
        prompt_id: r.prompt_id,
        content_version: r.content_version,
        content: r.content,
        author_user_id: r.author_user_id.unwrap_or_default(),
        create_time: Some(ts(r.created_at)),
    }
}
