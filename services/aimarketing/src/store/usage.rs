//! Token usage: one row per tenant, calendar month (its first day in the tenant's time
//! zone), user and model, added to in the transaction that stores each reply (or, for
//! a failed call, that records the failure).

use chrono::{Datelike as _, NaiveDate};

use fusion_db::TenantTx;

use crate::error::AiMarketingError;

/// What one call adds to its user's and model's month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spent {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// 1 for a stored reply (cancelled ones too), else 0.
    pub replies: i64,
    /// 1 for a failed call, else 0.
    pub failures: i64,
}

/// One user's use of one model in a month.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct UsageRow {
    pub user_id: i64,
    pub model: String,
    pub reply_count: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub failure_count: i64,
}

/// The first day of the month of `date`.
pub(crate) fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).expect("every month has a first day")
}

/// Adds `spent` to the row of (`month`, `user_id`, `model`) of the transaction's tenant.
pub(crate) async fn add(
    tx: &mut TenantTx,
    month: NaiveDate,
    user_id: i64,
    model: &str,
    spent: Spent,
) -> Result<(), AiMarketingError> {
    sqlx::query(
        "INSERT INTO ai_marketing.ai_usage
             (tenant_id, month, user_id, model, reply_count, prompt_tokens, completion_tokens,
              failure_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, month, user_id, model) DO UPDATE
            SET reply_count = ai_usage.reply_count + EXCLUDED.reply_count,
                prompt_tokens = ai_usage.prompt_tokens + EXCLUDED.prompt_tokens,
                completion_tokens = ai_usage.completion_tokens + EXCLUDED.completion_tokens,
                failure_count = ai_usage.failure_count + EXCLUDED.failure_count,
                updated_at = now()",
    )
    .bind(tx.tenant_id())
    .bind(month)
    .bind(user_id)
    .bind(model)
    .bind(spent.replies)
    .bind(spent.prompt_tokens)
    .bind(spent.completion_tokens)
    .bind(spent.failures)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tokens (request and reply) the transaction's tenant used in `month`.
pub(crate) async fn month_total(
    tx: &mut TenantTx,
    month: NaiveDate,
) -> Result<i64, AiMarketingError> {
    let total: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint
           FROM ai_marketing.ai_usage WHERE month = $1",
    )
    .bind(month)
    .fetch_one(&mut **tx)
    .await?;
    Ok(total)
}

/// The usage rows of `month`, of `user_id` alone when given, by user then model.
pub(crate) async fn lines(
    tx: &mut TenantTx,
    month: NaiveDate,
    user_id: Option<i64>,
) -> Result<Vec<UsageRow>, AiMarketingError> {
    Ok(sqlx::query_as(
        "SELECT user_id, model, reply_count, prompt_tokens, completion_tokens, failure_count
           FROM ai_marketing.ai_usage
          WHERE month = $1 AND ($2::bigint IS NULL OR user_id = $2)
          ORDER BY user_id, model",
    )
    .bind(month)
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_its_first_day() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(month_of(day), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
    }
}
