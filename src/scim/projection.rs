//! Partial representations: the `attributes` and `excludedAttributes` parameters (RFC 7644
//! §3.4.2.5, §3.9) combined with the `returned` characteristic of every attribute (RFC 7643 §2.2,
//! §7). Works on the fully rendered resource JSON, after the store and the renderer are done, so
//! it knows nothing of how a resource is stored; `includes` lets the store skip loading
//! `members` or `groups` when they would be projected away anyway.
//!
//! Rules applied:
//! - `returned: never` (`password`) never appears; `returned: always` (`id`) is never removed;
//!   `schemas` is always kept, minus the URN of any extension whose object ends up absent
//!   (RFC 7643 §3: `schemas` lists the schemas of the attributes present, as scim2-models does);
//! - `returned: request` appears only when named in `attributes`, naming a parent does not name it;
//! - names are case-insensitive (RFC 7643 §2.1) and may be URN-qualified, name a sub-attribute
//!   (`name.givenName`, `emails.value`, `meta.lastModified`) or a whole extension URN;
//! - names the schema does not know are ignored; a complex or multi-valued attribute left with
//!   no sub-attribute, and an extension left with no attribute, are dropped (RFC 7643 §2.5:
//!   empty equals unassigned).

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult};
use super::path::{parse_attr_path, AttrPath};
use super::schema::{AttrDef, Container, ResourceSchema, Returned};

const SCHEMAS_KEY: &str = "schemas";

/// What a response keeps of a resource, parsed from the two query (or SearchRequest) parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    kind: Kind,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    /// No parameter: every `default` and `always` attribute.
    #[default]
    Default,
    /// `attributes`: only the named attributes, plus `always` ones.
    Only,
    /// `excludedAttributes`: everything but the named attributes (never an `always` one).
    Except,
}

/// One name from a list, as the client wrote it; resolved against a schema when applied, since
/// a bare extension URN can only be told from `urn:…:attribute` by knowing the extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    raw: String,
    path: AttrPath,
}

/// A resolved name, lower-cased to canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `None`: the core schema and the common attributes; `Some(urn)`: that extension.
    scope: Option<String>,
    /// `None`: every attribute of the scope (the client named a whole schema URN).
    attr: Option<String>,
    sub: Option<String>,
}

/// How the named targets select one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    Nothing,
    Whole,
    Subs(Vec<String>),
}

/// Which sub-attributes of a kept attribute survive.
#[derive(Debug, Clone, Copy)]
enum SubRule<'a> {
    All,
    Only(&'a [String]),
    Except(&'a [String]),
}

impl Projection {
    /// Parses the comma-separated `attributes` and `excludedAttributes` query parameters.
    /// Empty or absent parameters mean "not given".
    ///
    /// # Errors
    /// `400 invalidSyntax` when both lists are given (they are mutually exclusive, RFC 7644
    /// §3.9); `400 invalidPath` for a name that is not an attribute path.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Projection> {
        let split = |list: Option<&str>| -> Vec<String> {
            list.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        };
        Self::from_lists(&split(attributes), &split(excluded))
    }

    /// The same from lists of names, as a SearchRequest body carries them (RFC 7644 §3.4.3).
    ///
    /// # Errors
    /// As [`Projection::parse`].
    pub fn from_lists<S: AsRef<str>>(attributes: &[S], excluded: &[S]) -> ScimResult<Projection> {
        let items = |list: &[S]| -> ScimResult<Vec<Item>> {
            list.iter()
                .map(|s| s.as_ref().trim())
                .filter(|s| !s.is_empty())
                .map(|raw| Ok(Item { raw: raw.to_string(), path: parse_attr_path(raw)? }))
                .collect()
        };
        let (attributes, excluded) = (items(attributes)?, items(excluded)?);
        match (attributes.is_empty(), excluded.is_empty()) {
            (true, true) => Ok(Projection::default()),
            (false, true) => Ok(Projection { kind: Kind::Only, items: attributes }),
            (true, false) => Ok(Projection { kind: Kind::Except, items: excluded }),
            (false, false) => Err(ScimError::invalid_syntax(
                "attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.9)",
            )),
        }
    }

    /// True when neither parameter was given (the response still omits `never` and `request`
    /// attributes).
    pub fn is_default(&self) -> bool {
        self.kind == Kind::Default
    }

    /// Whether the top-level attribute `attr_name` (`members`, `groups`, or a URN-qualified
    /// extension attribute, or a whole extension URN) can appear in the projected resource, so the
    /// store may skip loading it when not. Unknown names are reported as included unless
    /// `attributes` restricts the response.
    pub fn includes(&self, schema: &ResourceSchema, attr_name: &str) -> bool {
        let Ok(path) = parse_attr_path(attr_name) else {
            return self.kind != Kind::Only;
        };
        let item = Item { raw: attr_name.trim().to_string(), path };
        let Some(target) = resolve(&item, schema) else {
            return self.kind != Kind::Only;
        };
        let targets = self.targets(schema);
        let scope = target.scope.as_deref();
        match &target.attr {
            None => match self.kind {
                Kind::Default => true,
                Kind::Only => targets.iter().any(|t| t.scope.as_deref() == scope),
                Kind::Except => !targets.iter().any(|t| t.scope.as_deref() == scope && t.attr.is_none()),
            },
            Some(attr) => {
                let returned = schema
                    .resolve(item.path.urn.as_deref(), &item.path.name)
                    .map_or(Returned::Default, |(_, def)| def.returned);
                decide(returned, self.kind, &select(&targets, scope, attr)).is_some()
            }
        }
    }

    /// Projects one fully rendered resource (`schemas`, `id`, `externalId`, `meta`, attributes,
    /// extension objects under their URN, `groups`/`members`). Key order is preserved.
    pub fn apply(&self, resource: &Value, schema: &ResourceSchema) -> Value {
        let Value::Object(object) = resource else {
            return resource.clone();
        };
        let targets = self.targets(schema);
        let mut out = Map::new();
        for (key, value) in object {
            if key.eq_ignore_ascii_case(SCHEMAS_KEY) {
                out.insert(key.clone(), value.clone());
                continue;
            }
            let projected = match schema.extension(key) {
                Some(ext) => {
                    let scope = ext.id.to_ascii_lowercase();
                    self.project_extension(value, &scope, |name| ext.attr(name), &targets)
                }
                None => {
                    let def = schema.resolve(None, key).map(|(_, def)| def);
                    self.project_attribute(value, def, key, None, &targets)
                }
            };
            if let Some(v) = projected {
                out.insert(key.clone(), v);
            }
        }
        if let Some(Value::Array(schemas)) = out.get(SCHEMAS_KEY) {
            let kept: Vec<Value> = schemas
                .iter()
                .filter(|urn| {
                    let Some(urn) = urn.as_str() else { return true };
                    schema.extension(urn).is_none() || out.keys().any(|k| k.eq_ignore_ascii_case(urn))
                })
                .cloned()
                .collect();
            out.insert(SCHEMAS_KEY.to_string(), Value::Array(kept));
        }
        Value::Object(out)
    }

    /// The names of the list that the schema knows, resolved.
    fn targets(&self, schema: &ResourceSchema) -> Vec<Target> {
        self.items.iter().filter_map(|item| resolve(item, schema)).collect()
    }

    fn project_attribute(
        &self,
        value: &Value,
        def: Option<&AttrDef>,
        key: &str,
        scope: Option<&str>,
        targets: &[Target],
    ) -> Option<Value> {
        let returned = def.map_or(Returned::Default, |d| d.returned);
        let name = def.map_or_else(|| key.to_ascii_lowercase(), |d| d.name.to_ascii_lowercase());
        let selection = select(targets, scope, &name);
        let rule = decide(returned, self.kind, &selection)?;
        project_value(value, def, rule)
    }

    fn project_extension<'s>(
        &self,
        value: &Value,
        scope: &str,
        attr: impl Fn(&str) -> Option<&'s AttrDef>,
        targets: &[Target],
    ) -> Option<Value> {
        let Value::Object(object) = value else {
            // Not an object: nothing to select inside; keep it unless `attributes` restricts.
            return (self.kind != Kind::Only).then(|| value.clone());
        };
        let out: Map<String, Value> = object
            .iter()
            .filter_map(|(k, v)| self.project_attribute(v, attr(k), k, Some(scope), targets).map(|v| (k.clone(), v)))
            .collect();
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

/// Resolves one name against the schema; `None` for names the schema does not know.
fn resolve(item: &Item, schema: &ResourceSchema) -> Option<Target> {
    if let Some(ext) = schema.extension(&item.raw) {
        return Some(Target { scope: Some(ext.id.to_ascii_lowercase()), attr: None, sub: None });
    }
    if item.raw.eq_ignore_ascii_case(&schema.core.id) {
        return Some(Target { scope: None, attr: None, sub: None });
    }
    let (container, def) = schema.resolve(item.path.urn.as_deref(), &item.path.name)?;
    let sub = match &item.path.sub {
        None => None,
        Some(s) => Some(def.sub(s)?.name.to_ascii_lowercase()),
    };
    let scope = match container {
        Container::Core => None,
        Container::Extension(id) => Some(id.to_ascii_lowercase()),
    };
    Some(Target { scope, attr: Some(def.name.to_ascii_lowercase()), sub })
}

/// How the targets select the attribute `attr` (lower-cased) of `scope`.
fn select(targets: &[Target], scope: Option<&str>, attr: &str) -> Selection {
    let mut subs = Vec::new();
    for t in targets.iter().filter(|t| t.scope.as_deref() == scope) {
        match (&t.attr, &t.sub) {
            (None, _) => return Selection::Whole,
            (Some(a), None) if a == attr => return Selection::Whole,
            (Some(a), Some(s)) if a == attr => subs.push(s.clone()),
            _ => {}
        }
    }
    if subs.is_empty() {
        Selection::Nothing
    } else {
        Selection::Subs(subs)
    }
}

/// Whether a top-level attribute is kept, and under which rule for its sub-attributes.
fn decide(returned: Returned, kind: Kind, selection: &Selection) -> Option<SubRule<'_>> {
    match (returned, kind, selection) {
        (Returned::Never, _, _) => None,
        (Returned::Always, _, _) | (Returned::Default, Kind::Default, _) => Some(SubRule::All),
        (Returned::Default | Returned::Request, Kind::Only, Selection::Whole) => Some(SubRule::All),
        (Returned::Default | Returned::Request, Kind::Only, Selection::Subs(s)) => Some(SubRule::Only(s)),
        (Returned::Default | Returned::Request, Kind::Only, Selection::Nothing) => None,
        (Returned::Default, Kind::Except, Selection::Nothing) => Some(SubRule::All),
        (Returned::Default, Kind::Except, Selection::Whole) => None,
        (Returned::Default, Kind::Except, Selection::Subs(s)) => Some(SubRule::Except(s)),
        (Returned::Request, Kind::Default | Kind::Except, _) => None,
    }
}

/// Applies the sub-attribute rule and the sub-attributes' own `returned` to a kept value; `None`
/// when nothing is left (null, `{}`, `[]`).
fn project_value(value: &Value, def: Option<&AttrDef>, rule: SubRule<'_>) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(object) => project_object(object, def, rule),
        Value::Array(values) => {
            let kept: Vec<Value> = values
                .iter()
                .filter_map(|v| match v {
                    Value::Object(o) => project_object(o, def, rule),
                    Value::Null => None,
                    other => Some(other.clone()),
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        scalar => Some(scalar.clone()),
    }
}

fn project_object(object: &Map<String, Value>, def: Option<&AttrDef>, rule: SubRule<'_>) -> Option<Value> {
    let out: Map<String, Value> = object
        .iter()
        .filter(|(k, v)| {
            let sub = def.and_then(|d| d.sub(k));
            let name = sub.map_or_else(|| k.to_ascii_lowercase(), |s| s.name.to_ascii_lowercase());
            let named = |list: &[String]| list.contains(&name);
            let keep = match (sub.map_or(Returned::Default, |s| s.returned), rule) {
                (Returned::Never, _) => false,
                (Returned::Always, _) | (Returned::Default, SubRule::All) => true,
                (Returned::Default, SubRule::Only(list)) => named(list),
                (Returned::Default, SubRule::Except(list)) => !named(list),
                (Returned::Request, SubRule::Only(list)) => named(list),
                (Returned::Request, _) => false,
            };
            keep && !v.is_null()
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::schema::{Registry, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
    use crate::scim::ScimType;

    fn registry() -> Registry {
        Registry::load().expect("schemas parse")
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "u1",
            "externalId": "ext-1",
            "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                     "lastModified": "2024-01-02T00:00:00Z", "location": "http://h/scim/v2/Users/u1",
                     "version": "W/\"1\""},
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "password": "secret",
            "emails": [{"value": "b@example.com", "type": "work", "primary": true},
                       {"value": "b@home.example", "type": "home", "primary": false}],
            "groups": [{"value": "g1", "$ref": "http://h/scim/v2/Groups/g1", "display": "Admins", "type": "direct"}],
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "42", "department": "R&D",
                                     "manager": {"value": "u2", "$ref": "http://h/scim/v2/Users/u2"}}
        })
    }

    fn group() -> Value {
        json!({
            "schemas": [GROUP_SCHEMA],
            "id": "g1",
            "meta": {"resourceType": "Group"},
            "displayName": "Admins",
            "members": [{"value": "u1", "$ref": "http://h/scim/v2/Users/u1", "type": "User"}]
        })
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    #[test]
    fn parse_splits_comma_separated_names_and_tolerates_whitespace() {
        let p = Projection::parse(Some(" userName , name.givenName,, emails.value "), None).expect("parse");
        assert!(!p.is_default());
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.items[1].path.sub.as_deref(), Some("givenName"));
    }

    #[test]
    fn absent_or_empty_parameters_give_the_default_projection() {
        assert!(Projection::parse(None, None).expect("parse").is_default());
        assert!(Projection::parse(Some(""), Some(" ")).expect("parse").is_default());
    }

    #[test]
    fn attributes_and_excluded_attributes_together_are_rejected() {
        let err = Projection::parse(Some("userName"), Some("name")).expect_err("exclusive");
        assert_eq!((err.status, err.scim_type), (400, Some(ScimType::InvalidSyntax)));
    }

    #[test]
    fn a_name_that_is_not_an_attribute_path_is_an_invalid_path() {
        let err = Projection::parse(Some("emails[type eq \"work\"]"), None).expect_err("bad path");
        assert_eq!((err.status, err.scim_type), (400, Some(ScimType::InvalidPath)));
    }

    #[test]
    fn the_default_projection_never_returns_the_password_and_keeps_the_rest() {
        let r = registry();
        let out = Projection::default().apply(&user(), &r.user);
        let mut expected = user();
        expected.as_object_mut().expect("object").remove("password");
        assert_eq!(out, expected);
    }

    #[test]
    fn attributes_return_only_the_named_attributes_plus_id_and_schemas() {
        let r = registry();
        let p = Projection::parse(Some("externalId"), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out, json!({"schemas": [USER_SCHEMA], "id": "u1", "externalId": "ext-1"}));
    }

    #[test]
    fn naming_the_password_in_attributes_still_does_not_return_it() {
        let r = registry();
        let p = Projection::parse(Some("password,userName"), None).expect("parse");
        assert_eq!(keys(&p.apply(&user(), &r.user)), ["schemas", "id", "userName"]);
    }

    #[test]
    fn excluded_attributes_remove_the_named_attribute_but_never_id_or_schemas() {
        let r = registry();
        let p = Projection::parse(None, Some("name,id,schemas,password")).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert!(out.get("name").is_none());
        assert!(out.get("password").is_none());
        assert_eq!(out["id"], "u1");
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert_eq!(out["userName"], "bjensen");
    }

    #[test]
    fn names_are_matched_case_insensitively() {
        let r = registry();
        let p = Projection::parse(Some("USERNAME,Name.GivenName"), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out["userName"], "bjensen");
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    }

    #[test]
    fn a_sub_attribute_selects_only_that_part_of_a_complex_attribute() {
        let r = registry();
        let p = Projection::parse(Some("name.familyName"), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out, json!({"schemas": [USER_SCHEMA], "id": "u1", "name": {"familyName": "Jensen"}}));
    }

    #[test]
    fn a_sub_attribute_selects_that_part_of_every_value_of_a_multi_valued_attribute() {
        let r = registry();
        let p = Projection::parse(Some("emails.value"), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out["emails"], json!([{"value": "b@example.com"}, {"value": "b@home.example"}]));
    }

    #[test]
    fn excluding_a_sub_attribute_keeps_the_rest_of_the_attribute() {
        let r = registry();
        let p = Projection::parse(None, Some("emails.primary,meta.version")).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out["emails"][0], json!({"value": "b@example.com", "type": "work"}));
        assert!(out["meta"].get("version").is_none());
        assert_eq!(out["meta"]["lastModified"], "2024-01-02T00:00:00Z");
    }

    #[test]
    fn a_meta_sub_attribute_can_be_requested_alone() {
        let r = registry();
        let p = Projection::parse(Some("meta.lastModified"), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out["meta"], json!({"lastModified": "2024-01-02T00:00:00Z"}));
    }

    #[test]
    fn a_sub_attribute_that_selects_nothing_drops_the_attribute() {
        let r = registry();
        let p = Projection::parse(Some("name.middleName"), None).expect("parse");
        assert_eq!(keys(&p.apply(&user(), &r.user)), ["schemas", "id"]);
    }

    #[test]
    fn a_urn_qualified_extension_attribute_selects_only_that_attribute() {
        let r = registry();
        let name = format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber");
        let p = Projection::parse(Some(&name), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(
            out,
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "u1",
                   ENTERPRISE_USER_SCHEMA: {"employeeNumber": "42"}})
        );
    }

    #[test]
    fn a_urn_qualified_extension_sub_attribute_selects_inside_the_extension() {
        let r = registry();
        let name = format!("{ENTERPRISE_USER_SCHEMA}:manager.value");
        let p = Projection::parse(Some(&name), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"manager": {"value": "u2"}}));
    }

    #[test]
    fn a_core_urn_qualified_name_resolves_like_the_bare_name() {
        let r = registry();
        let name = format!("{USER_SCHEMA}:userName");
        let p = Projection::parse(Some(&name), None).expect("parse");
        assert_eq!(keys(&p.apply(&user(), &r.user)), ["schemas", "id", "userName"]);
    }

    #[test]
    fn a_whole_extension_urn_selects_the_whole_extension_object() {
        let r = registry();
        let p = Projection::parse(Some(&ENTERPRISE_USER_SCHEMA.to_lowercase()), None).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], user()[ENTERPRISE_USER_SCHEMA]);
        assert_eq!(keys(&out), ["schemas", "id", ENTERPRISE_USER_SCHEMA]);
    }

    #[test]
    fn excluding_a_whole_extension_drops_it_and_its_urn_from_schemas() {
        let r = registry();
        let p = Projection::parse(None, Some(ENTERPRISE_USER_SCHEMA)).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
        assert_eq!(out["userName"], "bjensen");
    }

    #[test]
    fn an_extension_emptied_by_exclusions_is_dropped_with_its_urn() {
        let r = registry();
        let list = ["employeeNumber", "department", "manager"].map(|a| format!("{ENTERPRISE_USER_SCHEMA}:{a}"));
        let p = Projection::from_lists::<String>(&[], &list).expect("parse");
        let out = p.apply(&user(), &r.user);
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    }

    #[test]
    fn unknown_names_are_ignored_rather_than_rejected() {
        let r = registry();
        let p = Projection::parse(Some("userName,nosuch,name.nosuch,urn:x:y:z:attr"), None).expect("parse");
        assert_eq!(keys(&p.apply(&user(), &r.user)), ["schemas", "id", "userName"]);
        let p = Projection::parse(None, Some("nosuch,members")).expect("parse");
        let mut expected = user();
        expected.as_object_mut().expect("object").remove("password");
        assert_eq!(p.apply(&user(), &r.user), expected);
    }

    #[test]
    fn excluded_members_leave_a_group_without_members() {
        let r = registry();
        let p = Projection::parse(None, Some("members")).expect("parse");
        let out = p.apply(&group(), &r.group);
        assert_eq!(keys(&out), ["schemas", "id", "meta", "displayName"]);
    }

    #[test]
    fn includes_tells_the_store_when_members_or_groups_can_be_skipped() {
        let r = registry();
        let default = Projection::default();
        assert!(default.includes(&r.group, "members"));
        assert!(default.includes(&r.user, "groups"));
        let excluded = Projection::parse(None, Some("Members")).expect("parse");
        assert!(!excluded.includes(&r.group, "members"));
        assert!(excluded.includes(&r.group, "displayName"));
        let only = Projection::parse(Some("userName"), None).expect("parse");
        assert!(!only.includes(&r.user, "groups"));
        assert!(only.includes(&r.user, "id"));
        let only_sub = Projection::parse(Some("groups.display"), None).expect("parse");
        assert!(only_sub.includes(&r.user, "groups"));
        assert!(!default.includes(&r.user, "password"));
    }

    #[test]
    fn includes_understands_extension_names() {
        let r = registry();
        let only = Projection::parse(Some(&format!("{ENTERPRISE_USER_SCHEMA}:manager")), None).expect("parse");
        assert!(only.includes(&r.user, ENTERPRISE_USER_SCHEMA));
        assert!(only.includes(&r.user, &format!("{ENTERPRISE_USER_SCHEMA}:manager")));
        assert!(!only.includes(&r.user, &format!("{ENTERPRISE_USER_SCHEMA}:department")));
        let excluded = Projection::parse(None, Some(ENTERPRISE_USER_SCHEMA)).expect("parse");
        assert!(!excluded.includes(&r.user, ENTERPRISE_USER_SCHEMA));
    }

    #[test]
    fn a_request_sub_attribute_appears_only_when_named_itself() {
        let def: AttrDef = serde_json::from_value(json!({
            "name": "secretish", "type": "complex", "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "hint", "type": "string", "returned": "request"},
                {"name": "hash", "type": "string", "returned": "never"}
            ]
        }))
        .expect("def");
        let value = json!({"value": "v", "hint": "h", "hash": "x"});
        assert_eq!(project_value(&value, Some(&def), SubRule::All), Some(json!({"value": "v"})));
        let named = ["hint".to_string(), "hash".to_string()];
        assert_eq!(project_value(&value, Some(&def), SubRule::Only(&named)), Some(json!({"hint": "h"})));
        assert_eq!(project_value(&value, Some(&def), SubRule::Except(&named)), Some(json!({"value": "v"})));
    }

    #[test]
    fn a_request_attribute_is_returned_only_when_named_in_attributes() {
        let named = Selection::Whole;
        assert!(decide(Returned::Request, Kind::Default, &Selection::Nothing).is_none());
        assert!(decide(Returned::Request, Kind::Except, &Selection::Nothing).is_none());
        assert!(decide(Returned::Request, Kind::Only, &Selection::Nothing).is_none());
        assert!(decide(Returned::Request, Kind::Only, &named).is_some());
        assert!(decide(Returned::Always, Kind::Except, &named).is_some());
        assert!(decide(Returned::Never, Kind::Only, &named).is_none());
    }

    #[test]
    fn null_and_empty_values_are_treated_as_unassigned() {
        let r = registry();
        let resource = json!({"schemas": [USER_SCHEMA], "id": "u1", "userName": "b", "displayName": null,
                              "emails": [], "name": {}});
        assert_eq!(keys(&Projection::default().apply(&resource, &r.user)), ["schemas", "id", "userName"]);
    }
}
