//! Fuzzes the flow compiler: arbitrary bytes as JSON and as YAML must never panic, and a
//! flow that compiles must summarize and render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::flow::{SourceFormat, compile_str, summary, to_dot, to_mermaid};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [SourceFormat::Json, SourceFormat::Yaml] {
        let compilation = compile_str(text, format);
        if let Some(flow) = compilation.flow {
            let _ = (summary(&flow), to_dot(&flow), to_mermaid(&flow));
        }
    }
});
