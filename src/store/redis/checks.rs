//! What hookd checks about the Redis it is given: the settings production needs.

/// Warnings for a Redis unfit for production, from `INFO server persistence` and the
/// `maxmemory-policy` (`None` when CONFIG is not allowed).
pub(crate) fn production_warnings(info: &str, policy: Option<&[String]>) -> Vec<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let mut warnings = Vec::new();
    if let Some(version) = field("redis_version") {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 7 {
            warnings.push(format!(
                "Redis {version} is older than 7: hookd needs Redis 7 or newer"
            ));
        }
    }
    if field("aof_enabled") != Some("1") {
        warnings.push(
            "Redis AOF persistence is off: a Redis restart loses journaled webhooks that were \
             already answered 200 (set appendonly yes, appendfsync everysec or always)"
                .to_string(),
        );
    }
    if let Some([_, policy]) = policy
        && policy != "noeviction"
    {
        warnings.push(format!(
            "Redis maxmemory-policy is {policy}: under memory pressure Redis evicts journal \
             and dedup keys (set maxmemory-policy noeviction)"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_without_aof_or_with_eviction_is_warned_about() {
        let info = "# Server\r\nredis_version:7.2.4\r\n# Persistence\r\naof_enabled:0\r\n";
        let policy = ["maxmemory-policy".to_string(), "allkeys-lru".to_string()];
        let w = production_warnings(info, Some(&policy));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("AOF"));
        assert!(w[1].contains("allkeys-lru"));
    }

    #[test]
    fn a_production_ready_redis_gets_no_warning() {
        let info = "redis_version:7.0.15\r\naof_enabled:1\r\n";
        let policy = ["maxmemory-policy".to_string(), "noeviction".to_string()];
        assert!(production_warnings(info, Some(&policy)).is_empty());
    }

    #[test]
    fn an_old_redis_is_warned_about() {
        let w = production_warnings("redis_version:6.2.1\r\naof_enabled:1\r\n", None);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("older than 7"));
    }
}
