//! A small HTTP/1.1 file server on 127.0.0.1 for the bundle fetch tests: serves files from a map,
//! answers `Range: bytes=N-` with 206 (or ignores it when told to, as servers without ranges
//! do), can cut every response to a path after N body bytes (an interrupted download), can
//! redirect a path elsewhere (302, as dl.k8s.io and GitHub releases do), and records each request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    /// The Range header as sent.
    pub range: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    cut: HashMap<String, usize>,
    redirects: HashMap<String, String>,
    no_range: bool,
    log: Vec<Request>,
}

pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stopped) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Server { base, state, stop }
    }

    /// Serve `body` at `path` (as `/HOST/PATH`).
    pub fn put(&self, path: &str, body: Vec<u8>) {
        let mut s = self.state.lock().expect("server state");
        s.files.insert(path.to_string(), body);
    }

    pub fn get(&self, path: &str) -> Vec<u8> {
        self.state.lock().expect("server state").files[path].clone()
    }

    /// Cut every response to `path` after `n` body bytes (`None`: serve whole again).
    pub fn cut(&self, path: &str, n: Option<usize>) {
        let mut s = self.state.lock().expect("server state");
        match n {
            Some(n) => s.cut.insert(path.to_string(), n),
            None => s.cut.remove(path),
        };
    }

    /// Answer requests for `from` with a 302 to `to` (a path of this server).
    pub fn redirect(&self, from: &str, to: &str) {
        let mut s = self.state.lock().expect("server state");
        s.redirects.insert(from.to_string(), to.to_string());
    }

    /// Ignore Range headers: answer 200 with the whole file.
    pub fn no_range(&self, on: bool) {
        self.state.lock().expect("server state").no_range = on;
    }

    /// The requests since the last call.
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut self.state.lock().expect("server state").log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let (head, body, cut) = {
        let mut s = state.lock().expect("server state");
        let from = range.as_deref().filter(|_| !s.no_range).and_then(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        });
        let (status, head, body) = match (s.files.get(&path), from) {
            _ if s.redirects.contains_key(&path) => (
                302,
                format!("HTTP/1.1 302 Found\r\nLocation: {}\r\n", s.redirects[&path]),
                Vec::new(),
            ),
            (None, _) => (
                404,
                "HTTP/1.1 404 Not Found\r\n".to_string(),
                b"not found\n".to_vec(),
            ),
            (Some(f), Some(n)) if n >= f.len() => (
                416,
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\n",
                    f.len()
                ),
                Vec::new(),
            ),
            (Some(f), Some(n)) => (
                206,
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {n}-{}/{}\r\n",
                    f.len() - 1,
                    f.len()
                ),
                f[n..].to_vec(),
            ),
            (Some(f), None) => (200, "HTTP/1.1 200 OK\r\n".to_string(), f.clone()),
        };
        s.log.push(Request {
            path: path.clone(),
            range,
            status,
        });
        let cut = s.cut.get(&path).copied().filter(|_| status < 300);
        (head, body, cut)
    };
    let mut w = conn;
    let head = format!(
        "{head}Content-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let sent = cut.map_or(body.len(), |n| n.min(body.len()));
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(&body[..sent]);
    let _ = w.flush();
    let _ = w.shutdown(Shutdown::Both);
}
