//! The immutable in-memory view every listener reads. A commit builds the next snapshot from the previous one
//! with structural sharing (imbl), then publishes it with one atomic pointer swap; readers never lock and never
//! touch the store.

use crate::conditional::{AccessPolicy, IpList};
use crate::id::Id;
use crate::model::*;
use crate::store::{Kind, Op, StoreError};
use imbl::{HashMap, OrdMap, OrdSet};
use std::sync::Arc;

/// Meta record keys.
pub const META_ORG: &str = "org";
pub const META_POLICY: &str = "password_policy";
pub const META_ALLOCATORS: &str = "allocators";
/// A value sealed under the master key, which proves at start that the key is the directory's.
pub const META_KEY_CHECK: &str = "master_key_check";

/// One consistent state of the directory.
#[derive(Clone)]
pub struct Snapshot {
    /// The store's change sequence this snapshot reflects.
    pub sequence: u64,
    pub org: Option<Arc<OrgSettings>>,
    pub policy: Arc<PasswordPolicy>,
    pub allocators: Allocators,
    /// The master key's check value ([`META_KEY_CHECK`]); `None` in a directory made before it existed.
    pub key_check: Option<crate::crypto::Sealed>,
    pub users: HashMap<Id, Arc<User>>,
    pub user_by_name: HashMap<String, Id>,
    /// Users in user-name order (folded names), for lists shown a page at a time.
    pub user_order: OrdMap<String, Id>,
    pub user_by_email: HashMap<String, Id>,
    /// Folded login names (only users whose login name is not their user name).
    pub user_by_login: HashMap<String, Id>,
    pub user_by_uid: OrdMap<u32, Id>,
    /// External ids (set by a provisioning client; not unique across clients) → users, exact match.
    pub user_by_external_id: HashMap<String, OrdSet<Id>>,
    /// External ids → groups, exact match.
    pub group_by_external_id: HashMap<String, OrdSet<Id>>,
    pub groups: HashMap<Id, Arc<Group>>,
    pub group_by_name: HashMap<String, Id>,
    pub group_by_gid: HashMap<u32, Id>,
    pub group_by_linux_name: HashMap<String, Id>,
    /// group → members
    pub members: HashMap<Id, OrdSet<Id>>,
    /// user → groups
    pub memberships: HashMap<Id, IdList>,
    /// resource → bound groups
    pub bindings: HashMap<Resource, OrdSet<Id>>,
    /// group → resources it is bound to
    pub group_bindings: HashMap<Id, OrdSet<Resource>>,
    pub radius_servers: HashMap<Id, Arc<RadiusServer>>,
    pub external_directories: HashMap<Id, Arc<ExternalDirectory>>,
    /// By (directory, user).
    pub external_accounts: HashMap<(Id, Id), Arc<ExternalAccount>>,
    pub apps: HashMap<Id, Arc<SsoApp>>,
    pub admins: HashMap<Id, Arc<Admin>>,
    pub admin_by_email: HashMap<String, Id>,
    pub api_keys: HashMap<Id, Arc<ApiKey>>,
    pub api_key_by_hash: HashMap<String, Id>,
    pub scim_tokens: HashMap<Id, Arc<ScimToken>>,
    pub scim_token_by_hash: HashMap<String, Id>,
    pub outbox: HashMap<Id, Arc<OutboxItem>>,
    /// By (app, user or group).
    pub provisioned: HashMap<(Id, Id), Arc<Provisioned>>,
    pub access_policies: HashMap<Id, Arc<AccessPolicy>>,
    /// The policies in evaluation order (priority, then name), rebuilt when one changes.
    pub policy_order: Arc<crate::conditional::PolicySet>,
    pub ip_lists: HashMap<Id, Arc<IpList>>,
}

/// A small sorted set of ids: a user's groups. A user has a handful, and a vector of them costs far less than a
/// persistent B-tree set, whose every node has room for 16 (200,000 users: 561 → 517 MiB resident).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdList(Vec<Id>);

impl IdList {
    /// Add an id; false when it was there.
    pub fn insert(&mut self, id: Id) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }

    /// Remove an id; false when it was not there.
    pub fn remove(&mut self, id: &Id) -> bool {
        match self.0.binary_search(id) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.0.binary_search(id).is_ok()
    }

    /// In id order.
    pub fn iter(&self) -> std::slice::Iter<'_, Id> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for IdList {
    type Item = Id;
    type IntoIter = std::vec::IntoIter<Id>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a IdList {
    type Item = &'a Id;
    type IntoIter = std::slice::Iter<'a, Id>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

fn index(map: &mut HashMap<String, OrdSet<Id>>, key: Option<&str>, id: &Id) {
    if let Some(k) = key {
        map.entry(k.to_string()).or_default().insert(id.clone());
    }
}

fn unindex(map: &mut HashMap<String, OrdSet<Id>>, key: Option<&str>, id: &Id) {
    if let Some(k) = key {
        if let Some(set) = map.get_mut(k) {
            set.remove(id);
            if set.is_empty() {
                map.remove(k);
            }
        }
    }
}

fn corrupt_link(kind: Kind, key: &str) -> StoreError {
    StoreError::Corrupt {
        kind: kind.table_name(),
        key: key.to_string(),
        reason: "malformed key".into(),
    }
}

/// `<group id>/<other>` of a membership or binding key.
fn link(kind: Kind, key: &str) -> Result<(Id, &str), StoreError> {
    let (group, other) = key.split_once('/').ok_or_else(|| corrupt_link(kind, key))?;
    Ok((
        Id::parse(group).ok_or_else(|| corrupt_link(kind, key))?,
        other,
    ))
}

/// Case-folded key for unique names.
pub fn fold(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Snapshot {
    pub fn empty() -> Self {
        Snapshot {
            sequence: 0,
            org: None,
            policy: Arc::new(PasswordPolicy::default()),
            allocators: Allocators::default(),
            key_check: None,
            users: HashMap::new(),
            user_by_name: HashMap::new(),
            user_order: OrdMap::new(),
            user_by_email: HashMap::new(),
            user_by_login: HashMap::new(),
            user_by_uid: OrdMap::new(),
            user_by_external_id: HashMap::new(),
            group_by_external_id: HashMap::new(),
            groups: HashMap::new(),
            group_by_name: HashMap::new(),
            group_by_gid: HashMap::new(),
            group_by_linux_name: HashMap::new(),
            members: HashMap::new(),
            memberships: HashMap::new(),
            bindings: HashMap::new(),
            group_bindings: HashMap::new(),
            radius_servers: HashMap::new(),
            external_directories: HashMap::new(),
            external_accounts: HashMap::new(),
            apps: HashMap::new(),
            admins: HashMap::new(),
            admin_by_email: HashMap::new(),
            api_keys: HashMap::new(),
            api_key_by_hash: HashMap::new(),
            scim_tokens: HashMap::new(),
            scim_token_by_hash: HashMap::new(),
            outbox: HashMap::new(),
            provisioned: HashMap::new(),
            access_policies: HashMap::new(),
            policy_order: Arc::default(),
            ip_lists: HashMap::new(),
        }
    }

    /// Build from every record of a store, read one at a time ([`crate::store::Store::load_each`]).
    pub fn from_store(store: &dyn crate::store::Store) -> Result<Self, StoreError> {
        let mut s = Snapshot::empty();
        // Links name records that may come later in the read; they are applied once every record is in.
        let mut links = Vec::new();
        s.sequence = store.load_each(&mut |kind, key, bytes| match kind {
            Kind::Membership | Kind::Binding => {
                links.push((kind, key.to_string()));
                Ok(())
            }
            _ => s.put_record(kind, key, bytes),
        })?;
        for (kind, key) in links {
            s.put_record(kind, &key, &[])?;
        }
        Ok(s)
    }

    /// Apply one stored change to the snapshot: how records written by another node reach this one.
    pub(crate) fn apply_op(&mut self, op: &Op) -> Result<(), StoreError> {
        match op {
            Op::Put { kind, key, value } => self.put_record(*kind, key, value),
            Op::Delete { kind, key } => self.delete_record(*kind, key),
        }
    }

    fn put_record(&mut self, kind: Kind, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        fn parse<T: serde::de::DeserializeOwned>(
            kind: Kind,
            key: &str,
            bytes: &[u8],
        ) -> Result<T, StoreError> {
            serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                kind: kind.table_name(),
                key: key.to_string(),
                reason: crate::store::decode_failure(&e),
            })
        }
        match kind {
            Kind::Meta => match key {
                META_ORG => self.org = Some(Arc::new(parse(kind, key, bytes)?)),
                META_POLICY => self.policy = Arc::new(parse(kind, key, bytes)?),
                META_ALLOCATORS => self.allocators = parse(kind, key, bytes)?,
                META_KEY_CHECK => self.key_check = Some(parse(kind, key, bytes)?),
                _ => {}
            },
            Kind::User => self.put_user(Arc::new(parse(kind, key, bytes)?)),
            Kind::Group => self.put_group(Arc::new(parse(kind, key, bytes)?)),
            Kind::Membership | Kind::Binding => {
                let (group, other) = link(kind, key)?;
                match kind {
                    Kind::Membership => {
                        let user = Id::parse(other).ok_or_else(|| corrupt_link(kind, key))?;
                        self.add_member(&group, &user)
                    }
                    _ => self.bind(
                        &group,
                        Resource::parse(other).ok_or_else(|| corrupt_link(kind, key))?,
                    ),
                }
            }
            Kind::RadiusServer => {
                let r: RadiusServer = parse(kind, key, bytes)?;
                self.radius_servers.insert(r.id.clone(), Arc::new(r));
            }
            Kind::App => {
                let a: SsoApp = parse(kind, key, bytes)?;
                self.apps.insert(a.id.clone(), Arc::new(a));
            }
            Kind::Admin => self.put_admin(Arc::new(parse(kind, key, bytes)?)),
            Kind::ApiKey => self.put_api_key(Arc::new(parse(kind, key, bytes)?)),
            Kind::ScimToken => self.put_scim_token(Arc::new(parse(kind, key, bytes)?)),
            Kind::Outbox => {
                let o: OutboxItem = parse(kind, key, bytes)?;
                self.outbox.insert(o.id.clone(), Arc::new(o));
            }
            Kind::Provisioned => {
                let p: Provisioned = parse(kind, key, bytes)?;
                self.provisioned
                    .insert((p.app.clone(), p.subject.clone()), Arc::new(p));
            }
            Kind::ExternalDirectory => {
                let d: ExternalDirectory = parse(kind, key, bytes)?;
                self.external_directories.insert(d.id.clone(), Arc::new(d));
            }
            Kind::ExternalAccount => {
                let a: ExternalAccount = parse(kind, key, bytes)?;
                self.external_accounts
                    .insert((a.directory.clone(), a.user.clone()), Arc::new(a));
            }
            Kind::AccessPolicy => self.put_access_policy(Arc::new(parse(kind, key, bytes)?)),
            Kind::IpList => {
                let l: IpList = parse(kind, key, bytes)?;
                self.ip_lists.insert(l.id.clone(), Arc::new(l));
            }
        }
        Ok(())
    }

    fn delete_record(&mut self, kind: Kind, key: &str) -> Result<(), StoreError> {
        let id = || Id::parse(key).ok_or_else(|| corrupt_link(kind, key));
        match kind {
            Kind::Meta => {}
            Kind::User => {
                self.remove_user(&id()?);
            }
            Kind::Group => {
                self.remove_group(&id()?);
            }
            Kind::Membership => {
                let (group, other) = link(kind, key)?;
                let user = Id::parse(other).ok_or_else(|| corrupt_link(kind, key))?;
                self.remove_member(&group, &user);
            }
            Kind::Binding => {
                let (group, other) = link(kind, key)?;
                let r = Resource::parse(other).ok_or_else(|| corrupt_link(kind, key))?;
                self.unbind(&group, &r);
            }
            Kind::RadiusServer => {
                self.radius_servers.remove(&id()?);
            }
            Kind::App => {
                self.apps.remove(&id()?);
            }
            Kind::Admin => {
                self.remove_admin(&id()?);
            }
            Kind::ApiKey => {
                self.remove_api_key(&id()?);
            }
            Kind::ScimToken => {
                self.remove_scim_token(&id()?);
            }
            Kind::Outbox => {
                self.outbox.remove(&id()?);
            }
            Kind::Provisioned => {
                if let Some((app, subject)) = key.split_once('/') {
                    if let (Some(app), Some(subject)) = (Id::parse(app), Id::parse(subject)) {
                        self.provisioned.remove(&(app, subject));
                    }
                }
            }
            Kind::ExternalDirectory => {
                self.external_directories.remove(&id()?);
            }
            Kind::ExternalAccount => {
                if let Some((d, u)) = key.split_once('/') {
                    if let (Some(d), Some(u)) = (Id::parse(d), Id::parse(u)) {
                        self.external_accounts.remove(&(d, u));
                    }
                }
            }
            Kind::AccessPolicy => self.remove_access_policy(&id()?),
            Kind::IpList => {
                self.ip_lists.remove(&id()?);
            }
        }
        Ok(())
    }

    // ----- reads -----

    pub fn user(&self, id: &Id) -> Option<&Arc<User>> {
        self.users.get(id)
    }

    pub fn user_by_username(&self, username: &str) -> Option<&Arc<User>> {
        self.user_by_name
            .get(&fold(username))
            .and_then(|id| self.users.get(id))
    }

    /// The user a sign-in name stands for: the user with that user name, else the one with that login name.
    /// Never an e-mail address (see [`crate::Directory::login_name`] for forms that take one).
    pub fn user_by_login_name(&self, name: &str) -> Option<&Arc<User>> {
        self.user_by_username(name).or_else(|| {
            self.user_by_login
                .get(&fold(name))
                .and_then(|id| self.users.get(id))
        })
    }

    /// Users whose external id is exactly `external_id`.
    pub fn users_by_external_id(&self, external_id: &str) -> impl Iterator<Item = &Arc<User>> {
        self.user_by_external_id
            .get(external_id)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.users.get(id))
    }

    /// Groups whose external id is exactly `external_id`.
    pub fn groups_by_external_id(&self, external_id: &str) -> impl Iterator<Item = &Arc<Group>> {
        self.group_by_external_id
            .get(external_id)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.groups.get(id))
    }

    pub fn user_by_mail(&self, email: &str) -> Option<&Arc<User>> {
        self.user_by_email
            .get(&fold(email))
            .and_then(|id| self.users.get(id))
    }

    pub fn user_by_uid_number(&self, uid: u32) -> Option<&Arc<User>> {
        self.user_by_uid.get(&uid).and_then(|id| self.users.get(id))
    }

    pub fn group(&self, id: &Id) -> Option<&Arc<Group>> {
        self.groups.get(id)
    }

    pub fn group_by_group_name(&self, name: &str) -> Option<&Arc<Group>> {
        self.group_by_name
            .get(&fold(name))
            .and_then(|id| self.groups.get(id))
    }

    /// The groups a user belongs to.
    pub fn groups_of(&self, user: &Id) -> impl Iterator<Item = &Arc<Group>> {
        self.memberships
            .get(user)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|g| self.groups.get(g))
    }

    /// The members of a group.
    pub fn members_of(&self, group: &Id) -> impl Iterator<Item = &Arc<User>> {
        self.members
            .get(group)
            .into_iter()
            .flat_map(|set| set.iter())
            .filter_map(|u| self.users.get(u))
    }

    /// The user's groups bound to `resource`, highest priority first.
    pub fn put_access_policy(&mut self, p: Arc<AccessPolicy>) {
        self.access_policies.insert(p.id.clone(), p);
        self.policy_order = Arc::new(crate::conditional::PolicySet::new(&self.access_policies));
    }

    pub fn remove_access_policy(&mut self, id: &Id) {
        if self.access_policies.remove(id).is_some() {
            self.policy_order = Arc::new(crate::conditional::PolicySet::new(&self.access_policies));
        }
    }

    pub fn granting_groups(&self, user: &Id, resource: &Resource) -> Vec<Arc<Group>> {
        let Some(bound) = self.bindings.get(resource) else {
            return Vec::new();
        };
        let mut groups: Vec<Arc<Group>> = self
            .groups_of(user)
            .filter(|g| bound.contains(&g.id))
            .cloned()
            .collect();
        groups.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        groups
    }

    /// The users who reach an app: members of the groups bound to it.
    pub fn app_members(&self, app: &Id) -> Vec<Arc<User>> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for g in self.bound_groups(&Resource::App(app.clone())) {
            for u in self.members_of(&g) {
                if seen.insert(u.id.clone()) {
                    out.push(Arc::clone(u));
                }
            }
        }
        out
    }

    /// Implicit deny: true only when one of the user's groups is bound to the resource.
    pub fn is_bound(&self, user: &Id, resource: &Resource) -> bool {
        let Some(bound) = self.bindings.get(resource) else {
            return false;
        };
        self.memberships
            .get(user)
            .is_some_and(|groups| groups.iter().any(|g| bound.contains(g)))
    }

    /// Custom attributes as a member sees them: groups' attributes by ascending priority, then the user's own.
    pub fn effective_attributes(&self, user: &User) -> std::collections::BTreeMap<String, String> {
        let mut groups: Vec<&Arc<Group>> = self.groups_of(&user.id).collect();
        groups.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| b.name.cmp(&a.name))
        });
        let mut out = std::collections::BTreeMap::new();
        for g in groups {
            for (k, v) in &g.attributes {
                out.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &user.attributes {
            out.insert(k.clone(), v.clone());
        }
        out
    }

    /// True when the user belongs to a Samba-enabled group.
    pub fn in_samba_group(&self, user: &Id) -> bool {
        self.groups_of(user).any(|g| g.samba)
    }

    /// True when the user belongs to a group bound to a RADIUS profile that allows a method checked against the
    /// NT hash (PEAP-MSCHAPv2, MS-CHAPv2, EAP-TTLS/MSCHAPv2).
    pub fn needs_nt_hash_for_radius(&self, user: &Id) -> bool {
        self.groups_of(user).any(|g| {
            self.group_bindings.get(&g.id).is_some_and(|res| {
                res.iter().any(|r| match r {
                    Resource::Radius(id) => self
                        .radius_servers
                        .get(id)
                        .is_some_and(|s| s.methods.iter().any(|m| m.uses_nt_hash())),
                    _ => false,
                })
            })
        })
    }

    pub fn admin_by_mail(&self, email: &str) -> Option<&Arc<Admin>> {
        self.admin_by_email
            .get(&fold(email))
            .and_then(|id| self.admins.get(id))
    }

    // ----- writes (used by the directory's transaction only) -----

    pub(crate) fn put_user(&mut self, user: Arc<User>) {
        let old = self.users.get(&user.id).cloned();
        if old.as_ref().is_none_or(|o| o.username != user.username) {
            if let Some(o) = &old {
                self.user_order.remove(&fold(&o.username));
            }
            self.user_order
                .insert(fold(&user.username), user.id.clone());
        }
        if let Some(old) = old {
            self.user_by_name.remove(&fold(&old.username));
            self.user_by_email.remove(&fold(&old.email));
            if let Some(l) = &old.login_name {
                self.user_by_login.remove(&fold(l));
            }
            self.user_by_uid.remove(&old.uid_number);
            unindex(
                &mut self.user_by_external_id,
                old.external_id.as_deref(),
                &old.id,
            );
        }
        index(
            &mut self.user_by_external_id,
            user.external_id.as_deref(),
            &user.id,
        );
        if let Some(l) = &user.login_name {
            self.user_by_login.insert(fold(l), user.id.clone());
        }
        self.user_by_name
            .insert(fold(&user.username), user.id.clone());
        self.user_by_email
            .insert(fold(&user.email), user.id.clone());
        self.user_by_uid.insert(user.uid_number, user.id.clone());
        self.users.insert(user.id.clone(), user);
    }

    pub(crate) fn remove_user(&mut self, id: &Id) -> Option<Arc<User>> {
        let old = self.users.remove(id)?;
        self.user_by_name.remove(&fold(&old.username));
        self.user_order.remove(&fold(&old.username));
        self.user_by_email.remove(&fold(&old.email));
        if let Some(l) = &old.login_name {
            self.user_by_login.remove(&fold(l));
        }
        self.user_by_uid.remove(&old.uid_number);
        unindex(
            &mut self.user_by_external_id,
            old.external_id.as_deref(),
            &old.id,
        );
        if let Some(groups) = self.memberships.remove(id) {
            for g in groups {
                if let Some(set) = self.members.get_mut(&g) {
                    set.remove(id);
                }
            }
        }
        Some(old)
    }

    pub(crate) fn put_group(&mut self, group: Arc<Group>) {
        if let Some(old) = self.groups.get(&group.id).cloned() {
            self.group_by_name.remove(&fold(&old.name));
            unindex(
                &mut self.group_by_external_id,
                old.external_id.as_deref(),
                &old.id,
            );
            if let Some(lg) = &old.linux_group {
                self.group_by_gid.remove(&lg.gid);
                self.group_by_linux_name.remove(&fold(&lg.name));
            }
        }
        self.group_by_name
            .insert(fold(&group.name), group.id.clone());
        index(
            &mut self.group_by_external_id,
            group.external_id.as_deref(),
            &group.id,
        );
        if let Some(lg) = &group.linux_group {
            self.group_by_gid.insert(lg.gid, group.id.clone());
            self.group_by_linux_name
                .insert(fold(&lg.name), group.id.clone());
        }
        self.groups.insert(group.id.clone(), group);
    }

    pub(crate) fn remove_group(&mut self, id: &Id) -> Option<Arc<Group>> {
        let old = self.groups.remove(id)?;
        self.group_by_name.remove(&fold(&old.name));
        unindex(
            &mut self.group_by_external_id,
            old.external_id.as_deref(),
            &old.id,
        );
        if let Some(lg) = &old.linux_group {
            self.group_by_gid.remove(&lg.gid);
            self.group_by_linux_name.remove(&fold(&lg.name));
        }
        if let Some(users) = self.members.remove(id) {
            for u in users {
                if let Some(set) = self.memberships.get_mut(&u) {
                    set.remove(id);
                }
            }
        }
        if let Some(resources) = self.group_bindings.remove(id) {
            for r in resources {
                if let Some(set) = self.bindings.get_mut(&r) {
                    set.remove(id);
                }
            }
        }
        Some(old)
    }

    pub(crate) fn add_member(&mut self, group: &Id, user: &Id) {
        self.members
            .entry(group.clone())
            .or_default()
            .insert(user.clone());
        self.memberships
            .entry(user.clone())
            .or_default()
            .insert(group.clone());
    }

    pub(crate) fn remove_member(&mut self, group: &Id, user: &Id) {
        if let Some(set) = self.members.get_mut(group) {
            set.remove(user);
        }
        if let Some(set) = self.memberships.get_mut(user) {
            set.remove(group);
        }
    }

    pub(crate) fn bind(&mut self, group: &Id, resource: Resource) {
        self.bindings
            .entry(resource.clone())
            .or_default()
            .insert(group.clone());
        self.group_bindings
            .entry(group.clone())
            .or_default()
            .insert(resource);
    }

    pub(crate) fn unbind(&mut self, group: &Id, resource: &Resource) {
        if let Some(set) = self.bindings.get_mut(resource) {
            set.remove(group);
        }
        if let Some(set) = self.group_bindings.get_mut(group) {
            set.remove(resource);
        }
    }

    /// Groups bound to a resource.
    pub fn bound_groups(&self, resource: &Resource) -> Vec<Id> {
        self.bindings
            .get(resource)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn put_admin(&mut self, admin: Arc<Admin>) {
        if let Some(old) = self.admins.get(&admin.id).cloned() {
            self.admin_by_email.remove(&fold(&old.email));
        }
        self.admin_by_email
            .insert(fold(&admin.email), admin.id.clone());
        self.admins.insert(admin.id.clone(), admin);
    }

    pub(crate) fn remove_admin(&mut self, id: &Id) -> Option<Arc<Admin>> {
        let old = self.admins.remove(id)?;
        self.admin_by_email.remove(&fold(&old.email));
        Some(old)
    }

    pub(crate) fn put_api_key(&mut self, key: Arc<ApiKey>) {
        self.api_key_by_hash
            .insert(key.token_sha256.clone(), key.id.clone());
        self.api_keys.insert(key.id.clone(), key);
    }

    pub(crate) fn put_scim_token(&mut self, t: Arc<ScimToken>) {
        self.scim_token_by_hash
            .insert(t.token_sha256.clone(), t.id.clone());
        self.scim_tokens.insert(t.id.clone(), t);
    }

    pub(crate) fn remove_scim_token(&mut self, id: &Id) -> Option<Arc<ScimToken>> {
        let old = self.scim_tokens.remove(id)?;
        self.scim_token_by_hash.remove(&old.token_sha256);
        Some(old)
    }

    pub(crate) fn remove_api_key(&mut self, id: &Id) -> Option<Arc<ApiKey>> {
        let old = self.api_keys.remove(id)?;
        self.api_key_by_hash.remove(&old.token_sha256);
        Some(old)
    }
}

/// Relative identifier of a user's Samba SID: 2 × uidNumber + 1000 (the algorithmic mapping Samba uses).
pub fn samba_user_rid(uid_number: u32) -> u64 {
    2 * u64::from(uid_number) + 1000
}

/// Relative identifier of a group's Samba SID: 2 × gidNumber + 1001.
pub fn samba_group_rid(gid_number: u32) -> u64 {
    2 * u64::from(gid_number) + 1001
}

/// Rules of what the LDAP directory shows. They live here, in the core, so every reader applies the same ones.
impl Snapshot {
    /// A user appears in LDAP when not staged and a member of a group bound to the LDAP directory.
    pub fn ldap_user_visible(&self, user: &User) -> bool {
        user.state != UserState::Staged && self.is_bound(&user.id, &Resource::Ldap)
    }

    /// A group appears in LDAP when bound to the LDAP directory and it has at least one visible member.
    pub fn ldap_group_visible(&self, group: &Id) -> bool {
        self.group_bindings
            .get(group)
            .is_some_and(|r| r.contains(&Resource::Ldap))
            && self.members_of(group).any(|u| u.state != UserState::Staged)
    }

    /// Samba attributes are served for members of a Samba-enabled group that is bound to LDAP.
    pub fn ldap_samba_user(&self, user: &Id) -> bool {
        self.granting_groups(user, &Resource::Ldap)
            .iter()
            .any(|g| g.samba)
    }

    /// `<domain SID>-<RID>` of a user.
    pub fn samba_user_sid(&self, user: &User) -> Option<String> {
        let org = self.org.as_ref()?;
        Some(format!(
            "{}-{}",
            org.samba_sid,
            samba_user_rid(user.uid_number)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_list_is_a_sorted_set() {
        let ids: Vec<Id> = (0..5).map(|_| Id::generate()).collect();
        let mut list = IdList::default();
        for id in ids.iter().rev() {
            assert!(list.insert(id.clone()));
        }
        assert!(!list.insert(ids[2].clone()), "already there");
        assert_eq!(list.len(), 5);
        let mut sorted = ids.clone();
        sorted.sort();
        assert!(list.iter().eq(sorted.iter()));
        assert!(list.remove(&ids[0]));
        assert!(!list.remove(&ids[0]));
        assert!(!list.contains(&ids[0]) && list.contains(&ids[1]));
        assert_eq!(list.into_iter().count(), 4);
    }
}
