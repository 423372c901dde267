//! End-to-end tests: the real server on a free port, spoken to over HTTP.

mod browser;
mod support;

mod accounts;
mod agents;
mod auth;
mod bench;
mod billing;
mod bus;
mod cli_help;
mod connected_apps;
mod cors;
mod databases;
mod docs_links;
mod durability;
mod fairness;
mod hardening_accounts;
mod hardening_sql;
mod limits;
mod mcp;
mod nats_restart;
mod oauth;
mod oauth_bad_input;
mod oauth_billing;
mod oauth_interop;
mod openapi;
mod persistence;
mod process;
mod provision;
mod query;
mod readme;
mod template_migrations;
mod template_migrations_cli;
mod template_migrations_rollout;
mod tokens;
mod tools;
