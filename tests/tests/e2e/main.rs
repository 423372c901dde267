//! End-to-end tests: the real server on a free port, spoken to over HTTP.

mod support;

mod auth;
mod bus;
mod databases;
mod limits;
mod openapi;
mod persistence;
mod provision;
mod query;
