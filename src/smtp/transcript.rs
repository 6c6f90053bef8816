//! The `-v` transcript (UX1): every line sent and received, and each TLS
//! decision, with secrets masked before they get here. The session decides
//! what is shown; the sink decides where it goes (stderr for the binary, a
//! vector in tests).

use std::sync::Arc;

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// A cheap handle to the transcript output; `Transcript::off()` discards.
#[derive(Clone)]
pub struct Transcript {
    sink: Option<Sink>,
    prefix: String,
}

impl Transcript {
    pub fn off() -> Transcript {
        Transcript {
            sink: None,
            prefix: String::new(),
        }
    }

    /// Lines go to `sink`, each starting with `prefix` (e.g. "tlsend: smtp.example.org: ").
    pub fn new(
        prefix: impl Into<String>,
        sink: impl Fn(&str) + Send + Sync + 'static,
    ) -> Transcript {
        Transcript {
            sink: Some(Arc::new(sink)),
            prefix: prefix.into(),
        }
    }

    /// The same sink with another prefix, e.g. for the next host.
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Transcript {
        Transcript {
            sink: self.sink.clone(),
            prefix: prefix.into(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// A command line as sent (the caller masks secrets first).
    pub fn sent(&self, line: &str) {
        self.emit("-> ", line);
    }

    /// A reply line as received (already escaped by the reply parser).
    pub fn received(&self, line: &str) {
        self.emit("<- ", line);
    }

    /// A decision or event: TLS parameters, verification, capability checks.
    pub fn note(&self, text: &str) {
        self.emit("== ", text);
    }

    fn emit(&self, marker: &str, text: &str) {
        if let Some(sink) = &self.sink {
            sink(&format!("{}{marker}{text}", self.prefix));
        }
    }
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("on", &self.is_on())
            .finish()
    }
}
