//! The annotated example config in `deploy/` is loaded with the real loader, so it cannot rot:
//! a renamed key, a new required key or a changed rule makes this test fail, not an admin's
//! first start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scimbridge::config::{self, ConfigError, LogFormat};
use scimbridge::policy::{EnableAction, OffboardAction, UsernameFrom};

const EXAMPLE: &str = "deploy/scimbridge.example.toml";

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The variables the example names, each holding a plausible value.
fn example_env() -> BTreeMap<String, String> {
    [
        ("SCIM_IDP_TOKENS", "idp-token-0123456789abcdef,idp-token-fedcba9876543210"),
        ("SCIM_ADMIN_TOKENS", "admin-token-0123456789abcdef"),
        ("JIRA_TOKEN", "jira-personal-access-token"),
        ("CROWD_APP_PASSWORD", "crowd-application-password"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn the_example_config_parses_and_validates_with_the_real_loader() {
    let file = config::parse_file(&example_text()).unwrap_or_else(|e| panic!("{EXAMPLE} does not parse: {e}"));
    let c = config::validate(file, &example_env()).unwrap_or_else(|e| panic!("{EXAMPLE} is invalid: {e}"));

    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/scimbridge"));
    assert_eq!(c.public_url.as_deref(), Some("https://scim.example.com"));
    assert_eq!(c.tokens.len(), 2);
    assert_eq!(c.admin_tokens.len(), 1);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.targets.len(), 2);
    assert_eq!(c.targets[0].spec.name, "jira");
    assert_eq!(c.targets[1].spec.name, "crowd");
    assert_eq!(c.targets[1].spec.url, "https://crowd.example.com/crowd");
    assert_eq!(c.targets[1].spec.timeout, Duration::from_secs(15));
}

#[test]
fn the_example_config_states_the_built_in_defaults() {
    // The example documents each default by writing it out; if a default changes, so must the
    // example (and its comment).
    let file = config::parse_file(&example_text()).expect("parses");
    let c = config::validate(file, &example_env()).expect("valid");
    let none = config::validate(config::FileConfig::default(), &BTreeMap::new()).expect("defaults are valid");

    let (l, d) = (&c.limits, &none.limits);
    assert_eq!(
        (l.max_body_bytes, l.max_results, l.bulk_max_operations, l.bulk_max_payload_bytes, l.max_filter_length),
        (d.max_body_bytes, d.max_results, d.bulk_max_operations, d.bulk_max_payload_bytes, d.max_filter_length),
    );
    let (x, d) = (&c.delivery, &none.delivery);
    assert_eq!(
        (x.concurrency, x.max_attempts, x.max_age, x.backoff_initial, x.backoff_max),
        (d.concurrency, d.max_attempts, d.max_age, d.backoff_initial, d.backoff_max),
    );
    let p = &c.policy;
    assert_eq!(
        (p.on_disable, p.on_delete, p.on_access_lost),
        (OffboardAction::Deactivate, OffboardAction::Deactivate, OffboardAction::Deactivate)
    );
    assert_eq!(p.on_enable, EnableAction::Reactivate);
    assert_eq!(p.username_from, UsernameFrom::UserName);
    assert!(p.create_users && p.sync_groups && !p.dry_run);
    assert!(p.access_groups.is_empty());
    assert_eq!(p.on_disable, none.policy.on_disable);
    assert_eq!(
        (p.create_users, p.sync_groups, p.dry_run),
        (none.policy.create_users, none.policy.sync_groups, none.policy.dry_run)
    );
}

#[test]
fn the_example_config_names_every_secret_it_needs() {
    // Without the variables it names, the example must fail with each missing one reported by key,
    // which is what an admin who forgot the env file sees.
    let file = config::parse_file(&example_text()).expect("parses");
    let Err(ConfigError::Invalid(issues)) = config::validate(file, &BTreeMap::new()) else {
        panic!("the example must need its secrets");
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["token_env", "admin_token_env", "target[0].token_env", "target[1].password_env"], "{issues:?}");
}

/// The `scimbridge.toml: |` block scalar of the ConfigMap, de-indented. A YAML parser is not a
/// dependency; `.ci/deploy-check.sh` parses the whole manifest as YAML.
fn configmap_toml() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/configmap.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "scimbridge.toml: |").skip(1).peekable();
    let indent = lines.peek().map_or(0, |l| l.len() - l.trim_start().len());
    assert!(indent > 0, "no indented `scimbridge.toml: |` block in {}", path.display());
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_kubernetes_configmap_config_validates_with_the_secrets_the_secret_provides() {
    let file =
        config::parse_file(&configmap_toml()).unwrap_or_else(|e| panic!("the ConfigMap TOML does not parse: {e}"));
    let c = config::validate(file, &example_env()).unwrap_or_else(|e| panic!("the ConfigMap TOML is invalid: {e}"));
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/scimbridge"));
    assert_eq!(c.listen.port(), 8080);
    assert!(c.policy.dry_run, "the shipped manifest starts in dry run");

    // Every variable the TOML names is a key of the Secret.
    let secret = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/secret.yaml"))
        .expect("secret.yaml");
    for var in example_env().keys() {
        assert!(secret.contains(&format!("\n  {var}: ")), "deploy/k8s/secret.yaml lacks {var}");
    }
}
