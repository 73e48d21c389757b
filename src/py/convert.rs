//! Rust values as Python objects: JSON-shaped values, and times.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use serde_json::Value;

/// A JSON-shaped value as Python's own types.
pub fn python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(f)) => f.into_pyobject(py)?.into_any(),
            (None, None) => py.None().into_bound(py),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Whole numbers as integers: seconds and counts as the command line gives them.
pub fn whole_as_integers(value: Value) -> Value {
    match value {
        #[allow(clippy::cast_possible_truncation)]
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.as_i64().is_none() && f.fract() == 0.0 && f.abs() < 9e15 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_as_integers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Any serializable value as Python's own types (dicts, lists, numbers, text).
pub fn python_of<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    python(py, &serde_json::to_value(value).unwrap_or(Value::Null))
}

/// Seconds as a `datetime.timedelta`.
pub fn timedelta(py: Python<'_>, seconds: Option<f64>) -> PyResult<Option<Bound<'_, PyAny>>> {
    seconds
        .map(|s| py.import("datetime")?.getattr("timedelta")?.call1((0, s)))
        .transpose()
}

/// Seconds since the epoch as an aware `datetime.datetime` in UTC.
pub fn utc(py: Python<'_>, seconds: f64) -> PyResult<Bound<'_, PyAny>> {
    let datetime = py.import("datetime")?;
    let utc = datetime.getattr("timezone")?.getattr("utc")?;
    datetime
        .getattr("datetime")?
        .call_method1("fromtimestamp", (seconds, utc))
}
