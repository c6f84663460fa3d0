//! What a person sends the chat besides text, over the fake Bot API: a
//! photo and a document reach Claude through the CLI backends and the API
//! (one over the size limit is refused with a reply), and a voice note is
//! transcribed, by a configured program or an OpenAI-compatible endpoint,
//! and answered like text.

use crate::bot_host::{api_chat_host, assistant, chat_host, claude_bot, polling, up, up_command};
use crate::fake_anthropic::FakeAnthropic;
use crate::fake_telegram::{FakeFile, FakeTelegram};
use crate::support::Setup;

/// A photo as Telegram sends it, with `caption`.
fn photo(caption: Option<&str>) -> FakeFile<'_> {
    FakeFile {
        name: "",
        mime_type: "image/jpeg",
        contents: "not really a jpeg 123",
        caption,
        size: None,
    }
}

#[test]
fn a_photo_reaches_claude_through_the_persistent_and_the_one_shot_cli() {
    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"persistent\"");
    telegram.send_file(3, 100, "photo", photo(Some("what is this?")));
    let replies = telegram.wait_for_messages(3, 1);
    assert_eq!(
        replies[0], "fake claude heard \"what is this? [image image/jpeg, 21 bytes]\"; earlier: []",
        "the largest size of the photo, as an image block"
    );
    assert!(telegram.calls().iter().any(|c| c.method == "getFile"));
    assert!(
        setup
            .dir
            .path()
            .join("data/attachments")
            .read_dir()
            .unwrap()
            .count()
            >= 1
    );
    drop(host);

    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"cli\"");
    let document = FakeFile {
        name: "orders.csv",
        mime_type: "text/csv",
        contents: "id,total\n1,40\n",
        caption: None,
        size: None,
    };
    telegram.send_file(3, 100, "document", document);
    let replies = telegram.wait_for_messages(3, 1);
    assert!(
        replies[0].contains("Files attached to this message (read them with the Read tool):")
            && replies[0].contains("orders.csv (text/csv, 14 bytes)"),
        "{replies:?}"
    );
    let placed: Vec<_> = std::fs::read_dir(setup.dir.path().join("claude-work/attachments"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(
        placed,
        ["id,total\n1,40\n"],
        "the file is where Claude's Read tool looks"
    );
    drop(host);
}

#[test]
fn a_pdf_reaches_the_api_as_a_document_block_and_a_file_over_the_limit_is_refused_with_a_reply() {
    let api = FakeAnthropic::start();
    let telegram = FakeTelegram::start();
    let (_setup, host) = api_chat_host(&api, &telegram, "", "");
    let pdf = FakeFile {
        name: "invoice.pdf",
        mime_type: "application/pdf",
        contents: "%PDF-1.4 fake",
        caption: Some("sum this up"),
        size: None,
    };
    telegram.send_file(3, 100, "document", pdf);
    telegram.wait_for_messages(3, 1);
    let request = api.requests().pop().unwrap();
    let content = &request["messages"][0]["content"];
    assert_eq!(
        content[0],
        serde_json::json!({"type": "text", "text": "sum this up"})
    );
    assert_eq!(content[1]["type"], "document");
    assert_eq!(content[1]["source"]["media_type"], "application/pdf");
    assert_eq!(content[1]["source"]["data"], "JVBERi0xLjQgZmFrZQ==");

    let huge = FakeFile {
        name: "backup.zip",
        mime_type: "application/zip",
        contents: "zip",
        caption: None,
        size: Some(25 << 20),
    };
    telegram.send_file(3, 100, "document", huge);
    let replies = telegram.wait_for_messages(3, 2);
    assert_eq!(
        replies[1],
        "backup.zip is 25.0 MB; I can take files up to 20 MB, so I left it out."
    );
    // A chat's messages are handled in order: once the next one is answered,
    // Claude would have been asked about the file.
    telegram.send_text(3, 100, "and this?");
    telegram.wait_for_messages(3, 3);
    let requests = api.requests();
    assert_eq!(
        requests.len(),
        2,
        "nothing left to ask about: Claude was not asked: {requests:#?}"
    );
    assert!(requests[1].to_string().contains("and this?"), "{requests:#?}");
    drop(host);
}

#[test]
fn a_voice_note_is_transcribed_by_the_configured_program_and_answered_like_text() {
    let telegram = FakeTelegram::start();
    let setup = Setup::new();
    // A stand-in for whisper-cli: it prints what the "recording" holds.
    let script = setup.file("transcribe.sh", b"#!/bin/sh\ncat \"$1\" | tr 'a-z' 'A-Z'\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    claude_bot(&telegram)
        .telegram(&format!(
            "[telegram.transcribe]\ncommand = [\"{}\"]\ntimeout = \"10s\"",
            script.display()
        ))
        .write(&setup, vec![assistant("", "backends = [\"persistent\"]")]);
    let host = up(&setup);
    telegram.send_file(3, 100, "voice", FakeFile::voice("remind me to call ada"));
    let replies = telegram.wait_for_messages(3, 1);
    assert_eq!(
        replies[0],
        "🎙 I heard your voice note: “REMIND ME TO CALL ADA”\n\nfake claude heard \"REMIND ME TO CALL ADA\"; earlier: []"
    );

    // A transcriber that fails: the user is told, and asked to type it,
    // and that is the one answer: Claude is not sent the sound it cannot
    // hear (the next answer is to the next message).
    std::fs::write(&script, "#!/bin/sh\necho broken >&2\nexit 2\n").unwrap();
    telegram.send_file(3, 100, "voice", FakeFile::voice("mumble"));
    let replies = telegram.wait_for_messages(3, 2);
    assert_eq!(
        replies[1],
        "I could not make out the voice note (the transcriber failed); please type it."
    );
    telegram.send_text(3, 100, "typed instead");
    let replies = telegram.wait_for_messages(3, 3);
    assert!(
        replies[2].starts_with("fake claude heard \"typed instead\""),
        "{replies:?}"
    );
    drop(host);
}

/// A stand-in for an OpenAI-compatible `/v1/audio/transcriptions`: it
/// takes the multipart form OpenAI documents (`file`, `model`,
/// `response_format`), wants `Authorization: Bearer sk-test`, and answers
/// `{"text": ...}` with what the "recording" holds, in capitals.
fn transcription_endpoint() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<crate::loopback::Request>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = crate::loopback::serve(move |request: crate::loopback::Request| {
        let log = log.clone();
        async move {
            let answer = |status: &str, body: String| {
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
            };
            let fields = form_fields(&request);
            let authorized = request.header("authorization") == Some("Bearer sk-test");
            let heard = fields
                .iter()
                .find(|(head, _)| head.contains("name=\"file\""))
                .map(|(_, contents)| String::from_utf8_lossy(contents).to_uppercase());
            log.lock().unwrap().push(request);
            match (authorized, heard) {
                (false, _) => answer(
                    "401 Unauthorized",
                    r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#
                        .into(),
                ),
                (true, None) => answer("400 Bad Request", r#"{"error":{"message":"no file"}}"#.into()),
                (true, Some(text)) => answer("200 OK", serde_json::json!({ "text": text }).to_string()),
            }
        }
    });
    (url, seen)
}

/// A multipart form's parts: each part's head and contents.
fn form_fields(request: &crate::loopback::Request) -> Vec<(String, Vec<u8>)> {
    let Some(boundary) = request
        .header("content-type")
        .and_then(|t| t.strip_prefix("multipart/form-data; boundary="))
    else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}");
    let body = &request.body;
    let mut starts: Vec<usize> = body
        .windows(delimiter.len())
        .enumerate()
        .filter(|(_, w)| *w == delimiter.as_bytes())
        .map(|(i, _)| i)
        .collect();
    starts.dedup();
    starts
        .windows(2)
        .filter_map(|pair| {
            let part = &body[pair[0] + delimiter.len() + 2..pair[1] - 2];
            let split = part.windows(4).position(|w| w == b"\r\n\r\n")?;
            Some((
                String::from_utf8_lossy(&part[..split]).into_owned(),
                part[split + 4..].to_vec(),
            ))
        })
        .collect()
}

#[test]
fn a_voice_note_is_transcribed_by_an_openai_compatible_endpoint_with_the_host_s_key() {
    let telegram = FakeTelegram::start();
    let (endpoint, seen) = transcription_endpoint();
    let setup = claude_bot(&telegram)
        .telegram(&format!(
            "[telegram.transcribe]\nurl = \"{endpoint}/v1/audio/transcriptions\"\nkey_env = \"TRANSCRIBE_KEY\"\nmodel = \"whisper-large-v3\"\ntimeout = \"10s\""
        ))
        .setup(vec![assistant("", "backends = [\"persistent\"]")]);
    let mut command = up_command(&setup);
    command.env("TRANSCRIBE_KEY", "sk-test");
    let host = polling(command);
    telegram.send_file(3, 100, "voice", FakeFile::voice("invoice acme for march"));
    let replies = telegram.wait_for_messages(3, 1);
    assert_eq!(
        replies[0],
        "🎙 I heard your voice note: “INVOICE ACME FOR MARCH”\n\nfake claude heard \"INVOICE ACME FOR MARCH\"; earlier: []"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].line.starts_with("POST /v1/audio/transcriptions "),
            "{}",
            seen[0].line
        );
        let fields = form_fields(&seen[0]);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(head, _)| head.contains(&format!("name=\"{name}\"")))
                .unwrap_or_else(|| panic!("no `{name}` field in {fields:?}"))
                .clone()
        };
        assert_eq!(field("model").1, b"whisper-large-v3");
        assert_eq!(field("response_format").1, b"json");
        let (head, contents) = field("file");
        assert!(head.contains("filename=\"voice.ogg\""), "{head}");
        assert!(head.contains("Content-Type: audio/ogg"), "{head}");
        assert_eq!(contents, b"invoice acme for march");
    }
    // The host's request is recorded as its own, without the key.
    let records = String::from_utf8_lossy(&setup.mission(&["http", "--json"]).stdout).into_owned();
    assert!(
        records.contains("(host)") && records.contains("/v1/audio/transcriptions"),
        "{records}"
    );
    assert!(!records.contains("sk-test"), "{records}");
    drop(host);

    // Started with a wrong key: the endpoint refuses, and the user is told.
    let mut command = up_command(&setup);
    command.env("TRANSCRIBE_KEY", "sk-wrong");
    let mut host = polling(command);
    telegram.send_file(3, 100, "voice", FakeFile::voice("mumble"));
    let replies = telegram.wait_for_messages(3, 2);
    assert_eq!(
        replies[1],
        "I could not make out the voice note (the transcriber failed); please type it."
    );
    host.wait_for_log("401");
    drop(host);
}
