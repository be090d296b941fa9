//! What each Atlassian product can do for a configured action: the one place that encodes the
//! capability rows of atlassian-dc.md §7 (and §0 "Bitbucket: no deactivate API"). `decide.rs`
//! uses it to translate an action, `config.rs` uses it to reject a policy a product cannot carry
//! out, so the check and the behaviour cannot drift apart.

use crate::atlassian::Product;

use super::config::OffboardAction;
use super::IntentAction;

/// Every product has a create-user call (atlassian-dc.md §7, "Create user" row). Kept as a
/// function so a product without one would skip creation rather than emit an impossible intent.
pub(super) fn can_create(product: Product) -> bool {
    match product {
        Product::Jira | Product::Confluence | Product::Crowd | Product::Bitbucket => true,
    }
}

/// Bitbucket has no deactivation; "disable" means removing the licence-granting groups
/// (atlassian-dc.md §5 and §7 `active=false` row).
pub(super) fn deactivates_by_license_groups(product: Product) -> bool {
    matches!(product, Product::Bitbucket)
}

/// Why `anonymize` cannot be carried out on `product`, or `None` when it can.
pub(super) fn cannot_anonymize(product: Product) -> Option<&'static str> {
    match product {
        // §2.5: validate → schedule → poll, keyed by the user key.
        Product::Jira => None,
        // §5: GDPR erasure exists but only for an already deleted user, so anonymize = delete + erase.
        Product::Bitbucket => None,
        Product::Confluence => Some("Confluence Data Center has no REST API for user anonymization"),
        Product::Crowd => Some("Crowd has no user anonymization"),
    }
}

/// The intents, in delivery order, that carry out an offboarding `action` on `product`.
///
/// Choices beyond the plain matrix, each so that access ends at once even when the slow or
/// fallible part of the action does not:
/// - Jira `delete` deactivates first: Jira refuses to delete users with issues or comments (400,
///   §2.2), which would otherwise leave them active. Confluence `delete` deactivates first because
///   the delete is an asynchronous long task (§3).
/// - Jira `anonymize` deactivates first: anonymization runs one task at a time (409 = wait, §2.5)
///   and can fail validation once started.
/// - Bitbucket `anonymize` is delete, then GDPR erasure (erasure works only on deleted users, §5).
/// - `anonymize` on Confluence or Crowd is rejected by `validate`; should it reach here anyway the
///   safe, reversible fallback is deactivation, never nothing.
/// - Bitbucket `deactivate` without `license_groups` (also rejected by `validate`) still yields a
///   `RemoveLicense` with an empty list, so the gap shows in the outbox and the audit log.
pub(super) fn offboard(product: Product, action: OffboardAction, license_groups: &[String]) -> Vec<IntentAction> {
    let deactivate = || {
        if deactivates_by_license_groups(product) {
            IntentAction::RemoveLicense { groups: license_groups.to_vec() }
        } else {
            IntentAction::Deactivate
        }
    };
    match (action, product) {
        (OffboardAction::None, _) => Vec::new(),
        (OffboardAction::Deactivate, _) => vec![deactivate()],
        (OffboardAction::Delete, Product::Jira | Product::Confluence) => vec![deactivate(), IntentAction::Delete],
        (OffboardAction::Delete, Product::Crowd | Product::Bitbucket) => vec![IntentAction::Delete],
        (OffboardAction::Anonymize, Product::Jira) => vec![deactivate(), IntentAction::Anonymize],
        (OffboardAction::Anonymize, Product::Bitbucket) => vec![IntentAction::Delete, IntentAction::Anonymize],
        (OffboardAction::Anonymize, Product::Confluence | Product::Crowd) => vec![deactivate()],
    }
}

/// The intents that undo a deactivation on `product` (§7 `active=true` row). On Bitbucket that is
/// re-adding the licence groups; with none configured there is nothing to restore.
pub(super) fn reactivate(product: Product, license_groups: &[String]) -> Vec<IntentAction> {
    if !deactivates_by_license_groups(product) {
        vec![IntentAction::Reactivate]
    } else if license_groups.is_empty() {
        Vec::new()
    } else {
        vec![IntentAction::RestoreLicense { groups: license_groups.to_vec() }]
    }
}
