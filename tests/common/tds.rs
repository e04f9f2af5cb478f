//! A TDS endpoint on loopback for the SQL Server connector's end-to-end
//! tests. It speaks enough of MS-TDS for fleetform's own client (tiberius):
//! PRELOGIN, LOGIN7 (plain, or inside TLS for TDS 8.0 strict encryption),
//! SQL batches answered with one NVARCHAR column (what `FOR JSON` returns),
//! DONE, ERROR tokens, and attention (a cancelled statement). It records
//! every login and batch it receives, in order. What it answers comes from
//! a [`Responder`] the test gives: it is not SQL Server and checks nothing
//! SQL Server would; it shows what fleetform sends and how fleetform handles
//! the answers.
//!
//! Protocol facts used here: MS-TDS §2.2.3.1 (packet header), §2.2.6.5
//! (PRELOGIN), §2.2.6.4 (LOGIN7, password obfuscation), §2.2.6.7 (SQLBatch
//! and ALL_HEADERS), §2.2.7 (tokens: COLMETADATA 0x81, ROW 0xD1, DONE 0xFD,
//! ERROR 0xAA, LOGINACK 0xAD, ENVCHANGE 0xE3), §2.2.1.7 (attention).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const PRELOGIN: u8 = 0x12;
const LOGIN7: u8 = 0x10;
const SQL_BATCH: u8 = 0x01;
const ATTENTION: u8 = 0x06;
const REPLY: u8 = 0x04;
const END_OF_MESSAGE: u8 = 0x01;
const PACKET_SIZE: usize = 4096;
/// How long a connection may stay silent before the endpoint hangs up, and
/// the longest a `Reply::Hang` waits for the client's attention.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// A login the endpoint received.
#[derive(Clone, Debug)]
pub struct Login {
    pub connection: usize,
    pub user: String,
    pub password: String,
    pub database: String,
    pub application: String,
}

/// A batch the endpoint received, on which connection and database.
#[derive(Clone, Debug)]
pub struct Batch {
    pub connection: usize,
    pub database: String,
    pub text: String,
}

/// What the endpoint received, in order.
#[derive(Clone, Debug)]
pub enum Received {
    Login(Login),
    Batch(Batch),
    Attention { connection: usize },
}

/// The answer to a batch.
#[derive(Clone, Debug)]
pub enum Reply {
    /// One result set of one NVARCHAR column holding this JSON, split over
    /// rows as SQL Server splits `FOR JSON` output.
    Json(Value),
    /// No result set: the batch ran.
    Done,
    /// A server error (`Msg number, Level class`).
    Error {
        number: i32,
        class: u8,
        message: String,
    },
    /// Nothing until the client sends an attention, then DONE with the
    /// attention bit (a statement that runs too long and is cancelled).
    Hang,
}

/// Decides the answers: to a login (an error refuses it) and to each batch.
pub trait Responder: Send + Sync + 'static {
    fn login(&self, login: &Login) -> Result<(), String>;
    fn reply(&self, batch: &Batch) -> Reply;
}

/// One listening endpoint; it stops accepting when dropped.
pub struct FakeSqlServer {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl FakeSqlServer {
    /// Listen on `address` (port 0: any free port); with `tls`, every
    /// connection begins with a TLS handshake (TDS 8.0 strict).
    pub fn start(
        address: &str,
        responder: Arc<dyn Responder>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<FakeSqlServer> {
        let listener = TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let id = connections.fetch_add(1, Ordering::Relaxed) + 1;
                            let responder = Arc::clone(&responder);
                            let received = Arc::clone(&received);
                            let stop = Arc::clone(&stop);
                            let tls = tls.clone();
                            std::thread::spawn(move || {
                                let _ = serve(stream, id, tls, &*responder, &received, &stop);
                            });
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        Ok(FakeSqlServer {
            address,
            received,
            stop,
        })
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The batches received so far, in order.
    pub fn batches(&self) -> Vec<Batch> {
        self.received()
            .into_iter()
            .filter_map(|received| match received {
                Received::Batch(batch) => Some(batch),
                _ => None,
            })
            .collect()
    }

    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }
}

impl Drop for FakeSqlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Reads whole TDS messages from a stream whose socket has a short read
/// timeout, so that waiting stays bounded and can notice the stop flag.
struct Connection {
    stream: Box<dyn Stream>,
    stop: Arc<AtomicBool>,
}

impl Connection {
    fn read_exact(&mut self, buffer: &mut [u8], patience: Duration) -> io::Result<()> {
        let started = Instant::now();
        let mut filled = 0;
        while filled < buffer.len() {
            if self.stop.load(Ordering::Relaxed) || started.elapsed() > patience {
                return Err(io::ErrorKind::TimedOut.into());
            }
            match self.stream.read(&mut buffer[filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => filled += read,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// One message (its packets joined): its type and payload.
    fn read_message(&mut self, patience: Duration) -> io::Result<(u8, Vec<u8>)> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 8];
            self.read_exact(&mut header, patience)?;
            let length = u16::from_be_bytes([header[2], header[3]]) as usize;
            if length < 8 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "short packet"));
            }
            let mut body = vec![0u8; length - 8];
            self.read_exact(&mut body, patience)?;
            payload.extend_from_slice(&body);
            if header[1] & END_OF_MESSAGE != 0 {
                return Ok((header[0], payload));
            }
        }
    }

    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let chunks: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(PACKET_SIZE - 8).collect()
        };
        let last = chunks.len() - 1;
        for (index, chunk) in chunks.into_iter().enumerate() {
            let mut packet = Vec::with_capacity(chunk.len() + 8);
            packet.push(REPLY);
            packet.push(if index == last { END_OF_MESSAGE } else { 0 });
            packet.extend_from_slice(&((chunk.len() + 8) as u16).to_be_bytes());
            packet.extend_from_slice(&[0, 51, (index + 1) as u8, 0]);
            packet.extend_from_slice(chunk);
            self.stream.write_all(&packet)?;
        }
        self.stream.flush()
    }
}

fn serve(
    tcp: TcpStream,
    id: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
    responder: &dyn Responder,
    received: &Mutex<Vec<Received>>,
    stop: &Arc<AtomicBool>,
) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_millis(50)))?;
    let stream: Box<dyn Stream> = match tls {
        Some(config) => {
            let session = rustls::ServerConnection::new(config)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            Box::new(rustls::StreamOwned::new(session, tcp))
        }
        None => Box::new(tcp),
    };
    let mut connection = Connection {
        stream,
        stop: Arc::clone(stop),
    };
    let mut database = String::from("master");
    loop {
        let (kind, payload) = connection.read_message(IDLE_LIMIT)?;
        match kind {
            PRELOGIN => connection.send(&prelogin_response())?,
            LOGIN7 => {
                let login = parse_login(id, &payload)?;
                received
                    .lock()
                    .unwrap()
                    .push(Received::Login(login.clone()));
                match responder.login(&login) {
                    Ok(()) => {
                        if !login.database.is_empty() {
                            database = login.database.clone();
                        }
                        connection.send(&login_accepted(&database))?;
                    }
                    Err(message) => {
                        let mut tokens = error_token(18456, 14, &message);
                        tokens.extend(done(0x02, 0));
                        connection.send(&tokens)?;
                        return Ok(());
                    }
                }
            }
            SQL_BATCH => {
                let batch = Batch {
                    connection: id,
                    database: database.clone(),
                    text: batch_text(&payload)?,
                };
                received
                    .lock()
                    .unwrap()
                    .push(Received::Batch(batch.clone()));
                match responder.reply(&batch) {
                    Reply::Json(value) => connection.send(&json_result(&value))?,
                    Reply::Done => connection.send(&done(0, 0))?,
                    Reply::Error {
                        number,
                        class,
                        message,
                    } => {
                        let mut tokens = error_token(number, class, &message);
                        tokens.extend(done(0x02, 0));
                        connection.send(&tokens)?;
                    }
                    Reply::Hang => {
                        let (kind, _) = connection.read_message(IDLE_LIMIT)?;
                        if kind == ATTENTION {
                            received
                                .lock()
                                .unwrap()
                                .push(Received::Attention { connection: id });
                            connection.send(&done(0x20, 0))?;
                        }
                    }
                }
            }
            ATTENTION => {
                received
                    .lock()
                    .unwrap()
                    .push(Received::Attention { connection: id });
                connection.send(&done(0x20, 0))?;
            }
            other => {
                let mut tokens = error_token(
                    8009,
                    16,
                    &format!("the test endpoint does not answer TDS messages of type {other:#04x}"),
                );
                tokens.extend(done(0x02, 0));
                connection.send(&tokens)?;
            }
        }
    }
}

/// VERSION, ENCRYPTION (not supported: a strict client is already in TLS),
/// INSTOPT (the instance the client named is this one), THREADID, MARS.
fn prelogin_response() -> Vec<u8> {
    let options: [(u8, Vec<u8>); 5] = [
        (0, vec![16, 0, 0x0F, 0xA0, 0, 0]),
        (1, vec![0x02]),
        (2, vec![0x00]),
        (3, vec![]),
        (4, vec![0x00]),
    ];
    let mut table = Vec::new();
    let mut data = Vec::new();
    let mut offset = options.len() * 5 + 1;
    for (token, value) in &options {
        table.push(*token);
        table.extend_from_slice(&(offset as u16).to_be_bytes());
        table.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
        offset += value.len();
    }
    table.push(0xFF);
    table.extend(data);
    table
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16(bytes: &[u8]) -> io::Result<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

fn b_varchar(text: &str) -> Vec<u8> {
    let mut out = vec![text.encode_utf16().count() as u8];
    out.extend(utf16(text));
    out
}

/// A LOGIN7 record: the variable fields are (offset, length in characters)
/// pairs from byte 36 on; the password is obfuscated byte by byte (nibbles
/// swapped, then XOR 0xA5).
fn parse_login(connection: usize, payload: &[u8]) -> io::Result<Login> {
    let field = |at: usize| -> io::Result<Vec<u8>> {
        let word = |index: usize| -> io::Result<usize> {
            payload
                .get(index..index + 2)
                .map(|bytes| u16::from_le_bytes([bytes[0], bytes[1]]) as usize)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short LOGIN7"))
        };
        let (offset, characters) = (word(at)?, word(at + 2)?);
        payload
            .get(offset..offset + characters * 2)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "LOGIN7 field out of range"))
    };
    let password: Vec<u8> = field(44)?
        .into_iter()
        .map(|byte| {
            let byte = byte ^ 0xA5;
            byte.rotate_left(4)
        })
        .collect();
    Ok(Login {
        connection,
        user: from_utf16(&field(40)?)?,
        password: from_utf16(&password)?,
        application: from_utf16(&field(48)?)?,
        database: from_utf16(&field(68)?)?,
    })
}

/// ENVCHANGE (database), LOGINACK, DONE.
fn login_accepted(database: &str) -> Vec<u8> {
    let mut tokens = Vec::new();
    let mut change = vec![1u8];
    change.extend(b_varchar(database));
    change.extend(b_varchar("master"));
    tokens.push(0xE3);
    tokens.extend_from_slice(&(change.len() as u16).to_le_bytes());
    tokens.extend(change);
    let mut ack = vec![1u8];
    ack.extend_from_slice(&0x7400_0004u32.to_be_bytes());
    ack.extend(b_varchar("fleetform TDS test endpoint"));
    ack.extend_from_slice(&[16, 0, 0x0F, 0xA0]);
    tokens.push(0xAD);
    tokens.extend_from_slice(&(ack.len() as u16).to_le_bytes());
    tokens.extend(ack);
    tokens.extend(done(0, 0));
    tokens
}

/// A SQLBatch: ALL_HEADERS (its total length first), then the text.
fn batch_text(payload: &[u8]) -> io::Result<String> {
    let headers = payload
        .get(..4)
        .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short batch"))?;
    from_utf16(payload.get(headers..).unwrap_or_default())
}

fn done(status: u16, rows: u64) -> Vec<u8> {
    let mut token = vec![0xFD];
    token.extend_from_slice(&status.to_le_bytes());
    token.extend_from_slice(&0xC1u16.to_le_bytes());
    token.extend_from_slice(&rows.to_le_bytes());
    token
}

fn error_token(number: i32, class: u8, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&number.to_le_bytes());
    body.push(1);
    body.push(class);
    body.extend_from_slice(&(message.encode_utf16().count() as u16).to_le_bytes());
    body.extend(utf16(message));
    body.extend(b_varchar("FAKESQL"));
    body.extend(b_varchar(""));
    body.extend_from_slice(&1i32.to_le_bytes());
    let mut token = vec![0xAA];
    token.extend_from_slice(&(body.len() as u16).to_le_bytes());
    token.extend(body);
    token
}

/// One NVARCHAR(4000) column, the JSON text split over rows of 2,000
/// characters (SQL Server splits `FOR JSON` output at 2,033).
fn json_result(value: &Value) -> Vec<u8> {
    let text = value.to_string();
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut tokens = vec![0x81];
    tokens.extend_from_slice(&1u16.to_le_bytes());
    tokens.extend_from_slice(&0u32.to_le_bytes());
    tokens.extend_from_slice(&0x0001u16.to_le_bytes());
    tokens.push(0xE7);
    tokens.extend_from_slice(&8000u16.to_le_bytes());
    tokens.extend_from_slice(&[0x09, 0x04, 0xD0, 0x00, 0x34]);
    tokens.extend(b_varchar("json"));
    let mut rows = 0u64;
    for chunk in units.chunks(2000) {
        tokens.push(0xD1);
        tokens.extend_from_slice(&((chunk.len() * 2) as u16).to_le_bytes());
        tokens.extend(chunk.iter().flat_map(|unit| unit.to_le_bytes()));
        rows += 1;
    }
    tokens.extend(done(0x10, rows));
    tokens
}
