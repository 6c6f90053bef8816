//! An HTTPS server for MTA-STS policies (RFC 8461 3.3): one canned
//! response, changeable while it runs, and a record of every request
//! line. TLS with a certificate the test mints for `mta-sts.<domain>`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the server answers.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// 200 with a policy body as text/plain.
    pub fn policy(text: &str) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn status(status: u16, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Shared {
    response: Option<HttpResponse>,
    /// "GET /path HTTP/1.1 host=…", one per request.
    requests: Vec<String>,
}

pub struct PolicyServer {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PolicyServer {
    /// Listens on `listen` (port 0 for any) with `tls`, answering `response`.
    pub fn start(
        listen: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        response: HttpResponse,
    ) -> PolicyServer {
        let shared = Arc::new(Mutex::new(Shared {
            response: Some(response),
            requests: Vec::new(),
        }));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread =
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("HTTPS test server runtime");
                runtime.block_on(async move {
                let listener = TcpListener::bind(listen).await.expect("bind the HTTPS server");
                let _ = addr_tx.send(listener.local_addr().expect("local address"));
                let acceptor = TlsAcceptor::from(tls);
                loop {
                    tokio::select! {
                        _ = &mut shutdown_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            let state = state.clone();
                            tokio::spawn(async move {
                                let serve = serve(acceptor, stream, state);
                                let _ = tokio::time::timeout(Duration::from_secs(10), serve).await;
                            });
                        }
                    }
                }
            });
            });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("HTTPS test server did not start");
        PolicyServer {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn set_response(&self, response: HttpResponse) {
        self.shared.lock().expect("server state").response = Some(response);
    }

    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().expect("server state").requests.clone()
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<Shared>>,
) -> std::io::Result<()> {
    let mut tls = acceptor.accept(stream).await?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
        let n = tls.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let request_line = text.lines().next().unwrap_or_default().to_string();
    let host = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let response = {
        let mut state = state.lock().expect("server state");
        state.requests.push(format!("{request_line} host={host}"));
        state.response.clone()
    };
    let Some(response) = response else {
        return Ok(());
    };
    let mut out = format!("HTTP/1.1 {} Test\r\n", response.status);
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    tls.write_all(out.as_bytes()).await?;
    tls.write_all(&response.body).await?;
    tls.shutdown().await
}
