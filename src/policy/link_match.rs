//! Which existing Atlassian account a SCIM user is (issue 9, "Linking existing accounts"): the one
//! pure rule behind both the link made at delivery and `links preview`, so the preview shows
//! exactly what delivery would do. Ambiguity is never guessed: several accounts with the user's
//! email, a username whose account has another email, or an account already linked to another
//! SCIM user, each end as something an operator decides (`links set`).

use crate::atlassian::AccountActivity;

use super::config::LinkExisting;

/// How a user matches on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Link this account; `by_email` tells how it was found.
    Existing { username: String, active: bool, by_email: bool, note: Option<String> },
    /// No account matches: create one with the mapped username.
    New,
    /// Several accounts share the user's email.
    Ambiguous { candidates: Vec<String>, reason: String },
    /// The mapped username or the only email match cannot be this user's.
    Conflict { candidates: Vec<String>, reason: String },
}

impl Match {
    /// `existing`, `new`, `ambiguous` or `conflict` (the words of `links preview`).
    pub fn word(&self) -> &'static str {
        match self {
            Match::Existing { .. } => "existing",
            Match::New => "new",
            Match::Ambiguous { .. } => "ambiguous",
            Match::Conflict { .. } => "conflict",
        }
    }
}

/// What is known on the Atlassian side for one user.
pub struct Candidates<'a> {
    /// The account named like the mapped username, if any.
    pub by_name: Option<&'a AccountActivity>,
    /// Every account with the user's email (and any the search found without showing an email);
    /// `None` when the product cannot be searched by email (or no email is known).
    pub by_email: Option<&'a [&'a AccountActivity]>,
}

fn same_email(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Decides the match of a user with email `email`; `found.by_name` is the account named like
/// the user's mapped username.
/// `linked_elsewhere(username)` says whether that account is already linked to another SCIM user.
pub fn match_account(
    mode: LinkExisting,
    email: Option<&str>,
    found: &Candidates<'_>,
    linked_elsewhere: &dyn Fn(&str) -> bool,
) -> Match {
    let taken = |a: &AccountActivity| {
        linked_elsewhere(&a.username).then(|| Match::Conflict {
            candidates: vec![a.username.clone()],
            reason: format!("the account {:?} is already linked to another SCIM user", a.username),
        })
    };
    let existing = |a: &AccountActivity, by_email: bool, note: Option<String>| Match::Existing {
        username: a.username.clone(),
        active: a.active,
        by_email,
        note,
    };
    let by_name = || -> Option<Match> {
        let a = found.by_name?;
        if let Some(m) = taken(a) {
            return Some(m);
        }
        match (email, a.email.as_deref()) {
            (Some(mine), Some(theirs)) if !same_email(mine, theirs) => Some(Match::Conflict {
                candidates: vec![a.username.clone()],
                reason: format!("the username {:?} belongs to an account with another email ({theirs})", a.username),
            }),
            (_, None) => Some(existing(
                a,
                false,
                Some("the product does not tell this account's email; matched by username".into()),
            )),
            _ => Some(existing(a, false, None)),
        }
    };
    let by_email = |list: &[&AccountActivity]| -> Match {
        if list.iter().any(|a| a.email.is_none()) {
            return Match::Ambiguous {
                candidates: list.iter().map(|a| a.username.clone()).collect(),
                reason: "the email search found accounts whose email the product does not show (e.g. Jira's user \
                         email visibility); which one is this user cannot be told"
                    .into(),
            };
        }
        match list {
            [] => Match::New,
            [one] => taken(one).unwrap_or_else(|| existing(one, true, None)),
            many => Match::Ambiguous {
                candidates: many.iter().map(|a| a.username.clone()).collect(),
                reason: format!("{} accounts have the email {}", many.len(), email.unwrap_or_default()),
            },
        }
    };
    match mode {
        LinkExisting::None => Match::New,
        LinkExisting::Username => by_name().unwrap_or(Match::New),
        LinkExisting::UsernameThenEmail => by_name().unwrap_or_else(|| match (email, found.by_email) {
            (Some(_), Some(list)) => by_email(list),
            _ => Match::New,
        }),
        LinkExisting::Email => match (email, found.by_email) {
            (Some(_), Some(list)) => match by_email(list) {
                // Nobody has the email, but the username is taken: a create would collide.
                Match::New => match found.by_name {
                    Some(a) => Match::Conflict {
                        candidates: vec![a.username.clone()],
                        reason: format!(
                            "no account has the email, and the username {:?} belongs to another account",
                            a.username
                        ),
                    },
                    None => Match::New,
                },
                m => m,
            },
            // The product cannot be searched by email: the username decides.
            _ => by_name().unwrap_or(Match::New),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(name: &str, email: Option<&str>) -> AccountActivity {
        AccountActivity {
            username: name.into(),
            display_name: None,
            email: email.map(str::to_string),
            active: true,
            last_active: None,
            activity_reported: false,
            created: None,
            directory: None,
            groups: None,
        }
    }

    fn decide(mode: LinkExisting, by_name: Option<&AccountActivity>, by_email: Option<&[&AccountActivity]>) -> Match {
        match_account(mode, Some("dave@contoso.com"), &Candidates { by_name, by_email }, &|_| false)
    }

    #[test]
    fn the_existing_dave_is_found_by_email_when_the_username_is_new() {
        let dave = acc("dave", Some("Dave@Contoso.com"));
        let m = decide(LinkExisting::UsernameThenEmail, None, Some(&[&dave]));
        assert_eq!(m, Match::Existing { username: "dave".into(), active: true, by_email: true, note: None });
        assert_eq!(decide(LinkExisting::Username, None, Some(&[&dave])), Match::New);
        assert_eq!(decide(LinkExisting::None, None, Some(&[&dave])).word(), "new");
    }

    #[test]
    fn several_accounts_with_the_email_are_ambiguous_never_guessed() {
        let (a, b) = (acc("dave", Some("dave@contoso.com")), acc("dsmith", Some("dave@contoso.com")));
        let m = decide(LinkExisting::UsernameThenEmail, None, Some(&[&a, &b]));
        assert!(matches!(&m, Match::Ambiguous { candidates, .. } if candidates == &["dave", "dsmith"]), "{m:?}");
    }

    #[test]
    fn a_username_with_another_email_is_a_conflict_and_linked_accounts_are_not_taken() {
        let other = acc("dave@contoso.com", Some("someone@else.com"));
        assert_eq!(decide(LinkExisting::UsernameThenEmail, Some(&other), Some(&[])).word(), "conflict");
        let dave = acc("dave", Some("dave@contoso.com"));
        let m = match_account(
            LinkExisting::Email,
            Some("dave@contoso.com"),
            &Candidates { by_name: None, by_email: Some(&[&dave]) },
            &|u| u == "dave",
        );
        assert_eq!(m.word(), "conflict");
    }

    #[test]
    fn without_an_email_on_the_account_the_username_decides_and_says_so() {
        let silent = acc("dave@contoso.com", None);
        let m = decide(LinkExisting::UsernameThenEmail, Some(&silent), None);
        assert!(matches!(m, Match::Existing { by_email: false, note: Some(_), .. }), "{m:?}");
        // An email search hit whose email is hidden is never taken on trust.
        let hidden = acc("dsmith", None);
        assert_eq!(decide(LinkExisting::UsernameThenEmail, None, Some(&[&hidden])).word(), "ambiguous");
        // Email mode on a product without email search falls back to the username.
        assert_eq!(decide(LinkExisting::Email, Some(&silent), None).word(), "existing");
        assert_eq!(decide(LinkExisting::Email, None, None), Match::New);
    }
}
