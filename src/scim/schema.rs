//! The schema registry (RFC 7643 §2, §6, §7): attribute definitions read from the JSON files in
//! `schemas/`, embedded at compile time so nothing is read from disk while serving. Everything
//! that needs an attribute's characteristics (case sensitivity, mutability, `returned`, type)
//! asks here; no other module repeats the schema.
//!
//! Attribute names are matched case-insensitively everywhere (RFC 7643 §2.1).

use serde::Deserialize;
use serde_json::Value;

use super::error::{ScimError, ScimResult};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The raw discovery documents, exactly as committed in `schemas/`.
pub mod documents {
    pub const USER: &str = include_str!("../../schemas/User.json");
    pub const ENTERPRISE_USER: &str = include_str!("../../schemas/EnterpriseUser.json");
    pub const GROUP: &str = include_str!("../../schemas/Group.json");
    pub const RESOURCE_TYPE_USER: &str = include_str!("../../schemas/ResourceType-User.json");
    pub const RESOURCE_TYPE_GROUP: &str = include_str!("../../schemas/ResourceType-Group.json");
    pub const SERVICE_PROVIDER_CONFIG: &str = include_str!("../../schemas/ServiceProviderConfig.json");
    /// Every schema document served at `/Schemas`, in order.
    pub const SCHEMAS: [&str; 3] = [USER, ENTERPRISE_USER, GROUP];
    pub const RESOURCE_TYPES: [&str; 2] = [RESOURCE_TYPE_USER, RESOURCE_TYPE_GROUP];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Reference,
    Binary,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttrDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub sub_attributes: Vec<AttrDef>,
}

impl AttrDef {
    /// A sub-attribute by name, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&AttrDef> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Schema {
    pub id: String,
    pub attributes: Vec<AttrDef>,
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// The common attributes of RFC 7643 §3.1, which no schema document lists.
fn common_attributes() -> Vec<AttrDef> {
    let common = serde_json::json!([
        {"name":"id","type":"string","caseExact":true,"mutability":"readOnly","returned":"always"},
        {"name":"externalId","type":"string","caseExact":true,"mutability":"readWrite","returned":"default"},
        {"name":"meta","type":"complex","mutability":"readOnly","returned":"default","subAttributes":[
            {"name":"resourceType","type":"string","caseExact":true,"mutability":"readOnly"},
            {"name":"created","type":"dateTime","mutability":"readOnly"},
            {"name":"lastModified","type":"dateTime","mutability":"readOnly"},
            {"name":"location","type":"reference","caseExact":true,"mutability":"readOnly"},
            {"name":"version","type":"string","caseExact":true,"mutability":"readOnly"}
        ]}
    ]);
    serde_json::from_value(common).unwrap_or_default()
}

/// Where an attribute lives in a resource's JSON: at the top level (core) or inside an
/// extension's object, keyed by the extension URN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container<'a> {
    Core,
    Extension(&'a str),
}

/// The schemas one resource type uses: its core schema, its extensions and the common attributes.
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    pub name: String,
    pub endpoint: String,
    pub core: Schema,
    pub extensions: Vec<Schema>,
    common: Vec<AttrDef>,
}

impl ResourceSchema {
    /// Resolves a top-level attribute. `urn` is the schema URN the client qualified the name with,
    /// if any (`urn:…:enterprise:2.0:User:employeeNumber`).
    pub fn resolve(&self, urn: Option<&str>, name: &str) -> Option<(Container<'_>, &AttrDef)> {
        match urn {
            None => self
                .common
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .or_else(|| self.core.attr(name))
                .map(|a| (Container::Core, a)),
            Some(u) if u.eq_ignore_ascii_case(&self.core.id) => self
                .core
                .attr(name)
                .or_else(|| self.common.iter().find(|a| a.name.eq_ignore_ascii_case(name)))
                .map(|a| (Container::Core, a)),
            Some(u) => {
                let ext = self.extension(u)?;
                ext.attr(name).map(|a| (Container::Extension(ext.id.as_str()), a))
            }
        }
    }

    /// A resource type from already-parsed schemas, with the RFC 7643 §3.1 common attributes
    /// added (tests and the registry build resource types this way).
    pub fn from_parts(name: &str, endpoint: &str, core: Schema, extensions: Vec<Schema>) -> ResourceSchema {
        ResourceSchema {
            name: name.to_string(),
            endpoint: endpoint.to_string(),
            core,
            extensions,
            common: common_attributes(),
        }
    }

    /// An extension schema by URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&Schema> {
        self.extensions.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// All top-level attributes of the core schema and the common attributes.
    pub fn core_attributes(&self) -> impl Iterator<Item = &AttrDef> {
        self.common.iter().chain(self.core.attributes.iter())
    }

    /// The URNs a resource of this type may carry in `schemas`.
    pub fn schema_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.core.id.as_str()).chain(self.extensions.iter().map(|s| s.id.as_str()))
    }
}

/// Every resource type this server serves, built once at start.
#[derive(Debug, Clone)]
pub struct Registry {
    pub user: ResourceSchema,
    pub group: ResourceSchema,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceTypeDoc {
    name: String,
    endpoint: String,
    schema: String,
    #[serde(default)]
    schema_extensions: Vec<ExtensionRef>,
}

#[derive(Deserialize)]
struct ExtensionRef {
    schema: String,
}

impl Registry {
    /// Parses the embedded documents.
    ///
    /// # Errors
    /// Only if a committed schema file is malformed, which the unit tests below rule out.
    pub fn load() -> ScimResult<Registry> {
        let parse = |text: &str| -> ScimResult<Value> {
            serde_json::from_str(text).map_err(|e| ScimError::internal(format!("bad schema document: {e}")))
        };
        let schemas: Vec<Schema> = documents::SCHEMAS
            .iter()
            .map(|t| {
                parse(t).and_then(|v| {
                    serde_json::from_value(v).map_err(|e| ScimError::internal(format!("bad schema: {e}")))
                })
            })
            .collect::<ScimResult<_>>()?;
        let find = |id: &str| {
            schemas
                .iter()
                .find(|s| s.id == id)
                .cloned()
                .ok_or_else(|| ScimError::internal(format!("schema {id} missing")))
        };
        let build = |text: &str| -> ScimResult<ResourceSchema> {
            let doc: ResourceTypeDoc = serde_json::from_value(parse(text)?)
                .map_err(|e| ScimError::internal(format!("bad resource type: {e}")))?;
            Ok(ResourceSchema {
                name: doc.name,
                endpoint: doc.endpoint,
                core: find(&doc.schema)?,
                extensions: doc.schema_extensions.iter().map(|e| find(&e.schema)).collect::<ScimResult<_>>()?,
                common: common_attributes(),
            })
        };
        Ok(Registry { user: build(documents::RESOURCE_TYPE_USER)?, group: build(documents::RESOURCE_TYPE_GROUP)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_documents_load_into_a_registry() {
        let r = Registry::load().expect("schemas parse");
        assert_eq!(r.user.endpoint, "/Users");
        assert_eq!(r.group.endpoint, "/Groups");
        assert!(r.user.extension(ENTERPRISE_USER_SCHEMA).is_some());
    }

    #[test]
    fn attribute_lookup_ignores_case_and_honours_urn_qualification() {
        let r = Registry::load().expect("schemas parse");
        let (c, a) = r.user.resolve(None, "USERNAME").expect("userName");
        assert_eq!((c, a.name.as_str(), a.case_exact), (Container::Core, "userName", false));
        let (c, a) = r.user.resolve(Some(ENTERPRISE_USER_SCHEMA), "employeenumber").expect("ext");
        assert_eq!((c, a.name.as_str()), (Container::Extension(ENTERPRISE_USER_SCHEMA), "employeeNumber"));
        let (_, id) = r.user.resolve(Some(USER_SCHEMA), "id").expect("id");
        assert_eq!(id.returned, Returned::Always);
        assert!(r.user.resolve(None, "employeeNumber").is_none());
    }

    #[test]
    fn the_full_rfc_7643_documents_load_with_their_key_characteristics() {
        let r = Registry::load().expect("schemas parse");
        let attr = |s: &ResourceSchema, name: &str| s.resolve(None, name).map(|(_, a)| a.clone()).expect(name);

        let user_name = attr(&r.user, "userName");
        assert!(user_name.required && !user_name.case_exact);
        let password = attr(&r.user, "password");
        assert_eq!((password.mutability, password.returned), (Mutability::WriteOnly, Returned::Never));
        let groups = attr(&r.user, "groups");
        assert!(groups.multi_valued);
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        for name in ["value", "$ref", "display", "type"] {
            assert_eq!(groups.sub(name).expect(name).mutability, Mutability::ReadOnly, "groups.{name}");
        }
        let all_of_section_4_1 =
            "name displayName nickName profileUrl title userType preferredLanguage locale timezone \
             active emails phoneNumbers ims photos addresses entitlements roles x509Certificates";
        for name in all_of_section_4_1.split_whitespace() {
            assert!(r.user.resolve(None, name).is_some(), "User.{name}");
        }
        assert_eq!(attr(&r.user, "x509Certificates").sub("value").map(|a| a.kind), Some(AttrType::Binary));
        assert_eq!(attr(&r.user, "photos").sub("value").map(|a| a.kind), Some(AttrType::Reference));

        let display_name = attr(&r.group, "displayName");
        assert!(display_name.required);
        let members = attr(&r.group, "members");
        assert!(members.multi_valued && members.kind == AttrType::Complex);
        for name in ["value", "$ref", "type"] {
            assert_eq!(members.sub(name).expect(name).mutability, Mutability::Immutable, "members.{name}");
        }
        assert_eq!(members.sub("display").map(|a| a.mutability), Some(Mutability::ReadOnly));

        let (_, manager) = r.user.resolve(Some(ENTERPRISE_USER_SCHEMA), "manager").expect("manager");
        assert_eq!(manager.kind, AttrType::Complex);
        assert_eq!(manager.sub("$ref").map(|a| a.kind), Some(AttrType::Reference));
        assert_eq!(manager.sub("displayName").map(|a| a.mutability), Some(Mutability::ReadOnly));
    }
}
