//! End-to-end tests: the real server on a free port, spoken to over HTTP.

mod support;

mod auth;
mod billing;
mod bus;
mod databases;
mod durability;
mod limits;
mod migrations;
mod migrations_cli;
mod migrations_rollout;
mod nats_restart;
mod openapi;
mod persistence;
mod process;
mod provision;
mod query;
mod tools;
