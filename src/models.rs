//! The parts of the Hub's REST models that culling reads.
//!
//! Every field is optional: which keys a user model carries depends on the token's scopes
//! (`created` needs `read:users`, `servers` needs `read:servers`) and on the Hub's version.
//! Unknown fields are ignored. A field of the wrong type fails the decode of that one user,
//! so no decision is ever taken on data that did not parse.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Debug, Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub admin: Option<bool>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub last_activity: Option<String>,
    /// `None` when the token lacks `read:servers` or the Hub predates named servers.
    #[serde(default)]
    pub servers: Option<BTreeMap<String, Box<RawValue>>>,
    /// Pre-0.9 Hubs: the default server's URL, `Some(None)` when it is not running and
    /// `None` when the key is absent.
    #[serde(default, deserialize_with = "present")]
    pub server: Option<Option<String>>,
    #[serde(default)]
    pub pending: Option<String>,
    /// Only with `read:users:groups` (or `read:users`).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

impl User {
    /// What an arbiter hook is told about the user: the model without its servers.
    pub fn hook_model(&self) -> String {
        serde_json::json!({
            "name": self.name,
            "admin": self.admin,
            "groups": self.groups,
            "created": self.created,
            "last_activity": self.last_activity,
        })
        .to_string()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Server {
    #[serde(default)]
    pub last_activity: Option<String>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub pending: Option<String>,
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub url: Option<String>,
    /// The server's public URL; only set by Hubs (5.0+) with `public_url` or subdomains.
    #[serde(default)]
    pub full_url: Option<String>,
    /// Only in listings with `include_stopped_servers` (JupyterHub 3.0).
    #[serde(default)]
    pub stopped: bool,
    /// What the server was started with; KubeSpawner's `profile_list` puts the profile's slug
    /// in `profile`. Any shape is accepted: only a text `profile` is read.
    #[serde(default)]
    pub user_options: Option<serde_json::Value>,
}

impl Server {
    /// The profile it was started with (`user_options["profile"]`), if any.
    pub fn profile(&self) -> Option<&str> {
        self.user_options.as_ref()?.get("profile")?.as_str()
    }

    /// The reference's `server.get("ready", bool(server["url"]))`.
    pub fn is_ready(&self) -> bool {
        self.ready
            .unwrap_or_else(|| self.url.as_deref().is_some_and(|u| !u.is_empty()))
    }
}

/// One reply to `GET /users`: a paginated object, or a bare list from Hubs before 2.0.
#[derive(Debug)]
pub struct UserPage {
    pub items: Vec<Box<RawValue>>,
    /// Where the next page starts, `None` on the last page.
    pub next: Option<NextPage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct NextPage {
    pub offset: u64,
    pub limit: u64,
}

#[derive(Deserialize)]
struct PaginatedWire {
    items: Vec<Box<RawValue>>,
    #[serde(rename = "_pagination", default)]
    pagination: Option<PaginationWire>,
}

#[derive(Deserialize)]
struct PaginationWire {
    #[serde(default)]
    next: Option<NextPage>,
}

impl UserPage {
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        let bare = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        Ok(if bare {
            UserPage {
                items: serde_json::from_slice(body)?,
                next: None,
            }
        } else {
            let page: PaginatedWire = serde_json::from_slice(body)?;
            UserPage {
                items: page.items,
                next: page.pagination.and_then(|p| p.next),
            }
        })
    }
}

/// The servers of one user, by name (`""` is the default server), each still raw so that an
/// arbiter hook can be given the whole model the Hub sent.
pub struct UserServers(pub Vec<(String, Box<RawValue>)>);

impl User {
    /// The user's servers, synthesising the default one for Hubs that send no `servers` map.
    /// `None` when the model says nothing about servers at all (token without `read:servers`).
    pub fn servers(&mut self) -> Option<UserServers> {
        if let Some(map) = self.servers.take() {
            return Some(UserServers(map.into_iter().collect()));
        }
        let url = match self.server.take()? {
            Some(url) if !url.is_empty() => url,
            _ => return Some(UserServers(Vec::new())),
        };
        let synthetic = serde_json::json!({
            "name": "",
            "last_activity": self.last_activity,
            "pending": self.pending,
            "url": url,
        });
        let raw = RawValue::from_string(synthetic.to_string()).ok()?;
        Some(UserServers(vec![(String::new(), raw)]))
    }
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paginated_page_with_next() {
        let body = br#"{"items":[{"name":"a"},{"name":"b"}],
            "_pagination":{"offset":0,"limit":2,"total":3,
            "next":{"offset":2,"limit":2,"url":"http://elsewhere/hub/api/users?offset=2"}}}"#;
        let page = UserPage::from_json(body).unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(
            page.next,
            Some(NextPage {
                offset: 2,
                limit: 2
            })
        );
    }

    #[test]
    fn last_page_and_empty_page() {
        let page = UserPage::from_json(
            br#"{"items":[],"_pagination":{"offset":4,"limit":2,"total":9,"next":null}}"#,
        )
        .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.next, None);
    }

    #[test]
    fn bare_list_from_old_hubs() {
        let page = UserPage::from_json(br#"[{"name":"a"}]"#).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next, None);
    }

    #[test]
    fn broken_pages_are_errors() {
        for body in [
            &b"{"[..],
            b"<html>502</html>",
            b"{\"items\": 3}",
            b"null",
            b"\"x\"",
        ] {
            assert!(
                UserPage::from_json(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn minimal_scope_user_model() {
        let user: User = serde_json::from_str(
            r#"{"kind":"user","name":"alice","admin":false,"last_activity":null,"user_info":null,
                "servers":{"":{"name":"","ready":true,"pending":null,"url":"/user/alice/",
                "started":"2026-11-27T10:00:00Z","last_activity":"2026-11-27T10:00:00Z"}}}"#,
        )
        .unwrap();
        assert_eq!(user.created, None);
        assert_eq!(user.servers.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn wrongly_typed_fields_fail_the_user() {
        assert!(serde_json::from_str::<User>(r#"{"name":"a","admin":"yes"}"#).is_err());
        assert!(serde_json::from_str::<User>(r#"{"name":"a","last_activity":5}"#).is_err());
        assert!(serde_json::from_str::<User>(r#"{"admin":true}"#).is_err());
        assert!(serde_json::from_str::<Server>(r#"{"ready":"true"}"#).is_err());
    }

    #[test]
    fn legacy_user_without_servers_map() {
        let mut user: User = serde_json::from_str(
            r#"{"name":"a","server":"/user/a/","last_activity":"2026-11-27T10:00:00Z"}"#,
        )
        .unwrap();
        let servers = user.servers().unwrap();
        assert_eq!(servers.0.len(), 1);
        let server: Server = serde_json::from_str(servers.0[0].1.get()).unwrap();
        assert!(server.is_ready());
        assert_eq!(
            server.last_activity.as_deref(),
            Some("2026-11-27T10:00:00Z")
        );

        let mut stopped: User = serde_json::from_str(r#"{"name":"a","server":null}"#).unwrap();
        assert!(stopped.servers().unwrap().0.is_empty());
        let mut no_info: User = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert!(no_info.servers().is_none());
    }

    #[test]
    fn readiness_falls_back_to_url() {
        assert!(Server {
            url: Some("/user/a/".into()),
            ..Server::default()
        }
        .is_ready());
        assert!(!Server {
            url: Some(String::new()),
            ..Server::default()
        }
        .is_ready());
        assert!(!Server::default().is_ready());
        assert!(!Server {
            ready: Some(false),
            url: Some("/u/".into()),
            ..Server::default()
        }
        .is_ready());
    }
}
