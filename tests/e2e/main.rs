//! End-to-end tests: the real `mission` binary and the host library, on real
//! plugins (the examples built for wasm32-wasip2, and misbehaving fixtures
//! built here from WAT), with a real SQLite file in a temporary directory.

mod bot_host;
mod fake_anthropic;
mod fake_telegram;
mod http_client;
mod loopback;
mod support;
mod wat;
mod web;

mod alerts;
mod approvals;
mod backup;
mod chains;
mod chaos;
mod claude;
mod cli;
mod docs;
mod files;
mod hostile;
mod hot_reload;
mod http;
mod import;
mod isolation;
mod languages;
mod later;
mod limits;
mod media;
mod metrics;
mod mission_tools;
mod notify;
mod presses;
mod process;
mod readme;
mod retention;
mod scaffold;
mod schedules;
mod sdk;
mod service;
mod shadow;
mod telegram;
mod tools;
mod watches;
mod webhooks;
