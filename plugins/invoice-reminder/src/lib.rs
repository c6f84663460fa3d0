//! Example task plugin: a person in the loop. Each week (its schedule) it
//! reads the unpaid invoices from an accounting API and, for each overdue
//! one, posts "Invoice 2024-117 to Ada Lovelace, €400, 14 days overdue" to
//! config `chat` with three buttons:
//!
//! - **Send reminder**: `POST {api}/invoices/NUMBER/reminders`, and the
//!   message says so;
//! - **Snooze 3 days**: `later.after(3 days)`; the wake-up asks again if the
//!   invoice is still unpaid then;
//! - **Mark paid**: `POST {api}/invoices/NUMBER/paid`, and the message says
//!   so.
//!
//! The API (config `api`) answers `GET /invoices?status=unpaid` with
//! `[{"number": "2024-117", "customer": "Ada Lovelace", "amount": 400,
//! "currency": "EUR", "due": "2026-11-23"}]` and `GET /invoices/NUMBER` with
//! one; its key is added by the host (`[plugins.invoice-reminder.http.secrets]`),
//! never seen here. Without `chat` it is off: it asks the API nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use mission_task_sdk::http::{self, Method, Request};
use mission_task_sdk::mission::plugin::notify::{self, Button, Message, TextFormat};
use mission_task_sdk::mission::plugin::{event, later};
use mission_task_sdk::{config_value, export_task, Guest, Invocation, Outcome};
use serde_json::Value;

/// How long Snooze waits.
const SNOOZE_MS: u64 = 3 * 86_400_000;

struct InvoiceReminder;

impl Guest for InvoiceReminder {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let api = config_value(&invocation.config, "api")
            .ok_or("set config `api`: the accounting API's base URL")?
            .trim_end_matches('/')
            .to_owned();
        let chat = match config_value(&invocation.config, "chat").filter(|c| !c.trim().is_empty()) {
            Some(chat) => Some(
                chat.parse::<i64>()
                    .map_err(|_| format!("config `chat`: `{chat}` is not a Telegram chat id"))?,
            ),
            None => None,
        };
        let Some(chat) = chat else {
            return Ok(Outcome {
                summary: "off: set config `chat` (and the notify grant's chats) to be asked".into(),
            });
        };
        let summary = if let Some(press) = event::press() {
            pressed(&api, &press)?
        } else if let Some(wake) = event::wake() {
            let number = String::from_utf8_lossy(&wake.payload).into_owned();
            let invoice = get(&format!("{api}/invoices/{number}"))?;
            let invoice = Invoice::read(&invoice)?;
            if invoice.unpaid {
                ask(chat, &invoice)?;
                format!("invoice {number} still unpaid after the snooze: asked again")
            } else {
                format!("invoice {number} paid meanwhile: nothing to ask")
            }
        } else {
            let unpaid = get(&format!("{api}/invoices?status=unpaid"))?;
            let invoices: Vec<Invoice> = unpaid
                .as_array()
                .ok_or("GET /invoices?status=unpaid: not a JSON array")?
                .iter()
                .map(Invoice::read)
                .collect::<Result<_, _>>()?;
            let overdue: Vec<&Invoice> = invoices.iter().filter(|i| i.days_overdue() > 0).collect();
            for invoice in &overdue {
                ask(chat, invoice)?;
            }
            format!(
                "{} overdue of {} unpaid: asked about each",
                overdue.len(),
                invoices.len()
            )
        };
        Ok(Outcome { summary })
    }
}

/// Acts on a press of one of the buttons under an invoice's message.
fn pressed(api: &str, press: &event::ButtonPress) -> Result<String, String> {
    let data = String::from_utf8_lossy(&press.data).into_owned();
    let (action, number) = data
        .split_once(':')
        .ok_or(format!("a button's data is `{data}`"))?;
    let said = match action {
        "remind" => {
            post(&format!("{api}/invoices/{number}/reminders"))?;
            format!("Reminder sent for invoice {number} ({}).", press.user_name)
        }
        "snooze" => {
            later::after(SNOOZE_MS, number.as_bytes()).map_err(|e| e.to_string())?;
            format!(
                "Invoice {number} snoozed for 3 days ({}): I will ask again then.",
                press.user_name
            )
        }
        "paid" => {
            post(&format!("{api}/invoices/{number}/paid"))?;
            format!("Invoice {number} marked paid ({}).", press.user_name)
        }
        other => return Err(format!("unknown action `{other}`")),
    };
    let message = Message {
        text: said.clone(),
        format: TextFormat::Plain,
        buttons: Vec::new(),
    };
    notify::edit(press.chat_id, press.message_id, &message).map_err(|e| e.to_string())?;
    Ok(said)
}

/// Posts the question about `invoice` to `chat`.
fn ask(chat: i64, invoice: &Invoice) -> Result<(), String> {
    let button = |label: &str, action: &str| Button {
        label: label.into(),
        data: format!("{action}:{}", invoice.number).into_bytes(),
    };
    let message = Message {
        text: format!(
            "**Invoice {}** to {}, {}, {} days overdue",
            invoice.number,
            invoice.customer,
            invoice.amount(),
            invoice.days_overdue()
        ),
        format: TextFormat::Markdown,
        buttons: vec![vec![
            button("Send reminder", "remind"),
            button("Snooze 3 days", "snooze"),
            button("Mark paid", "paid"),
        ]],
    };
    notify::post(chat, &message).map_err(|e| e.to_string())?;
    Ok(())
}

/// One invoice as the API gives it.
struct Invoice {
    number: String,
    customer: String,
    amount: f64,
    currency: String,
    /// Days since 1970-01-01 of its due date.
    due: i64,
    unpaid: bool,
}

impl Invoice {
    fn read(value: &Value) -> Result<Invoice, String> {
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("an invoice without `{key}`: {value}"))
        };
        Ok(Invoice {
            number: text("number")?,
            customer: text("customer")?,
            amount: value["amount"]
                .as_f64()
                .ok_or(format!("an invoice without `amount`: {value}"))?,
            currency: text("currency").unwrap_or_else(|_| "EUR".into()),
            due: days_from_date(&text("due")?)?,
            unpaid: value["status"].as_str().is_none_or(|s| s == "unpaid"),
        })
    }

    fn days_overdue(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        now.div_euclid(86_400) - self.due
    }

    /// `€400`, `$12.50`.
    fn amount(&self) -> String {
        let sign = match self.currency.as_str() {
            "EUR" => "€",
            "USD" => "$",
            "GBP" => "£",
            other => other,
        };
        match self.amount.fract() == 0.0 {
            true => format!("{sign}{}", self.amount as i64),
            false => format!("{sign}{:.2}", self.amount),
        }
    }
}

/// `2026-11-23` as days since 1970-01-01.
fn days_from_date(date: &str) -> Result<i64, String> {
    let parts: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let [year, month, day] = parts[..] else {
        return Err(format!("`{date}` is not a date (YYYY-MM-DD)"));
    };
    // Howard Hinnant's days_from_civil.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let of_era = year - era * 400;
    let of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let of_era_days = of_era * 365 + of_era / 4 - of_era / 100 + of_year;
    Ok(era * 146_097 + of_era_days - 719_468)
}

fn get(url: &str) -> Result<Value, String> {
    let response = http::get(url)?;
    if response.status != 200 {
        return Err(format!("GET {url}: {}", response.status));
    }
    serde_json::from_slice(&response.body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

fn post(url: &str) -> Result<(), String> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .map_err(|e| format!("POST {url}: {e}"))?;
    let response = http::send(request)?;
    match response.status {
        200..=299 => Ok(()),
        status => Err(format!("POST {url}: {status}")),
    }
}

export_task!(InvoiceReminder);
