//! A small SMTP receiver for tests: a real RFC 5321 conversation over TCP on loopback
//! (220 greeting, EHLO/HELO, MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT),
//! keeping every accepted message. It offers no STARTTLS, like a plain local relay; it can
//! answer the next MAIL FROM with a temporary (451) or permanent (550) refusal.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub helo: String,
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body), dot-unstuffed.
    pub data: String,
}

impl Received {
    /// The message with headers unfolded and quoted-printable soft breaks and escapes undone.
    pub fn readable(&self) -> String {
        let unfolded = self.data.replace("\r\n ", " ").replace("\r\n\t", " ").replace("=\r\n", "").replace("=\n", "");
        let mut out = String::new();
        let mut chars = unfolded.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '=' {
                let hex: String = chars.clone().take(2).collect();
                if let Ok(b) = u8::from_str_radix(&hex, 16) {
                    out.push(b as char);
                    chars.next();
                    chars.next();
                    continue;
                }
            }
            out.push(c);
        }
        out
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

pub struct SmtpReceiver {
    pub addr: std::net::SocketAddr,
    messages: Arc<Mutex<Vec<Received>>>,
    temp_failures: Arc<AtomicU32>,
    perm_failures: Arc<AtomicU32>,
    /// MAIL FROM commands seen (accepted or refused).
    pub attempts: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpReceiver {
    pub async fn start() -> SmtpReceiver {
        Self::start_on("127.0.0.1:0").await
    }

    /// Listens on `addr` (a fixed port, to come back on the same address after a pause).
    pub async fn start_on(addr: &str) -> SmtpReceiver {
        let listener = TcpListener::bind(addr).await.expect("bind smtp");
        let addr = listener.local_addr().expect("addr");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let temp_failures = Arc::new(AtomicU32::new(0));
        let perm_failures = Arc::new(AtomicU32::new(0));
        let attempts = Arc::new(AtomicU32::new(0));
        let (m, t, p, a) = (messages.clone(), temp_failures.clone(), perm_failures.clone(), attempts.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (m, t, p, a) = (m.clone(), t.clone(), p.clone(), a.clone());
                tokio::spawn(async move {
                    let _ = session(sock, m, t, p, a).await;
                });
            }
        });
        SmtpReceiver { addr, messages, temp_failures, perm_failures, attempts, task }
    }

    /// `smtp://127.0.0.1:PORT?tls=none`.
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().expect("lock").clone()
    }

    /// The next `n` MAIL FROM get "451 try again later".
    pub fn fail_next(&self, n: u32) {
        self.temp_failures.store(n, Ordering::SeqCst);
    }

    /// The next `n` MAIL FROM get "550 refused".
    pub fn refuse_next(&self, n: u32) {
        self.perm_failures.store(n, Ordering::SeqCst);
    }
}

fn take_one(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

fn address(arg: &str) -> String {
    arg.split_once(':')
        .map(|x| x.1)
        .unwrap_or_default()
        .trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

async fn session(
    sock: tokio::net::TcpStream,
    messages: Arc<Mutex<Vec<Received>>>,
    temp: Arc<AtomicU32>,
    perm: Arc<AtomicU32>,
    attempts: Arc<AtomicU32>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 test.invalid ESMTP scimbridge-test\r\n").await?;
    let (mut helo, mut from, mut to) = (String::new(), None::<String>, Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let verb = cmd.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                helo = cmd[4..].trim().to_string();
                b"250-test.invalid greets you\r\n250-8BITMIME\r\n250-SIZE 10485760\r\n250 SMTPUTF8\r\n"
            }
            "HELO" => {
                helo = cmd[4..].trim().to_string();
                b"250 test.invalid\r\n"
            }
            "MAIL" if helo.is_empty() => b"503 5.5.1 EHLO first\r\n",
            "MAIL" => {
                attempts.fetch_add(1, Ordering::SeqCst);
                if take_one(&temp) {
                    b"451 4.3.0 try again later\r\n"
                } else if take_one(&perm) {
                    b"550 5.7.1 refused\r\n"
                } else {
                    from = Some(address(&cmd));
                    to.clear();
                    b"250 2.1.0 OK\r\n"
                }
            }
            "RCPT" if from.is_none() => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => {
                to.push(address(&cmd));
                b"250 2.1.5 OK\r\n"
            }
            "DATA" if to.is_empty() => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let got = Received {
                    helo: helo.clone(),
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                messages.lock().expect("lock").push(got);
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                from = None;
                to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                w.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not recognised\r\n",
        };
        w.write_all(reply).await?;
    }
}
