//! Example task plugin: a feed digest. Fetches the JSON Feed
//! (<https://jsonfeed.org>) at config `feed` over HTTP, remembers which
//! items it has seen in its state, and sends the new ones — title and link,
//! one line each — to Telegram chat config `chat` with `notify` (when set).
//! Needs the `http` grant for the feed's origin, `state`, and `notify` for
//! the chat. The first run only learns what is there, so a new feed does
//! not flood the chat.

use mission_task_sdk::mission::plugin::{notify, state};
use mission_task_sdk::{config_value, export_task, http, log_info, Guest, Invocation, Outcome};

/// How many item ids are remembered.
const REMEMBERED: usize = 500;

struct FeedDigest;

impl Guest for FeedDigest {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let config = &invocation.config;
        let feed = config_value(config, "feed").ok_or("config `feed` (the feed's URL) is required")?;
        let response = http::get(feed)?;
        if response.status != 200 {
            return Err(format!("{feed} answered {}", response.status));
        }
        let items = items(response.text()?)?;
        let seen = state::get("seen")?;
        let first_run = seen.is_none();
        let seen: Vec<String> = seen.unwrap_or_default().lines().map(str::to_owned).collect();
        let new: Vec<&Item> = items.iter().filter(|i| !seen.contains(&i.id)).collect();
        let remembered: Vec<&str> = items
            .iter()
            .map(|i| i.id.as_str())
            .chain(seen.iter().map(String::as_str))
            .take(REMEMBERED)
            .collect();
        state::set("seen", &remembered.join("\n"))?;
        if first_run {
            return Ok(Outcome {
                summary: format!("{} items in {feed}; from now on new ones are sent", items.len()),
            });
        }
        if let (Some(chat), false) = (config_value(config, "chat"), new.is_empty()) {
            let chat: i64 = chat
                .parse()
                .map_err(|_| format!("config `chat`: `{chat}` is not a Telegram chat id"))?;
            let lines: Vec<String> = new.iter().map(|i| format!("• {} {}", i.title, i.url)).collect();
            notify::send(chat, &format!("New in {feed}:\n{}", lines.join("\n")))?;
        }
        log_info(&format!("{} new of {} items", new.len(), items.len()));
        Ok(Outcome {
            summary: format!(
                "{} new of {} items{}",
                new.len(),
                items.len(),
                new.first()
                    .map(|i| format!(", newest: {}", i.title))
                    .unwrap_or_default()
            ),
        })
    }
}

/// One item of the feed.
struct Item {
    id: String,
    title: String,
    url: String,
}

/// The items of a JSON Feed, newest first as the feed lists them.
fn items(text: &str) -> Result<Vec<Item>, String> {
    let feed: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the feed is not JSON: {e}"))?;
    let items = feed["items"].as_array().ok_or("the feed has no `items` list")?;
    Ok(items
        .iter()
        .filter_map(|item| {
            let id = item["id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| item["id"].as_i64().map(|n| n.to_string()))?;
            Some(Item {
                title: item["title"].as_str().unwrap_or("(untitled)").to_owned(),
                url: item["url"].as_str().unwrap_or_default().to_owned(),
                id,
            })
        })
        .collect())
}

export_task!(FeedDigest);
