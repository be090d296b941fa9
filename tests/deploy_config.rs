//! The annotated example config in `deploy/` is loaded with the real loader, so it cannot rot:
//! a renamed key, a new required key or a changed rule makes this test fail, not an admin's
//! first start.

use std::collections::{BTreeMap, BTreeSet};
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
    assert_eq!((x.probe_interval, x.down_after_failures), (d.probe_interval, d.down_after_failures));
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

/// The `stringData` of `deploy/k8s/secret.yaml`: the values an admin gets by applying the
/// manifests as shipped.
fn shipped_secret_values() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/secret.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let values: BTreeMap<String, String> = yaml
        .lines()
        .skip_while(|l| l.trim() != "stringData:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    assert_eq!(values.len(), example_env().len(), "{}: {values:?}", path.display());
    values
}

#[test]
fn the_placeholders_shipped_in_the_kubernetes_secret_are_refused_naming_each_variable() {
    let file = config::parse_file(&configmap_toml()).expect("the ConfigMap TOML parses");
    let Err(ConfigError::Invalid(issues)) = config::validate(file, &shipped_secret_values()) else {
        panic!("the placeholder values of deploy/k8s/secret.yaml were accepted as real secrets");
    };
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["token_env", "admin_token_env", "target[0].token_env", "target[1].password_env"], "{issues:?}");
    for (issue, var) in issues.iter().zip(["SCIM_IDP_TOKENS", "SCIM_ADMIN_TOKENS", "JIRA_TOKEN", "CROWD_APP_PASSWORD"])
    {
        assert!(issue.reason.contains(var) && issue.reason.contains("placeholder"), "{issue}");
        assert!(!issue.reason.contains("REPLACE-with"), "the value itself is never printed: {issue}");
    }
}

#[test]
fn check_config_exits_78_on_the_shipped_secret_and_names_the_variables() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("scimbridge.toml");
    std::fs::write(&cfg, configmap_toml()).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .args(["check-config", "--config", cfg.to_str().expect("utf8")])
        .envs(shipped_secret_values())
        .env("SCIMBRIDGE_TOKEN", "change-me-0123456789abcdef")
        .env_remove("SCIMBRIDGE_CONFIG")
        .env_remove("SCIMBRIDGE_ADMIN_TOKEN")
        .output()
        .expect("run the binary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    for var in ["SCIMBRIDGE_TOKEN", "SCIM_IDP_TOKENS", "SCIM_ADMIN_TOKENS", "JIRA_TOKEN", "CROWD_APP_PASSWORD"] {
        assert!(err.contains(&format!("environment variable {var} holds a placeholder")), "{var}: {err}");
    }
}

/// A key no config table accepts, used to make the loader list the keys it does accept.
const PROBE: &str = "zz_not_a_key";

/// The fields the loader accepts at `path`, read from its own refusal of an unknown key there
/// (every config table denies unknown fields, and serde's refusal lists the expected ones).
/// `None` when `path` is not a table with fixed fields (a plain value, an enum, a list of values).
fn accepted_fields(path: &[(String, bool)]) -> Option<Vec<String>> {
    let mut value = toml::Value::Table(toml::map::Map::from_iter([(PROBE.to_string(), toml::Value::Integer(1))]));
    for (key, is_array) in path.iter().rev() {
        if *is_array {
            value = toml::Value::Array(vec![value]);
        }
        value = toml::Value::Table(toml::map::Map::from_iter([(key.clone(), value)]));
    }
    let text = toml::to_string(&value).expect("a probe document serializes");
    let err = config::parse_file(&text).err()?;
    let line = err.lines().find(|l| l.contains(&format!("unknown field `{PROBE}`")))?;
    let expected = line.split_once("expected").map_or("", |(_, rest)| rest);
    Some(expected.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

/// Every key path the loader accepts (`limits.max_url_bytes`, `target.name`, `jwt.tenant`...),
/// found by walking the config types through [`accepted_fields`].
fn accepted_key_paths() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<Vec<(String, bool)>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let fields = accepted_fields(&path).unwrap_or_else(|| panic!("{path:?} is not a table"));
        for field in fields {
            let mut child = path.clone();
            child.push((field.clone(), false));
            let dotted = child.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(".");
            out.insert(dotted);
            if accepted_fields(&child).is_some() {
                todo.push(child);
            } else {
                child.last_mut().expect("child").1 = true;
                if accepted_fields(&child).is_some() {
                    todo.push(child);
                }
            }
        }
    }
    out
}

/// Key paths written in the example, active or commented out (`# key = value` under a `[table]`
/// or `# [table]` header): `[tls]` and `[[jwt]]` cannot be active in a file that must load
/// without certificate files or an IdP.
fn example_key_paths() -> BTreeSet<String> {
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for raw in example_text().lines() {
        let line = raw.strip_prefix('#').map_or(raw, |l| l.strip_prefix(' ').unwrap_or(l));
        let line = line.split(" #").next().unwrap_or("").trim_end();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.') {
                section = name.to_string();
                out.insert(section.clone());
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else { continue };
        let key = key.trim_end();
        if !line.starts_with(' ')
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            out.insert(if section.is_empty() { key.to_string() } else { format!("{section}.{key}") });
        }
    }
    out
}

#[test]
fn the_example_config_shows_every_key_the_loader_accepts() {
    let accepted = accepted_key_paths();
    // The walk itself must see the structure, or this test would pass on an empty set.
    for known in ["listen", "limits.max_url_bytes", "target.name", "jwt.tenant", "tls.cert_file", "cleanup.action"] {
        assert!(accepted.contains(known), "the probe missed {known}: {accepted:?}");
    }
    let shown = example_key_paths();
    let missing: Vec<&String> = accepted.difference(&shown).collect();
    assert!(missing.is_empty(), "{EXAMPLE} lacks these keys the loader accepts: {missing:?}");
    let unknown: Vec<&String> = shown.difference(&accepted).collect();
    assert!(unknown.is_empty(), "{EXAMPLE} shows keys the loader refuses: {unknown:?}");
}

#[test]
fn the_kubernetes_manifests_put_reports_on_the_data_volume() {
    // The pod's root filesystem is read-only, so `./reports` cannot be written there.
    let c = config::validate(config::parse_file(&configmap_toml()).expect("parses"), &example_env()).expect("valid");
    assert!(c.reports_dir.starts_with(&c.data_dir), "reports_dir {:?} is not on the volume", c.reports_dir);
    let sts = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/statefulset.yaml"))
        .expect("statefulset.yaml");
    let env_value = sts
        .lines()
        .skip_while(|l| l.trim() != "- name: SCIMBRIDGE_REPORTS_DIR")
        .nth(1)
        .and_then(|l| l.trim().strip_prefix("value: "))
        .expect("the StatefulSet sets SCIMBRIDGE_REPORTS_DIR");
    assert_eq!(Path::new(env_value), c.reports_dir);
    assert!(sts.contains(&format!("mountPath: {}\n", c.data_dir.display())), "the data volume is mounted at data_dir");
}
