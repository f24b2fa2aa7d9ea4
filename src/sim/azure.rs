//! Azure OpenAI's front door as the OpenAI Realtime and pipeline sims play it when a target sets
//! `sim_options = { azure = true }`: Azure's paths (`/openai/realtime?api-version=…&deployment=…`,
//! `/openai/deployments/{deployment}/…?api-version=…`), the `api-key` header instead of `Authorization: Bearer`,
//! and Azure's refusals — 401 for a missing or wrong key, 404 for a request without `api-version`.

use crate::scenario::Target;

/// The `api-version` the sims' Azure URLs carry (any value is accepted; its absence is refused).
pub const API_VERSION: &str = "2025-04-01-preview";

/// What an Azure-mode sim accepts.
#[derive(Debug, Clone)]
pub struct AzureGate {
    /// The keys from the target's (and its stages') `api_key_env` variables that are set; empty: any non-empty key.
    keys: Vec<String>,
}

impl AzureGate {
    /// The gate for a target in Azure mode, `None` otherwise.
    pub fn of(target: &Target) -> Option<Self> {
        if target.sim_options.as_ref().is_none_or(|o| o.get_ref().azure != Some(true)) {
            return None;
        }
        let stages = [&target.stt, &target.llm, &target.tts];
        let vars =
            target.api_key_env.iter().chain(stages.iter().filter_map(|s| s.as_ref()?.get_ref().api_key_env.as_ref()));
        let keys = vars.filter_map(|v| std::env::var(v.get_ref()).ok()).filter(|k| !k.is_empty()).collect();
        Some(Self { keys })
    }

    /// Checks a request's `api-key` header and query string: the refusal's status and Azure's error JSON, if any.
    pub fn check(&self, api_key: Option<&str>, query: &str) -> Result<(), (u16, String)> {
        let key_ok =
            api_key.is_some_and(|k| !k.is_empty() && (self.keys.is_empty() || self.keys.iter().any(|x| x == k)));
        if !key_ok {
            let msg = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";
            return Err((401, serde_json::json!({"error": {"code": "401", "message": msg}}).to_string()));
        }
        let has_version =
            query.split('&').any(|kv| kv.split_once('=').is_some_and(|(k, v)| k == "api-version" && !v.is_empty()));
        if !has_version {
            return Err((
                404,
                serde_json::json!({"error": {"code": "404", "message": "Resource not found"}}).to_string(),
            ));
        }
        Ok(())
    }
}

/// `/openai/deployments/{deployment}/rest` → `/v1/rest` (the sim's own paths); `None` for any other path.
pub fn deployment_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/openai/deployments/")?;
    let (deployment, rest) = rest.split_once('/')?;
    (!deployment.is_empty()).then(|| format!("/v1/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_follow_azure() {
        let g = AzureGate { keys: vec!["k1".into()] };
        assert_eq!(g.check(Some("k1"), "api-version=2024-10-21&deployment=d"), Ok(()));
        assert_eq!(g.check(None, "api-version=1").unwrap_err().0, 401);
        assert_eq!(g.check(Some("other"), "api-version=1").unwrap_err().0, 401);
        assert_eq!(g.check(Some("k1"), "deployment=d").unwrap_err().0, 404);
        assert_eq!(g.check(Some("k1"), "api-version=").unwrap_err().0, 404);
        assert_eq!(AzureGate { keys: vec![] }.check(Some("any"), "api-version=1"), Ok(()));
        assert_eq!(
            deployment_path("/openai/deployments/gpt-4o/chat/completions").as_deref(),
            Some("/v1/chat/completions")
        );
        assert_eq!(deployment_path("/v1/chat/completions"), None);
    }
}
