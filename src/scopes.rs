//! The Hub scopes the culler's token needs, each with what needs it: written once here, for
//! the start-up check, the README's table and the errors that name them. The signals' scope
//! (asking servers about their work) is theirs, in [`crate::signals`].

/// When the culler needs a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Every culler.
    Always,
    /// With `--cull-users`.
    CullUsers,
    /// With `--exclude-groups` or `--group-timeout`.
    Groups,
}

impl Need {
    pub fn label(self) -> &'static str {
        match self {
            Need::Always => "always",
            Need::CullUsers => "cull-users",
            Need::Groups => "groups",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub name: &'static str,
    pub need: Need,
    /// Running without it is unsafe, not only less useful: the culler refuses to start.
    pub fatal: bool,
    /// What needs it, in the start-up check's words ("the token lacks …, needed for …").
    pub needed_for: &'static str,
    /// What needs it, in the README's table (Markdown).
    pub doc: &'static str,
}

pub const SCOPES: [Scope; 7] = [
    Scope {
        name: "list:users",
        need: Need::Always,
        fatal: false,
        needed_for: "listing users",
        doc: "listing users (`GET /users`)",
    },
    Scope {
        name: "read:users:activity",
        need: Need::Always,
        fatal: false,
        needed_for: "seeing users' activity",
        doc: "each user's `last_activity`",
    },
    Scope {
        name: "read:servers",
        need: Need::Always,
        fatal: false,
        needed_for: "seeing servers",
        doc: "each user's `servers` with their `last_activity`, `started`, `pending`, `ready`",
    },
    Scope {
        name: "delete:servers",
        need: Need::Always,
        fatal: false,
        needed_for: "stopping servers",
        doc: "stopping servers, and removing named ones with `--remove-named-servers` or \
              `--remove-stopped-named-servers`",
    },
    Scope {
        name: "delete:users",
        need: Need::CullUsers,
        fatal: false,
        needed_for: "--cull-users (deleting users)",
        doc: "`--cull-users`: deleting users",
    },
    Scope {
        name: "read:users",
        need: Need::CullUsers,
        fatal: false,
        needed_for: "--cull-users with users' `created` time (max-age, never-active users)",
        doc: "`--cull-users`: the `created` time, used for user `--max-age` and for users with no \
              activity at all",
    },
    Scope {
        name: "read:users:groups",
        need: Need::Groups,
        fatal: true,
        needed_for: "--exclude-groups/--group-timeout (seeing users' groups)",
        doc: "`--exclude-groups`, `--group-timeout`, and hooks that look at `user[\"groups\"]`",
    },
];

/// The names of the scopes needed when `need`, as a sentence lists them: "a, b and c".
pub fn listed(need: Need) -> String {
    let names: Vec<&str> = SCOPES
        .iter()
        .filter(|s| s.need == need)
        .map(|s| s.name)
        .collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_scopes_read_as_a_sentence() {
        assert_eq!(
            listed(Need::Always),
            "list:users, read:users:activity, read:servers and delete:servers"
        );
        assert_eq!(listed(Need::CullUsers), "delete:users and read:users");
        assert_eq!(listed(Need::Groups), "read:users:groups");
    }
}
