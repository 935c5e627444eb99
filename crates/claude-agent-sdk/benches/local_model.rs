//! The local model's speed: prompt and decode tokens per second, time to
//! first token, eight agents at once against one, and peak memory.
//!
//!   cargo bench -p claude-agent-sdk --features local --bench local_model
//!
//! Needs the default model in the cache (`cargo run -p orchestra -- model fetch`).
//! Greedy decoding, the SmolLM2 chat prompt below (147 tokens with the chat
//! template), at most 128 new tokens; the median of three rounds; figures go
//! to BENCHMARKS.md.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use claude_agent_sdk::agents::local::fetch::{self, DEFAULT_MODEL};
use claude_agent_sdk::agents::{LocalModel, LocalModelAgent};
use claude_agent_sdk::orchestration::{Agent, AgentInput, Usage};

const PROMPT: &str = "You are reviewing a short product description for an online shop. \
The product is a reusable water bottle made of stainless steel, with a double wall that keeps \
drinks cold for twenty-four hours and hot for twelve. It holds seven hundred and fifty \
millilitres, weighs three hundred and forty grams, and comes in five colours: black, white, \
forest green, ocean blue and sunset orange. The lid has a carrying loop and a wide mouth for \
ice cubes. It is dishwasher safe, free of BPA, and sold with a lifetime warranty. \
Write a friendly paragraph that a customer would enjoy reading, then list three reasons \
to buy it.";

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn timing(output: &claude_agent_sdk::orchestration::AgentOutput, key: &str) -> f64 {
    output.data["timings"][key].as_f64().unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = match fetch::fetch(&DEFAULT_MODEL, &mut |_| {}) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("the default model is needed: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let model = match LocalModel::load_async(&path).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "load: {:.2}s, weights in memory: {:.0} MiB",
        started.elapsed().as_secs_f64(),
        model.weight_bytes() as f64 / (1 << 20) as f64
    );

    let first = Arc::new(AtomicUsize::new(0));
    let agent = |name: &str, max: u32| {
        LocalModelAgent::new(name, &model)
            .with_system_prompt("You are a helpful assistant.")
            .with_max_tokens(max)
    };
    // Warm-up (packs weights, fills caches).
    let _ = agent("warm", 4).execute(AgentInput::new(PROMPT)).await;

    // Time to first token, prompt and decode speed: three rounds.
    let (mut prompts, mut decodes, mut ttfts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let seen = Arc::clone(&first);
        seen.store(0, Ordering::SeqCst);
        let t0 = Instant::now();
        let mark = Arc::new(std::sync::Mutex::new(None));
        let m2 = Arc::clone(&mark);
        let out = agent("bench", 128)
            .on_text_delta(move |_| {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    if let Ok(mut m) = m2.lock() {
                        *m = Some(t0.elapsed().as_secs_f64());
                    }
                }
            })
            .execute(AgentInput::new(PROMPT))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let usage = Usage::from_output(&out).unwrap_or_default();
        let prompt_tps = usage.input_tokens as f64 / (timing(&out, "prompt_ms") / 1e3);
        let decode_tps = usage.output_tokens as f64 / (timing(&out, "decode_ms") / 1e3);
        prompts.push(prompt_tps);
        decodes.push(decode_tps);
        if let Ok(m) = mark.lock() {
            ttfts.push(m.unwrap_or(f64::MAX));
        }
        println!(
            "one agent: {} prompt tokens at {prompt_tps:.1} tok/s, {} generated at {decode_tps:.1} tok/s",
            usage.input_tokens, usage.output_tokens
        );
    }
    println!(
        "median of 3: prompt {:.1} tok/s, decode {:.1} tok/s, time to first token {:.3}s",
        median(&mut prompts),
        median(&mut decodes),
        median(&mut ttfts)
    );

    // Eight agents at once on the shared model.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let a = agent(&format!("a{i}"), 64);
        tasks.push(tokio::spawn(async move {
            a.execute(AgentInput::new(PROMPT)).await
        }));
    }
    let mut generated = 0u64;
    let mut prompt = 0u64;
    for t in tasks {
        if let Ok(Ok(out)) = t.await {
            let u = Usage::from_output(&out).unwrap_or_default();
            generated += u.output_tokens;
            prompt += u.input_tokens;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let single = agent("one", 64)
        .execute(AgentInput::new(PROMPT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let one_secs = t1.elapsed().as_secs_f64();
    let one = Usage::from_output(&single).unwrap_or_default();
    println!(
        "eight agents at once: {generated} tokens generated ({prompt} prompt) in {secs:.2}s = {:.1} tok/s total; one agent alone: {} in {one_secs:.2}s = {:.1} tok/s (ratio {:.2})",
        generated as f64 / secs,
        one.output_tokens,
        one.output_tokens as f64 / one_secs,
        (generated as f64 / secs) / (one.output_tokens as f64 / one_secs)
    );
    println!("peak RSS: {:.0} MiB", peak_rss_mib());
}
