//! The reason codes are the audit record's vocabulary: each is documented for reviewers.

use crate::policy::{ReasonCode, Role, Scope, Tier};

const ACCESS_MODEL: &str = include_str!("../../../../docs/access-model.md");

#[test]
fn every_reason_code_role_scope_and_tier_is_in_the_access_model() {
    let missing: Vec<&str> = ReasonCode::ALL
        .iter()
        .map(|r| r.as_str())
        .chain(Role::ALL.iter().map(|r| r.as_str()))
        .chain(Scope::ALL.iter().map(|s| s.action()))
        .chain(
            [Tier::EmergencySummary, Tier::DirectCare, Tier::Full]
                .iter()
                .map(|t| t.as_str()),
        )
        .filter(|code| !ACCESS_MODEL.contains(&format!("`{code}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/access-model.md does not mention {missing:?}"
    );
}

#[test]
fn reason_codes_are_distinct_kebab_case() {
    let codes: std::collections::BTreeSet<&str> =
        ReasonCode::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(codes.len(), ReasonCode::ALL.len());
    for code in codes {
        assert!(
            code.split('-')
                .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
            "{code}"
        );
    }
}
