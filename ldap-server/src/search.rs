//! The search operation (RFC 4511 §4.5): base resolution, scopes, access, filter plan and evaluation,
//! attribute selection (`*`, `+`, `1.1`, names), typesOnly, size and time limits, and simple paged results
//! (RFC 2696) whose cookies name a per-connection list of remaining candidates, so each entry is returned exactly
//! once even while the directory changes.
//!
//! Size limits: the client's sizeLimit bounds the whole search, paged or not (RFC 4511 §4.5.1.4; a paged search
//! counts the entries of every page). The server's `size_limit` bounds searches that are not paged; a paged
//! search is how a client reads a large directory in full, so only its page size is bounded.

use crate::codec::Ber;
use crate::entry::{Entry, EntryRef, Reader, Tree};
use crate::filter::{self, Candidates, Plan, Truth};
use crate::schema::{self, AttributeSet};
use core_directory::Id;
use ldap3_proto::proto::{LdapResultCode, LdapSearchRequest, LdapSearchScope};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Server-side limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Entries returned by one non-paged search at most (0 = unlimited); paged searches are bounded by the
    /// client's sizeLimit only.
    pub size_limit: usize,
    pub time_limit: Duration,
    /// Filter nodes accepted.
    pub max_filter_nodes: usize,
    /// Largest page a client may ask for.
    pub max_page_size: usize,
    /// Paged searches open at once on one connection.
    pub max_open_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            size_limit: 10_000,
            time_limit: Duration::from_secs(60),
            max_filter_nodes: 20_000,
            max_page_size: 10_000,
            max_open_pages: 16,
        }
    }
}

/// A paged search in progress.
pub struct PagedSearch {
    remaining: VecDeque<EntryRef>,
    /// Entries sent on earlier pages, counted against the client's sizeLimit.
    returned: usize,
    last_used: Instant,
}

/// The client's paged results control (RFC 2696 §2):
/// `realSearchControlValue ::= SEQUENCE { size INTEGER (0..maxInt), cookie OCTET STRING }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    pub cookie: Vec<u8>,
}

impl PageRequest {
    /// Decode the control value; `None` when it is absent or malformed.
    pub fn decode(value: Option<&[u8]>) -> Option<PageRequest> {
        let mut outer = Ber::new(value?);
        let seq = outer.expect(0x30, "paged results value").ok()?;
        let mut inner = Ber::new(seq.content);
        let size = inner.expect(0x02, "page size").ok()?;
        let cookie = inner.expect(0x04, "cookie").ok()?;
        if !outer.is_empty() || !inner.is_empty() {
            return None;
        }
        Some(PageRequest {
            size: non_negative_integer(size.content)?,
            cookie: cookie.content.to_vec(),
        })
    }
}

/// A BER INTEGER that must not be negative; values beyond `usize` saturate (they only ever mean "a lot").
fn non_negative_integer(content: &[u8]) -> Option<usize> {
    let (&first, _) = content.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    Some(content.iter().fold(0usize, |acc, b| {
        acc.checked_mul(256)
            .and_then(|a| a.checked_add(usize::from(*b)))
            .unwrap_or(usize::MAX)
    }))
}

/// Per-connection paged-search state.
#[derive(Default)]
pub struct PagedState {
    open: HashMap<Vec<u8>, PagedSearch>,
}

/// What a search produced.
pub struct SearchOutcome {
    /// The entries, each holding only the attributes to return (without values for typesOnly).
    pub entries: Vec<Entry>,
    pub code: LdapResultCode,
    pub message: String,
    pub matched_dn: String,
    /// For paged searches: the cookie to send back (empty when done).
    pub cookie: Option<Vec<u8>>,
}

impl SearchOutcome {
    fn error(code: LdapResultCode, message: impl Into<String>) -> Self {
        SearchOutcome {
            entries: Vec::new(),
            code,
            message: message.into(),
            matched_dn: String::new(),
            cookie: None,
        }
    }
}

/// Which attributes to return (RFC 4511 §4.5.1.8): none of them for `1.1` alone, the user attributes for an
/// empty list or `*`, the operational ones for `+`, and those named.
fn selection(attrs: &[String]) -> AttributeSet {
    let (mut all_user, mut all_operational, mut none) = (attrs.is_empty(), false, false);
    let mut named = AttributeSet::default();
    for a in attrs {
        match a.as_str() {
            "*" => all_user = true,
            "+" => all_operational = true,
            "1.1" => none = attrs.len() == 1,
            name => {
                if let Some(at) = schema::attribute(name) {
                    named.insert(at);
                }
            }
        }
    }
    let mut set = AttributeSet::default();
    if none {
        return set;
    }
    for at in schema::ATTRIBUTES {
        let by_kind = if at.operational {
            all_operational
        } else {
            all_user
        };
        if by_kind || named.contains(at) {
            set.insert(at);
        }
    }
    set
}

/// Keep what the client asked for: the selected attributes, without their values for typesOnly.
fn to_wire(mut e: Entry, selected: AttributeSet, types_only: bool) -> Entry {
    e.attrs.retain(|(at, _)| selected.contains(at));
    if types_only {
        for (_, vals) in &mut e.attrs {
            vals.clear();
        }
    }
    e
}

/// Users and groups admitted by a plan and visible in LDAP.
fn members(tree: &Tree, plan: &Plan) -> Vec<EntryRef> {
    let snap = tree.snap;
    let mut out = Vec::new();
    match &plan.users {
        Candidates::All => out.extend(
            snap.users
                .values()
                .filter(|u| snap.ldap_user_visible(u))
                .map(|u| EntryRef::User(u.id.clone())),
        ),
        Candidates::Only(ids) => {
            let mut ids: Vec<&Id> = ids.iter().collect();
            ids.sort();
            out.extend(
                ids.into_iter()
                    .filter(|id| snap.user(id).is_some_and(|u| snap.ldap_user_visible(u)))
                    .map(|id| EntryRef::User(id.clone())),
            )
        }
    }
    match &plan.groups {
        Candidates::All => out.extend(
            snap.groups
                .values()
                .filter(|g| snap.ldap_group_visible(&g.id))
                .map(|g| EntryRef::Group(g.id.clone())),
        ),
        Candidates::Only(ids) => {
            let mut ids: Vec<&Id> = ids.iter().collect();
            ids.sort();
            out.extend(
                ids.into_iter()
                    .filter(|id| snap.ldap_group_visible(id))
                    .map(|id| EntryRef::Group(id.clone())),
            )
        }
    }
    out
}

/// Every entry the search could return, in scope, admitted by the plan and visible to the reader.
fn candidates(
    tree: &Tree,
    base: &EntryRef,
    scope: &LdapSearchScope,
    plan: &Plan,
    reader: &Reader,
) -> Vec<EntryRef> {
    let mut out = Vec::new();
    let include_base = matches!(scope, LdapSearchScope::Base | LdapSearchScope::Subtree);
    if include_base {
        out.push(base.clone());
    }
    if !matches!(scope, LdapSearchScope::Base) {
        let subtree = matches!(scope, LdapSearchScope::Subtree);
        match base {
            EntryRef::Suffix => {
                for child in tree.children(base) {
                    let is_ou = child == EntryRef::UsersOu;
                    out.push(child);
                    if is_ou && subtree {
                        out.extend(members(tree, plan));
                    }
                }
            }
            EntryRef::UsersOu => out.extend(members(tree, plan)),
            _ => {}
        }
    }
    out.retain(|r| plan.admits(r) && tree.visible_to(r, reader));
    out
}

/// The most entries a whole search may return (see the module documentation); 0 means no limit in both inputs.
fn size_limit(paged: bool, client: usize, server: usize) -> usize {
    match (paged, client, server) {
        (true, 0, _) | (false, 0, 0) => usize::MAX,
        (true, c, _) | (false, 0, c) | (false, c, 0) => c,
        (false, c, s) => c.min(s),
    }
}

/// Run one search. `paging` is the client's paged-results control.
pub fn search(
    tree: &Tree,
    reader: &Reader,
    req: &LdapSearchRequest,
    limits: &Limits,
    paging: Option<&PageRequest>,
    paged: &mut PagedState,
) -> SearchOutcome {
    let started = Instant::now();
    if filter::size(&req.filter) > limits.max_filter_nodes {
        return SearchOutcome::error(
            LdapResultCode::AdminLimitExceeded,
            format!("filter has more than {} terms", limits.max_filter_nodes),
        );
    }
    let Some(base) = tree.resolve(&req.base) else {
        let mut out = SearchOutcome::error(LdapResultCode::NoSuchObject, "no such entry");
        if crate::dn::parse(&req.base) == Err(crate::dn::DnError::Syntax) {
            out.code = LdapResultCode::InvalidDNSyntax;
            out.message = "the base is not a valid DN".into();
        }
        return out;
    };
    if base == EntryRef::RootDse && !matches!(req.scope, LdapSearchScope::Base) {
        return SearchOutcome::error(
            LdapResultCode::NoSuchObject,
            "the root DSE has no subordinates",
        );
    }
    if *reader == Reader::Anonymous && base != EntryRef::RootDse {
        return SearchOutcome::error(
            LdapResultCode::InsufficentAccessRights,
            "bind first: only the root DSE is readable anonymously",
        );
    }
    if !tree.traversable(&base, reader) {
        return SearchOutcome::error(LdapResultCode::NoSuchObject, "no such entry");
    }
    let selected = selection(&req.attrs);
    // An entry is built with what it returns and what the filter reads, nothing more.
    let want = selected.union(filter::attributes(&req.filter));
    let client_limit = usize::try_from(req.sizelimit).unwrap_or(0);
    let client_time = Duration::from_secs(u64::try_from(req.timelimit).unwrap_or(0));
    let time_limit = if client_time.is_zero() {
        limits.time_limit
    } else {
        client_time.min(limits.time_limit)
    };

    // The candidate list: fresh, or the rest of a paged search with the count of entries already sent.
    let (mut queue, page_size, cookie_in, returned) = match paging {
        Some(page) if !page.cookie.is_empty() => {
            let Some(state) = paged.open.remove(&page.cookie) else {
                return SearchOutcome::error(
                    LdapResultCode::UnwillingToPerform,
                    "the paged results cookie is not valid on this connection",
                );
            };
            if page.size == 0 {
                // RFC 2696 §3: a zero size abandons the paged search.
                return SearchOutcome {
                    cookie: Some(Vec::new()),
                    ..SearchOutcome::error(LdapResultCode::Success, "")
                };
            }
            (
                state.remaining,
                Some(page.size.min(limits.max_page_size)),
                Some(page.cookie.clone()),
                state.returned,
            )
        }
        Some(page) => {
            let plan = filter::plan(&req.filter, tree);
            (
                candidates(tree, &base, &req.scope, &plan, reader).into(),
                Some(page.size.clamp(1, limits.max_page_size)),
                None,
                0,
            )
        }
        None => {
            let plan = filter::plan(&req.filter, tree);
            (
                candidates(tree, &base, &req.scope, &plan, reader).into(),
                None,
                None,
                0,
            )
        }
    };

    let limit = size_limit(page_size.is_some(), client_limit, limits.size_limit);
    // What the size limit still allows after earlier pages.
    let room = limit.saturating_sub(returned);
    let mut entries = Vec::new();
    let mut code = LdapResultCode::Success;
    let mut message = String::new();
    let mut checked = 0usize;
    while let Some(r) = queue.pop_front() {
        checked += 1;
        if checked.is_multiple_of(256) && started.elapsed() > time_limit {
            code = LdapResultCode::TimeLimitExceeded;
            message = "time limit reached".into();
            queue.clear();
            break;
        }
        let Some(entry) = tree.build(&r, reader, want) else {
            continue;
        };
        if filter::eval(&req.filter, &entry) != Truth::True {
            continue;
        }
        if entries.len() >= room {
            // One more entry matches than the limit allows: the whole search ends here, paged or not.
            code = LdapResultCode::SizeLimitExceeded;
            message = format!("size limit of {limit} entries reached");
            queue.clear();
            break;
        }
        if page_size.is_some_and(|p| entries.len() >= p) {
            // The next page starts with this entry.
            queue.push_front(r);
            break;
        }
        entries.push(to_wire(entry, selected, req.typesonly));
    }
    let cookie = page_size.map(|_| {
        if queue.is_empty() {
            Vec::new()
        } else {
            if paged.open.len() >= limits.max_open_pages {
                if let Some(oldest) = paged
                    .open
                    .iter()
                    .min_by_key(|(_, s)| s.last_used)
                    .map(|(k, _)| k.clone())
                {
                    paged.open.remove(&oldest);
                }
            }
            let cookie = cookie_in.unwrap_or_else(|| core_directory::crypto::random_bytes(12));
            paged.open.insert(
                cookie.clone(),
                PagedSearch {
                    remaining: queue,
                    returned: returned + entries.len(),
                    last_used: Instant::now(),
                },
            );
            cookie
        }
    });
    SearchOutcome {
        entries,
        code,
        message,
        matched_dn: String::new(),
        cookie,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_limit_bounds_paged_searches_and_the_server_limit_does_not() {
        assert_eq!(size_limit(true, 10, 5), 10);
        assert_eq!(size_limit(true, 0, 5), usize::MAX);
        assert_eq!(size_limit(false, 10, 5), 5);
        assert_eq!(size_limit(false, 3, 5), 3);
        assert_eq!(size_limit(false, 0, 5), 5);
        assert_eq!(size_limit(false, 7, 0), 7);
        assert_eq!(size_limit(false, 0, 0), usize::MAX);
    }

    #[test]
    fn page_requests_decode_from_ber() {
        let value = b"\x30\x08\x02\x02\x01\xf4\x04\x02\xab\xcd";
        assert_eq!(
            PageRequest::decode(Some(value)),
            Some(PageRequest {
                size: 500,
                cookie: vec![0xab, 0xcd]
            })
        );
        assert_eq!(PageRequest::decode(None), None);
        assert_eq!(
            PageRequest::decode(Some(b"\x30\x05\x02\x01\xff\x04\x00")),
            None,
            "a negative size"
        );
        assert_eq!(
            PageRequest::decode(Some(b"\x30\x03\x02\x01\x05")),
            None,
            "no cookie"
        );
        assert_eq!(
            PageRequest::decode(Some(b"\x30\x05\x02\x01\x05\x04\x00\x00")),
            None,
            "trailing data"
        );
    }
}
