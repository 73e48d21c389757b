//! What the core knows of itself, as typed Python objects: the reasons, the signals and the
//! scopes, for the start-up check, the README's tables and the metrics' label values.

use pyo3::prelude::*;

/// One reason a server or user is kept or culled, with its words.
#[pyclass(frozen, get_all, module = "cull_idle._core")]
pub struct Reason {
    /// `"cull"` or `"keep"`.
    kind: &'static str,
    label: &'static str,
    operators: String,
    people: &'static str,
    /// A label value of the `reason` metrics.
    metric: bool,
}

/// A way of seeing work inside servers: its option (`keep-busy-kernels`, `idle-by=work`),
/// the scope it needs and the label of what it keeps.
#[pyclass(frozen, get_all, module = "cull_idle._core")]
pub struct Signal {
    label: &'static str,
    option: &'static str,
    scope: &'static str,
    for_operators: &'static str,
}

/// A Hub scope the culler's token needs, and when.
#[pyclass(frozen, get_all, module = "cull_idle._core")]
pub struct Scope {
    name: &'static str,
    /// `"always"`, `"cull-users"` or `"groups"`.
    needed_when: &'static str,
    fatal: bool,
    needed_for: &'static str,
    doc: &'static str,
}

/// Every reason, culls first, then keeps, then the signals'.
#[pyfunction]
pub fn reasons() -> Vec<Reason> {
    crate::reasons::docs()
        .into_iter()
        .map(|r| Reason {
            kind: r.kind,
            label: r.label,
            operators: r.operators,
            people: r.people,
            metric: r.metric,
        })
        .collect()
}

#[pyfunction]
pub fn signals() -> Vec<Signal> {
    crate::signals::docs()
        .into_iter()
        .map(|s| Signal {
            label: s.label,
            option: s.option,
            scope: s.scope,
            for_operators: s.for_operators,
        })
        .collect()
}

/// The scopes every culler, or its options, need; the signals' are theirs.
#[pyfunction]
pub fn scopes() -> Vec<Scope> {
    crate::scopes::SCOPES
        .iter()
        .map(|s| Scope {
            name: s.name,
            needed_when: s.need.label(),
            fatal: s.fatal,
            needed_for: s.needed_for,
            doc: s.doc,
        })
        .collect()
}
