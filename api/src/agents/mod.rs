//! What PerSQL offers AI agents on one database: tool definitions (`tools`) and an MCP
//! server (`mcp`).

pub mod mcp;
pub mod tools;
