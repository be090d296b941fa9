//! Group sync (issue 9, item 2): the `[groups]` table and the `[[group_map]]` array, their
//! validation, and the pure rules that turn IdP group names into Atlassian group names per target.
//!
//! Which Atlassian groups scimbridge may change ("managed" groups):
//! - a group a `[[group_map]]` entry names for that target (the admin said so), and
//! - a group scimbridge itself created in that target (recorded durably by `delivery/groups.rs`
//!   in the store's `managed_groups` tree).
//!
//! Anything else is an admin's local group and is never touched: an unmapped IdP group whose name
//! collides with an Atlassian group that scimbridge did not create gets no members added (the add
//! becomes a dead letter that says how to map it) and none removed. The policy here is pure: it
//! maps names and decides which intents exist; whether a name is managed is known only at
//! delivery, where the target and the store are.
//!
//! IdP group names compare case-insensitively (SCIM `displayName`, and Atlassian DC compares
//! group names case-insensitively too).

use serde::{Deserialize, Serialize};

use super::config::{Issue, Policy, TargetConfig, TargetPolicy};
use super::{contains_ci, eq_ci, Intent, IntentAction, Trigger};

/// What happens in Atlassian when the IdP deletes a group (a rename handles the old name the same
/// way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnGroupDelete {
    /// Take every member out of the Atlassian group; the group itself stays.
    #[default]
    RemoveMembers,
    /// Delete the Atlassian group, but only one scimbridge created. A mapped group (an admin's
    /// group such as `jira-software-users`) is never deleted: its members are removed instead.
    DeleteGroup,
    /// Leave the Atlassian group and its members as they are.
    None,
}

impl OnGroupDelete {
    pub fn as_str(self) -> &'static str {
        match self {
            OnGroupDelete::RemoveMembers => "remove_members",
            OnGroupDelete::DeleteGroup => "delete_group",
            OnGroupDelete::None => "none",
        }
    }
}

/// `[groups]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupsFile {
    /// Create Atlassian groups the IdP pushes when the target lacks them.
    pub create_missing: bool,
    pub on_group_delete: OnGroupDelete,
    /// Sync only the IdP groups named in `[[group_map]]`.
    pub only_mapped: bool,
}

impl Default for GroupsFile {
    fn default() -> Self {
        GroupsFile { create_missing: true, on_group_delete: OnGroupDelete::RemoveMembers, only_mapped: false }
    }
}

/// One `[[group_map]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapFile {
    /// The SCIM group `displayName`, compared case-insensitively.
    pub idp: String,
    /// The Atlassian group name.
    pub atlassian: String,
    /// `[[target]]` names this mapping applies to; absent = every target.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
}

/// One validated mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMap {
    pub idp: String,
    pub atlassian: String,
    /// Empty = every target.
    pub targets: Vec<String>,
}

impl GroupMap {
    fn applies_to(&self, target: &str) -> bool {
        self.targets.is_empty() || contains_ci(&self.targets, target)
    }
}

/// The validated `[groups]` and `[[group_map]]` the policy and delivery read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSync {
    pub create_missing: bool,
    pub on_group_delete: OnGroupDelete,
    pub only_mapped: bool,
    pub maps: Vec<GroupMap>,
}

impl Default for GroupSync {
    fn default() -> Self {
        GroupSync::from_file(&GroupsFile::default(), &[])
    }
}

impl GroupSync {
    fn from_file(g: &GroupsFile, maps: &[GroupMapFile]) -> GroupSync {
        GroupSync {
            create_missing: g.create_missing,
            on_group_delete: g.on_group_delete,
            only_mapped: g.only_mapped,
            maps: maps
                .iter()
                .map(|m| GroupMap {
                    idp: m.idp.trim().to_string(),
                    atlassian: m.atlassian.trim().to_string(),
                    targets: m.targets.iter().flatten().map(|t| t.trim().to_string()).collect(),
                })
                .collect(),
        }
    }

    /// Whether some `[[group_map]]` entry names IdP group `idp` (for any target).
    pub fn is_mapped_idp(&self, idp: &str) -> bool {
        self.maps.iter().any(|m| eq_ci(&m.idp, idp))
    }

    /// The Atlassian group IdP group `idp` syncs to on `target`, or `None` when it does not sync
    /// there: a mapped group syncs only to its mapped targets, under its mapped name; an unmapped
    /// one under its own name everywhere, unless `only_mapped`.
    pub fn resolve(&self, idp: &str, target: &str) -> Option<String> {
        if let Some(m) = self.maps.iter().find(|m| eq_ci(&m.idp, idp) && m.applies_to(target)) {
            return Some(m.atlassian.clone());
        }
        if self.only_mapped || self.is_mapped_idp(idp) {
            return None;
        }
        Some(idp.trim().to_string())
    }

    /// Whether `atlassian` is the target of a mapping on `target` (an admin's group scimbridge
    /// may change because the configuration says so).
    pub fn is_mapped_atlassian(&self, target: &str, atlassian: &str) -> bool {
        self.maps.iter().any(|m| eq_ci(&m.atlassian, atlassian) && m.applies_to(target))
    }

    /// Whether a member who left IdP group `idp` because the IdP deleted it (or renamed it away)
    /// is taken out of the Atlassian group. With `delete_group` only a mapped group's members
    /// are: an unmapped group is deleted whole (if scimbridge created it), which ends them.
    pub fn removes_members_on_delete(&self, idp: &str) -> bool {
        match self.on_group_delete {
            OnGroupDelete::RemoveMembers => true,
            OnGroupDelete::None => false,
            OnGroupDelete::DeleteGroup => self.is_mapped_idp(idp),
        }
    }

    /// Whether any of `idp_groups` (the user's IdP groups after a change) still syncs to
    /// `atlassian` on `target`: then leaving one of them must not remove the Atlassian membership.
    pub fn still_granted<S: AsRef<str>>(&self, idp_groups: &[S], target: &str, atlassian: &str) -> bool {
        idp_groups.iter().any(|g| self.resolve(g.as_ref(), target).is_some_and(|a| eq_ci(&a, atlassian)))
    }
}

/// A change of one IdP group itself (its existence or name, not its members; `decide.rs` handles
/// members), for the group-level intents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    Created { id: String, name: String },
    Renamed { id: String, from: String, to: String },
    Deleted { id: String, name: String },
}

/// The group-level intents of `event`: create the Atlassian group when the IdP creates one (so
/// an empty group exists too; member additions also create it on demand), and delete it when the
/// IdP deletes it and `on_group_delete = "delete_group"`. A rename is a create of the new name and
/// a delete of the old. Mapped groups are never deleted (they are the admin's), protected groups
/// never touched. The intents use the SCIM group id as their delivery lane.
pub fn decide_groups(event: &GroupEvent, policy: &Policy, targets: &[TargetPolicy]) -> Vec<Intent> {
    let sync = &policy.groups;
    if !policy.sync_groups {
        return Vec::new();
    }
    let (id, created, deleted) = match event {
        GroupEvent::Created { id, name } => (id, Some(name), None),
        GroupEvent::Renamed { id, from, to } => (id, Some(to), Some(from)),
        GroupEvent::Deleted { id, name } => (id, None, Some(name)),
    };
    let mut out = Vec::new();
    for target in targets {
        let mut push = |action: IntentAction, trigger: Trigger| {
            out.push(Intent {
                target: target.name.clone(),
                user_id: id.clone(),
                username: String::new(),
                action,
                trigger,
                dry_run: policy.dry_run,
            })
        };
        let usable = |idp: &str| {
            sync.resolve(idp, &target.name).filter(|atl| {
                !contains_ci(&policy.protected_groups, idp) && !contains_ci(&policy.protected_groups, atl)
            })
        };
        if let Some(group) = created.and_then(|n| usable(n)).filter(|_| sync.create_missing) {
            push(IntentAction::CreateGroup { group }, Trigger::GroupCreated);
        }
        let deletes = sync.on_group_delete == OnGroupDelete::DeleteGroup;
        if let Some(old) = deleted.filter(|n| deletes && !sync.is_mapped_idp(n)) {
            // A rename whose new name maps to the same Atlassian group keeps it.
            let kept = created.and_then(|n| usable(n));
            if let Some(group) = usable(old).filter(|g| !kept.as_deref().is_some_and(|k| eq_ci(k, g))) {
                push(IntentAction::DeleteGroup { group }, Trigger::GroupDeleted);
            }
        }
    }
    out
}

/// Validates `[groups]` and `[[group_map]]` against the `[[target]]` names and the protected
/// groups; on success returns what the policy reads.
///
/// # Errors
/// Every [`Issue`] found, each with its key (`group_map[1].targets[0]`) and how to fix it.
pub fn validated_groups(
    groups: &GroupsFile,
    maps: &[GroupMapFile],
    targets: &[TargetConfig],
    protected_groups: &[String],
) -> Result<GroupSync, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut issue = |key: String, reason: String| issues.push(Issue { key, reason });
    const EXAMPLE: &str =
        "e.g. [[group_map]] idp = \"SG-Jira-Users\" atlassian = \"jira-software-users\" targets = [\"jira\"]";
    let names: Vec<&str> = targets.iter().map(|t| t.name.trim()).collect();
    for (i, m) in maps.iter().enumerate() {
        let at = |field: &str| format!("group_map[{i}].{field}");
        if m.idp.trim().is_empty() {
            issue(at("idp"), format!("is empty; name the SCIM group displayName, {EXAMPLE}"));
        }
        if m.atlassian.trim().is_empty() {
            issue(at("atlassian"), format!("is empty; name the Atlassian group, {EXAMPLE}"));
        } else if contains_ci(protected_groups, m.atlassian.trim()) {
            issue(
                at("atlassian"),
                format!(
                    "{:?} is in policy.protected_groups, which are never changed; remove the mapping or the \
                     protection",
                    m.atlassian.trim()
                ),
            );
        }
        if let Some(list) = &m.targets {
            if list.is_empty() {
                issue(at("targets"), "is empty; leave it out to map on every target, or name targets".into());
            }
            for (t, name) in list.iter().enumerate() {
                if !names.iter().any(|n| eq_ci(n, name.trim())) {
                    issue(
                        at(&format!("targets[{t}]")),
                        format!(
                            "{name:?} is not the name of any [[target]] (configured: {}); use a target's name",
                            if names.is_empty() { "none".to_string() } else { names.join(", ") }
                        ),
                    );
                }
            }
        }
        // One Atlassian group per IdP group and target: two entries for the same IdP name may
        // only split the targets between them.
        for (j, earlier) in maps[..i].iter().enumerate() {
            if !eq_ci(earlier.idp.trim(), m.idp.trim()) || m.idp.trim().is_empty() {
                continue;
            }
            let overlap = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| -> Option<String> {
                match (a, b) {
                    (None, _) | (_, None) => Some("every target".to_string()),
                    (Some(a), Some(b)) => {
                        a.iter().find(|t| contains_ci(b, t.trim())).map(|t| format!("target {:?}", t.trim()))
                    }
                }
            };
            if let Some(where_) = overlap(&earlier.targets, &m.targets) {
                issue(
                    at("idp"),
                    format!(
                        "{:?} is already mapped by group_map[{j}] for {where_}; an IdP group maps to one Atlassian \
                         group per target (duplicate idp names may only split the targets between them)",
                        m.idp.trim()
                    ),
                );
            }
        }
    }
    if issues.is_empty() {
        Ok(GroupSync::from_file(groups, maps))
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlassian::Product;

    fn target(name: &str) -> TargetConfig {
        TargetConfig {
            name: name.into(),
            product: Product::Jira,
            url: "https://jira.example.com".into(),
            token_env: Some("T".into()),
            username: None,
            password_env: None,
            timeout_secs: 10,
            license_groups: vec![],
            lead_successor: None,
            anonymize_new_owner: None,
        }
    }

    fn map(idp: &str, atlassian: &str, targets: Option<&[&str]>) -> GroupMapFile {
        GroupMapFile {
            idp: idp.into(),
            atlassian: atlassian.into(),
            targets: targets.map(|t| t.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn sync(maps: &[GroupMapFile], only_mapped: bool) -> GroupSync {
        let g = GroupsFile { only_mapped, ..GroupsFile::default() };
        validated_groups(&g, maps, &[target("jira"), target("wiki")], &[]).expect("valid")
    }

    #[test]
    fn defaults_create_missing_groups_remove_members_on_delete_and_sync_every_group() {
        let d = GroupSync::default();
        assert!(d.create_missing && !d.only_mapped);
        assert_eq!(d.on_group_delete, OnGroupDelete::RemoveMembers);
        assert_eq!(d.resolve("Engineering", "jira"), Some("Engineering".into()));
    }

    #[test]
    fn a_mapped_group_syncs_under_its_atlassian_name_only_to_its_targets() {
        let s = sync(&[map("SG-Jira-Users", "jira-software-users", Some(&["jira"]))], false);
        assert_eq!(s.resolve("sg-jira-users", "jira"), Some("jira-software-users".into()));
        assert_eq!(s.resolve("SG-Jira-Users", "wiki"), None, "mapped elsewhere: not mirrored by its own name");
        assert_eq!(s.resolve("Engineering", "wiki"), Some("Engineering".into()));
        assert!(s.is_mapped_atlassian("jira", "JIRA-software-users"));
        assert!(!s.is_mapped_atlassian("wiki", "jira-software-users"));
    }

    #[test]
    fn only_mapped_drops_every_unmapped_group() {
        let s = sync(&[map("SG-Jira-Users", "jira-software-users", None)], true);
        assert_eq!(s.resolve("Engineering", "jira"), None);
        assert_eq!(s.resolve("SG-Jira-Users", "wiki"), Some("jira-software-users".into()));
    }

    #[test]
    fn one_idp_group_may_map_to_different_groups_on_different_targets() {
        let s = sync(
            &[
                map("SG-Users", "jira-software-users", Some(&["jira"])),
                map("SG-Users", "confluence-users", Some(&["wiki"])),
            ],
            false,
        );
        assert_eq!(s.resolve("SG-Users", "jira"), Some("jira-software-users".into()));
        assert_eq!(s.resolve("SG-Users", "wiki"), Some("confluence-users".into()));
    }

    #[test]
    fn another_idp_group_still_granting_the_atlassian_group_keeps_the_membership() {
        let s = sync(&[map("SG-A", "jira-software-users", None), map("SG-B", "jira-software-users", None)], false);
        assert!(s.still_granted(&["SG-B"], "jira", "jira-software-users"));
        assert!(!s.still_granted(&["Other"], "jira", "jira-software-users"));
    }

    #[test]
    fn validation_names_unknown_targets_duplicate_idp_names_and_protected_groups() {
        let maps = [
            map("SG-Jira-Users", "jira-software-users", Some(&["jria"])),
            map("sg-jira-users", "jira-core-users", None),
            map("SG-Admins", "jira-administrators", None),
            map(" ", "x", Some(&[])),
        ];
        let issues =
            validated_groups(&GroupsFile::default(), &maps, &[target("jira")], &["jira-administrators".into()])
                .expect_err("invalid");
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "group_map[0].targets[0]",
                "group_map[1].idp",
                "group_map[2].atlassian",
                "group_map[3].idp",
                "group_map[3].targets"
            ]
        );
        assert!(
            issues[0].reason.contains("\"jria\" is not the name of any [[target]] (configured: jira)"),
            "{issues:?}"
        );
        assert!(issues[1].reason.contains("already mapped by group_map[0]"), "{issues:?}");
    }

    #[test]
    fn the_same_idp_name_on_overlapping_targets_is_a_duplicate() {
        let maps = [map("G", "a", Some(&["jira"])), map("g", "b", Some(&["wiki", "JIRA"]))];
        let issues = validated_groups(&GroupsFile::default(), &maps, &[target("jira"), target("wiki")], &[])
            .expect_err("overlap");
        assert!(issues[0].reason.contains("target \"jira\""), "{issues:?}");
    }

    fn group_intents(event: GroupEvent, groups: GroupSync) -> Vec<(String, IntentAction, Trigger, String)> {
        let policy = Policy { groups, ..Policy::default() };
        let targets = [
            TargetPolicy { name: "jira".into(), product: Product::Jira, license_groups: vec![] },
            TargetPolicy { name: "wiki".into(), product: Product::Confluence, license_groups: vec![] },
        ];
        decide_groups(&event, &policy, &targets)
            .into_iter()
            .map(|i| (i.target, i.action, i.trigger, i.user_id))
            .collect()
    }

    #[test]
    fn an_idp_group_is_created_in_every_target_it_syncs_to() {
        let created = GroupEvent::Created { id: "g1".into(), name: "Engineering".into() };
        let got = group_intents(created.clone(), GroupSync::default());
        let create = IntentAction::CreateGroup { group: "Engineering".into() };
        assert_eq!(
            got,
            vec![
                ("jira".into(), create.clone(), Trigger::GroupCreated, "g1".into()),
                ("wiki".into(), create, Trigger::GroupCreated, "g1".into()),
            ]
        );
        let off = GroupSync { create_missing: false, ..GroupSync::default() };
        assert_eq!(group_intents(created, off), vec![]);
    }

    #[test]
    fn delete_group_deletes_unmapped_groups_only_and_a_rename_deletes_the_old_name() {
        let del = GroupSync { on_group_delete: OnGroupDelete::DeleteGroup, ..GroupSync::default() };
        let deleted = GroupEvent::Deleted { id: "g1".into(), name: "Engineering".into() };
        assert_eq!(group_intents(deleted.clone(), GroupSync::default()), vec![]);
        let got = group_intents(deleted, del.clone());
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, a, t, _)| *a == IntentAction::DeleteGroup { group: "Engineering".into() }
            && *t == Trigger::GroupDeleted));
        let mapped = GroupSync {
            maps: vec![GroupMap { idp: "SG".into(), atlassian: "jira-software-users".into(), targets: vec![] }],
            ..del.clone()
        };
        assert_eq!(group_intents(GroupEvent::Deleted { id: "g2".into(), name: "sg".into() }, mapped), vec![]);
        let renamed = GroupEvent::Renamed { id: "g1".into(), from: "Eng".into(), to: "Engineering".into() };
        let actions: Vec<IntentAction> = group_intents(renamed, del).into_iter().map(|i| i.1).collect();
        assert_eq!(
            actions,
            vec![
                IntentAction::CreateGroup { group: "Engineering".into() },
                IntentAction::DeleteGroup { group: "Eng".into() },
                IntentAction::CreateGroup { group: "Engineering".into() },
                IntentAction::DeleteGroup { group: "Eng".into() },
            ]
        );
    }

    #[test]
    fn the_file_keys_are_exactly_those_of_the_issue() {
        let text = "create_missing = false\non_group_delete = \"delete_group\"\nonly_mapped = true";
        let g: GroupsFile = toml::from_str(text).expect("parses");
        assert_eq!(
            g,
            GroupsFile { create_missing: false, on_group_delete: OnGroupDelete::DeleteGroup, only_mapped: true }
        );
        assert!(toml::from_str::<GroupsFile>("on_group_delete = \"purge\"").is_err());
        let m: GroupMapFile = toml::from_str("idp = \"a\"\natlassian = \"b\"\ntargets = [\"jira\"]").expect("parses");
        assert_eq!(m.targets, Some(vec!["jira".to_string()]));
    }
}
