//! A loopback HTTP server for the tests of the calls made without an SDK crate: it answers each
//! request with the next of a script of answers (the last one again when they run out), and keeps
//! what it was sent.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One answer: its status, any headers (`name: value` lines joined by CRLF) and its body.
#[derive(Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub headers: &'static str,
    pub body: &'static str,
}

impl Answer {
    /// No answer at all: the request is read and the connection held open, silent.
    pub const SILENCE: Answer = Answer { status: 0, headers: "", body: "" };
}

/// One request as received: its head in lower case, and its body.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: String,
}

pub type Sent = Arc<Mutex<Vec<Received>>>;

/// A server on a free loopback port, answering with `answers`; its URL and what it is sent.
pub async fn serving(answers: Vec<Answer>) -> (String, Sent) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sent: Sent = Arc::default();
    let log = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let received = read_request(&mut socket).await;
            let n = {
                let mut log = log.lock().unwrap();
                log.push(received);
                log.len() - 1
            };
            let Answer { status, headers, body } = answers[n.min(answers.len() - 1)];
            if status == 0 {
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    drop(socket);
                });
                continue;
            }
            let mut head = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
            if !headers.is_empty() {
                head.push_str(headers);
                head.push_str("\r\n");
            }
            if !headers.contains("content-length") {
                head.push_str(&format!("content-length: {}\r\n", body.len()));
            }
            let _ = socket.write_all(format!("{head}\r\n{body}").as_bytes()).await;
        }
    });
    (format!("http://{address}"), sent)
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Received {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = socket.read_exact(&mut body).await;
    Received { head, body: String::from_utf8_lossy(&body).into_owned() }
}

/// How many requests the server was sent.
pub fn served(sent: &Sent) -> u32 {
    sent.lock().unwrap().len() as u32
}
