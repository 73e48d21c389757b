//! A pass's options as a Python object: made from keyword arguments, checked by the core once,
//! and read back (with the core's defaults) by the facade, which restates none of them.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use serde_json::{Map, Number, Value};

use crate::options::PassOptions;

use super::convert::{python, whole_as_integers};
use super::errors::{config_error, to_py};

/// A pass's options, checked: `PassOptions(max_age=…, dry_run=True, …)`, by the Python API's
/// names, each with the core's default when left out.
#[pyclass(frozen, name = "PassOptions", module = "cull_idle._core")]
pub struct PyPassOptions(pub PassOptions);

#[pymethods]
impl PyPassOptions {
    #[new]
    #[pyo3(signature = (**options))]
    fn new(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut map = Map::new();
        for (key, value) in options.into_iter().flatten() {
            let key: String = key.extract()?;
            let value = plain(&value).map_err(|e| {
                config_error(py, format!("{key} must be numbers, names and flags ({e})"))
            })?;
            map.insert(key, value);
        }
        PassOptions::from_map(map)
            .map(PyPassOptions)
            .map_err(|e| to_py(py, &e.into()))
    }

    /// Every option by name, with the values the core will use (whole seconds as integers).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let value = whole_as_integers(serde_json::to_value(&self.0).unwrap_or(Value::Null));
        let dict = PyDict::new(py);
        if let Value::Object(map) = value {
            for (key, value) in map {
                dict.set_item(key, python(py, &value)?)?;
            }
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!("PassOptions({:?})", self.0)
    }
}

/// A Python value as the options' checker reads it: any mapping an object, any other
/// collection but text a list.
fn plain(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            return Ok(Value::from(n));
        }
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        let n: f64 = value.extract()?;
        return Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| PyTypeError::new_err(format!("{n} is not a number")));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::String(text.to_cow()?.into_owned()));
    }
    if value.hasattr("keys")? {
        let mut map = Map::new();
        for key in value.call_method0("keys")?.try_iter()? {
            let key = key?;
            let item = value.get_item(&key)?;
            map.insert(key.str()?.to_cow()?.into_owned(), plain(&item)?);
        }
        return Ok(Value::Object(map));
    }
    if value.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(PyTypeError::new_err("bytes are not names"));
    }
    match value.try_iter() {
        Ok(items) => items
            .map(|item| plain(&item?))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{} is not a number, a name, a flag or a collection of them",
            value.get_type().name()?
        ))),
    }
}
