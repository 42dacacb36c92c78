DROP TABLE IF EXISTS ai_marketing.idempotency_keys, ai_marketing.dead_letters, ai_marketing.inbox_events,
    ai_marketing.outbox_events, ai_marketing.campaign_deals, ai_marketing.campaign_leads,
    ai_marketing.campaigns, ai_marketing.ai_settings, ai_marketing.ai_usage, ai_marketing.ai_messages,
    ai_marketing.ai_conversations, ai_marketing.ai_prompt_versions, ai_marketing.ai_prompts;
