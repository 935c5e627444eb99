//! # claude-agent-sdk
//!
//! Coordinate many AI agents on one task: pipelines, fan-out/fan-in, retries
//! with backoff, timeouts, cancellation, honest per-attempt traces and an agent
//! registry — with an orchestration overhead close to raw tokio.
//!
//! Everything lives in [`orchestration`]; start with its module docs. Ready
//! agents for real back ends — Claude, OpenAI-compatible servers, Claude Code,
//! any program, and a GGUF model run in-process — are in `agents`, behind the
//! cargo features `claude`, `openai`, `claude-code`, `process` and `local` (or
//! `agents` for all five).
#![warn(missing_docs)]

pub mod orchestration;

#[cfg(any(feature = "http", feature = "subprocess", feature = "local"))]
pub mod agents;

// The README's code blocks, compiled and run as doctests by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

// The code in docs/durability.md, compiled by `cargo test` like the README's.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../../../docs/durability.md")]
pub struct DurabilityDoctests;
