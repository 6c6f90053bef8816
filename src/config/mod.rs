//! Placeholder: replaced by the configuration module.
