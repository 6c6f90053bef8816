//! Placeholder: replaced by the message module.
