//! Placeholder: replaced by the command-line module.
