//! `fusion.aimarketing.v1.AiSettingsService`: a tenant's own provider (its API key
//! sealed with `AI_SECRET_KEY`, never returned), its models, and its token usage per
//! month with the allowance its plan gives.

use std::collections::HashSet;

use chrono::{Datelike as _, NaiveDate};
use tonic::{Request, Response, Status};

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::ai_settings_service_server::AiSettingsService;
use fusion_service::api::etag;
use fusion_service::validate;

use crate::domain::models;
use crate::error::AiMarketingError;
use crate::grpc::{AiMarketingApi, parts, reply};
use crate::store::ai_settings::{self, SettingsRow};
use crate::store::usage;

/// The fields UpdateAiSettings may change.
const MUTABLE: &[&str] = &[
    "provider_base_uri",
    "provider_api_key",
    "default_model",
    "allowed_models",
];

/// The most models a tenant lists.
const MAX_MODELS: usize = 50;

fn settings_pb(row: &SettingsRow) -> pb::AiSettings {
    pb::AiSettings {
        provider_base_uri: row.base_url.clone().unwrap_or_default(),
        provider_api_key: String::new(),
        provider_api_key_set: row.api_key.is_some(),
        default_model: row.default_model.clone().unwrap_or_default(),
        allowed_models: row.allowed_models.clone(),
        etag: etag(row.version),
    }
}

/// The fields an update names: its mask, `*` for all, or (without one) those it sets.
fn named_fields(
    s: &pb::AiSettings,
    mask: Option<&prost_types::FieldMask>,
) -> Result<Vec<&'static str>, AiMarketingError> {
    let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() {
        return Ok(MUTABLE
            .iter()
            .copied()
            .filter(|f| match *f {
                "provider_base_uri" => !s.provider_base_uri.is_empty(),
                "provider_api_key" => !s.provider_api_key.is_empty(),
                "default_model" => !s.default_model.is_empty(),
                _ => !s.allowed_models.is_empty(),
            })
            .collect());
    }
    if paths.iter().any(|p| p == "*") {
        return Ok(MUTABLE.to_vec());
    }
    paths
        .iter()
        .map(|path| {
            MUTABLE.iter().copied().find(|f| f == path).ok_or_else(|| {
                AiMarketingError::invalid(
                    "update_mask",
                    format!("{path} is not a field that can be updated"),
                )
            })
        })
        .collect()
}

impl AiMarketingApi {
    /// `row` with the named fields of `s` applied and checked.
    fn apply(
        &self,
        tenant_id: i64,
        mut row: SettingsRow,
        s: &pb::AiSettings,
        fields: &[&str],
    ) -> Result<SettingsRow, AiMarketingError> {
        let mut violations = Vec::new();
        let mut bad = |field: &str, why: String| {
            violations.push(fusion_proto::errors::FieldViolation::new(
                format!("settings.{field}"),
                why,
            ));
        };
        for field in fields {
            match *field {
                "provider_base_uri" => match s.provider_base_uri.trim() {
                    "" => row.base_url = None,
                    url => match validate::url(url).and_then(|()| {
                        if self.state.config.tenant_providers_may_be_private {
                            Ok(())
                        } else {
                            public_host(url)
                        }
                    }) {
                        Ok(()) => row.base_url = Some(url.trim_end_matches('/').to_owned()),
                        Err(why) => bad(field, why),
                    },
                },
                "provider_api_key" => match s.provider_api_key.trim() {
                    "" => row.api_key = None,
                    key => match &self.state.cipher {
                        Some(cipher) => row.api_key = Some(cipher.seal(tenant_id, key.as_bytes())),
                        None => {
                            return Err(AiMarketingError::AiNotConfigured(
                                "AI_SECRET_KEY, to keep a provider API key".to_owned(),
                            ));
                        }
                    },
                },
                "default_model" => match s.default_model.trim() {
                    "" => row.default_model = None,
                    model => match models::check_name(model) {
                        Ok(()) => row.default_model = Some(model.to_owned()),
                        Err(why) => bad(field, why),
                    },
                },
                _ => {
                    let mut seen = HashSet::new();
                    let mut models_kept = Vec::new();
                    for model in &s.allowed_models {
                        let model = model.trim();
                        if let Err(why) = models::check_name(model) {
                            bad(field, format!("{model:?}: {why}"));
                        } else if seen.insert(model) {
                            models_kept.push(model.to_owned());
                        }
                    }
                    if models_kept.len() > MAX_MODELS {
                        bad(field, format!("at most {MAX_MODELS} models"));
                    }
                    row.allowed_models = models_kept;
                }
            }
        }
        if let Some(default) = &row.default_model
            && !row.allowed_models.is_empty()
            && !row.allowed_models.contains(default)
        {
            bad(
                "default_model",
                format!("{default} is not among the allowed models"),
            );
        }
        AiMarketingError::check(violations)?;
        Ok(row)
    }
}

/// Refuses a URL whose host is this machine or a private network: a tenant's provider
/// is called from inside the platform, so an address there would let a tenant reach
/// what only the platform should (its database, a cloud metadata endpoint). Names are
/// judged as written (`localhost` and IP literals); a public name that resolves to a
/// private address is not caught here.
fn public_host(url: &str) -> Result<(), String> {
    use std::net::IpAddr;
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let private = match literal.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => private_ip(&v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        Ok(ip) => private_ip(&ip),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name.is_empty() || name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private {
        Err(
            "must be a public address: loopback, private and link-local hosts are refused \
             (AI_TENANT_PROVIDERS_MAY_BE_PRIVATE allows them)"
                .into(),
        )
    } else {
        Ok(())
    }
}

fn private_ip(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT (and some clouds' internal ranges).
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
        }
    }
}

/// The month a GetAiUsage asks for: `year` and `month`, or both 0 for the current one.
fn asked_month(year: i32, month: i32, today: NaiveDate) -> Result<NaiveDate, AiMarketingError> {
    if year == 0 && month == 0 {
        return Ok(usage::month_of(today));
    }
    if !(2000..=9999).contains(&year) {
        return Err(AiMarketingError::invalid(
            "year",
            "must be 2000 to 9999, or 0 with month 0",
        ));
    }
    u32::try_from(month)
        .ok()
        .and_then(|m| NaiveDate::from_ymd_opt(year, m, 1))
        .ok_or_else(|| AiMarketingError::invalid("month", "must be 1 to 12"))
}

#[tonic::async_trait]
impl AiSettingsService for AiMarketingApi {
    async fn get_ai_settings(
        &self,
        req: Request<pb::GetAiSettingsRequest>,
    ) -> Result<Response<pb::AiSettings>, Status> {
        let (ctx, _) = parts(req)?;
        let result = async {
            let mut tx = self.state.kit.db.begin(ctx.tenant_id).await?;
            let row = ai_settings::read(&mut tx, false).await?;
            tx.commit().await?;
            Ok::<_, AiMarketingError>(settings_pb(&row))
        };
        reply(result.await)
    }

    async fn update_ai_settings(
        &self,
        req: Request<pb::UpdateAiSettingsRequest>,
    ) -> Result<Response<pb::AiSettings>, Status> {
        let (ctx, r) = parts(req)?;
        let result = async {
            let s = r.settings.unwrap_or_default();
            let fields = named_fields(&s, r.update_mask.as_ref())?;
            let mut tx = self.state.kit.db.begin(ctx.tenant_id).await?;
            let current = ai_settings::read(&mut tx, true).await?;
            fusion_db::resource::check_etag(crate::DOMAIN, &s.etag, current.version)?;
            let mut row = self.apply(ctx.tenant_id, current, &s, &fields)?;
            row.version = ai_settings::write(&mut tx, &row).await?;
            tx.commit().await?;
            Ok::<_, AiMarketingError>(settings_pb(&row))
        };
        reply(result.await)
    }

    async fn get_ai_usage(
        &self,
        req: Request<pb::GetAiUsageRequest>,
    ) -> Result<Response<pb::AiUsage>, Status> {
        let (ctx, r) = parts(req)?;
        let result = async {
            let month = asked_month(r.year, r.month, ctx.today())?;
            if r.user_id < 0 {
                return Err(AiMarketingError::invalid(
                    "user_id",
                    "must be a user id, or 0 for every user",
                ));
            }
            let allowance = self.state.allowances.of(ctx.tenant_id).await?;
            let mut tx = self.state.kit.db.begin(ctx.tenant_id).await?;
            let lines = usage::lines(&mut tx, month, Some(r.user_id).filter(|u| *u > 0)).await?;
            let tenant_total = usage::month_total(&mut tx, month).await?;
            tx.commit().await?;
            let prompt_token_count = lines.iter().map(|l| l.prompt_tokens).sum();
            let completion_token_count = lines.iter().map(|l| l.completion_tokens).sum();
            Ok(pb::AiUsage {
                year: month.year(),
                month: i32::try_from(month.month()).unwrap_or_default(),
                prompt_token_count,
                completion_token_count,
                token_allowance: allowance.unwrap_or_default(),
                remaining_token_count: allowance
                    .map(|a| (a - tenant_total).max(0))
                    .unwrap_or_default(),
                lines: lines
                    .into_iter()
                    .map(|l| pb::AiUsageLine {
                        user_id: l.user_id,
                        model: l.model,
                        reply_count: l.reply_count,
                        prompt_token_count: l.prompt_tokens,
                        completion_token_count: l.completion_tokens,
                        failure_count: l.failure_count,
                    })
                    .collect(),
            })
        };
        reply(result.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_provider_must_be_on_a_public_host() {
        for public in [
            "https://api.openai.com/v1",
            "https://8.8.8.8/v1",
            "https://[2001:4860::8888]/v1",
        ] {
            assert_eq!(public_host(public), Ok(()), "{public}");
        }
        for private in [
            "http://localhost:11434/v1",
            "http://LOCALHOST./v1",
            "http://api.localhost/v1",
            "http://127.0.0.1:5432",
            "http://10.1.2.3/v1",
            "http://172.16.0.1/v1",
            "http://192.168.1.1/v1",
            "http://169.254.169.254/latest",
            "http://100.64.0.1/v1",
            "http://0.0.0.0/v1",
            "http://[::1]/v1",
            "http://[fd00::1]/v1",
            "http://[fe80::1]/v1",
            "http://[::ffff:127.0.0.1]/v1",
        ] {
            assert!(public_host(private).is_err(), "{private}");
        }
    }
}
