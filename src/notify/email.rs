//! Email over SMTP with lettre: the transport `[notify.smtp]`'s URL describes (implicit TLS,
//! required STARTTLS, or plain text to a relay only when the URL says `tls=none`), and a
//! multipart/alternative message (plain text + HTML). One connection per message: notices are
//! few, and a pooled connection a relay dropped would only fail the next send.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{SmtpTls, SmtpUrl};
use super::render::Email;
use super::sender::SendError;

/// How long one SMTP conversation may take, connection to QUIT.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The transport for `url`.
///
/// # Errors
/// When rustls cannot be set up for the host name.
pub fn transport(url: &SmtpUrl) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let params = || {
        TlsParameters::new(url.host.clone())
            .map_err(|e| SendError::Permanent(format!("TLS setup for {}: {e}", url.host)))
    };
    let tls = match url.tls {
        SmtpTls::Implicit => Tls::Wrapper(params()?),
        SmtpTls::StartTls => Tls::Required(params()?),
        SmtpTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
        .port(url.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((user, pass)) = &url.credentials {
        b = b.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    Ok(b.build())
}

/// A Message-ID that is the same each time the same notice is sent, so a copy sent again after
/// a crash between the server's "250 OK" and our record of it can be recognised as one.
pub fn message_id(key: &str, from: &Mailbox) -> String {
    format!("<scimbridge-{key}@{}>", from.email.domain())
}

/// Sends `email` from `from` to `to` with the Message-ID `key` names; replies go to `reply_to`
/// when given (a user's warning: to the admins, not to a no-reply sender).
///
/// # Errors
/// `Permanent` for a 5xx answer or an unusable address, `Transient` for anything worth
/// retrying (connection, timeout, TLS, 4xx).
pub async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    to: &[Mailbox],
    reply_to: &[Mailbox],
    key: &str,
    email: &Email,
) -> Result<(), SendError> {
    let mut b =
        Message::builder().from(from.clone()).subject(email.subject.clone()).message_id(Some(message_id(key, from)));
    for m in to {
        b = b.to(m.clone());
    }
    for m in reply_to {
        b = b.reply_to(m.clone());
    }
    let message = b
        .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
        .map_err(|e| SendError::Permanent(format!("could not build the message: {e}")))?;
    match transport.send(message).await {
        Ok(_) => Ok(()),
        // lettre's errors carry the server's answer, never the credentials.
        Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("the mail server refused it: {e}"))),
        Err(e) => Err(SendError::Transient(format!("SMTP: {e}"))),
    }
}
