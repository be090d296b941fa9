//! Names an operator may have mistyped (`--group contractrs`, `--target jria`): the error names
//! what was asked for and the close matches among the names known.

/// Up to three known names close to `asked` (case-insensitive), closest first.
pub(crate) fn close_matches<'a>(asked: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let asked = asked.to_lowercase();
    let mut scored: Vec<(f64, String)> = known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&asked, &k.to_lowercase()), k.to_string()))
        .filter(|(score, _)| *score >= 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1.eq_ignore_ascii_case(&b.1));
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

/// " (did you mean: a, b?)", or nothing.
pub(crate) fn did_you_mean(matches: &[String]) -> String {
    if matches.is_empty() {
        String::new()
    } else {
        format!(" (did you mean: {}?)", matches.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_names_and_unrelated_names_are_left_out() {
        let known = ["contractors", "jira-software-users", "Contractors-EU", "staff"];
        let m = close_matches("contractrs", known);
        assert_eq!(m.first().map(String::as_str), Some("contractors"), "{m:?}");
        assert!(!m.iter().any(|k| k == "staff" || k == "jira-software-users"), "{m:?}");
        assert!(close_matches("zzz", known).is_empty());
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["a".into()]), " (did you mean: a?)");
    }
}
